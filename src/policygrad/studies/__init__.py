"""Studies: many runs of one spec (config fields x seeds) in parallel, their results and report.

- what a study is: :mod:`~policygrad.studies.spec` (the spec and ``study.json``), :mod:`~policygrad.studies.grid`
  (its runs and their configs), :mod:`~policygrad.studies.named` (the grids of ``policygrad study``);
- running it: :mod:`~policygrad.studies.runner` (``run_study``, ``resume_study``, ``sweep``) through a backend
  (:mod:`~policygrad.studies.backends`: local worker processes or a Ray cluster, one run task, one scheduler);
- its results: :mod:`~policygrad.studies.results` (``results.csv``, written from the run directories and read
  back), :mod:`~policygrad.studies.figures` and :mod:`~policygrad.studies.report` (``report.md``, ``report.html``),
  :mod:`~policygrad.studies.aggregate` (comparisons across environments).

Tuning (:mod:`policygrad.tuning`) and comparisons (:mod:`policygrad.comparison`) are studies too, one layer up.
"""
