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

Where the runs execute is a backend (:mod:`policygrad.studies.backends`): ``local`` uses K spawned
processes on this machine, each with one torch thread; ``ray`` a Ray cluster (the ``policygrad[ray]``
extra). K is the study's budget of training processes: an A3C run, which trains in ``num_workers``
processes, takes that many of the K (:mod:`policygrad.studies.backends.scheduler`). One run's
execution, whatever the backend, is :mod:`policygrad.studies.backends.run_task`; its row of
results.csv, :mod:`policygrad.studies.results`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import Timeout

from policygrad.core.errors import UserInputError
from policygrad.run.files import acquire_lock_file, release_lock_file, write_text_atomic
from policygrad.studies.backends import Backend, open_backend
from policygrad.studies.backends.local import default_workers
from policygrad.studies.backends.run_task import DONE, EVAL_FILE, RunTask, TaskResult, one_line, run_state
from policygrad.studies.backends.scheduler import budget_notes, check_workers, processes_needed
from policygrad.studies.grid import GridRun, expand
from policygrad.studies.results import write_results
from policygrad.studies.spec import (
    DEFAULT_EVAL_EPISODES,
    RESULTS_FILE,
    RUNS_DIR,
    StudySpec,
    check_same_study,
    make_spec,
    read_spec,
    write_spec,
)


def import_report_modules_meanwhile() -> threading.Thread:
    """Import the report's modules (scipy.stats, matplotlib: ~3 s) in a thread of this process while
    the runs train in the workers, instead of after the last run, when nothing else is left to do."""

    def load() -> None:
        with contextlib.suppress(Exception):  # a failure shows, with its message, when the report is written
            from policygrad.studies import report  # noqa: F401

    thread = threading.Thread(target=load, daemon=True, name="policygrad-report-imports")
    thread.start()
    return thread


def write_report_or_say(study_dir: Path, echo: Callable[[str], None]) -> None:
    """Write the study's report (:func:`policygrad.studies.report.write_report`); a failure is reported
    in one line, and results.csv stays as it is."""
    from policygrad.studies import report  # here: scipy and the plots stay out of the worker processes

    try:
        path = report.write_report(study_dir)
    except Exception as exc:
        echo(f"report not written ({study_dir / RESULTS_FILE} is complete): {one_line(exc)}")
    else:
        echo(f"report: {path}")


# -- a study -------------------------------------------------------------------------------------------------
FLOAT_COLUMNS = ("final_eval", "auc", "wall_seconds")
INT_COLUMNS = ("seed", "steps_to_threshold")


def typed_row(row: Mapping[str, str], vary: Collection[str]) -> dict[str, Any]:
    """A row of results.csv as data: numbers as numbers (``final_eval``, ``auc``, ``wall_seconds``
    floats; ``seed``, ``steps_to_threshold`` ints), the varied values parsed back (``0.99`` -> 0.99,
    ``64x64`` -> (64, 64)), and None where the file holds nothing; ``run_id``, ``status``, ``error`` text."""
    from policygrad.studies.results import parse_value

    out: dict[str, Any] = {}
    for key, text in row.items():
        if text is None or text == "":
            out[key] = None
        elif key in FLOAT_COLUMNS:
            out[key] = float(text)
        elif key in INT_COLUMNS:
            out[key] = int(text)
        elif key in vary:
            out[key] = parse_value(text)
        else:
            out[key] = text
    return out


@dataclass
class StudyResult:
    """A study that ran: its directory, spec and its results, a row per run as data (:func:`typed_row`:
    ``max(r["final_eval"] for r in result.done)`` is the best score, a float); ``results.csv`` keeps
    them as text (``rows_text``)."""

    study_dir: Path
    spec: StudySpec
    rows_text: list[dict[str, str]]

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every run's row of results.csv, numbers as numbers and None for an empty cell."""
        return [typed_row(row, self.spec.vary) for row in self.rows_text]

    @property
    def done(self) -> list[dict[str, Any]]:
        """The rows of the runs that finished."""
        return [row for row in self.results if row["status"] == DONE]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.results if row["status"] != DONE]

    def best(self, metric: str = "final_eval", by: str | None = None) -> dict[str, Any]:
        """The best of the finished runs by ``metric`` (``final_eval`` or ``auc``: highest; ``wall_seconds``
        or ``steps_to_threshold``: lowest), as ``{"value": ..., "row": ...}`` for one run; with ``by`` (a
        varied field such as ``gamma`` or ``method``) the best value of that field by the mean of
        ``metric`` over its seeds: ``{"value": field value, "mean": ..., "runs": n}``. Runs without a
        value of ``metric`` are left out; a ValueError when none has one."""
        lower = metric in ("wall_seconds", "steps_to_threshold")
        columns = ("final_eval", "auc", "wall_seconds", "steps_to_threshold")
        if metric not in columns:
            raise UserInputError(f"metric={metric!r} is invalid: expected one of {' | '.join(columns)}")
        rows = [row for row in self.done if row.get(metric) is not None]
        if not rows:
            raise UserInputError(f"no finished run of {self.study_dir} has a value of {metric}")
        sign = -1.0 if lower else 1.0
        if by is None:
            row = max(rows, key=lambda r: sign * r[metric])
            return {"value": row[metric], "row": row}
        if by not in self.spec.vary:
            raise UserInputError(f"by={by!r} is invalid: expected a varied field of this study "
                                 f"({' | '.join(self.spec.vary) or 'none'})")
        groups: dict[Any, list[float]] = {}
        for row in rows:
            key = row[by]
            groups.setdefault(tuple(key) if isinstance(key, list) else key, []).append(row[metric])
        value, scores = max(groups.items(), key=lambda item: sign * sum(item[1]) / len(item[1]))
        return {"value": value, "mean": sum(scores) / len(scores), "runs": len(scores)}

    def to_dataframe(self) -> Any:
        """``results`` as a pandas DataFrame (pandas is not a dependency of policygrad: an ImportError
        saying so when it is not installed)."""
        try:
            pd = importlib.import_module("pandas")  # optional: not a dependency, no stubs needed
        except ImportError as exc:
            raise ImportError("StudyResult.to_dataframe() needs pandas, which policygrad does not install: "
                              "pip install pandas (or read results.csv, or use .results)") from exc
        return pd.DataFrame(self.results)


