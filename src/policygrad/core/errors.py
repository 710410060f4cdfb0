"""Errors a run can end with (bad input is ValueError, raised before anything runs)."""

import errno


class TrainingError(RuntimeError):
    """Training started and could not go on (a worker died, the numbers stopped being finite...)."""


class NonFiniteError(TrainingError):
    """A number that must be finite was not: an environment's observation or reward, or the loss of
    several updates in a row."""


class RunWriteError(TrainingError):
    """A file of the run could not be written (a full disk, a read-only directory...). The message
    names the path; what was written before it (the previous checkpoint) is intact."""

    @classmethod
    def from_os_error(cls, what: str, path: object, exc: OSError) -> "RunWriteError":
        return cls(cannot_write(what, path, exc))


class RunDirInUseError(ValueError):
    """Another process is training or resuming into the run directory (it holds the run's lock)."""


def cannot_write(what: str, path: object, exc: OSError) -> str:
    """``cannot write WHAT PATH: the disk is full (No space left on device)`` and the like."""
    reasons = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only", errno.EACCES: "the directory is not writable",
               errno.EPERM: "the directory is not writable"}
    detail = exc.strerror or str(exc) or type(exc).__name__
    reason = f"{reasons[exc.errno]} ({detail})" if exc.errno in reasons else detail
    return f"cannot write {what} {path}: {reason}"
