"""Diagnostics of policy-gradient estimators (issue 17): ``policygrad diagnose gradients``.

At a fixed policy, every estimator's gradient on the same episodes, and how noisy, how biased and how
hungry for episodes each one is. The modules, one job each:

- :mod:`~policygrad.diagnostics.episodes`: batches of whole episodes, and where each episode lies;
- :mod:`~policygrad.diagnostics.estimators`: the estimators as per-step weights (total, reward_to_go,
  mean_baseline, value_baseline, td, gae:LAMBDA, nstep:N, registered ones, your own);
- :mod:`~policygrad.diagnostics.critic`: the critic, a run's or one fitted on separate episodes;
- :mod:`~policygrad.diagnostics.gradients`: per-episode gradients of every estimator;
- :mod:`~policygrad.diagnostics.statistics`: noise, signal, cosines, bias, episodes needed;
- :mod:`~policygrad.diagnostics.plots` and :mod:`~policygrad.diagnostics.report`: figures and the report;
- :mod:`~policygrad.diagnostics.diagnose`: :func:`diagnose_gradients`, which runs them in order.

The gradient noise scale during training (``grad_noise_scale``) lives with the algorithms
(:class:`policygrad.algos.grad_noise.GradientNoiseScale`).

Import from the modules (``policygrad.diagnostics.diagnose.diagnose_gradients``, ``.estimators``,
``.report``...): this package imports nothing, so that ``policygrad diagnose --help`` and the other
commands do not load scipy to list the estimators.
"""