@contextlib.contextmanager
def study_lock(study_dir: Path) -> Iterator[None]:
    """One process at a time runs a study (``STUDY_DIR/.lock``; a killed one leaves none held, a finished
one none at all)."""
    try:
        lock = acquire_lock_file(study_dir / ".lock")
    except Timeout:
        try:
            pid = (study_dir / ".lock.pid").read_text().strip()
        except OSError:
            pid = "?"
        raise UserInputError(f"{study_dir} is being run by another policygrad process (PID {pid}): wait for it or "
                             "stop it") from None
    try:
        write_text_atomic(study_dir / ".lock.pid", f"{os.getpid()}\n")
        yield
    finally:
        release_lock_file(lock, study_dir / ".lock", study_dir / ".lock.pid")


def run_study(spec: StudySpec, out_dir: str | Path = "studies", workers: int | None = None, *,
              resume: bool = False, backend: Backend | None = None, echo: Callable[[str], None] | None = print,
              runs: Sequence[GridRun] | None = None) -> StudyResult:
    """Run (or finish) ``spec`` in ``OUT_DIR/NAME``. Every problem with the spec or the directory is a
    UserInputError before any run starts; ``resume``: the study must already be there. ``runs``: the
    runs, built by the caller (a comparison's, some external); default ``expand(spec)``."""
    from policygrad.env_check import preflight

    say = echo or (lambda text: None)
    runs = expand(spec) if runs is None else list(runs)  # every config built: a bad spec stops here
    if backend is None:  # the worker processes are this call's: closed when it ends
        with open_backend("local", echo=echo) as local:
            return run_study(spec, out_dir, workers, resume=resume, backend=local, echo=echo, runs=runs)
    if workers is not None:
        check_workers(workers)
    study_dir = Path(out_dir) / spec.name
    existed = check_same_study(study_dir, spec)
    if resume and not existed:
        raise UserInputError(f"{study_dir}: no study to resume (no study.json there)")
    preflight(spec.env_id, spec.environment_kwargs())  # the environment check train() makes, once for every run
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create {study_dir}: {exc.strerror or exc}") from None
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
        used = processes_needed(tasks, workers)
        kept = f", {len(results)} already done" if results else ""
        where = backend.describe(used) if hasattr(backend, "describe") else \
            f"{used} worker process{'es' * (used != 1)}"
        say(f"study {study_dir}: {len(runs)} run{'s' * (len(runs) != 1)}{kept}; {len(tasks)} to run on {where}")
        for note in [*spec.notes, *budget_notes(tasks, workers)]:
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
            import_report_modules_meanwhile()
            backend.run_all(tasks, used, on_result)
        rows = write_results(study_dir, spec, runs, results, made)
        failed = sum(r["status"] != DONE for r in rows)
        say(f"study {study_dir}: {len(rows) - failed} done, {failed} failed in {time.perf_counter() - start:.1f} s; "
            f"results: {study_dir / RESULTS_FILE}")
        write_report_or_say(study_dir, say)
    return StudyResult(study_dir, spec, rows)


def resume_study(study_dir: str | Path, workers: int | None = None, *, backend: Backend | None = None,
                 echo: Callable[[str], None] | None = print) -> StudyResult:
    """Finish the study in ``study_dir`` (its spec from study.json)."""
    study_dir = Path(study_dir)
    spec = read_spec(study_dir)
    if spec.name != study_dir.name:
        raise UserInputError(f"{study_dir}: its study.json names the study {spec.name!r}; a study's directory is "
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
    it; ``pip install 'policygrad[ray]'``), or a :class:`~policygrad.studies.backends.Backend` object
    (left open). An A3C run takes ``num_workers`` of the ``workers``.

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
