"""Learning curves from run directories: every episode's return, faint, and a smoothed line (Q23)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from policygrad.run.logger import EPISODES_FILE


def read_episodes(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(global_step, return)`` arrays of every finished episode of a run."""
    path = Path(run_dir) / EPISODES_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir}: not a run directory ({EPISODES_FILE} is missing)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    steps = np.array([float(r["global_step"]) for r in rows])
    rets = np.array([float(r["return"]) for r in rows])
    return steps, rets


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average; the first points average over what exists so far."""
    if len(values) == 0:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (cumsum[idx] - cumsum[lo]) / (idx - lo)


def run_label(run_dir: Path) -> str:
    config_path = run_dir / "config.json"
    if config_path.is_file():
        cfg = json.loads(config_path.read_text()).get("config", {})
        return f"{cfg.get('algo', '?')} seed {cfg.get('seed', '?')} ({run_dir.name})"
    return run_dir.name


def plot_runs(run_dirs: list[str | Path], out: str | Path, window: int = 20, title: str | None = None) -> Path:
    """Draw the learning curves of ``run_dirs`` on one figure, saved to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not run_dirs:
        raise ValueError("plot needs at least one run directory")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, run_dir in enumerate(map(Path, run_dirs)):
        steps, rets = read_episodes(run_dir)
        color = f"C{i % 10}"
        ax.scatter(steps, rets, s=4, alpha=0.2, color=color, linewidths=0)
        ax.plot(steps, smooth(rets, window), color=color, lw=2, label=run_label(run_dir))
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title or f"learning curve (line: mean of last {window} episodes)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
