"""Errors a run can end with (bad input is ValueError, raised before anything runs)."""


class TrainingError(RuntimeError):
    """Training started and could not go on (a worker died, the numbers stopped being finite...)."""


class NonFiniteError(TrainingError):
    """A number that must be finite was not: an environment's observation or reward, or the loss of
    several updates in a row."""
