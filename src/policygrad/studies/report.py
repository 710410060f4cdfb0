"""A study's report (issue 13, item 6): ``report.md`` and a self-contained ``report.html`` in the study
directory, written by :func:`write_report` (and ``policygrad report STUDY_DIR``).

Sections: the spec; the results per value (mean and interquartile mean of the final evaluation and
of the area under the learning curve, each with a 95% bootstrap interval over seeds, failed runs
counted, steps to the threshold); the tests of each value against the baseline (Welch and
Mann-Whitney, Holm-corrected, Hedges' g, the probability of improvement, the seeds a difference of
that size would need), each with a plain-language verdict; the failed runs; the plots. The HTML
inlines its plots as SVG and its style: no script, no external URL, it reads offline. The SVG files
are also kept in ``report_files/`` (``report.md`` links them). Nothing in the report depends on the
clock (wall times are left out), so the same results give the same report, byte for byte.

The study directory holds ``study.json`` (the spec: ``name``, ``algo``, ``env_id``, ``vary``
{field: [values]}, ``seeds``, ``total_steps``, ``eval_every``, ``eval_episodes``, ``threshold``,
``fixed``), ``results.csv`` (one row per run: ``run_id``, a column per varied field, ``seed``,
``status``, ``final_eval``, ``auc``, ``steps_to_threshold``, ``wall_seconds``, ``error``) and
``runs/RUN_ID/`` (run directories with ``evals.csv`` and ``episodes.csv``).
"""

from __future__ import annotations

import ast
import csv
import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from policygrad.plots import format_value
from policygrad.studies import plots
from policygrad.studies.stats import (
    ALPHA,
    CONFIDENCE,
    N_RESAMPLES,
    POWER,
    RANDOM_SEED,
    Comparison,
    Summary,
    compare,
    pairwise,
    ranking,
    summarize,
)

SPEC_FILE, RESULTS_FILE, RUNS_DIR = "study.json", "results.csv", "runs"
REPORT_MD, REPORT_HTML, FILES_DIR = "report.md", "report.html", "report_files"
SCORES = {"final_eval": "final evaluation", "auc": "area under the curve"}
FEW_SEEDS = 5  # below this, the report warns that bootstrap intervals are too narrow


# ---------------------------------------------------------------------------------------------- reading


def parse_value(text: str) -> object:
    """A value as ``results.csv`` holds it, back to Python: ``0.001`` -> 0.001, ``[64, 64]`` or
    ``(64, 64)`` or ``64x64`` -> (64, 64), ``True`` -> True; anything else stays text."""
    s = text.strip()
    if re.fullmatch(r"\d+(x\d+)+", s):
        return tuple(int(p) for p in s.split("x"))
    try:
        value = ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return {"true": True, "false": False}.get(s.lower(), s)
    return tuple(value) if isinstance(value, list) else value


def _canonical(value: object) -> object:
    if isinstance(value, str):
        value = parse_value(value)
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value


def same_value(cell: str, value: object) -> bool:
    """Whether a ``results.csv`` cell holds the spec's ``value`` (however the tuple was spelled)."""
    return _canonical(cell) == _canonical(value) or cell.strip() == format_value(value)


@dataclass(frozen=True)
class StudyRun:
    run_id: str
    values: tuple  # the spec's value of each varied field, in the spec's order
    seed: str
    status: str
    final_eval: float
    auc: float
    steps_to_threshold: float  # nan: not reached (or no threshold)
    error: str
    run_dir: Path

    @property
    def done(self) -> bool:
        return self.status == "done"


@dataclass
class Study:
    """A study directory read back: its spec, its varied fields and values, and one row per run."""

    path: Path
    spec: dict
    fields: list[str]
    runs: list[StudyRun]
    points: list[tuple] = field(default_factory=list)  # the grid's values present in results, in grid order

    def label(self, point: tuple) -> str:
        if len(self.fields) == 1:
            return format_value(point[0])
        return ", ".join(f"{f}={format_value(v)}" for f, v in zip(self.fields, point))

    def runs_of(self, point: tuple) -> list[StudyRun]:
        return [r for r in self.runs if r.values == point]

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or self.path.name)


