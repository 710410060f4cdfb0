"""The errors policygrad raises on purpose: bad input (UserInputError, raised before anything runs)
and the ways a run can end (TrainingError and its kinds). Anything else that escapes is a bug."""

import errno


class UserInputError(ValueError):
    """The caller's input is wrong (a field's value, a path, a name): the message names what and says
    what is allowed. The command line reports it in one line with exit code 2; any other exception
    reaching it is a bug in policygrad and is reported as one (exit code 1).

    A ValueError subclass, so ``except ValueError`` in users' code keeps catching it."""


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


class RunDirInUseError(UserInputError):
    """Another process is training or resuming into the run directory (it holds the run's lock)."""


def cannot_write(what: str, path: object, exc: OSError) -> str:
    """``cannot write WHAT PATH: the disk is full (No space left on device)`` and the like."""
    reasons = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only", errno.EACCES: "the directory is not writable",
               errno.EPERM: "the directory is not writable"}
    detail = exc.strerror or str(exc) or type(exc).__name__
    reason = f"{reasons[exc.errno]} ({detail})" if exc.errno in reasons else detail
    return f"cannot write {what} {path}: {reason}"
