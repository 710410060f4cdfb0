"""What every report shares, below the layers that write reports (``plots.py``, studies, tune, compare,
diagnostics): :mod:`~policygrad.reporting.statistics` (the one bootstrap, the one Holm correction,
effect sizes, power, the interquartile mean), :mod:`~policygrad.reporting.document` (a report as
blocks, rendered as Markdown and as self-contained HTML), :mod:`~policygrad.reporting.figures`
(matplotlib set up once, figures saved reproducibly) and :mod:`~policygrad.reporting.formatting`
(values and numbers as the reports write them). It imports nothing of policygrad: a leaf library."""
