"""The diagnosis's two figures, drawn with matplotlib and saved as SVG (the report inlines them).

- :func:`variance_plot`: per estimator, the trace of the batch gradient's covariance and the
  noise-to-signal ratio (log scales), the critic's estimators hatched;
- :func:`cosine_plot`: the cosine of a batch's gradient with the true gradient against the batch
  size in episodes: measured (points, corrected for the reference's own noise) and the model
  rho / sqrt(1 + noise_scale / m) (lines), with the target cosine as a dashed line; a cosine is at
  most 1, so a measured value above (the correction for the reference's noise can overshoot) is
  drawn at 1.

Each estimator has one colour in both figures (:func:`estimator_colours`: tab10 in the diagnosis's order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policygrad.diagnostics.statistics import EstimatorStats
from policygrad.reporting.figures import pyplot, save

CRITIC_HATCH = "//"


def estimator_colours(stats: Sequence[EstimatorStats]) -> dict[str, Any]:
    """One colour per estimator, the same in every figure of a diagnosis."""
    cmap = pyplot().get_cmap("tab10")
    return {s.name: cmap(i % 10) for i, s in enumerate(stats)}


def variance_plot(stats: Sequence[EstimatorStats], out: str | Path, title: str = "") -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [s.name for s in stats]
    colour = estimator_colours(stats)
    colours = [colour[s.name] for s in stats]
    traces = [s.trace_cov for s in stats]
    ratios = [s.noise_to_signal if math.isfinite(s.noise_to_signal) else s.noise_to_signal_floor for s in stats]
    for ax, values, label in ((axes[0], traces, "tr(Cov) of a batch's gradient"),
                              (axes[1], ratios, "noise / signal: tr(Cov) / |mean|^2")):
        shown = [v if math.isfinite(v) and v > 0 else math.nan for v in values]  # nothing to draw on a log axis
        bars = ax.bar(range(len(stats)), shown, color=colours, edgecolor="white")
        for bar, s in zip(bars, stats):
            if not s.unbiased:
                bar.set_hatch(CRITIC_HATCH)
        if any(math.isfinite(v) for v in shown):
            ax.set_yscale("log")
        ax.set_xticks(range(len(stats)), names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for i, s in enumerate(stats):  # an unmeasurable signal: the bar is only a lower bound
        if not math.isfinite(s.noise_to_signal) and math.isfinite(s.noise_to_signal_floor):
            axes[1].annotate(">", (i, s.noise_to_signal_floor), ha="center", va="bottom", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor="lightgrey", edgecolor="white", hatch=h)
               for h in ("", CRITIC_HATCH)]
    fig.legend(handles, ["unbiased (Monte-Carlo)", "uses the critic's bootstrap (hatched)"], loc="upper center",
               ncol=2, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10, y=0.02, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 0.92))
    return save(fig, out)


def cosine_plot(stats: Sequence[EstimatorStats], out: str | Path, target: float, title: str = "") -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = estimator_colours(stats)
    largest = max((m for s in stats for m, _ in s.curve), default=1)
    grid = [2 ** (k / 4) for k in range(0, int(4 * math.log2(max(largest, 1) * 4)) + 1)]
    for s in stats:
        colour = colours[s.name]
        xs = [m for m, c in s.curve if math.isfinite(c)]
        ax.plot(xs, [min(1.0, max(-1.0, c)) for _, c in s.curve if math.isfinite(c)], "o", color=colour,
                markersize=4, clip_on=False)
        model = [s.model_cosine(m) for m in grid]
        ax.plot(grid, model, "-", color=colour, linewidth=1.2, label=s.name + (" (reference)" if s.reference else ""))
    ax.axhline(target, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0.8, grid[-1] * 1.25)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (episodes)")
    ax.set_ylabel("cosine with the true gradient")
    ax.set_ylim(-0.1, 1.0)  # a cosine: nothing above 1
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save(fig, out)
