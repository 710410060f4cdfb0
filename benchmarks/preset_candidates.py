"""Candidate presets for one environment, measured as sweeps over seeds, compared (issue 32).

Each candidate is a finished study directory (``policygrad sweep ... --seeds 3``, one setting, 1M
steps, 20 deterministic evaluation episodes on evaluation seed 12345), or the shipped preset's own rows
in ``benchmarks/continuous.py``'s result log (``LOG.jsonl#ALGO:ENV_ID``: the same budget, seeds and
evaluation, so a preset is not trained twice to be compared); this reads them and writes one table:
per-seed final evaluation and wall time, mean, worst seed, and the tests
of the project's statistics module (Welch and Mann-Whitney, Holm across the candidates, Hedges' g,
the probability of improvement) of every candidate against the first.

    .venv/bin/python benchmarks/preset_candidates.py --env Hopper-v5 --out benchmarks/results/hopper_candidates.md \
        "zoo preset=studies/zoo_ppo_Hopper-v5" "CleanRL defaults=studies/cleanrl_ppo_Hopper-v5"
    .venv/bin/python benchmarks/preset_candidates.py --env HalfCheetah-v5 --out ... \
        "zoo preset=benchmarks/results/CONTINUOUS.jsonl#ppo:HalfCheetah-v5" "CleanRL defaults=studies/..."
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from policygrad.reporting.statistics import compare


def read(source: str) -> list[dict[str, str]]:
    """The finished runs of one candidate, each with its seed, final evaluation and wall time."""
    if "#" in source:
        return read_continuous_log(*source.split("#", 1))
    with open(Path(source) / "results.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row["status"] == "done"]


def read_continuous_log(log: str, key: str) -> list[dict[str, str]]:
    """policygrad's own runs of one ALGO:ENV_ID row of continuous.py's result log, as sweep rows."""
    algo, env_id = key.split(":", 1)
    rows = []
    for line in Path(log).read_text().splitlines():
        entry = json.loads(line)
        if (entry.get("kind") == "learn" and entry.get("lib", "policygrad") == "policygrad"
                and entry.get("algo") == algo and entry.get("env_id") == env_id and "error" not in entry):
            rows.append({"seed": str(entry["seed"]), "final_eval": str(entry["mean"]),
                         "wall_seconds": str(entry["wall_seconds"]), "commit": entry.get("commit", "")})
    if not rows:
        raise SystemExit(f"{log}: no finished policygrad run of {key}")
    return sorted(rows, key=lambda r: int(r["seed"]))


def describe(label: str, source: str) -> str:
    """Where a candidate's numbers come from: a study's spec, or continuous.py's log and its commit."""
    if "#" in source:
        log, key = source.split("#", 1)
        commits = sorted({r["commit"] for r in read(source)})
        return (f"- {label}: `{key}` in `{log}` (benchmarks/continuous.py, the shipped preset, "
                f"commit {', '.join(commits)})")
    spec = json.loads((Path(source) / "study.json").read_text())
    return (f"- {label}: `{source}`, fixed {json.dumps(spec.get('fixed', {}), sort_keys=True)}, "
            f"preset {spec.get('preset')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("candidates", nargs="+", metavar="LABEL=STUDY_DIR")
    args = parser.parse_args()
    studies = dict(item.split("=", 1) for item in args.candidates)
    rows = {label: read(path) for label, path in studies.items()}
    scores = {label: [float(r["final_eval"]) for r in runs] for label, runs in rows.items()}
    lines = [f"# {args.env}: candidate presets at 1M steps (issue 32)", "",
             "`benchmarks/preset_candidates.py` over one `policygrad sweep` per candidate (3 seeds, 1M steps, final "
             "deterministic evaluation of 20 episodes on evaluation seed 12345).", "",
             "| candidate | seeds | final evaluation per seed | mean | worst seed | wall time per seed (s) |",
             "|---|---|---|---|---|---|"]
    for label, runs in rows.items():
        values = scores[label]
        walls = ", ".join(f"{float(r['wall_seconds']):,.0f}" for r in runs)
        seeds, per_seed = ", ".join(r["seed"] for r in runs), ", ".join(f"{v:,.1f}" for v in values)
        lines.append(f"| {label} | {seeds} | {per_seed} | "
                     f"{sum(values) / len(values):,.1f} | {min(values):,.1f} | "
                     f"{walls} |")
    lines += ["", "| candidate vs " + next(iter(scores)) + " | difference | Welch p (Holm) | Mann-Whitney p (Holm) | "
              "Hedges' g | P(improvement) |", "|---|---|---|---|---|---|"]
    for c in compare(scores):
        lines.append(f"| {c.value} | {c.difference:+,.1f} | {c.welch_p_holm:.3g} | {c.mannwhitney_p_holm:.3g} | "
                     f"{c.hedges_g:.2f} | {c.prob_improvement:.2f} |")
    lines += ["", "With 3 seeds a side, the smallest Mann-Whitney p is 0.1 (two-sided): that test cannot separate "
              "3 from 3 at 0.05 whatever the scores; Welch can.", "", "Studies (spec and code version):"]
    lines += [describe(label, path) for label, path in studies.items()]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
