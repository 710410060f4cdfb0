"""The local backend: K worker processes on this machine, each running one task at a time.

Workers are spawned (no state inherited from the caller), each with one torch thread, and outlive a
``run_all`` that ends normally: they take the next call's tasks (a tuning calls it once per generation
of trials, and a fresh spawned worker costs seconds of imports each time), until :meth:`LocalBackend.close`.
A worker that dies while running a task is replaced, and its task handed to a worker again by the
scheduler (:mod:`~policygrad.studies.backends.scheduler`), ``retries`` times at most.
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

from policygrad.core.processes import exit_reason, exit_with_parent, starting_children, stop_children
from policygrad.studies.backends.run_task import FAILED, RunTask, TaskResult, execute, one_line, warm_up
from policygrad.studies.backends.scheduler import Scheduler


def default_workers() -> int:
    """This machine's cores: the local backend's budget when the caller gives none."""
    return os.cpu_count() or 1


def _worker_main(conn: multiprocessing.connection.Connection, fn: Callable[[Any], TaskResult],
                 parent_pid: int) -> None:
    """A worker process: tasks in, results out, until told to stop (None) or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides

    exit_with_parent(parent_pid)  # the run's checkpoints stay, and its lock goes with the process
    warm_up()
    while True:
        try:
            run_id = conn.recv()  # a run id (a str), then its task; None: stop
        except (EOFError, OSError):
            run_id = None
        if run_id is None:
            break
        # The task arrives from the parent over this process's own pipe (multiprocessing's transport),
        # never from a file; it comes separately so that a run whose task cannot be rebuilt here is
        # reported by its id.
        try:
            task = conn.recv()
        except (EOFError, OSError):
            break
        except Exception as exc:  # e.g. a config class defined in the user's script, which workers never run
            conn.send(TaskResult(run_id, FAILED, f"a worker process cannot load this run ({one_line(exc)}): an "
                                 "algorithm, estimator or environment defined or registered in your script is "
                                 "unknown to the worker processes; define it in a module they can import"))
            continue
        conn.send(fn(task))


def _died(reason: str) -> Callable[[int], str]:
    """The error of a run whose worker process died ``count`` times, the last for ``reason``."""
    return lambda count: f"the worker process running it died ({reason}) {count} times"


class _Worker:
    def __init__(self, ctx: Any, fn: Callable[[Any], TaskResult]) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, fn, os.getpid()), name="policygrad-study-worker")
        with starting_children():  # never re-run the user's script in a worker
            self.proc.start()
        child.close()
        self.task: RunTask | None = None

    def give(self, task: RunTask) -> bool:
        """Send ``task``; False when the worker is gone (it died while idle: the task never started)."""
        try:
            self.conn.send(task.run_id)
            self.conn.send(task)
        except OSError:
            return False
        self.task = task
        return True

    def stop(self, timeout: float) -> None:
        def ask() -> None:
            with contextlib.suppress(OSError):
                self.conn.send(None)

        stop_children([self.proc], ask, timeout)
        self.conn.close()


class LocalBackend:
    """K worker processes on this machine (spawn: no state inherited from the caller), each running
    one task at a time with ``fn`` (default :func:`~policygrad.studies.backends.run_task.execute`). A
    worker that dies while running a task is replaced, and its task given to a worker again,
    ``retries`` times at most (then failed); ``echo`` says so.

    The workers outlive a ``run_all`` that ends normally and take the next call's tasks, until
    :meth:`close`; one that is interrupted stops them. Whoever makes a LocalBackend closes it
    (:func:`~policygrad.studies.backends.open_backend`, or the study or tuning that made its own)."""

    def __init__(self, fn: Callable[[Any], TaskResult] = execute, retries: int = 1,
                 echo: Callable[[str], None] | None = print) -> None:
        self.fn, self.retries, self.echo = fn, retries, echo
        self.pool: list[_Worker] = []  # idle between calls

    def default_workers(self) -> int:
        return default_workers()

    def describe(self, workers: int) -> str:
        return f"{workers} worker process{'es' * (workers != 1)}"

    def close(self) -> None:
        """Tell the idle workers to exit, without waiting for them (an interpreter with torch takes a
        second or two to tear down; multiprocessing reaps them later)."""
        pool, self.pool = self.pool, []
        for worker in pool:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
            worker.conn.close()

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_all(self, tasks: Sequence[RunTask], workers: int,
                on_result: Callable[[TaskResult], None] | None = None) -> list[TaskResult]:
        """See :class:`~policygrad.studies.backends.Backend`."""
        import multiprocessing

        schedule = Scheduler(tasks, workers, self.retries, on_result, self.echo)
        ctx = multiprocessing.get_context("spawn")
        pool = self.pool
        while len(pool) > workers:  # workers kept from a call that used more
            pool.pop().stop(0)
        try:
            while schedule.unfinished:
                self._start(schedule, pool, ctx, workers)
                busy = [w for w in pool if w.task is not None]
                multiprocessing.connection.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], 1.0)
                for worker in busy:
                    task = worker.task
                    if task is None:  # busy holds only workers with a task; mypy cannot see it
                        continue
                    result = None
                    with contextlib.suppress(EOFError, OSError):
                        if worker.conn.poll():
                            result = worker.conn.recv()
                    if result is not None:
                        worker.task = None
                        schedule.finish(result)
                    elif not worker.proc.is_alive():
                        worker.task = None
                        reason = exit_reason(worker.proc.exitcode)
                        schedule.lost(task, _died(reason),
                                      f"  {task.run_id}: its worker process died ({reason}); retrying it in a new one")
                for worker in [w for w in pool if w.task is None and not w.proc.is_alive()]:
                    worker.stop(0)
                    pool.remove(worker)
        finally:
            if schedule.unfinished:  # interrupted: no worker is kept
                for worker in pool:
                    worker.stop(0)
                pool.clear()
        return schedule.ordered_results()

    def _start(self, schedule: Scheduler, pool: list[_Worker], ctx: Any, workers: int) -> None:
        """Give every task that fits in the budget to an idle worker, spawning workers up to ``workers``."""
        while True:
            idle = next((w for w in pool if w.task is None and w.proc.is_alive()), None)
            if idle is None and len(pool) >= workers:
                return
            task = schedule.next_task()
            if task is None:
                return
            if idle is None:
                idle = _Worker(ctx, self.fn)
                pool.append(idle)
            if not idle.give(task):  # died while idle: the task never started; the worker goes
                schedule.put_back(task)
                idle.stop(0)
                pool.remove(idle)
