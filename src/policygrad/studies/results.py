"""A study's results: ``results.csv``, one row per run in grid order, made from the run directories
(:func:`write_results`) and read back with the spec (:func:`load_study`, which the reports start from).

A row's scores come from its run directory: ``final_eval`` (the mean of ``eval.json``, the final
deterministic evaluation), ``auc`` (the area under the periodic evaluations of ``evals.csv``, divided by
the last step: the mean deterministic score over training), ``steps_to_threshold`` (the first
evaluation step reaching the spec's threshold) and ``wall_seconds`` (the training clock).
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from policygrad.core.errors import UserInputError
from policygrad.plots import read_evals  # a run's evaluations: plots draws them too
from policygrad.reporting.formatting import format_value
from policygrad.run.checkpoint import CHECKPOINT_DIR, read_manifest
from policygrad.run.files import write_text_atomic
from policygrad.studies.backends.run_task import DONE, EVAL_FILE, TaskResult
from policygrad.studies.grid import GridRun
from policygrad.studies.spec import RESULTS_FILE, RUNS_DIR, STUDY_FILE, StudySpec

SUMMARY_COLUMNS = ("seed", "status", "final_eval", "auc", "steps_to_threshold", "wall_seconds", "error")


# -- a run's scores -------------------------------------------------------------------------------------------
def area_under_curve(evals: Sequence[tuple[float, float]]) -> float | None:
    """Trapezoid-rule area under the evaluation curve ``[(global_step, eval_mean), ...]`` over
    global_step, divided by the last step: the mean deterministic score over training (None with fewer
    than two points)."""
    if len(evals) < 2 or evals[-1][0] <= 0:
        return None
    area = sum((s1 - s0) * (m0 + m1) / 2 for (s0, m0), (s1, m1) in zip(evals, evals[1:]))
    return area / evals[-1][0]


def summarize_run(run_dir: Path, threshold: float | None) -> dict[str, str]:
    """The summary columns of a finished run, as text: final_eval, auc, steps_to_threshold, wall_seconds."""
    out = {"final_eval": "", "auc": "", "steps_to_threshold": "", "wall_seconds": ""}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        out["final_eval"] = repr(float(json.loads((run_dir / EVAL_FILE).read_text())["mean"]))
    steps, means = read_evals(run_dir)
    evals = list(zip(steps.tolist(), means.tolist()))
    auc = area_under_curve(evals)
    out["auc"] = "" if auc is None else repr(auc)
    if threshold is not None:
        out["steps_to_threshold"] = next((str(int(step)) for step, mean in evals if mean >= threshold), "")
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        wall = read_manifest(run_dir / CHECKPOINT_DIR)["run_state"]["logs"]["wall_time"]
        out["wall_seconds"] = f"{float(wall):.3f}"
    if not out["wall_seconds"] and not (run_dir / CHECKPOINT_DIR).exists():  # an external run: its last evaluation's
        clock, _ = read_evals(run_dir, "wall_seconds")
        if len(clock):
            out["wall_seconds"] = f"{float(clock[-1]):.3f}"
    return out


# -- results.csv, written ----------------------------------------------------------------------------------------
def results_columns(spec: StudySpec) -> list[str]:
    return ["run_id", *spec.vary, *SUMMARY_COLUMNS]


def write_results(study_dir: Path, spec: StudySpec, runs: Sequence[GridRun], results: Mapping[str, TaskResult],
                  cache: dict[str, dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Rewrite results.csv (atomically): a row per finished run, in grid order; returns the rows.
    ``cache``: rows already made, by run id (a finished run's row does not change)."""
    cache = {} if cache is None else cache
    rows = []
    for run in runs:
        result = results.get(run.run_id)
        if result is None:
            continue
        if run.run_id in cache:
            rows.append(cache[run.run_id])
            continue
        row = {"run_id": run.run_id, **{k: format_value(v) for k, v in run.values.items()}, "seed": str(run.seed),
               "status": result.status, "error": result.error}
        summary = summarize_run(Path(study_dir) / RUNS_DIR / run.run_id, spec.threshold)
        if result.status != DONE:
            summary = {**summary, "final_eval": "", "auc": "", "steps_to_threshold": ""}
        rows.append(cache.setdefault(run.run_id, {**row, **summary}))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=results_columns(spec), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(Path(study_dir) / RESULTS_FILE, text.getvalue())
    return rows


# -- results.csv, read back ----------------------------------------------------------------------------------------
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
    return _canonical(cell) == _canonical(value) or cell.strip() == format_value(value, short=True)


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
        return self.status == DONE


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
            return format_value(point[0], short=True)
        return ", ".join(f"{f}={format_value(v, short=True)}" for f, v in zip(self.fields, point))

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
    """Read ``study.json`` and ``results.csv`` of ``study_dir``; UserInputError naming what is missing."""
    path = Path(study_dir)
    spec_path, results_path = path / STUDY_FILE, path / RESULTS_FILE
    if not spec_path.is_file():
        raise UserInputError(f"{path}: not a study directory ({STUDY_FILE} is missing)")
    try:
        spec = json.loads(spec_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{spec_path}: not valid JSON ({exc})") from None
    vary = spec.get("vary")
    if not isinstance(spec, dict) or not isinstance(vary, dict) or not vary:
        raise UserInputError(f"{spec_path}: expected a 'vary' object of field: [values]")
    if not results_path.is_file():
        raise UserInputError(f"{path}: no {RESULTS_FILE} yet (run the study first)")
    fields = list(vary)
    with open(results_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("run_id", "status", "final_eval", *fields) if c not in (reader.fieldnames or [])]
        if missing:
            raise UserInputError(f"{results_path}: missing column(s) {', '.join(missing)}")
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


def scores_of(runs: Sequence[StudyRun], name: str) -> tuple[list[float], int]:
    """The finished runs' finite ``name`` scores, and how many runs have none (failed or missing)."""
    values = [getattr(r, name) for r in runs if r.done and math.isfinite(getattr(r, name))]
    return values, len(runs) - len(values)
