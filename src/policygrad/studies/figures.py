"""A study's figures (issue 13, item 5), drawn with matplotlib (Agg), saved as SVG (inlined by the
report) or PNG by the file's suffix.

- :func:`learning_curves`: the deterministic evaluations of ``evals.csv`` against environment steps,
  one colour per value, the mean over seeds with a 95% bootstrap band.
- :func:`sensitivity`: each score (final evaluation, area under the curve) against the value, every
  seed a faint point, the mean with its 95% bootstrap interval as error bars; a log x axis for a
  positive numeric field spanning a decade or more (learning rates), categories for anything else.
- :func:`episode_rewards` (Q23): each training episode's return and the cumulative return, against the
  episode's index and against environment steps (``episodes.csv``).

They take plain inputs (labels -> run directories, values -> scores), not a study directory:
:mod:`policygrad.studies.report` reads the study and calls them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from policygrad.plots import aligned_curves, read_episodes, smooth
from policygrad.reporting.figures import no_data, pyplot, save
from policygrad.reporting.formatting import format_value
from policygrad.reporting.statistics import mean_ci_band, summarize
from policygrad.run.logger import EPISODES_FILE
from policygrad.studies.results import read_evals

BAND_NOTE = "band: 95% bootstrap CI of the mean"


def learning_curves(groups: Mapping[str, Sequence[str | Path]], out: str | Path, title: str | None = None,
                    legend_title: str | None = None, x: str = "global_step") -> Path:
    """Evaluation return (``eval_mean`` of ``evals.csv``) against environment steps: per label of
    ``groups`` (label -> its seeds' run directories), the mean over seeds and a 95% bootstrap band,
    each seed a faint line. Runs without ``evals.csv`` are left out."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = 0
    for i, (label, dirs) in enumerate(groups.items()):
        color = f"C{i % 10}"
        curves = [c for c in (read_evals(d, x) for d in dirs) if len(c[0])]
        if not curves:
            continue
        if all(len(xs) == len(curves[0][0]) and np.array_equal(xs, curves[0][0]) for xs, _ in curves):
            grid, ys = curves[0][0], np.stack([y for _, y in curves])  # the shared evaluation steps
        else:  # runs evaluated at different steps: resampled onto the span they share
            grid, ys = aligned_curves(curves, points=max(len(xs) for xs, _ in curves))
        for xs, y in curves:
            ax.plot(xs, y, color=color, lw=0.6, alpha=0.25)
        mean, low, high = mean_ci_band(ys)
        n = len(curves)
        ax.plot(grid, mean, color=color, lw=2, marker="o" if len(grid) < 3 else None,
                label=f"{label} ({n} seed{'s' if n > 1 else ''})")
        if n > 1:
            ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
        drawn += 1
    if drawn:
        ax.set_xlabel("environment steps" if x == "global_step" else "training seconds (evaluations excluded)")
        ax.set_ylabel("evaluation return (deterministic)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8, title=legend_title, title_fontsize=8)
    else:
        no_data(ax, "no evaluations during training (evals.csv): the runs had no eval_every")
    ax.set_title(title or f"learning curves (line: mean over seeds; {BAND_NOTE})", fontsize=10)
    fig.tight_layout()
    return save(fig, out)


def is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def log_scale(values: Sequence[object]) -> bool:
    """A numeric axis spanning a decade or more of positive values (learning rates) reads in log."""
    if not values or not all(is_number(v) for v in values):
        return False
    xs = [float(v) for v in values]  # type: ignore[arg-type]  # all real numbers (is_number)
    return min(xs) > 0 and max(xs) / min(xs) >= 10


def _spaced_labels(ticks: Sequence[float], log: bool, gap: float = 0.1) -> list[str]:
    """Each tick's value as a label, but none closer than ``gap`` (a fraction of the axis, log or
    linear) to the previous one labelled: close values keep their tick and lose their label rather
    than overprint (``2.5e-4`` next to ``3e-4`` on a log axis)."""
    where = np.log10(ticks) if log else np.asarray(ticks, dtype=float)
    span = float(where[-1] - where[0]) or 1.0
    labels, last = [], -math.inf
    for tick, x in zip(ticks, where):
        if (x - last) / span >= gap:
            labels.append(format_value(tick, short=True))
            last = x
        else:
            labels.append("")
    return labels


def sensitivity(field: str, values: Sequence[object], scores: Mapping[str, Sequence[Sequence[float]]],
                out: str | Path, series: Sequence[str] | None = None, title: str | None = None) -> Path:
    """One panel per score (``scores``: name -> one list of the seeds' scores per entry of ``values``):
    every seed a faint point, the mean with its 95% bootstrap interval as error bars, against the
    value of ``field``. Numeric values on a numeric axis (log when they span a decade or more),
    others as categories in their first-seen order. ``series`` (one label per entry, for studies that
    vary other fields too): one line and colour per label."""
    plt = pyplot()
    labels = list(series) if series is not None else [""] * len(values)
    distinct = list(dict.fromkeys(format_value(v, short=True) for v in values))
    numeric = len(distinct) > 1 and all(is_number(v) for v in values)
    log = numeric and log_scale(values)
    positions = [float(v) if numeric else distinct.index(format_value(v, short=True)) for v in values]  # type: ignore[arg-type]
    names = list(dict.fromkeys(labels))
    fig, axes = plt.subplots(1, max(len(scores), 1), figsize=(5.5 * max(len(scores), 1), 4.2), squeeze=False)
    for ax, (name, per_value) in zip(axes[0], scores.items()):
        for k, line in enumerate(names):
            color = f"C{k % 10}"
            members = [i for i, label in enumerate(labels) if label == line]
            xs = np.array([positions[i] for i in members], dtype=float)
            summaries = [summarize(per_value[i]) for i in members]
            for x, i in zip(xs, members):
                ax.scatter([x] * len(per_value[i]), per_value[i], s=12, alpha=0.35, color=color, linewidths=0)
            m = np.array([s.mean for s in summaries])
            lo, hi = (np.array([s.mean_ci[j] for s in summaries]) for j in (0, 1))
            ok = np.isfinite(lo) & np.isfinite(hi)
            # a category axis: the means as markers, not joined (the order of categories means nothing)
            ax.plot(xs, m, color=color, lw=1.5 if numeric else 0, marker="o", label=line or "mean")
            if ok.any():
                ax.errorbar(xs[ok], m[ok], yerr=[m[ok] - lo[ok], hi[ok] - m[ok]], fmt="none", ecolor=color,
                            capsize=4)
        if log:
            ax.set_xscale("log")
        if numeric:  # the ticks at the values themselves, labelled as the study spells them; no minor labels
            from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

            ticks = sorted(set(positions))
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.set_xticklabels(_spaced_labels(ticks, log), fontsize=8,
                               rotation=30 if len(ticks) > 4 else 0, ha="right" if len(ticks) > 4 else "center")
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_xticks(range(len(distinct)))
            # many or long names stand upright: slanted, neighbours such as reinforce and actor_critic overlap
            long = len(distinct) > 4 or max(map(len, distinct)) > 10
            ax.set_xticklabels(distinct, rotation=90 if long else 0, ha="center", fontsize=8)
        ax.set_xlabel(field)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8, title="bars: 95% bootstrap CI", title_fontsize=7)
    fig.suptitle(title or f"each score against {field}: faint dots are single seeds, the marked point is their "
                          f"mean with its 95% bootstrap CI", fontsize=10)
    fig.tight_layout()
    return save(fig, out)


def episode_rewards(groups: Mapping[str, Sequence[str | Path]], out: str | Path, window: int = 20,
                    title: str | None = None) -> Path:
    """Q23: training episodes' returns (smoothed over ``window`` episodes) against the episode index and
    against environment steps, and the cumulative return against the episode index; per label of
    ``groups`` (label -> run directories) the mean over its seeds, each seed a faint line. Runs without
    ``episodes.csv`` are left out. No cumulative return against steps: where every step pays the same
    reward (CartPole's +1) it is the step count itself, one straight line for every method."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    drawn = False
    for i, (label, dirs) in enumerate(groups.items()):
        color = f"C{i % 10}"
        runs = [r for r in (read_episodes(d) for d in dirs if (Path(d) / EPISODES_FILE).is_file()) if len(r[0])]
        if not runs:
            continue
        drawn = True
        for row, kind in enumerate(("return", "cumulative")):
            ys = [smooth(rets, window) if kind == "return" else np.cumsum(rets) for _, rets in runs]
            # against the episode index: the first episodes every seed has
            count = min(len(y) for y in ys)
            index = np.arange(1, count + 1)
            by_index = np.stack([y[:count] for y in ys])
            # against steps: resampled onto the span of steps every seed covers
            grid, by_step = aligned_curves([(steps, y) for (steps, _), y in zip(runs, ys)])
            panels = [(axes[row][0], index, by_index, [np.arange(1, len(y) + 1) for y in ys])]
            if kind == "return":
                panels.append((axes[row][1], grid, by_step, [steps for steps, _ in runs]))
            for ax, x, data, raw_x in panels:
                for rx, y in zip(raw_x, ys):
                    ax.plot(rx, y, color=color, lw=0.5, alpha=0.25)
                mean, low, high = mean_ci_band(data)
                ax.plot(x, mean, color=color, lw=1.8, label=f"{label} ({len(runs)} seed{'s' * (len(runs) > 1)})")
                if len(runs) > 1:
                    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    if not drawn:
        for ax in axes.ravel():
            no_data(ax, "no finished training episode (episodes.csv)")
    else:
        axes[0][0].set_ylabel(f"episode return (mean of last {window})")
        axes[1][0].set_ylabel("cumulative return")
        axes[0][0].set_xlabel("episode")
        axes[1][0].set_xlabel("episode")
        axes[0][1].set_xlabel("environment steps")
        for ax in axes.ravel():
            ax.grid(alpha=0.3)
        axes[0][0].legend(loc="best", fontsize=8)
    fig.delaxes(axes[1][1])
    fig.suptitle(title or f"training episodes: return against episodes and steps, cumulative return against "
                 f"episodes (line: mean over seeds; {BAND_NOTE})",
                 fontsize=10)
    fig.tight_layout()
    return save(fig, out)
