"""Studies: sweeps over config fields x seeds, their statistics, plots and report (issue 13)."""
