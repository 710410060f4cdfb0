"""A study's report (issue 13, item 6): ``report.md`` and a self-contained ``report.html`` in the study
directory, written by :func:`write_report` (and ``policygrad report STUDY_DIR``).

Sections: a Conclusion in plain words (what to use, what is and is not established, the seeds that
would settle the rest: :mod:`policygrad.reporting.conclusions`); the spec; the results per value
(mean and interquartile mean of the final evaluation and of the area under the learning curve, each
with a 95% bootstrap interval over seeds, failed runs counted, steps to the threshold); the tests of
each value against the baseline (the spec's ``baseline``, a named study's current value, else the
first), or for a comparison every pair and a compact letter display: the study's declared primary
test (``test``, Mann-Whitney by default) with the other as a sensitivity column, Holm-corrected,
no verdict below 3 seeds, Hedges' g, the probability of improvement, and the seeds the declared
``min_effect`` would need; the failed runs; the plots. The HTML
inlines its plots as SVG and its style: no script, no external URL, it reads offline
(:mod:`policygrad.reporting.document`). The SVG files
are also kept in ``report_files/`` (``report.md`` links them). Nothing in the report depends on the
clock (wall times are left out), so the same results give the same report, byte for byte.

The study directory holds ``study.json`` (the spec: ``name``, ``algo``, ``env_id``, ``vary``
{field: [values]}, ``seeds``, ``total_steps``, ``eval_every``, ``eval_episodes``, ``threshold``,
``fixed``), ``results.csv`` (one row per run: ``run_id``, a column per varied field, ``seed``,
``status``, ``final_eval``, ``auc``, ``steps_to_threshold``, ``wall_seconds``, ``error``) and
``runs/RUN_ID/`` (run directories with ``evals.csv`` and ``episodes.csv``), read back by
:func:`policygrad.studies.results.load_study`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policygrad.core.errors import UserInputError
from policygrad.reporting import conclusions
from policygrad.reporting.choices import DEFAULT_MIN_EFFECT, DEFAULT_TEST, MIN_SEEDS, OTHER_TEST, TEST_NAMES, check_test
from policygrad.reporting.document import Block, Bullets, Figure, Heading, Paragraph, Table, to_html, to_markdown
from policygrad.reporting.formatting import format_interval, format_number, format_p, format_value
from policygrad.reporting.statistics import (
    ALPHA,
    CONFIDENCE,
    N_RESAMPLES,
    POWER,
    RANDOM_SEED,
    Comparison,
    Summary,
    compare,
    letters,
    pairwise,
    summarize,
)
from policygrad.run.files import write_text_atomic
from policygrad.studies import figures
from policygrad.studies.results import Study, load_study, same_value, scores_of

REPORT_MD, REPORT_HTML, FILES_DIR = "report.md", "report.html", "report_files"
SCORES = {"final_eval": "final evaluation", "auc": "area under the curve"}
FEW_SEEDS = 5  # below this, the report warns that bootstrap intervals are too narrow


# ------------------------------------------------------------------------------------------ the numbers


@dataclass(frozen=True)
class ValueResult:
    label: str
    point: tuple
    runs: int
    failed: int
    summaries: dict[str, Summary]  # score name -> summary over the finished seeds
    scores: dict[str, list[float]]
    reached: int  # runs that reached the threshold
    median_steps: float  # their median steps to the threshold (nan: none)


def analyse(study: Study) -> list[ValueResult]:
    """Each value's runs, summaries of both scores (failed runs left out and counted) and threshold."""
    results = []
    for point in study.points:
        runs = study.runs_of(point)
        summaries, scores = {}, {}
        for name in SCORES:
            values, failed = scores_of(runs, name)
            summaries[name], scores[name] = summarize(values, failed=failed), values
        reached = [r.steps_to_threshold for r in runs if r.done and math.isfinite(r.steps_to_threshold)]
        results.append(ValueResult(study.label(point), point, len(runs), sum(not r.done for r in runs), summaries,
                                   scores, len(reached), float(np.median(reached)) if reached else math.nan))
    return results


