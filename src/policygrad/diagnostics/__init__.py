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
(:class:`policygrad.algos.on_policy.GradientNoiseScale`).
"""

from policygrad.diagnostics.diagnose import diagnose_gradients
from policygrad.diagnostics.estimators import DEFAULT_ESTIMATORS, Estimator, Signals
from policygrad.diagnostics.report import write_report
from policygrad.diagnostics.result import GradientDiagnosis
from policygrad.diagnostics.statistics import EstimatorStats

__all__ = ["DEFAULT_ESTIMATORS", "Estimator", "EstimatorStats", "GradientDiagnosis", "Signals", "diagnose_gradients",
           "write_report"]
