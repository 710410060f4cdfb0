"""Child processes, started and stopped one way: A3C's workers and a study's worker pool both use it.

Children are spawned (fork after torch has started threads is unsafe), start without re-running the
user's script, use one BLAS thread each, stop by themselves when their parent dies, and are stopped
by asking first, then terminating, then killing, so that no child outlives the call that stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class Child(Protocol):
    """What both ``multiprocessing.Process`` and torch's spawn processes offer."""

    @property
    def pid(self) -> int | None: ...
    @property
    def exitcode(self) -> int | None: ...
    def is_alive(self) -> bool: ...
    def join(self, timeout: float | None = None) -> None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Start spawned children without re-running the user's ``__main__``.

    Spawn re-imports the parent's main script in every child, so a script that calls ``train`` without
    an ``if __name__ == "__main__":`` guard would start training again in each child. Children only
    need ``policygrad`` itself, so while they start we hide where ``__main__`` came from.
    """
    main = sys.modules["__main__"]
    saved = {name: getattr(main, name) for name in ("__spec__", "__file__") if hasattr(main, name)}
    main.__spec__ = None
    if hasattr(main, "__file__"):
        del main.__file__
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


@contextlib.contextmanager
def one_thread_per_child() -> Iterator[None]:
    """Spawned children inherit the environment: one OpenMP/MKL thread each, set before torch loads
    in them (K children with as many threads as cores each would oversubscribe the machine K times)."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def starting_children() -> Iterator[None]:
    """Both of the above: wrap every ``Process.start()`` of a policygrad child in this."""
    with one_thread_per_child(), main_module_hidden():
        yield


def exit_with_parent(parent_pid: int, exit_code: int = 3, period: float = 0.2) -> None:
    """In a child: a daemon thread that ends this process once its parent is gone. A SIGKILLed parent
    cannot stop its children; without this they would train on, unseen, until the machine restarts."""

    def watch() -> None:
        while True:
            time.sleep(period)
            if os.getppid() != parent_pid:
                os._exit(exit_code)

    threading.Thread(target=watch, daemon=True, name="policygrad-parent-watch").start()


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C into a flag the coordinator checks between messages.

    A KeyboardInterrupt raised at an arbitrary point could land inside ``Queue.get`` halfway through
    reading a message, leaving the pipe mid-message: draining it while stopping the children would then
    block for ever. Deferring the interrupt to a point between messages keeps the pipe whole.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False  # signals only reach the main thread: nothing to defer
        return
    received = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.set())
    try:
        yield received.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_children(children: Sequence[Child], ask: Callable[[], Any], timeout: float = 5.0,
                  drain: Callable[[], Any] | None = None) -> None:
    """``ask()`` the children to stop, wait up to ``timeout`` seconds, then terminate and finally kill
    the ones still running. ``drain()`` runs while waiting: a child cannot exit while its last
    messages are stuck in a full pipe (the multiprocessing docs' "joining processes that use queues")."""
    ask()
    started = [child for child in children if child.pid is not None]  # never started: nothing to stop
    deadline = time.monotonic() + timeout
    while any(child.is_alive() for child in started) and time.monotonic() < deadline:
        if drain is not None:
            drain()
        for child in started:
            child.join(0.02)
    for child in started:
        if child.is_alive():
            child.terminate()
            child.join(1.0)
        if child.is_alive():
            child.kill()
            child.join()


def exit_reason(exitcode: int | None) -> str:
    """``killed by SIGKILL``, ``exit code 1``: how a child ended, in words."""
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exitcode).name}"
        return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