def comparisons(results: Sequence[ValueResult], name: str, baseline: str | None, test: str = DEFAULT_TEST,
                min_effect: float = DEFAULT_MIN_EFFECT) -> list[Comparison]:
    return compare({r.label: r.scores[name] for r in results}, baseline=baseline, test=test, min_effect=min_effect)


def _num(x: float, digits: int = 4) -> str:
    return format_number(x, digits) if math.isfinite(x) else "n/a"


def _ci(interval: tuple[float, float]) -> str:
    text = format_interval(interval, missing="")
    return f" {text}" if text else ""



def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v, short=True)}" for k, v in value.items()) or "(none)"
    if isinstance(value, list):
        return ", ".join(_shown(v) if isinstance(v, dict) else format_value(v, short=True) for v in value) or "(none)"
    return "none" if value is None else format_value(value, short=True)


def _spec_rows(spec: dict) -> list[list[str]]:
    """The spec as (key, value) rows; ``notes`` are left to a list of their own, ``format`` out."""
    first = ["name", "algo", "env_id", "vary", "seeds", "total_steps", "eval_every", "eval_episodes", "threshold",
             "fixed"]
    keys = [k for k in first if k in spec] + sorted(k for k in spec if k not in first and k not in ("notes", "format",
                                                                                                    "methods"))
    rows = []
    for key in keys:
        value = spec[key]
        if key == "vary" and isinstance(value, dict):
            value = "; ".join(f"{f} = {_shown(v)}" for f, v in value.items())
        elif key == "adjust" and isinstance(value, list):
            rules = [f"where {_shown(r.get('if', {}))}: {_shown(r.get('set', {}))}" for r in value
                     if isinstance(r, dict)]
            value = "; ".join(rules) or "(none)"
        elif key == "baseline" and isinstance(value, list):  # one value of the varied field (widths: 64x64)
            value = format_value(tuple(value), short=True)
        rows.append([key, _shown(value)])
    return rows


def resolve_baseline(study: Study, baseline: str) -> str:
    """The label of the value ``baseline`` names: a label as the report shows it (``0.001``,
    ``gamma=0.9, ent_coef=0``), or for one varied field ``FIELD=VALUE`` or any spelling of the value
    (``1e-3``, ``[64, 64]``)."""
    labels = [study.label(p) for p in study.points]
    if baseline in labels:
        return baseline
    if len(study.fields) == 1:
        text = baseline.split("=", 1)[1] if baseline.startswith(f"{study.fields[0]}=") else baseline
        for point in study.points:
            if same_value(text, point[0]):
                return study.label(point)
    raise UserInputError(f"baseline {baseline!r} is not one of the study's values: {', '.join(labels)}")


