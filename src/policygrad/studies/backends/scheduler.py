"""The one scheduler every backend runs its tasks with: which task starts next within the worker
budget, and what happens when the process running a task is lost.

The budget. ``workers`` is the number of training processes a backend keeps busy at once. A run
costs :attr:`~policygrad.studies.backends.run_task.RunTask.processes` of it: one, or an A3C run's
``num_workers`` (its workers train in processes of their own), so a study with ``--workers K`` never
trains in more than K processes at once. A waiting task starts as soon as its processes fit in what
is free (the first that fits, in the tasks' order). A run that needs more than the whole budget
starts only when nothing else runs, and then runs alone (:func:`budget_notes` says so before the
study starts): K is then exceeded by that one run, never by two.

Losses. A task whose process dies (a local worker killed, a Ray worker or node lost) is not the
run's failure but its process's: the task goes back to the front of the queue (it resumes from its
last periodic checkpoint) ``retries`` times at most, and the run is failed after that. A run that
raises is a result like any other, never retried. The backends differ only in how they start a
task and notice its end; this module decides what follows.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence

from policygrad.core.errors import UserInputError
from policygrad.studies.backends.run_task import FAILED, RunTask, TaskResult


def check_workers(workers: object) -> int:
    """``workers`` if it is an integer >= 1; UserInputError otherwise."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise UserInputError(f"workers={workers!r} is invalid: expected an integer >= 1")
    return workers


def budget_notes(tasks: Sequence[RunTask], workers: int) -> list[str]:
    """What the budget does to runs that train in several processes, in a line each (none for a
    study of single-process runs)."""
    wide = sorted({task.processes for task in tasks if task.processes > 1})
    notes = []
    for processes in wide:
        line = (f"runs with num_workers={processes} (A3C) train in {processes} processes each: they take {processes} "
                f"of the {workers} workers")
        if processes > workers:
            line = (f"runs with num_workers={processes} (A3C) train in {processes} processes each, more than the "
                    f"{workers} workers: each runs alone, when nothing else runs")
        notes.append(line)
    return notes


def processes_needed(tasks: Sequence[RunTask], workers: int) -> int:
    """The training processes ``tasks`` keep busy at most under the budget ``workers``."""
    return min(workers, sum(task.processes for task in tasks)) if tasks else 0


class Scheduler:
    """The tasks of one ``run_all`` call: those waiting, those running, their losses and results.

    A backend's loop: while :attr:`unfinished`, start every task :meth:`next_task` gives (it counts as
    running from then on), wait for an event, and report each task's end with :meth:`finish` (a
    result) or :meth:`lost` (its process died); :meth:`put_back` returns a task that never started.
    ``on_result(result)`` is called for every result, in the caller's thread; ``echo`` says what is
    retried."""

    def __init__(self, tasks: Sequence[RunTask], workers: int, retries: int,
                 on_result: Callable[[TaskResult], None] | None = None,
                 echo: Callable[[str], None] | None = None) -> None:
        self.workers = check_workers(workers)
        self.retries, self.on_result, self.echo = retries, on_result, echo
        self.tasks = list(tasks)
        self.pending: deque[RunTask] = deque(tasks)
        self.running: dict[str, int] = {}  # run id -> its processes
        self.losses: dict[str, int] = {}
        self.results: dict[str, TaskResult] = {}

    @property
    def unfinished(self) -> bool:
        return bool(self.pending or self.running)

    @property
    def busy(self) -> int:
        """The processes the running tasks keep busy."""
        return sum(self.running.values())

    def next_task(self) -> RunTask | None:
        """The first waiting task whose processes fit in the free budget (one wider than the whole
        budget when nothing runs), now running; None when none fits."""
        free = self.workers - self.busy
        for task in self.pending:
            need = task.processes
            if need <= free or (need > self.workers and not self.running):
                self.pending.remove(task)
                self.running[task.run_id] = need
                return task
        return None

    def put_back(self, task: RunTask) -> None:
        """A task that never started (its process was gone before it got it): first in the queue again,
        not counted as a loss."""
        self.running.pop(task.run_id, None)
        self.pending.appendleft(task)

    def finish(self, result: TaskResult, attempts: int | None = None) -> None:
        """The task ended with ``result``; its ``attempts``: the processes that ran it (those it lost,
        and the one that gave this result)."""
        self.running.pop(result.run_id, None)
        attempts = self.losses.get(result.run_id, 0) + 1 if attempts is None else attempts
        result = dataclasses.replace(result, attempts=attempts)
        self.results[result.run_id] = result
        if self.on_result is not None:
            self.on_result(result)

    def lost(self, task: RunTask, failure: Callable[[int], str], retrying: str) -> bool:
        """The process running ``task`` is gone: the task waits again at the front of the queue
        (``echo(retrying)``, True) or, lost more than ``retries`` times, fails with the error
        ``failure(times lost)`` (False)."""
        self.running.pop(task.run_id, None)
        count = self.losses[task.run_id] = self.losses.get(task.run_id, 0) + 1
        if count > self.retries:
            self.finish(TaskResult(task.run_id, FAILED, failure(count)), attempts=count)
            return False
        if self.echo is not None:
            self.echo(retrying)
        self.pending.appendleft(task)
        return True

    def ordered_results(self) -> list[TaskResult]:
        """The results of the tasks that ended, in the tasks' order."""
        return [self.results[t.run_id] for t in self.tasks if t.run_id in self.results]
