"""Run records: ``metrics.csv`` (a row per update), ``episodes.csv`` (a row per finished episode),
``evals.csv`` (a row per periodic deterministic evaluation, when ``eval_every`` is set), TensorBoard
events and a progress bar. Every row is flushed as written, so a crash loses nothing
already logged. Keys are namespaced (``charts/``, ``losses/``, ``diag/``, ``perf/``) so that plots
and reports need no per-algorithm code."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
import warnings
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
from tqdm import tqdm

from policygrad.core.envs import Episode
from policygrad.core.errors import RunWriteError

METRICS_FILE, EPISODES_FILE, EVALS_FILE = "metrics.csv", "episodes.csv", "evals.csv"
# evals.csv: the step, the training clock at that step (evaluations excluded), and the returns' statistics
EVALS_COLUMNS = ("global_step", "wall_seconds", "eval_mean", "eval_std", "eval_min", "eval_max", "episodes")


class RunLogger:
    """Writes a run's records. ``resume`` (a :meth:`position` saved in a checkpoint) continues them:
    rows written after that checkpoint are cut off, TensorBoard events after its step are purged,
    and the counters and wall time go on from there, so a resumed run's records read as one run."""

    def __init__(self, run_dir: Path, total_steps: int, tensorboard: bool = True, progress: bool = True,
                 resume: dict | None = None, evals: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self._write_failed = False
        resume = resume or {}
        self.start = time.perf_counter() - float(resume.get("wall_time", 0.0))
        self.global_step = int(resume.get("global_step", 0))  # of the last logged update
        self.updates = int(resume.get("updates", 0))
        with self._writing(METRICS_FILE):
            self._metrics_file = self._open(METRICS_FILE, resume)
        self._metrics_writer: csv.DictWriter | None = None
        header = self._header(METRICS_FILE, resume)
        if header:
            self._metrics_writer = csv.DictWriter(self._metrics_file, fieldnames=header, restval="",
                                                  extrasaction="ignore")
        with self._writing(EPISODES_FILE):
            self._episodes_file = self._open(EPISODES_FILE, resume)
        self._episodes = csv.writer(self._episodes_file)
        if not self._header(EPISODES_FILE, resume):
            self._episodes.writerow(["global_step", "wall_time", "return", "length"])
        self._evals_file: TextIO | None = None  # evals.csv, written only by runs with periodic evaluations
        if evals:
            with self._writing(EVALS_FILE):
                self._evals_file = self._open(EVALS_FILE, resume)
                self._evals = csv.writer(self._evals_file)
                if not self._header(EVALS_FILE, resume):
                    self._evals.writerow(EVALS_COLUMNS)
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: TensorBoard drops events a crashed run logged after the checkpoint
            self.tb = SummaryWriter(str(self.run_dir), purge_step=self.global_step + 1 if resume else None)
        self.bar = tqdm(total=total_steps, initial=min(self.global_step, total_steps), unit="step",
                        dynamic_ncols=True, disable=not progress, desc="train", mininterval=0.5)

    @contextlib.contextmanager
    def _writing(self, name: str) -> Iterator[None]:
        """A full disk or a read-only directory while writing ``name``: RunWriteError naming it."""
        try:
            yield
        except OSError as exc:
            self._write_failed = True
            raise RunWriteError.from_os_error("log file", self.run_dir / name, exc) from exc

    def _open(self, name: str, resume: dict):
        """A fresh file, or (resuming) the existing one cut back to its size at the checkpoint."""
        path = self.run_dir / name
        size = resume.get(name)
        if size is None or not path.is_file():
            return open(path, "w", newline="")
        with open(path, "rb+") as f:
            if f.seek(0, os.SEEK_END) < size:
                warnings.warn(f"{path} is shorter than when the checkpoint was written: rows are missing",
                              RuntimeWarning, stacklevel=3)
            else:
                f.truncate(size)
        return open(path, "a", newline="")

    def _header(self, name: str, resume: dict) -> list[str]:
        """The CSV header already in a resumed file ([] for a new or empty one)."""
        if not resume.get(name):
            return []
        with open(self.run_dir / name, newline="") as f:
            return next(csv.reader(f), [])

    def position(self) -> dict:
        """Where the records stand (file sizes, counters, wall time): saved in each checkpoint."""
        with self._writing(METRICS_FILE):
            self._metrics_file.flush()
        with self._writing(EPISODES_FILE):
            self._episodes_file.flush()
        position = {METRICS_FILE: os.fstat(self._metrics_file.fileno()).st_size,
                    EPISODES_FILE: os.fstat(self._episodes_file.fileno()).st_size,
                    "global_step": self.global_step, "updates": self.updates, "wall_time": self.wall_time()}
        if self._evals_file is not None:
            with self._writing(EVALS_FILE):
                self._evals_file.flush()
            position[EVALS_FILE] = os.fstat(self._evals_file.fileno()).st_size
        return position

    def wall_time(self) -> float:
        """Seconds of training so far, resumed sessions included and evaluations excluded."""
        return time.perf_counter() - self.start

    def exclude_time(self, seconds: float) -> None:
        """Take ``seconds`` (spent evaluating) off the training clock from now on."""
        self.start += seconds

    def evaluation(self, global_step: int, wall_seconds: float, returns: list[float]) -> None:
        """Record a deterministic evaluation at ``global_step`` (a row of evals.csv); ``wall_seconds``:
        the training clock when it began."""
        if self._evals_file is None:
            raise RuntimeError("this logger was made without evals=True")
        values = np.asarray(returns, dtype=np.float64)
        row = [global_step, f"{wall_seconds:.3f}", float(values.mean()), float(values.std()), float(values.min()),
               float(values.max()), len(values)]
        with self._writing(EVALS_FILE):
            self._evals.writerow(row)
            self._evals_file.flush()
        if self.tb is not None:
            self.tb.add_scalar("charts/eval_return", row[2], global_step)

    def episodes(self, episodes: list[Episode], step_offset: int = 0) -> None:
        """Record finished episodes at the step each ended (``end_step + step_offset``)."""
        for episode in episodes:
            step = episode.end_step + step_offset
            with self._writing(EPISODES_FILE):
                self._episodes.writerow([step, f"{self.wall_time():.3f}", episode.ret, episode.length])
            self.recent_returns.append(episode.ret)
            if self.tb is not None:
                self.tb.add_scalar("charts/episode_return", episode.ret, step)
        with self._writing(EPISODES_FILE):
            self._episodes_file.flush()

    def mean_recent_return(self) -> float:
        return sum(self.recent_returns) / len(self.recent_returns) if self.recent_returns else math.nan

    def update(self, global_step: int, metrics: dict[str, float], steps_done: int) -> None:
        """Log one update's metrics (``global_step`` and ``wall_time`` added) and advance the bar."""
        self.global_step = global_step
        self.updates += 1
        row = {"global_step": global_step, "wall_time": round(self.wall_time(), 3), **metrics}
        with self._writing(METRICS_FILE):
            if self._metrics_writer is None:
                self._metrics_writer = csv.DictWriter(self._metrics_file, fieldnames=list(row), restval="",
                                                      extrasaction="ignore")
                self._metrics_writer.writeheader()
            self._metrics_writer.writerow(row)
            self._metrics_file.flush()
        if self.tb is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(key, value, global_step)
        total = self.bar.total
        if total is None:  # the bar is made with total=total_steps
            raise RuntimeError("the progress bar has no total")
        self.bar.update(min(steps_done, max(total - self.bar.n, 0)))  # the last batch may overshoot
        self.bar.set_postfix(ret=f"{self.mean_recent_return():.1f}", sps=f"{metrics.get('perf/sps', 0):.0f}",
                             refresh=False)

    def close(self) -> None:
        """Close every file, even after a failed write; a write failing here (the last rows) raises
        RunWriteError, unless one already failed and was raised before."""
        failed_before, error = self._write_failed, None
        self.bar.close()
        files = [(METRICS_FILE, self._metrics_file), (EPISODES_FILE, self._episodes_file)]
        if self._evals_file is not None:
            files.append((EVALS_FILE, self._evals_file))
        for name, file in files:
            try:
                with self._writing(name):
                    file.close()  # closes the file even when its last flush fails
            except RunWriteError as exc:
                error = error or exc
        if self.tb is not None:
            self.tb.close()
        if error is not None and not failed_before:
            raise error
