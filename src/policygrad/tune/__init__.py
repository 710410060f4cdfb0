"""``policygrad tune``: hyperparameter search with Optuna, whose trials are runs of the study runner.

- :mod:`~policygrad.tune.search`: the search itself (:func:`~policygrad.tune.search.tune`, trials, pruning,
  several processes sharing one tuning, the re-evaluation on fresh seeds, the best preset);
- :mod:`~policygrad.tune.space`: the search spaces (a ``--space`` file, the defaults per algorithm);
- :mod:`~policygrad.tune.spec`: a tuning's record (``tune.json``) and its Optuna study, sampler and pruner;
- :mod:`~policygrad.tune.report`: the tuning's report.
"""