def _float(text: str | None) -> float:
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def load_study(study_dir: str | Path) -> Study:
    """Read ``study.json`` and ``results.csv`` of ``study_dir``; ValueError naming what is missing."""
    path = Path(study_dir)
    spec_path, results_path = path / SPEC_FILE, path / RESULTS_FILE
    if not spec_path.is_file():
        raise ValueError(f"{path}: not a study directory ({SPEC_FILE} is missing)")
    try:
        spec = json.loads(spec_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{spec_path}: not valid JSON ({exc})") from None
    vary = spec.get("vary")
    if not isinstance(spec, dict) or not isinstance(vary, dict) or not vary:
        raise ValueError(f"{spec_path}: expected a 'vary' object of field: [values]")
    if not results_path.is_file():
        raise ValueError(f"{path}: no {RESULTS_FILE} yet (run the study first)")
    fields = list(vary)
    with open(results_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("run_id", "status", "final_eval", *fields) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{results_path}: missing column(s) {', '.join(missing)}")
        rows = list(reader)
    runs = []
    for row in rows:
        values = []
        for name in fields:
            cell = row[name] or ""
            match = [v for v in vary[name] if same_value(cell, v)]
            values.append(match[0] if match else parse_value(cell))
        runs.append(StudyRun(
            run_id=row["run_id"], values=tuple(_canonical(v) for v in values), seed=row.get("seed") or "",
            status=(row.get("status") or "").strip(), final_eval=_float(row.get("final_eval")),
            auc=_float(row.get("auc")), steps_to_threshold=_float(row.get("steps_to_threshold")),
            error=row.get("error") or "", run_dir=path / RUNS_DIR / row["run_id"]))

    def order(point: tuple) -> tuple:
        keys = []
        for name, value in zip(fields, point):
            known = [_canonical(v) for v in vary[name]]
            keys.append(known.index(value) if value in known else len(known))
        return tuple(keys)

    points: list[tuple] = []
    for run in runs:
        if run.values not in points:
            points.append(run.values)
    points.sort(key=order)  # stable: values outside the spec keep their order, after the grid's
    return Study(path, spec, fields, runs, points)


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


def scores_of(runs: Sequence[StudyRun], name: str) -> tuple[list[float], int]:
    """The finished runs' finite ``name`` scores, and how many runs have none (failed or missing)."""
    values = [getattr(r, name) for r in runs if r.done and math.isfinite(getattr(r, name))]
    return values, len(runs) - len(values)


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


def comparisons(results: Sequence[ValueResult], name: str, baseline: str | None) -> list[Comparison]:
    return compare({r.label: r.scores[name] for r in results}, baseline=baseline)


# ------------------------------------------------------------------------------------------- the document
# A report is a list of blocks, rendered twice: as Markdown and as HTML.


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    path: Path  # an SVG under report_files/
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure


def _num(x: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


def _ci(interval: tuple[float, float]) -> str:
    low, high = interval
    return "" if not (math.isfinite(low) and math.isfinite(high)) else f" [{_num(low)}, {_num(high)}]"


def _p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items()) or "(none)"
    if isinstance(value, list):
        return ", ".join(_shown(v) if isinstance(v, dict) else format_value(v) for v in value) or "(none)"
    return "none" if value is None else format_value(value)


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
    raise ValueError(f"baseline {baseline!r} is not one of the study's values: {', '.join(labels)}")


def build_report(study: Study, baseline: str | None = None) -> list[Block]:
    results = analyse(study)
    labels = [r.label for r in results]
    base = resolve_baseline(study, baseline) if baseline is not None else (labels[0] if labels else None)
    what = " x ".join(study.fields)
    threshold = study.spec.get("threshold")
    total, failed = len(study.runs), sum(not r.done for r in study.runs)
    blocks: list[Block] = [
        Heading(f"Study {study.name}: {study.spec.get('algo', '?')} on {study.spec.get('env_id', '?')}, "
                f"varying {what}", 1),
        Paragraph(f"{total} runs ({len(results)} values x seeds), {total - failed} finished, {failed} failed. "
                  f"Scores: the final deterministic evaluation, and the area under the evaluation curve (auc). "
                  f"Higher is better."),
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
        header.append(f"reached {format_value(threshold)}: runs, median steps")
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
        blocks += _pairwise_blocks(results)
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


def _pairwise_blocks(results: Sequence[ValueResult]) -> list[Block]:
    """A comparison's tests: every pair of methods (Holm across all pairs), a ranking, the settings."""
    blocks: list[Block] = [Heading("Ranking and pairwise tests")]
    if len(results) < 2:
        return blocks + [Paragraph("Only one method has runs: there is nothing to compare.")]
    blocks.append(Paragraph(
        f"Every pair of methods, over finished seeds: Welch's t-test and the Mann-Whitney U test (two-sided), "
        f"their p-values Holm-corrected across all {len(results) * (len(results) - 1) // 2} pairs; Hedges' g; "
        f"the probability of improvement P(row > column); the seeds per method a two-sided t-test would need "
        f"to detect a difference of the observed size with {POWER:.0%} power at alpha {ALPHA:g}. The ranking "
        f"orders methods by IQM and gives each the rank 1 + the number of methods significantly better than "
        f"it (Welch, Holm-corrected): methods no test separates share a rank."))
    for name, title in SCORES.items():
        groups = {r.label: r.scores[name] for r in results}
        pairs = pairwise(groups)
        blocks.append(Heading(title.capitalize(), 3))
        iqms = {r.label: r.summaries[name] for r in results}
        blocks.append(Table(["rank", "method", "IQM [95% CI]", "seeds"],
                            [[str(rank), label, f"{_num(iqms[label].iqm)}{_ci(iqms[label].iqm_ci)}",
                              str(iqms[label].n)] for rank, label in ranking(groups, pairs)]))
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
                row.append(f"P={_num(p_better, 2)} p={_p(c.welch_p_holm)}{star}")
            matrix.append(row)
        blocks.append(Paragraph("P(row better than column), and Welch's p after Holm (* significant):"))
        blocks.append(Table(["method", *labels], matrix))
        blocks.append(Table(["pair", "difference of means", "Welch p / Holm", "Mann-Whitney p / Holm", "Hedges' g",
                             "P(improvement)", f"seeds for {POWER:.0%} power"],
                            [[f"{c.value} vs {c.baseline}", _num(c.difference, 3),
                              f"{_p(c.welch_p)} / {_p(c.welch_p_holm)}",
                              f"{_p(c.mannwhitney_p)} / {_p(c.mannwhitney_p_holm)}", _num(c.hedges_g, 3),
                              _num(c.prob_improvement, 3), "n/a" if c.seeds_needed is None else str(c.seeds_needed)]
                             for c in pairs]))
    return blocks


def _baseline_blocks(study: Study, results: Sequence[ValueResult], base: str | None, what: str,
                     named: Any) -> list[Block]:
    blocks: list[Block] = []
    blocks.append(Heading(f"Tests against the baseline ({named(base)})" if base is not None else "Tests"))
    if len(results) < 2:
        blocks.append(Paragraph("Only one value has runs: there is nothing to compare."))
    else:
        blocks.append(Paragraph(
            f"Each value against the baseline, over finished seeds: Welch's t-test and the Mann-Whitney U test "
            f"(two-sided), their p-values Holm-corrected across the {len(results) - 1} comparison(s); Hedges' g "
            f"(the difference in pooled standard deviations, bias-corrected); the probability of improvement "
            f"P(X > Y) + 0.5 P(X = Y) over all pairs of a seed of the value and a seed of the baseline; and "
            f"the seeds per value a two-sided t-test would need to detect a difference of the observed size "
            f"(|g|) with {POWER:.0%} power at alpha {ALPHA:g}. The verdict follows Welch's test after Holm "
            f"correction."))
        for name, title in SCORES.items():
            rows, verdicts = [], []
            for c in comparisons(results, name, base):
                rows.append([c.value, f"{c.n} vs {c.n_baseline}", _num(c.difference, 3),
                             f"{_p(c.welch_p)} / {_p(c.welch_p_holm)}",
                             f"{_p(c.mannwhitney_p)} / {_p(c.mannwhitney_p_holm)}", _num(c.hedges_g, 3),
                             _num(c.prob_improvement, 3), "n/a" if c.seeds_needed is None else str(c.seeds_needed)])
                verdicts.append(f"{named(c.value)}: {c.verdict()}")
            blocks.append(Heading(title.capitalize(), 3))
            blocks.append(Table([what, "seeds", "difference of means", "Welch p / Holm", "Mann-Whitney p / Holm",
                                 "Hedges' g", "P(improvement)", f"seeds for {POWER:.0%} power"], rows))
            blocks.append(Bullets(verdicts))
    return blocks


def _figures(study: Study, results: Sequence[ValueResult]) -> list[Block]:
    files = study.path / FILES_DIR
    what = " x ".join(study.fields)
    groups = {r.label: [run.run_dir for run in study.runs_of(r.point) if run.done] for r in results}
    # x: the first numeric field varied over several values (else the first field); the other fields'
    # values, if any, make one line each
    varied = [i for i, f in enumerate(study.fields) if len({format_value(p[i]) for p in study.points}) > 1]
    numeric = [i for i in varied if all(plots.is_number(p[i]) for p in study.points)]
    x = (numeric or varied or [0])[0]
    values = [r.point[x] for r in results]
    series = None
    if len(study.fields) > 1:
        series = [", ".join(f"{f}={format_value(v)}" for j, (f, v) in enumerate(zip(study.fields, r.point)) if j != x)
                  for r in results]
    scores = {name: [r.scores[name] for r in results] for name in SCORES}
    seconds: list[Block] = []
    if study.spec.get("kind") == "compare":
        seconds.append(Figure(plots.learning_curves(groups, files / "learning_curves_seconds.svg", legend_title=what,
                                                    x="wall_seconds"),
                              "Learning curves against training seconds (evaluations excluded): wall-clock "
                              "efficiency; line: mean over seeds, band: 95% bootstrap CI."))
    return seconds + [
        Figure(plots.learning_curves(groups, files / "learning_curves.svg", legend_title=what),
               f"Learning curves: deterministic evaluation return against environment steps, one colour per "
               f"{what}; line: mean over seeds, band: 95% bootstrap CI, faint lines: single seeds."),
        Figure(plots.sensitivity(study.fields[x], values, scores, files / "sensitivity.svg", series=series),
               f"Sensitivity: final evaluation and area under the curve against {study.fields[x]}"
               + (" (one line per value of the other fields)" if series else "")
               + "; points: seeds, bars: 95% bootstrap CI of the mean."),
        Figure(plots.episode_rewards(groups, files / "episode_rewards.svg"),
               "Training episodes (Q23): return (mean of the last 20 episodes) and cumulative return, against "
               "the episode index (left) and environment steps (right); mean over seeds with a 95% band."),
    ]


# -------------------------------------------------------------------------------------------- rendering


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block], base: Path) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {_md_cell(item)}" for item in block.items))
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(map(_md_cell, block.header)) + " |",
                     "|" + "|".join("---" for _ in block.header) + "|"]
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block.rows]
            out.append("\n".join(lines))
        else:
            out.append(f"![{block.path.stem.replace('_', ' ')}]({block.path.relative_to(base).as_posix()})\n\n"
                       f"*{block.caption}*")
    return "\n\n".join(out) + "\n"


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; }
"""


def inline_svg(path: Path) -> str:
    """The ``<svg>`` element of a matplotlib SVG file, without its XML prolog, doctype and metadata."""
    text = path.read_text()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)


def to_html(blocks: Sequence[Block], title: str) -> str:
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>\n" + "\n".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "\n</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
            rows = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                             for row in block.rows)
            body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>")
        else:
            body.append(f"<figure>\n{inline_svg(block.path)}\n<figcaption>{html.escape(block.caption)}"
                        "</figcaption>\n</figure>")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_report(study_dir: str | Path, baseline: str | None = None) -> Path:
    """(Re)write ``report.md``, ``report.html`` and ``report_files/*.svg`` in ``study_dir``; returns the
    path of ``report.html``. ``baseline``: the value the others are tested against, as the report
    labels it (``0.001``, or ``learning_rate=0.001, gamma=0.99`` for several fields); default: the
    first value of the grid."""
    study = load_study(study_dir)
    blocks = build_report(study, baseline)
    (study.path / REPORT_MD).write_text(to_markdown(blocks, study.path))
    out = study.path / REPORT_HTML
    out.write_text(to_html(blocks, f"Study {study.name}"))
    return out