def build_report(study: Study, baseline: str | None = None) -> list[Block]:
    results = analyse(study)
    labels = [r.label for r in results]
    if baseline is None and study.spec.get("baseline") is not None and len(study.fields) == 1:
        baseline = format_value(study.spec["baseline"])  # the spec's (a named study: the current value)
    base = resolve_baseline(study, baseline) if baseline is not None else (labels[0] if labels else None)
    what = " x ".join(study.fields)
    threshold = study.spec.get("threshold")
    total, failed = len(study.runs), sum(not r.done for r in study.runs)
    plural = "" if len(results) == 1 else "s"
    blocks: list[Block] = [
        Heading(f"Study {study.name}: {study.spec.get('algo', '?')} on {environment(study.spec)}, "
                f"varying {what}", 1),
        Paragraph(f"{total} runs ({len(results)} value{plural} x seeds), {total - failed} finished, {failed} failed. "
                  f"Scores: the final deterministic evaluation, and the area under the evaluation curve (auc). "
                  f"Higher is better."),
        Heading("Conclusion"),
        Paragraph(_conclusion(study, results, base, what)),
        Heading("Spec"),
        Table(["field", "value"], _spec_rows(study.spec)),
        *([Bullets([str(n) for n in study.spec["notes"]])] if study.spec.get("notes") else []),
        *_methods_blocks(study.spec),
        Heading("Results per value"),
        Paragraph(f"Mean and interquartile mean (IQM: the mean of the middle half of the seeds) over finished "
                  f"seeds, each with its {CONFIDENCE:.0%} bootstrap confidence interval in brackets "
                  f"(scipy.stats.bootstrap, BCa, or percentile where BCa is undefined; {N_RESAMPLES} resamples, "
                  f"seed {RANDOM_SEED}). Failed runs are "
                  f"left out and counted. With one seed there is no interval."),
    ]
    header = [what, "runs", "failed", "final eval: mean [95% CI]", "final eval: IQM [95% CI]", "auc: mean [95% CI]",
              "auc: IQM [95% CI]"]
    if threshold is not None:
        header.append(f"reached {format_value(threshold, short=True)}: runs, median steps")
    rows = []
    for r in results:
        baseline_mark = " (baseline)" if r.label == base and study.spec.get("kind") != "compare" else ""
        row = [r.label + baseline_mark, str(r.runs), str(r.failed)]
        for name in SCORES:
            s = r.summaries[name]
            row += [f"{_num(s.mean)}{_ci(s.mean_ci)}", f"{_num(s.iqm)}{_ci(s.iqm_ci)}"]
        if threshold is not None:
            row.append(f"{r.reached}/{r.runs}" + (f", {_num(r.median_steps, 6)}" if r.reached else ""))
        rows.append(row)
    blocks.append(Table(header, rows))
    notes = [f"{r.label}, {SCORES[name]}: {'; '.join(r.summaries[name].notes)}"
             for r in results for name in SCORES if r.summaries[name].notes]
    few = [r.label for r in results if 1 < r.summaries["final_eval"].n < FEW_SEEDS]
    if few:
        which = "every value" if len(few) == len(results) else ", ".join(few)
        notes.append(f"fewer than {FEW_SEEDS} finished seeds ({which}): a bootstrap interval cannot be wider than "
                     f"the seeds' own range, so it understates the uncertainty; the tests below say more.")
    if notes:
        blocks.append(Bullets(notes))

    def named(label: str | None) -> str:  # "learning_rate = 0.001"; several fields: the label says it all
        return f"{what} = {label}" if len(study.fields) == 1 else str(label)

    if study.spec.get("kind") == "compare":
        blocks += _pairwise_blocks(study, results)
    else:
        blocks += _baseline_blocks(study, results, base, what, named)
    failures = [r for r in study.runs if not r.done]
    if failures:
        blocks.append(Heading("Failed runs"))
        blocks.append(Bullets([f"{r.run_id} ({study.label(r.values)}, seed {r.seed}): "
                               f"{r.error.strip() or 'status ' + (r.status or 'unknown')}" for r in failures]))
    blocks.append(Heading("Plots"))
    blocks += _figures(study, results)
    return blocks


def environment(spec: dict) -> str:
    """The environment every run made: its id, and its keyword arguments where there are some (a
    comparison's ``env_kwargs``, or a study's fixed ones): ``PartiallyObserved-v0 (env_kwargs: ...)``."""
    kwargs = spec.get("env_kwargs") or (spec.get("fixed") or {}).get("env_kwargs")
    env_id = str(spec.get("env_id", "?"))
    return f"{env_id} (env_kwargs {json.dumps(kwargs)})" if isinstance(kwargs, dict) and kwargs else env_id


def _methods_blocks(spec: dict) -> list[Block]:
    """A comparison's methods: where each one's settings come from, and the settings."""
    methods = spec.get("methods")
    if not isinstance(methods, dict) or not methods:
        return []
    rows = []
    for method, info in methods.items():
        info = info if isinstance(info, dict) else {}
        values = info.get("hyperparameters", info.get("config", {}))
        rows.append([method, str(info.get("source", "")), _shown(values) if isinstance(values, dict) else ""])
    return [Heading("Methods", 3), Table(["method", "settings from", "settings"], rows)]


