"""One run of a study, whatever runs it: the task a backend is given (:class:`RunTask`), what it gives
back (:class:`TaskResult`), and :func:`execute`, which brings one run directory to its end (kept when
finished, evaluated, resumed from its periodic checkpoint, or trained from the start). The backends
(:mod:`~policygrad.studies.backends.local`'s worker processes, :mod:`~policygrad.studies.backends.ray_cluster`)
only decide where :func:`execute` runs."""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from policygrad.algos import ALGORITHMS
from policygrad.algos.base import AsynchronousAlgorithm
from policygrad.core.config import Config
from policygrad.core.errors import RunDirInUseError, RunWriteError
from policygrad.run.checkpoint import CHECKPOINT_DIR, read_manifest
from policygrad.run.files import write_text_atomic
from policygrad.studies.grid import ExternalRun

EVAL_FILE, ERROR_FILE = "eval.json", "error.txt"
DONE, FAILED = "done", "failed"
LOCK_WAIT = 60.0  # seconds a run waits for its directory's lock (a killed study's worker still exiting)


# -- tasks and their results ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunTask:
    """One run for a backend: train ``config`` into ``run_dir`` (or resume it there)."""

    run_id: str
    run_dir: str
    config: Config | None
    external: ExternalRun | None = None  # instead of config: a run of another method (a comparison's)

    @property
    def processes(self) -> int:
        """The training processes this run keeps busy, what it costs of a study's ``workers``: an
        asynchronous algorithm's ``num_workers`` (A3C's workers train in processes of their own; the
        process running the task only listens to them), 1 for every other run."""
        if self.config is None or not isinstance(ALGORITHMS.get(self.config.algo), type) or \
                not issubclass(ALGORITHMS[self.config.algo], AsynchronousAlgorithm):
            return 1
        workers = getattr(self.config, "num_workers", 1)
        return workers if isinstance(workers, int) and not isinstance(workers, bool) and workers > 1 else 1


@dataclass(frozen=True)
class TaskResult:
    run_id: str
    status: str  # done | failed
    error: str = ""
    attempts: int = 1


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= 500 else line[:497] + "..."


def run_state(run_dir: Path, total_steps: int) -> str:
    """``done`` (eval.json and a complete final checkpoint), ``evaluate`` (trained, not yet evaluated),
    ``resume`` (a periodic checkpoint to continue from) or ``fresh``."""
    trained = False
    try:
        counters = read_manifest(run_dir / CHECKPOINT_DIR)["counters"]
        trained = counters.get("completed") is True and counters.get("global_step", 0) >= total_steps
    except (ValueError, OSError, KeyError, TypeError):
        pass
    if trained:
        return "done" if (run_dir / EVAL_FILE).is_file() else "evaluate"
    from policygrad.run.resume import find_resume_point

    try:
        point = find_resume_point(run_dir, trust_env=True)
    except (ValueError, OSError):
        return "fresh"
    return "resume" if point.global_step < total_steps else "fresh"


def execute(task: RunTask) -> TaskResult:
    """Bring one run to its end: keep it if finished, else evaluate it, resume it from its periodic
    checkpoint, or train it from the start. Any exception becomes a ``failed`` result."""
    from policygrad.training import train

    run_dir = Path(task.run_dir)
    if task.external is not None:
        return execute_external(task, task.external)
    if task.config is None:  # only external runs come without a config, and they returned above
        return TaskResult(task.run_id, FAILED, "the run has neither a policygrad config nor an external method")
    try:
        state = run_state(run_dir, task.config.total_steps)
        if state == "done":
            return TaskResult(task.run_id, DONE)
        (run_dir / ERROR_FILE).unlink(missing_ok=True)
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                if state == "evaluate":
                    finish_evaluation(run_dir, task.config)
                elif state == "resume":
                    # The study's own spec names the environment: its runs are trusted like it.
                    train(task.config, resume_from=run_dir, check_env=False, trust_env=True)
                else:
                    train(task.config, run_dir=run_dir, overwrite=True, check_env=False)
                break
            except RunDirInUseError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        return TaskResult(task.run_id, DONE)
    except Exception as exc:
        return failed(task, run_dir, exc)


def failed(task: RunTask, run_dir: Path, exc: Exception) -> TaskResult:
    """The ``failed`` result of a run that raised ``exc``; its traceback goes to RUN_DIR/error.txt."""
    with contextlib.suppress(OSError, RunWriteError):
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / ERROR_FILE, traceback.format_exc())
    return TaskResult(task.run_id, FAILED, one_line(exc))


def execute_external(task: RunTask, external: ExternalRun) -> TaskResult:
    """An external run: kept when its eval.json is there, else run from the start (it has no
    checkpoints); any exception becomes a ``failed`` result, as for a policygrad run."""
    import shutil

    run_dir = Path(task.run_dir)
    try:
        if (run_dir / EVAL_FILE).is_file():
            return TaskResult(task.run_id, DONE)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        external.entry(run_dir, external.settings, external.protocol)
        if not (run_dir / EVAL_FILE).is_file():
            raise RuntimeError(f"the method ended without writing {EVAL_FILE}")
        return TaskResult(task.run_id, DONE)
    except Exception as exc:
        return failed(task, run_dir, exc)


def finish_evaluation(run_dir: Path, config: Config) -> None:
    """What ``train`` does after training, for a run killed between its final checkpoint and eval.json."""
    from policygrad.agent import load
    from policygrad.evaluation import evaluate
    from policygrad.plots import plot_runs
    from policygrad.run.files import write_json_atomic

    agent = load(run_dir, trust_env=True)
    evaluation = evaluate(agent, episodes=config.eval_episodes, deterministic=True, seed=config.eval_seed)
    write_json_atomic(run_dir / EVAL_FILE, evaluation.to_dict())
    plot_runs([run_dir], run_dir / "learning_curve.png")


def warm_up() -> None:
    """Pay a fresh process's one-time costs before the first run, so that they do not land in its
    training clock (``wall_seconds``): torch imports its compiler stack when the first optimizer is
    made (~1.7 s), and matplotlib loads for the first learning-curve plot. Also: tqdm's lock becomes a
    thread lock (runs show no bar), so that a killed worker leaves no inter-process semaphore behind."""
    import torch
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    with contextlib.suppress(Exception):
        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        import matplotlib.pyplot  # noqa: F401
