"""Learning curves from run directories (Q23). One run, or runs that differ only in their seed: every
episode's return, faint, and a smoothed line per run. Runs whose configs differ in other fields: one
colour per group of equal values, the mean over the group's seeds of their smoothed curves with a 95%
bootstrap confidence band (:func:`policygrad.reporting.statistics.mean_ci_band`)."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from policygrad.core.errors import UserInputError
from policygrad.reporting.figures import pyplot, save
from policygrad.reporting.formatting import format_value
from policygrad.run.logger import EPISODES_FILE, EVALS_FILE

# Config fields that say how a run was kept, not what was trained: runs differing only in these (and
# the seed) are one setting. Fields named eval_* too (how it was measured).
BOOKKEEPING_FIELDS = frozenset({"seed", "run_dir", "device", "torch_threads", "progress", "tensorboard",
                                "checkpoint_every", "keep_checkpoints", "max_nonfinite_updates", "preset"})


def read_episodes(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(global_step, return)`` arrays of every finished episode of a run."""
    path = Path(run_dir) / EPISODES_FILE
    if not path.is_file():
        raise UserInputError(f"{run_dir}: not a run directory ({EPISODES_FILE} is missing)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    steps = np.array([float(r["global_step"]) for r in rows])
    rets = np.array([float(r["return"]) for r in rows])
    return steps, rets


def read_evals(run_dir: str | Path, x: str = "global_step") -> tuple[np.ndarray, np.ndarray]:
    """``(global_step, eval_mean)`` arrays of a run's periodic deterministic evaluations (``evals.csv``;
    empty arrays when the run has none); ``x="wall_seconds"``: the training clock instead of the step.
    A row without a number in either column is left out."""
    xs: list[float] = []
    means: list[float] = []
    try:
        with open(Path(run_dir) / EVALS_FILE, newline="") as f:
            for row in csv.DictReader(f):
                with contextlib.suppress(TypeError, ValueError):
                    point = float(row[x]), float(row["eval_mean"])
                    xs.append(point[0])
                    means.append(point[1])
    except (OSError, KeyError):
        pass
    return np.array(xs), np.array(means)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average; the first points average over what exists so far."""
    if len(values) == 0:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (cumsum[idx] - cumsum[lo]) / (idx - lo)


def run_config(run_dir: Path) -> dict:
    """The resolved config a run recorded in ``config.json`` ({} when there is none)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return {}
    config = json.loads(path.read_text()).get("config", {})
    return config if isinstance(config, dict) else {}


def run_label(run_dir: Path) -> str:
    cfg = run_config(run_dir)
    if cfg:
        return f"{cfg.get('algo', '?')} seed {cfg.get('seed', '?')} ({run_dir.name})"
    return run_dir.name


def group_runs(run_dirs: Sequence[str | Path]) -> dict[str, list[Path]]:
    """Runs grouped by the config fields in which they differ (bookkeeping fields, the seed and eval_*
    aside): label (``learning_rate=0.001, gamma=0.99``) -> run directories, in first-seen order.
    Runs that differ in nothing else form one group labelled ``""``; a run without ``config.json`` is
    a group of its own, under its directory name (unless no run has one: then they are one group)."""
    dirs = [Path(d) for d in run_dirs]
    configs = [run_config(d) for d in dirs]
    known = [c for c in configs if c]
    names = sorted({k for c in known for k in c})

    def shown(value: object) -> str:
        return json.dumps(value, sort_keys=True)

    def varied_among(cfgs: Sequence[dict]) -> list[str]:  # fields set in these runs, differing between them
        return [k for k in names if k not in BOOKKEEPING_FIELDS and k != "algo" and not k.startswith("eval_")
                and any(c.get(k) is not None for c in cfgs) and len({shown(c.get(k)) for c in cfgs}) > 1]

    # several algorithms: each run is its algorithm's name, then what varies among that algorithm's runs
    # (a field another algorithm lacks is no difference worth a legend)
    algos = {str(c.get("algo")) for c in known}
    by_algo = {a: varied_among([c for c in known if str(c.get("algo")) == a]) for a in algos} if len(algos) > 1 \
        else {a: varied_among(known) for a in algos}
    groups: dict[str, list[Path]] = {}
    for d, cfg in zip(dirs, configs):
        if cfg:
            fields = [f"{k}={format_value(cfg.get(k), short=True)}" for k in by_algo[str(cfg.get("algo"))]
                      if cfg.get(k) is not None]
            label = ", ".join(([str(cfg.get("algo"))] if len(algos) > 1 else []) + fields)
        else:
            label = d.name if known else ""
        groups.setdefault(label, []).append(d)
    return groups


def aligned_curves(runs: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 200
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Curves ``(x, y)`` of several runs resampled (linear interpolation) onto one grid of ``points``
    from the largest first x to the smallest last x, the span every run covers: ``(grid, (runs, points))``."""
    runs = [(np.asarray(x, float), np.asarray(y, float)) for x, y in runs if len(x)]
    if not runs:
        return np.array([]), np.empty((0, 0))
    start, stop = max(x[0] for x, _ in runs), min(x[-1] for x, _ in runs)
    grid = np.linspace(start, stop, points) if stop > start else np.array([stop])
    return grid, np.stack([np.interp(grid, x, y) for x, y in runs])


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path, window: int = 20, title: str | None = None) -> Path:
    """Draw the learning curves of ``run_dirs`` on one figure, saved to ``out`` (PNG, or SVG/PDF by its
    suffix). Runs that differ only in their seed: one line per run. Runs whose configs differ in other
    fields: grouped by those values, one colour per group, the mean of the group's smoothed curves
    with a 95% bootstrap band over its seeds."""
    if not run_dirs:
        raise UserInputError("plot needs at least one run directory")
    episodes = {Path(d): read_episodes(d) for d in run_dirs}  # every directory checked before drawing
    groups = group_runs(list(run_dirs))
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    if len(groups) == 1:
        evaluated = False
        for i, run_dir in enumerate(map(Path, run_dirs)):
            steps, rets = episodes[run_dir]
            color = f"C{i % 10}"
            ax.scatter(steps, rets, s=4, alpha=0.2, color=color, linewidths=0)
            ax.plot(steps, smooth(rets, window), color=color, lw=2, label=run_label(run_dir))
            # the periodic deterministic evaluations, where the run made them: what the policy does
            # without its exploration noise, the number a run's report and benchmarks quote
            eval_steps, eval_means = read_evals(run_dir)
            if len(eval_steps):
                evaluated = True
                ax.plot(eval_steps, eval_means, color=color, lw=0, marker="D", markersize=5,
                        markeredgecolor="black", markeredgewidth=0.5,
                        label=f"{run_label(run_dir)}: deterministic evaluation")
        default_title = (f"learning curve (line: mean of last {window} episodes"
                         + ("; diamonds: deterministic evaluations)" if evaluated else ")"))
    else:
        # here, not at the top: scipy.stats takes 0.5 s to import, and every process that imports
        # policygrad (each study worker, each A3C worker) would pay it for a band it rarely draws
        from policygrad.reporting.statistics import mean_ci_band

        for i, (label, dirs) in enumerate(groups.items()):
            color = f"C{i % 10}"
            curves = [(episodes[d][0], smooth(episodes[d][1], window)) for d in dirs]
            grid, ys = aligned_curves(curves)
            if not len(grid):
                continue
            for x, y in curves:
                ax.plot(x, y, color=color, lw=0.6, alpha=0.25)
            mean, low, high = mean_ci_band(ys)
            seeds = f"{len(dirs)} seed{'s' if len(dirs) > 1 else ''}"
            ax.plot(grid, mean, color=color, lw=2, label=f"{label} ({seeds})")
            if len(dirs) > 1:
                ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
        default_title = (f"learning curves by setting (mean over seeds of the last {window} episodes' mean; "
                         "band: 95% bootstrap CI)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title or default_title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return save(fig, out)
