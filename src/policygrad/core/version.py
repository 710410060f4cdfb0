"""The package version (policygrad.__version__; run records carry it)."""

__version__ = "0.1.0"