def _conclusion(study: Study, results: Sequence[ValueResult], base: str | None, what: str) -> str:
    """The plain-words conclusion: on the final evaluation (the score a user keeps), then a sentence on
    the area under the curve (how fast); where every run ended at the same score (a ceiling such as
    CartPole's 500), on the area under the curve alone, since the final score separates nothing."""
    test, min_effect = _choices(study)
    finals = {r.label: r.scores["final_eval"] for r in results}
    aucs = {r.label: r.scores["auc"] for r in results}
    if study.spec.get("kind") == "compare":
        iqms = {r.label: r.summaries["final_eval"].iqm for r in results}
        text = conclusions.among_methods(pairwise(finals, test=test, min_effect=min_effect),
                                         conclusions.finite_means(iqms))
        auc_iqms = conclusions.finite_means({r.label: r.summaries["auc"].iqm for r in results})
        speed = conclusions.fastest(pairwise(aucs, test=test, min_effect=min_effect), auc_iqms)
        return f"{text} {speed}" if speed else text
    if base is None:
        return "No run finished: there is nothing to conclude."
    current = study.spec.get("baseline") is not None and format_value(study.spec["baseline"], short=True) == base

    def named(label: str) -> str:
        return f"{what} = {label}" if len(study.fields) == 1 else label

    scores = [x for values in finals.values() for x in values]
    if len(finals) > 1 and scores and len(set(scores)) == 1:
        auc_means = conclusions.finite_means({r.label: r.summaries["auc"].mean for r in results})
        return (f"Every run ended at the same final evaluation, {scores[0]:.4g}: the final score cannot tell the "
                f"values apart, so this conclusion is on the area under the curve (how fast each got there). "
                + conclusions.against_baseline(compare(aucs, baseline=base, test=test, min_effect=min_effect),
                                               auc_means, named, base, current, score="area under the curve"))
    means = conclusions.finite_means({r.label: r.summaries["final_eval"].mean for r in results})
    text = conclusions.against_baseline(compare(finals, baseline=base, test=test, min_effect=min_effect), means,
                                        named, base, current)
    return text + " " + conclusions.speed(compare(aucs, baseline=base, test=test, min_effect=min_effect), named,
                                          base)


def _choices(study: Study) -> tuple[str, float]:
    """The study's declared primary test and minimum effect of interest (defaults for older specs)."""
    test = check_test(study.spec.get("test", DEFAULT_TEST))
    min_effect = study.spec.get("min_effect", DEFAULT_MIN_EFFECT)
    return test, float(min_effect) if isinstance(min_effect, (int, float)) else DEFAULT_MIN_EFFECT


def _tests_paragraph(test: str, min_effect: float, family: str) -> str:
    primary, other = TEST_NAMES[test], TEST_NAMES[OTHER_TEST[test]]
    return (f"Over finished seeds, {family}. The primary test, declared by the study (its field test), is "
            f"{primary}'s (two-sided), its p-values Holm-corrected across the family; {other}'s test, corrected "
            f"the same way, is a sensitivity check, and where the two disagree the verdict says so. Below "
            f"{MIN_SEEDS} finished seeds per value no verdict is issued. Hedges' g (the difference in pooled "
            f"standard deviations, bias-corrected; n/a where a value's seeds all scored the same); the "
            f"probability of improvement P(X > Y) + 0.5 P(X = Y) over all pairs of seeds. Power is for the "
            f"declared smallest difference of interest (field min_effect: {min_effect:g} standard deviations of "
            f"the seeds' scores), not for the observed difference, at alpha {ALPHA:g} divided by the number of "
            f"tests (what Holm asks of the smallest p).")


def _p_cells(c: Comparison) -> list[str]:
    first = (c.mannwhitney_p, c.mannwhitney_p_holm) if c.test == "mannwhitney" else (c.welch_p, c.welch_p_holm)
    second = (c.welch_p, c.welch_p_holm) if c.test == "mannwhitney" else (c.mannwhitney_p, c.mannwhitney_p_holm)
    return [f"{format_p(first[0])} / {format_p(first[1])}", f"{format_p(second[0])} / {format_p(second[1])}"]


