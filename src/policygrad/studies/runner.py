"""Running a study: every run of its grid, in parallel, into one study directory.

``STUDY_DIR`` (``studies/NAME``) holds ``study.json`` (the spec), ``runs/RUN_ID/`` (a normal run
directory per run, trained by :func:`policygrad.training.train`), ``results.csv`` (a row per finished
run, in grid order, rewritten as runs finish) and, when :mod:`policygrad.studies.report` is there, the
report. ``.lock``: one process at a time runs a study.

Reliability. Kill the study at any moment and run it again (the same command, or ``policygrad sweep
--resume STUDY_DIR``): finished runs (``eval.json`` written and the final checkpoint complete) are kept,
the others resume from their periodic checkpoint or start over, and since runs are deterministic on
the CPU, results.csv ends as an uninterrupted study's would (but for ``wall_seconds``). A run that
raises (a non-finite loss, an environment error...) is recorded as ``failed`` with its error, the full
traceback in ``runs/RUN_ID/error.txt``; the study goes on, and running it again tries that run again. A
worker process that dies is noticed and its run retried once in a new worker, then recorded as failed.

Where the runs execute is a :class:`Backend` (:func:`make_backend`): :class:`LocalBackend` uses K
spawned processes on this machine, each with one torch thread; ``RayBackend``
(:mod:`policygrad.studies.ray_backend`, the ``policygrad[ray]`` extra) a Ray cluster. One run's
execution, whatever the backend, is :mod:`policygrad.studies.tasks`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from policygrad.core.processes import exit_reason, exit_with_parent, starting_children, stop_children
from policygrad.run.checkpoint import CHECKPOINT_DIR, read_manifest
from policygrad.run.files import write_text_atomic
from policygrad.run.logger import EVALS_FILE
from policygrad.studies.grid import GridRun, expand
from policygrad.studies.spec import (
    DEFAULT_EVAL_EPISODES,
    RESULTS_FILE,
    RUNS_DIR,
    StudySpec,
    check_same_study,
    format_value,
    make_spec,
    read_spec,
    write_spec,
)

# One run's task, result and execution live in studies/tasks.py (below every backend, so that the Ray
# backend can use them without importing this module); they stay importable from here.
from policygrad.studies.tasks import DONE as DONE
from policygrad.studies.tasks import EVAL_FILE as EVAL_FILE
from policygrad.studies.tasks import FAILED as FAILED
from policygrad.studies.tasks import RunTask as RunTask
from policygrad.studies.tasks import TaskResult as TaskResult
from policygrad.studies.tasks import execute as execute
from policygrad.studies.tasks import one_line as one_line
from policygrad.studies.tasks import run_state as run_state
from policygrad.studies.tasks import warm_up

SUMMARY_COLUMNS = ("seed", "status", "final_eval", "auc", "steps_to_threshold", "wall_seconds", "error")
BACKENDS = ("local", "ray")


# -- backends -----------------------------------------------------------------------------------------------
class Backend(Protocol):
    """Where a study's runs execute. The interface a caller with a list of runs needs (``run_study``,
    ``policygrad tune``, your own code) is one method:

    ``run_all(tasks, workers, on_result=None) -> list[TaskResult]``
        Bring each task's run directory (``task.run_dir``, a path on the caller's machine; run ids
        distinct) to its end, at most ``workers`` runs at a time: a finished run is kept, a stopped one
        resumes from its periodic checkpoint, others train from the start (:func:`execute`). When a run
        ends, its directory is complete on the caller's machine; then ``on_result(result)`` is called
        in the caller's thread. Returns the results of the tasks that ended, in ``tasks``' order. A run
        that cannot finish (it raised; its process or node was lost more often than the backend
        retries) is a ``failed`` result with a one-line ``error``, never an exception. Ctrl-C
        (KeyboardInterrupt) stops every run and propagates; the run directories stay resumable. It may
        be called any number of times on one backend.

    Optional, used when present (:class:`LocalBackend` and ``RayBackend`` have them):
    ``default_workers() -> int`` (runs at a time when the caller does not say: this machine's cores, a
    Ray cluster's CPUs), ``describe(workers) -> str`` (where the runs go, for progress messages) and
    ``close()`` (release what the backend started, such as a local Ray instance; the backends are
    context managers too).
    """

    def run_all(self, tasks: Sequence[RunTask], workers: int,
                on_result: Callable[[TaskResult], None] | None = None) -> list[TaskResult]: ...


def make_backend(name: str | Backend | None = "local", address: str | None = None, *,
                 echo: Callable[[str], None] | None = print) -> Backend:
    """The backend called ``name``: ``local`` (worker processes on this machine) or ``ray`` (the Ray
    cluster at ``address``, or a local Ray instance started for it when None; needs ``pip install
    'policygrad[ray]'``). A Backend object is returned as it is. Bad names, an ``address`` without Ray,
    or Ray missing: ValueError."""
    if name is None:
        name = "local"
    if not isinstance(name, str):
        if address is not None:
            raise ValueError("address= goes with backend='ray', not with a backend object")
        return name
    if name == "local":
        if address is not None:
            raise ValueError(f"--address {address} is for --backend ray (the local backend starts its own worker "
                             "processes)")
        return LocalBackend(echo=echo)
    if name == "ray":
        from policygrad.studies.ray_backend import RayBackend

        return RayBackend(address, echo=echo)
    raise ValueError(f"backend {name!r} is unknown: expected one of {' | '.join(BACKENDS)}")


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


class _Worker:
    def __init__(self, ctx: Any, fn: Callable[[Any], TaskResult]) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, fn, os.getpid()), name="policygrad-study-worker")
        with starting_children():  # never re-run the user's script in a worker
            self.proc.start()
        child.close()
        self.task: RunTask | None = None

    def stop(self, timeout: float) -> None:
        def ask() -> None:
            with contextlib.suppress(OSError):
                self.conn.send(None)

        stop_children([self.proc], ask, timeout)
        self.conn.close()


class LocalBackend:
    """K worker processes on this machine (spawn: no state inherited from the caller), each running
    one task at a time with ``fn`` (default :func:`execute`). A worker that dies while running a task
    is replaced, and its task given to a worker again, ``retries`` times at most (then failed); ``echo``
    says so.

    The workers outlive a ``run_all`` that ends normally and take the next call's tasks (a tuning calls
    it once per generation of trials: a fresh spawned worker costs seconds of imports each time), until
    :meth:`close`; one that is interrupted stops them. Whoever makes a LocalBackend closes it
    (:func:`open_backend`, or the study or tuning that made its own)."""

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
        import multiprocessing

        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers={workers!r} is invalid: expected an integer >= 1")
        ctx = multiprocessing.get_context("spawn")
        pending: deque[RunTask] = deque(tasks)
        deaths: dict[str, int] = {}
        results: dict[str, TaskResult] = {}
        pool = self.pool
        while len(pool) > workers:  # workers kept from a call that used more
            pool.pop().stop(0)

        def finish(result: TaskResult) -> None:
            results[result.run_id] = result
            if on_result is not None:
                on_result(result)

        try:
            while pending or any(w.task is not None for w in pool):
                while pending and len(pool) < workers:
                    pool.append(_Worker(ctx, self.fn))
                for worker in pool:
                    if worker.task is None and pending:
                        task = pending.popleft()
                        try:
                            worker.conn.send(task.run_id)
                            worker.conn.send(task)
                            worker.task = task
                        except OSError:  # died while idle: the task never started
                            pending.appendleft(task)
                busy = [w for w in pool if w.task is not None]
                multiprocessing.connection.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], 1.0)
                for worker in busy:
                    if worker.task is None:  # busy holds only workers with a task; mypy cannot see it
                        continue
                    result = None
                    with contextlib.suppress(EOFError, OSError):
                        if worker.conn.poll():
                            result = worker.conn.recv()
                    if result is not None:
                        worker.task = None
                        finish(result if not deaths.get(result.run_id) else
                               TaskResult(result.run_id, result.status, result.error, 1 + deaths[result.run_id]))
                    elif not worker.proc.is_alive():
                        task, worker.task = worker.task, None
                        deaths[task.run_id] = deaths.get(task.run_id, 0) + 1
                        reason = exit_reason(worker.proc.exitcode)
                        if deaths[task.run_id] > self.retries:
                            finish(TaskResult(task.run_id, FAILED, f"the worker process running it died ({reason}) "
                                              f"{deaths[task.run_id]} times", deaths[task.run_id]))
                        else:
                            if self.echo is not None:
                                self.echo(f"  {task.run_id}: its worker process died ({reason}); retrying it in a "
                                          "new one")
                            pending.appendleft(task)
                for worker in [w for w in pool if w.task is None and not w.proc.is_alive()]:
                    worker.stop(0)
                    pool.remove(worker)
        finally:
            if pending or any(w.task is not None for w in pool):  # interrupted: no worker is kept
                for worker in pool:
                    worker.stop(0)
                pool.clear()
        return [results[t.run_id] for t in tasks if t.run_id in results]


# -- results ---------------------------------------------------------------------------------------------------
def read_evals(run_dir: Path) -> list[tuple[int, float]]:
    """``(global_step, eval_mean)`` of each row of the run's evals.csv ([] without one)."""
    try:
        with open(run_dir / EVALS_FILE, newline="") as f:
            return [(int(row["global_step"]), float(row["eval_mean"])) for row in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        return []


def area_under_curve(evals: Sequence[tuple[int, float]]) -> float | None:
    """Trapezoid-rule area under the evaluation curve over global_step, divided by the last step: the
    mean deterministic score over training (None with fewer than two points)."""
    if len(evals) < 2 or evals[-1][0] <= 0:
        return None
    area = sum((s1 - s0) * (m0 + m1) / 2 for (s0, m0), (s1, m1) in zip(evals, evals[1:]))
    return area / evals[-1][0]


def summarize(run_dir: Path, threshold: float | None) -> dict[str, str]:
    """The summary columns of a finished run, as text: final_eval, auc, steps_to_threshold, wall_seconds."""
    out = {"final_eval": "", "auc": "", "steps_to_threshold": "", "wall_seconds": ""}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        out["final_eval"] = repr(float(json.loads((run_dir / EVAL_FILE).read_text())["mean"]))
    evals = read_evals(run_dir)
    auc = area_under_curve(evals)
    out["auc"] = "" if auc is None else repr(auc)
    if threshold is not None:
        out["steps_to_threshold"] = next((str(step) for step, mean in evals if mean >= threshold), "")
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        wall = read_manifest(run_dir / CHECKPOINT_DIR)["run_state"]["logs"]["wall_time"]
        out["wall_seconds"] = f"{float(wall):.3f}"
    if not out["wall_seconds"] and not (run_dir / CHECKPOINT_DIR).exists():  # an external run: its last evaluation's
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
            with open(run_dir / EVALS_FILE, newline="") as f:
                out["wall_seconds"] = f"{float(list(csv.DictReader(f))[-1]['wall_seconds']):.3f}"
    return out


def results_columns(spec: StudySpec) -> list[str]:
    return ["run_id", *spec.vary, *SUMMARY_COLUMNS]


def write_results(study_dir: Path, spec: StudySpec, runs: Sequence[GridRun], results: Mapping[str, TaskResult],
                  cache: dict[str, dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Rewrite results.csv (atomically): a row per finished run, in grid order; returns the rows.
    ``cache``: rows already made, by run id (a finished run's row does not change)."""
    cache = {} if cache is None else cache
    rows = []
    for run in runs:
        result = results.get(run.run_id)
        if result is None:
            continue
        if run.run_id in cache:
            rows.append(cache[run.run_id])
            continue
        row = {"run_id": run.run_id, **{k: format_value(v) for k, v in run.values.items()}, "seed": str(run.seed),
               "status": result.status, "error": result.error}
        summary = summarize(Path(study_dir) / RUNS_DIR / run.run_id, spec.threshold)
        if result.status != DONE:
            summary = {**summary, "final_eval": "", "auc": "", "steps_to_threshold": ""}
        rows.append(cache.setdefault(run.run_id, {**row, **summary}))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=results_columns(spec), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(Path(study_dir) / RESULTS_FILE, text.getvalue())
    return rows


def write_report(study_dir: Path, echo: Callable[[str], None]) -> None:
    """Write the study's report (:func:`policygrad.studies.report.write_report`); a failure is reported
    in one line, and results.csv stays as it is."""
    from policygrad.studies import report  # here: scipy and the plots stay out of the worker processes

    try:
        report.write_report(study_dir)
    except Exception as exc:
        echo(f"report not written ({study_dir / RESULTS_FILE} is complete): {one_line(exc)}")


# -- a study -------------------------------------------------------------------------------------------------
@dataclass
class StudyResult:
    """A study that ran: its directory, spec and the rows of results.csv (text, as in the file)."""

    study_dir: Path
    spec: StudySpec
    results: list[dict[str, str]]

    @property
    def failed(self) -> list[dict[str, str]]:
        return [row for row in self.results if row["status"] != DONE]


@contextlib.contextmanager
def study_lock(study_dir: Path) -> Iterator[None]:
    """One process at a time runs a study (``STUDY_DIR/.lock``; a killed one leaves none behind)."""
    lock = FileLock(study_dir / ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            pid = (study_dir / ".lock.pid").read_text().strip()
        except OSError:
            pid = "?"
        raise ValueError(f"{study_dir} is being run by another policygrad process (PID {pid}): wait for it or "
                         "stop it") from None
    try:
        (study_dir / ".lock.pid").write_text(f"{os.getpid()}\n")
        yield
    finally:
        lock.release()


def default_workers() -> int:
    return os.cpu_count() or 1


def run_study(spec: StudySpec, out_dir: str | Path = "studies", workers: int | None = None, *,
              resume: bool = False, backend: Backend | None = None, echo: Callable[[str], None] | None = print,
              runs: Sequence[GridRun] | None = None) -> StudyResult:
    """Run (or finish) ``spec`` in ``OUT_DIR/NAME``. Every problem with the spec or the directory is a
    ValueError before any run starts; ``resume``: the study must already be there. ``runs``: the
    runs, built by the caller (a comparison's, some external); default ``expand(spec)``."""
    from policygrad.env_check import preflight

    say = echo or (lambda text: None)
    runs = expand(spec) if runs is None else list(runs)  # every config built: a bad spec stops here
    if backend is None:  # the worker processes are this call's: closed when it ends
        with open_backend("local", echo=echo) as local:
            return run_study(spec, out_dir, workers, resume=resume, backend=local, echo=echo, runs=runs)
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers={workers!r} is invalid: expected an integer >= 1")
    study_dir = Path(out_dir) / spec.name
    existed = check_same_study(study_dir, spec)
    if resume and not existed:
        raise ValueError(f"{study_dir}: no study to resume (no study.json there)")
    preflight(spec.env_id)  # the environment check train() makes, once for every run
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create {study_dir}: {exc.strerror or exc}") from None
    with study_lock(study_dir):
        if not existed:  # study.json first: a directory killed before it holds nothing but the lock files
            write_spec(study_dir, spec)
        (study_dir / RUNS_DIR).mkdir(exist_ok=True)
        results: dict[str, TaskResult] = {}
        tasks: list[RunTask] = []
        for run in runs:
            run_dir = study_dir / RUNS_DIR / run.run_id
            done = (run_dir / EVAL_FILE).is_file() if run.external is not None else \
                run_state(run_dir, spec.total_steps) == "done"
            if done:
                results[run.run_id] = TaskResult(run.run_id, DONE, attempts=0)
            else:
                tasks.append(RunTask(run.run_id, str(run_dir), run.config, run.external))
        write_results(study_dir, spec, runs, results)
        if workers is None:  # asked only now: a Ray backend connects (or starts Ray) to count its CPUs
            workers = backend.default_workers() if hasattr(backend, "default_workers") else default_workers()
        used = min(workers, len(tasks))
        kept = f", {len(results)} already done" if results else ""
        where = backend.describe(used) if hasattr(backend, "describe") else \
            f"{used} worker process{'es' * (used != 1)}"
        say(f"study {study_dir}: {len(runs)} run{'s' * (len(runs) != 1)}{kept}; {len(tasks)} to run on {where}")
        for note in spec.notes:
            say(f"  note: {note}")
        start = time.perf_counter()

        made: dict[str, dict[str, str]] = {}

        def on_result(result: TaskResult) -> None:
            results[result.run_id] = result
            rows = write_results(study_dir, spec, runs, results, made)
            row = next(r for r in rows if r["run_id"] == result.run_id)
            detail = (f"final eval {float(row['final_eval']):.1f}" if row["final_eval"] else "done") \
                if result.status == DONE else f"FAILED: {result.error}"
            say(f"  [{len(results)}/{len(runs)}] {result.run_id}: {detail}")

        if tasks:
            backend.run_all(tasks, used, on_result)
        rows = write_results(study_dir, spec, runs, results, made)
        failed = sum(r["status"] != DONE for r in rows)
        say(f"study {study_dir}: {len(rows) - failed} done, {failed} failed in {time.perf_counter() - start:.1f} s; "
            f"results: {study_dir / RESULTS_FILE}")
        write_report(study_dir, say)
    return StudyResult(study_dir, spec, rows)


def resume_study(study_dir: str | Path, workers: int | None = None, *, backend: Backend | None = None,
                 echo: Callable[[str], None] | None = print) -> StudyResult:
    """Finish the study in ``study_dir`` (its spec from study.json)."""
    study_dir = Path(study_dir)
    spec = read_spec(study_dir)
    if spec.name != study_dir.name:
        raise ValueError(f"{study_dir}: its study.json names the study {spec.name!r}; a study's directory is "
                         "named after it (rename the directory back)")
    return run_study(spec, study_dir.parent, workers, resume=True, backend=backend, echo=echo)


def sweep(algo: str, env_id: str = "CartPole-v1", vary: Mapping[str, Sequence[Any]] | None = None,
          seeds: int | Sequence[int] = 3, total_steps: int = 100_000, *, workers: int | None = None,
          name: str | None = None, eval_every: int | None = None, eval_episodes: int = DEFAULT_EVAL_EPISODES,
          threshold: float | None = None, preset: str = "auto",
          adjust: Sequence[Mapping[str, Mapping[str, Any]]] | None = None, out_dir: str | Path = "studies",
          resume: bool = False, backend: str | Backend | None = None, address: str | None = None,
          verbose: bool = True, **fixed: Any) -> StudyResult:
    """Train ``algo`` on ``env_id`` at every combination of ``vary``'s values times ``seeds``, in
    ``workers`` processes (default: one per core), into ``OUT_DIR/NAME``; returns the study directory
    and the rows of its results.csv. Running it again finishes a stopped study.

    ``backend``: ``"local"`` (default: worker processes on this machine), ``"ray"`` (each run a Ray task
    on the cluster at ``address``, or on a local Ray instance started for the study and stopped after
    it; ``pip install 'policygrad[ray]'``), or a :class:`Backend` object (left open).

    ``vary``: ``{field: [values]}``, any config field (``hidden_sizes``: ``[(64, 64), (256, 256)]`` or
    ``["64x64", "256x256"]``). ``seeds``: a count N (seeds 1..N) or a list. ``eval_every``: steps between
    the deterministic evaluations of the learning curves (default ``total_steps // 20``).
    ``threshold``: report the first evaluation step reaching it. ``fixed`` (keyword arguments): other
    config fields, the same for every run. ``adjust``: see :class:`~policygrad.studies.spec.StudySpec`.

        result = pg.sweep("ppo", "CartPole-v1", vary={"learning_rate": [3e-4, 1e-3, 3e-3]}, seeds=5,
                          total_steps=50_000)
        print(result.study_dir, result.results[0]["final_eval"])
    """
    spec = make_spec(algo, env_id, vary, seeds, total_steps, name=name, eval_every=eval_every,
                     eval_episodes=eval_episodes, threshold=threshold, fixed=fixed, preset=preset, adjust=adjust)
    echo = print if verbose else None
    with open_backend(backend, address, echo=echo) as made:
        return run_study(spec, out_dir, workers, resume=resume, backend=made, echo=echo)
