"""Where a study's runs execute: a :class:`Backend`, made by name with :func:`make_backend` (or
:func:`open_backend`, which closes it after use).

- :mod:`~policygrad.studies.backends.local`: worker processes on this machine;
- :mod:`~policygrad.studies.backends.ray_cluster`: Ray tasks on a cluster (the ``policygrad[ray]`` extra),
  the run directories travelling as messages (:mod:`~policygrad.studies.backends.transfer`);
- :mod:`~policygrad.studies.backends.run_task`: one run's task, its result, and
  :func:`~policygrad.studies.backends.run_task.execute`, which brings a run directory to its end whatever the
  backend;
- :mod:`~policygrad.studies.backends.scheduler`: the one scheduler both backends run their tasks
  with (the worker budget, the retries of a run whose process was lost).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from policygrad.core.errors import UserInputError
from policygrad.studies.backends.run_task import RunTask, TaskResult

BACKENDS = ("local", "ray")


class Backend(Protocol):
    """Where a study's runs execute. The interface a caller with a list of runs needs (``run_study``,
    ``policygrad tune``, your own code) is one method:

    ``run_all(tasks, workers, on_result=None) -> list[TaskResult]``
        Bring each task's run directory (``task.run_dir``, a path on the caller's machine; run ids
        distinct) to its end, keeping at most ``workers`` training processes busy (a run takes
        ``task.processes`` of them: one, or an A3C run's ``num_workers``;
        :mod:`~policygrad.studies.backends.scheduler`): a finished run is kept, a stopped one resumes
        from its periodic checkpoint, others train from the start
        (:func:`~policygrad.studies.backends.run_task.execute`). When a run ends, its directory is
        complete on the caller's machine; then ``on_result(result)`` is called in the caller's thread.
        Returns the results of the tasks that ended, in ``tasks``' order. A run that cannot finish (it
        raised; its process or node was lost more often than the backend retries) is a ``failed``
        result with a one-line ``error``, never an exception. Ctrl-C (KeyboardInterrupt) stops every
        run and propagates; the run directories stay resumable. It may be called any number of times
        on one backend.

    Optional, used when present (``LocalBackend`` and ``RayBackend`` have them):
    ``default_workers() -> int`` (processes at a time when the caller does not say: this machine's
    cores, a Ray cluster's CPUs), ``describe(workers) -> str`` (where the runs go, for progress
    messages) and ``close()`` (release what the backend started, such as a local Ray instance; the
    backends are context managers too).
    """

    def run_all(self, tasks: Sequence[RunTask], workers: int,
                on_result: Callable[[TaskResult], None] | None = None) -> list[TaskResult]: ...


def make_backend(name: str | Backend | None = "local", address: str | None = None, *,
                 echo: Callable[[str], None] | None = print) -> Backend:
    """The backend called ``name``: ``local`` (worker processes on this machine) or ``ray`` (the Ray
    cluster at ``address``, or a local Ray instance started for it when None; needs ``pip install
    'policygrad[ray]'``). A Backend object is returned as it is. Bad names, an ``address`` without Ray,
    or Ray missing: UserInputError."""
    if name is None:
        name = "local"
    if not isinstance(name, str):
        if address is not None:
            raise UserInputError("address= goes with backend='ray', not with a backend object")
        return name
    if name == "local":
        if address is not None:
            raise UserInputError(f"--address {address} is for --backend ray (the local backend starts its own "
                                 "worker processes)")
        from policygrad.studies.backends.local import LocalBackend

        return LocalBackend(echo=echo)
    if name == "ray":
        from policygrad.studies.backends.ray_cluster import RayBackend

        return RayBackend(address, echo=echo)
    raise UserInputError(f"backend {name!r} is unknown: expected one of {' | '.join(BACKENDS)}")


@contextlib.contextmanager
def open_backend(name: str | Backend | None = "local", address: str | None = None, *,
                 echo: Callable[[str], None] | None = print) -> Iterator[Backend]:
    """:func:`make_backend`, closed on leaving (a backend object given is left open: its owner's)."""
    backend = make_backend(name, address, echo=echo)
    try:
        yield backend
    finally:
        close = getattr(backend, "close", None)
        if backend is not name and close is not None:
            close()
