"""Errors a run can end with (bad input is ValueError, raised before anything runs)."""


class TrainingError(RuntimeError):
    """Training started and could not go on (a worker died, the numbers stopped being finite...)."""
