"""Comparisons aggregated across environments (issue 14; Agarwal et al. 2021, "Deep RL at the edge of
the statistical precipice"): :func:`aggregate` and :func:`write_aggregate_report`
(``policygrad report --aggregate OUT_DIR STUDY_DIR STUDY_DIR ...``).

Each comparison directory (``policygrad compare``: ``vary`` is ``{"method": [...]}``) is one
environment. Per environment, every finished run's score (final evaluation, area under the curve)
is normalized as ``(score - random_mean) / (best_mean - random_mean)``: ``random_mean`` is the mean of
the ``random`` method on that environment (every comparison must have it), ``best_mean`` the highest
method mean there; 0 is the random policy, 1 the best method. Across environments, per method
(over the environments it ran on; the runs pooled):

- the interquartile mean (IQM) of the normalized scores, and the optimality gap, the mean of
  ``max(0, 1 - score)`` (lower is better);
- the performance profile: the fraction of runs whose normalized score is above ``tau``, for ``tau`` on
  :data:`TAUS` (0 to 1.2).

Each with a 95% stratified bootstrap interval: the seeds are resampled within each environment,
never across. ``scipy.stats.bootstrap`` does exactly that when given one sample per environment
(unpaired samples are resampled independently) and a statistic of their concatenation; the
percentile method (as rliable), a fixed seed, so the same results give the same report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policygrad.core.errors import UserInputError
from policygrad.reporting import conclusions
from policygrad.reporting.choices import MIN_SEEDS, TEST_NAMES
from policygrad.reporting.document import Block, Figure, Heading, Paragraph, Table, to_html, to_markdown
from policygrad.reporting.figures import pyplot, save
from policygrad.reporting.formatting import format_interval, format_number
from policygrad.reporting.statistics import N_RESAMPLES, RANDOM_SEED, bootstrap_ci, iqm, letters, pairwise
from policygrad.run.files import write_text_atomic
from policygrad.studies.report import SCORES
from policygrad.studies.results import Study, load_study, scores_of

RANDOM = "random"
TAUS = np.round(np.linspace(0.0, 1.2, 25), 10)  # steps of 0.05
AGGREGATE_MD, AGGREGATE_HTML, FILES_DIR = "aggregate.md", "aggregate.html", "aggregate_files"


@dataclass(frozen=True)
class EnvNorm:
    """One comparison: its environment, the random and best method means of a score."""

    env: str
    path: Path
    random_mean: float
    best_method: str
    best_mean: float
    normalized: dict[str, np.ndarray]  # method -> its finished runs' normalized scores


@dataclass(frozen=True)
class MethodAggregate:
    method: str
    envs: int
    runs: int
    iqm: float
    iqm_ci: tuple[float, float]
    gap: float
    gap_ci: tuple[float, float]
    profile: np.ndarray  # one fraction per tau of TAUS
    profile_ci: tuple[np.ndarray, np.ndarray]


def _env_name(study: Study) -> str:
    return str(study.spec.get("env_id") or study.name)


def normalize(study: Study, score: str = "final_eval") -> EnvNorm:
    """The normalized ``score`` of every finished run of a comparison, by method; UserInputError (one line)
    when it is not a comparison, has no finished ``random`` run, or no method beats the random mean."""
    if study.fields != ["method"]:
        raise UserInputError(f"{study.path}: not a comparison (it varies {', '.join(study.fields)}, not method)")
    means, raw = {}, {}
    for point in study.points:
        values, _ = scores_of(study.runs_of(point), score)
        if values:
            method = str(point[0])
            raw[method] = np.asarray(values, dtype=float)
            means[method] = float(np.mean(values))
    if RANDOM not in means:
        raise UserInputError(f"{study.path}: no finished '{RANDOM}' run to normalize {score} against "
                             f"(compare with --methods ...,{RANDOM})")
    best = max(means, key=lambda m: means[m])
    span = means[best] - means[RANDOM]
    if not span > 0:
        raise UserInputError(f"{study.path}: no method beats '{RANDOM}' on {score}: nothing to normalize by")
    return EnvNorm(_env_name(study), study.path, means[RANDOM], best, means[best],
                   {m: (x - means[RANDOM]) / span for m, x in raw.items()})


def _ci(strata: Sequence[np.ndarray], statistic: Any, n_resamples: int, seed: int) -> tuple[Any, Any]:
    """The stratified percentile bootstrap interval of ``statistic`` (of the concatenated strata, along
    the last axis): :func:`~policygrad.reporting.statistics.bootstrap_ci` with ``stratified=True``."""
    return bootstrap_ci(strata, statistic, stratified=True, method="percentile", n_resamples=n_resamples, seed=seed)


def optimality_gap(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """The mean of ``max(0, 1 - score)``: how far below the best method (lower is better)."""
    return np.mean(np.maximum(0.0, 1.0 - np.asarray(values)), axis=axis)


def profile(values: np.ndarray, axis: int = -1, taus: np.ndarray = TAUS) -> np.ndarray:
    """The fraction of ``values`` above each tau (the taus along the last axis of the result)."""
    x = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    return np.mean(x[..., None] > taus, axis=-2)


def _profile_first(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """:func:`profile` with the taus first, as ``scipy.stats.bootstrap`` wants a vector statistic."""
    return np.moveaxis(profile(values, axis), -1, 0)


def aggregate_method(strata: Sequence[np.ndarray], method: str, n_resamples: int = N_RESAMPLES,
                     seed: int = RANDOM_SEED) -> MethodAggregate:
    """The IQM, optimality gap and performance profile of one method's normalized scores (one array
    per environment), each with its stratified bootstrap interval."""
    pooled = np.concatenate(strata)
    iqm_lo, iqm_hi = _ci(strata, iqm, n_resamples, seed)
    gap_lo, gap_hi = _ci(strata, optimality_gap, n_resamples, seed)
    prof_lo, prof_hi = _ci(strata, _profile_first, n_resamples, seed)
    return MethodAggregate(method, len(strata), len(pooled), float(iqm(pooled)), (float(iqm_lo), float(iqm_hi)),
                           float(optimality_gap(pooled)), (float(gap_lo), float(gap_hi)), profile(pooled),
                           (prof_lo, prof_hi))


def aggregate(study_dirs: Sequence[str | Path], score: str = "final_eval", n_resamples: int = N_RESAMPLES,
              seed: int = RANDOM_SEED) -> tuple[list[EnvNorm], list[MethodAggregate]]:
    """Normalize ``score`` in every comparison and aggregate each method across them (methods in
    first-seen order; a method counts on the environments it ran on)."""
    if not study_dirs:
        raise UserInputError("no comparison directory to aggregate")
    envs = [normalize(load_study(d), score) for d in study_dirs]
    methods = list(dict.fromkeys(m for env in envs for m in env.normalized))
    results = [aggregate_method([e.normalized[m] for e in envs if m in e.normalized], m, n_resamples, seed)
               for m in methods]
    return envs, results


# -------------------------------------------------------------------------------------------------- plot


def profile_plot(results: dict[str, list[MethodAggregate]], out: str | Path, taus: np.ndarray = TAUS) -> Path:
    """One panel per score: each method's performance profile (fraction of runs above tau) with its
    95% stratified bootstrap band."""
    plt = pyplot()
    fig, axes = plt.subplots(1, max(len(results), 1), figsize=(5.5 * max(len(results), 1), 4.2), squeeze=False)
    for ax, (name, per_method) in zip(axes[0], results.items()):
        for k, r in enumerate(per_method):
            color = f"C{k % 10}"
            ax.step(taus, r.profile, where="post", color=color, lw=1.6, label=r.method)
            lo, hi = r.profile_ci
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                ax.fill_between(taus[ok], lo[ok], hi[ok], step="post", color=color, alpha=0.2, linewidth=0)
        ax.set_xlim(float(taus[0]), float(taus[-1]))
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("normalized score tau (0: random, 1: best method)")
        ax.set_ylabel("fraction of runs with score > tau")
        ax.set_title(SCORES.get(name, name), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8, title="band: 95% stratified bootstrap CI", title_fontsize=7)
    fig.suptitle("performance profiles across environments", fontsize=10)
    fig.tight_layout()
    return save(fig, out)


# ------------------------------------------------------------------------------------------------ report


def _num(x: float, digits: int = 3) -> str:
    return format_number(x, digits) if math.isfinite(x) else "n/a"


def _interval(ci: tuple[float, float]) -> str:
    return format_interval(ci, digits=3)


def _conclusion(score: tuple[list[EnvNorm], list[MethodAggregate]], count: int) -> str:
    """What to use across the environments, on the final evaluation: only methods run on all of them."""
    score_envs, results = score
    everywhere = [r for r in results if r.envs == count]
    pooled = {r.method: np.concatenate([e.normalized[r.method] for e in score_envs]) for r in everywhere}
    text = conclusions.among_methods(pairwise(pooled), {r.method: r.iqm for r in everywhere},
                                     score="normalized final evaluation")
    partial = [r.method for r in results if r.envs < count]
    if partial:
        text += (f" Not compared: {', '.join(partial)}, run on only some of the {count} environments; see their own "
                 f"comparisons.")
    return text


def build_aggregate(study_dirs: Sequence[str | Path], out_dir: Path,
                    n_resamples: int = N_RESAMPLES) -> list[Block]:
    per_score = {name: aggregate(study_dirs, name, n_resamples) for name in SCORES}
    envs = per_score["final_eval"][0]
    blocks: list[Block] = [
        Heading(f"Aggregate comparison over {len(envs)} environment(s)", 1),
        Paragraph("Per environment, each run's score is normalized as (score - random mean) / (best method mean "
                  "- random mean): 0 is the random policy, 1 the best method on that environment. Across "
                  "environments, per method (the runs pooled over the environments it ran on): the interquartile "
                  "mean (IQM), the optimality gap (mean of max(0, 1 - score); lower is better) and the performance "
                  "profile, each with a 95% stratified bootstrap interval (seeds resampled within each "
                  f"environment; scipy.stats.bootstrap, percentile, {n_resamples} resamples, seed {RANDOM_SEED}). "
                  "Agarwal et al. 2021, Deep RL at the edge of the statistical precipice."),
        Heading("Conclusion"),
        Paragraph(_conclusion(per_score["final_eval"], len(envs))),
        Heading("Environments"),
        Table(["environment", "comparison", "score", "random mean", "best method", "best mean", "methods"],
              [[e.env, str(e.path), SCORES[name], _num(e.random_mean, 4), e.best_method, _num(e.best_mean, 4),
                ", ".join(e.normalized)] for name, (es, _) in per_score.items() for e in es]),
    ]
    for name, (score_envs, results) in per_score.items():
        blocks.append(Heading(f"Aggregate: {SCORES[name]} ({name})"))
        everywhere = [r for r in results if r.envs == len(envs)]
        pooled = {r.method: np.concatenate([e.normalized[r.method] for e in score_envs]) for r in everywhere}
        pairs = pairwise(pooled)
        mark = dict((label, m) for m, label in letters(pooled, pairs))
        rows = []
        for r in sorted(everywhere, key=lambda r: -r.iqm):
            rows.append([mark[r.method] or f"no verdict (< {MIN_SEEDS} runs)", r.method, str(r.envs), str(r.runs),
                         _num(r.iqm), _interval(r.iqm_ci), _num(r.gap), _interval(r.gap_ci)])
        blocks.append(Table(["group", "method", "environments", "runs", "IQM", "IQM 95% CI", "optimality gap",
                             "gap 95% CI"], rows))
        if pairs:
            blocks.append(Paragraph(
                f"Group: methods sharing a letter are not distinguishable by {TEST_NAMES[pairs[0].test]}'s test "
                f"(two-sided, Holm-corrected across the {len(pairs)} pairs) on their normalized scores pooled over "
                f"the environments; the order within a letter is not a finding."))
        partial = [r for r in results if r.envs < len(envs)]
        if partial:
            blocks.append(Paragraph("Methods run on only some of the environments: their numbers are over those, "
                                    "so they are not grouped with the others."))
            blocks.append(Table(["method", "environments", "runs", "IQM", "IQM 95% CI", "optimality gap",
                                 "gap 95% CI"],
                                [[r.method, f"{r.envs} of {len(envs)}", str(r.runs), _num(r.iqm), _interval(r.iqm_ci),
                                  _num(r.gap), _interval(r.gap_ci)] for r in partial]))
        marks = [0.25, 0.5, 0.75, 1.0]
        idx = [int(np.argmin(np.abs(TAUS - t))) for t in marks]
        blocks.append(Table(["method", *(f"P(score > {t:g})" for t in marks)],
                            [[r.method, *(f"{r.profile[i]:.2f} {_interval((r.profile_ci[0][i], r.profile_ci[1][i]))}"
                                          for i in idx)] for r in results]))
    svg = profile_plot({name: results for name, (_, results) in per_score.items()},
                       out_dir / FILES_DIR / "performance_profiles.svg")
    blocks.append(Heading("Performance profiles"))
    blocks.append(Figure(svg, "fraction of runs with a normalized score above tau, per method; band: 95% "
                              "stratified bootstrap CI (seeds resampled within each environment)"))
    return blocks


def write_aggregate_report(study_dirs: Sequence[str | Path], out_dir: str | Path,
                           n_resamples: int = N_RESAMPLES) -> Path:
    """Write ``aggregate.md``, a self-contained ``aggregate.html`` (inline SVG) and
    ``aggregate_files/performance_profiles.svg`` in ``out_dir``; returns the path of the HTML."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = build_aggregate(study_dirs, out, n_resamples)
    write_text_atomic(out / AGGREGATE_MD, to_markdown(blocks, out))
    html_path = out / AGGREGATE_HTML
    write_text_atomic(html_path, to_html(blocks, f"Aggregate comparison ({len(study_dirs)} environments)"))
    return html_path
