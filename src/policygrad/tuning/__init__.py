"""``policygrad tune``: hyperparameter search with Optuna, whose trials are runs of the study runner.

- :mod:`~policygrad.tuning.search`: the search itself (:func:`~policygrad.tuning.search.tune`, trials, pruning,
  several processes sharing one tuning, the re-evaluation on fresh seeds, the best preset);
- :mod:`~policygrad.tuning.space`: the search spaces (a ``--space`` file, the defaults per algorithm);
- :mod:`~policygrad.tuning.spec`: a tuning's record (``tune.json``) and its Optuna study, sampler and pruner;
- :mod:`~policygrad.tuning.report`: the tuning's report.
"""
