"""Run records: ``metrics.csv`` (a row per update), ``episodes.csv`` (a row per finished episode),
TensorBoard events and a progress bar. Every row is flushed as written, so a crash loses nothing
already logged. Keys are namespaced (``charts/``, ``losses/``, ``diag/``, ``perf/``) so that plots
and reports need no per-algorithm code."""

from __future__ import annotations

import csv
import math
import time
from collections import deque
from pathlib import Path

from tqdm import tqdm

from policygrad.envs import Episode

METRICS_FILE, EPISODES_FILE = "metrics.csv", "episodes.csv"


class RunLogger:
    def __init__(self, run_dir: Path, total_steps: int, tensorboard: bool = True, progress: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.start = time.perf_counter()
        self._metrics_file = open(self.run_dir / METRICS_FILE, "w", newline="")
        self._metrics_writer: csv.DictWriter | None = None
        self._episodes_file = open(self.run_dir / EPISODES_FILE, "w", newline="")
        self._episodes = csv.writer(self._episodes_file)
        self._episodes.writerow(["global_step", "wall_time", "return", "length"])
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.global_step = 0  # of the last logged update
        self.updates = 0
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir))
        self.bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True, disable=not progress,
                        desc="train", mininterval=0.5)

    def wall_time(self) -> float:
        return time.perf_counter() - self.start

    def episodes(self, episodes: list[Episode], step_offset: int = 0) -> None:
        """Record finished episodes at the step each ended (``end_step + step_offset``)."""
        for episode in episodes:
            step = episode.end_step + step_offset
            self._episodes.writerow([step, f"{self.wall_time():.3f}", episode.ret, episode.length])
            self.recent_returns.append(episode.ret)
            if self.tb is not None:
                self.tb.add_scalar("charts/episode_return", episode.ret, step)
        self._episodes_file.flush()

    def mean_recent_return(self) -> float:
        return sum(self.recent_returns) / len(self.recent_returns) if self.recent_returns else math.nan

    def update(self, global_step: int, metrics: dict[str, float], steps_done: int) -> None:
        """Log one update's metrics (``global_step`` and ``wall_time`` added) and advance the bar."""
        self.global_step = global_step
        self.updates += 1
        row = {"global_step": global_step, "wall_time": round(self.wall_time(), 3), **metrics}
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
        self.bar.update(min(steps_done, max(self.bar.total - self.bar.n, 0)))  # the last batch may overshoot
        self.bar.set_postfix(ret=f"{self.mean_recent_return():.1f}", sps=f"{metrics.get('perf/sps', 0):.0f}",
                             refresh=False)

    def close(self) -> None:
        self.bar.close()
        self._metrics_file.close()
        self._episodes_file.close()
        if self.tb is not None:
            self.tb.close()