def _p_headers(test: str) -> list[str]:
    return [f"{TEST_NAMES[test]} p / Holm (primary)", f"{TEST_NAMES[OTHER_TEST[test]]} p / Holm (sensitivity)"]


def _pairwise_blocks(study: Study, results: Sequence[ValueResult]) -> list[Block]:
    """A comparison's tests: every pair of methods (Holm across all pairs), a letter grouping."""
    blocks: list[Block] = [Heading("Grouping and pairwise tests")]
    if len(results) < 2:
        return blocks + [Paragraph("Only one method has runs: there is nothing to compare.")]
    test, min_effect = _choices(study)
    pairs_count = len(results) * (len(results) - 1) // 2
    blocks.append(Paragraph(
        _tests_paragraph(test, min_effect, f"every pair of methods ({pairs_count} pairs)")
        + " The grouping lists methods best first by IQM, with letters: two methods that share a letter are not "
          "distinguishable under the primary test (Holm-corrected); methods without a common letter are. "
          "The order within a letter is not a finding."))
    for name, title in SCORES.items():
        groups = {r.label: r.scores[name] for r in results}
        pairs = pairwise(groups, test=test, min_effect=min_effect)
        blocks.append(Heading(title.capitalize(), 3))
        iqms = {r.label: r.summaries[name] for r in results}
        blocks.append(Table(["group", "method", "IQM [95% CI]", "seeds"],
                            [[mark or f"no verdict (< {MIN_SEEDS} seeds)", label,
                              f"{_num(iqms[label].iqm)}{_ci(iqms[label].iqm_ci)}", str(iqms[label].n)]
                             for mark, label in letters(groups, pairs)]))
        by_pair = {(c.baseline, c.value): c for c in pairs}
        labels = list(groups)
        matrix = []
        for a in labels:
            row = [a]
            for b in labels:
                c = by_pair.get((a, b)) or by_pair.get((b, a))
                if a == b or c is None:
                    row.append("")
                    continue
                p_better = c.prob_improvement if c.value == a else 1 - c.prob_improvement
                star = "*" if c.significant else ""
                row.append(f"P={_num(p_better, 2)} p={format_p(c.p_holm)}{star}")
            matrix.append(row)
        blocks.append(Paragraph(f"P(row better than column), and {TEST_NAMES[test]}'s p after Holm "
                                f"(* significant):"))
        blocks.append(Table(["method", *labels], matrix))
        blocks.append(Table(["pair", "difference of means", *_p_headers(test), "Hedges' g", "P(improvement)"],
                            [[f"{c.value} vs {c.baseline}", _num(c.difference, 3), *_p_cells(c),
                              _num(c.hedges_g, 3), _num(c.prob_improvement, 3)] for c in pairs]))
        if pairs:
            blocks.append(Paragraph(pairs[0].power_text()[0].upper() + pairs[0].power_text()[1:] + "."))
    return blocks


def _baseline_blocks(study: Study, results: Sequence[ValueResult], base: str | None, what: str,
                     named: Any) -> list[Block]:
    blocks: list[Block] = []
    blocks.append(Heading(f"Tests against the baseline ({named(base)})" if base is not None else "Tests"))
    if len(results) < 2:
        blocks.append(Paragraph("Only one value has runs: there is nothing to compare."))
    else:
        test, min_effect = _choices(study)
        blocks.append(Paragraph(_tests_paragraph(
            test, min_effect, f"each value against the baseline ({len(results) - 1} comparison(s))")))
        for name, title in SCORES.items():
            rows, verdicts = [], []
            for c in comparisons(results, name, base, test, min_effect):
                rows.append([c.value, f"{c.n} vs {c.n_baseline}", _num(c.difference, 3), *_p_cells(c),
                             _num(c.hedges_g, 3), _num(c.prob_improvement, 3),
                             "n/a" if c.seeds_needed is None else str(c.seeds_needed)])
                verdicts.append(f"{named(c.value)}: {c.verdict()}")
            blocks.append(Heading(title.capitalize(), 3))
            blocks.append(Table([what, "seeds", "difference of means", *_p_headers(test), "Hedges' g",
                                 "P(improvement)", f"seeds for {POWER:.0%} power at {min_effect:g} SD"], rows))
            blocks.append(Bullets(verdicts))
    return blocks


def _figures(study: Study, results: Sequence[ValueResult]) -> list[Block]:
    files = study.path / FILES_DIR
    what = " x ".join(study.fields)
    groups = {r.label: [run.run_dir for run in study.runs_of(r.point) if run.done] for r in results}
    # x: the first numeric field varied over several values (else the first field); the other fields'
    # values, if any, make one line each
    varied = [i for i, f in enumerate(study.fields) if len({format_value(p[i], short=True) for p in study.points}) > 1]
    numeric = [i for i in varied if all(figures.is_number(p[i]) for p in study.points)]
    x = (numeric or varied or [0])[0]
    values = [r.point[x] for r in results]
    series = None
    if len(study.fields) > 1:
        series = [", ".join(f"{f}={format_value(v, short=True)}" for j, (f, v) in enumerate(zip(study.fields, r.point))
                            if j != x) for r in results]
    scores = {name: [r.scores[name] for r in results] for name in SCORES}
    seconds: list[Block] = []
    if study.spec.get("kind") == "compare":
        seconds.append(Figure(figures.learning_curves(groups, files / "learning_curves_seconds.svg", legend_title=what,
                                                    x="wall_seconds"),
                              "Learning curves against training seconds (evaluations excluded): wall-clock "
                              "efficiency; line: mean over seeds, band: 95% bootstrap CI."))
    return seconds + [
        Figure(figures.learning_curves(groups, files / "learning_curves.svg", legend_title=what),
               f"Learning curves: deterministic evaluation return against environment steps, one colour per "
               f"{what}; line: mean over seeds, band: 95% bootstrap CI, faint lines: single seeds."),
        Figure(figures.sensitivity(study.fields[x], values, scores, files / "sensitivity.svg", series=series),
               f"Sensitivity: final evaluation and area under the curve against {study.fields[x]}"
               + (" (one line per value of the other fields)" if series else "")
               + "; points: seeds, bars: 95% bootstrap CI of the mean."),
        Figure(figures.episode_rewards(groups, files / "episode_rewards.svg"),
               "Training episodes (Q23): return (mean of the last 20 episodes) against the episode index and "
               "environment steps, cumulative return against the episode index; mean over seeds with a 95% band."
               + _missing_episodes(groups)),
    ]


def _missing_episodes(groups: dict[str, list[Path]]) -> str:
    """The caption's word on values drawn nowhere in the episodes figure: their runs kept no episodes.csv."""
    missing = [label for label, dirs in groups.items() if not any((Path(d) / "episodes.csv").is_file() for d in dirs)]
    if not missing:
        return ""
    why = ("a random policy does not train; Stable-Baselines3's runs record evaluations only"
           if all(m == "random" or m.startswith("sb3:") for m in missing) else "their runs kept no episodes.csv")
    return f" Not drawn: {', '.join(missing)} ({why})."


def write_report(study_dir: str | Path, baseline: str | None = None) -> Path:
    """(Re)write ``report.md``, ``report.html`` and ``report_files/*.svg`` in ``study_dir``; returns the
    path of ``report.html``. ``baseline``: the value the others are tested against, as the report
    labels it (``0.001``, or ``learning_rate=0.001, gamma=0.99`` for several fields); default: the
    first value of the grid."""
    study = load_study(study_dir)
    blocks = build_report(study, baseline)
    write_text_atomic(study.path / REPORT_MD, to_markdown(blocks, study.path))
    out = study.path / REPORT_HTML
    write_text_atomic(out, to_html(blocks, f"Study {study.name}"))
    return out
