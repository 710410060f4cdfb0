"""How much faster a study runs with one worker process per core than with its runs one after another
(issue 13, item 2: target <= 0.6x on a 2-core machine).

The same 12-run study (PPO on CartPole-v1, 3 learning rates x 4 seeds, 20k steps each, evaluated every
1k steps) runs with workers=1 and with workers=2, each into a fresh directory; with --repeats N the
order alternates (1, 2, 2, 1, ...) so that a machine warming up or slowing down favours neither. Times
are wall-clock seconds of the whole study (starting the worker processes included; the report,
which is written once at the end whatever the workers, excluded) and of the runs alone.

    .venv/bin/python benchmarks/study_parallel.py [--repeats 1] [--total-steps 20000]

Writes benchmarks/results/study_parallel.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from policygrad.studies import runner
from policygrad.studies.backends.local import LocalBackend
from policygrad.studies.spec import make_spec

HERE = Path(__file__).resolve().parent


class TimedBackend(LocalBackend):
    """The local backend, timing its run_all (the runs alone)."""

    seconds = 0.0

    def run_all(self, tasks, workers, on_result=None):
        start = time.perf_counter()
        try:
            return super().run_all(tasks, workers, on_result)
        finally:
            self.seconds = time.perf_counter() - start


def one_study(workers: int, total_steps: int, out: Path) -> tuple[float, float, list[dict]]:
    spec = make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-3, 2.5e-3, 5e-3]}, seeds=4, total_steps=total_steps,
                     eval_every=1000, name=f"bench_w{workers}")
    backend = TimedBackend()
    # the report is the same for both: left out
    report, runner.write_report_or_say = runner.write_report_or_say, lambda study_dir, echo: None
    try:
        start = time.perf_counter()
        result = runner.run_study(spec, out, workers, backend=backend, echo=None)
        total = time.perf_counter() - start
    finally:
        runner.write_report_or_say = report
    failed = result.failed
    if failed:
        raise SystemExit(f"{len(failed)} runs failed: {failed[0]['error']}")
    return total, backend.seconds, result.results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--total-steps", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "study_parallel.md")
    args = parser.parse_args()
    order = [w for i in range(args.repeats) for w in ((1, 2) if i % 2 == 0 else (2, 1))]
    times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    finals: dict[int, list[str]] = {}
    per_run: dict[int, list[float]] = {1: [], 2: []}  # each run's training clock (wall_seconds)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for k, workers in enumerate(order):
            total, runs, rows = one_study(workers, args.total_steps, Path(tmp) / str(k))
            times[workers].append((total, runs))
            finals[workers] = [r["final_eval"] for r in rows]
            per_run[workers] += [float(r["wall_seconds"]) for r in rows]
            print(f"workers={workers}: study {total:.1f} s, runs {runs:.1f} s", flush=True)
    load_after = os.getloadavg()
    median = {w: (statistics.median(t for t, _ in v), statistics.median(r for _, r in v)) for w, v in times.items()}
    ratio, runs_ratio = median[2][0] / median[1][0], median[2][1] / median[1][1]
    same = finals[1] == finals[2]
    run_median = {w: statistics.median(v) for w, v in per_run.items()}
    # what the study would take if it were nothing but its runs, spread evenly over the workers
    ideal = {w: run_median[w] * 12 / w for w in (1, 2)}
    lines = [
        "# A study in parallel: workers=2 against workers=1 (issue 13, item 2)",
        "",
        "`benchmarks/study_parallel.py`: the same 12-run study, PPO on CartPole-v1 (preset), learning_rate "
        f"1e-3 / 2.5e-3 / 5e-3 x seeds 1-4, {args.total_steps} steps a run, deterministic evaluation every 1,000 "
        "steps (10 episodes); every run a normal run directory with one torch thread. Wall-clock seconds of the "
        "whole study (spawning and warming up the worker processes included, the report left out) and of the "
        f"runs alone; median of {args.repeats} (order alternated: {', '.join(map(str, order))}).",
        "",
        "| workers | study (s) | runs (s) | every measurement: study / runs (s) |",
        "|---|---|---|---|",
        *(f"| {w} | {median[w][0]:.1f} | {median[w][1]:.1f} | "
          f"{'; '.join(f'{t:.1f} / {r:.1f}' for t, r in times[w])} |" for w in (1, 2)),
        "",
        f"**Ratio workers=2 / workers=1: {ratio:.2f}x** (runs alone: {runs_ratio:.2f}x); target <= 0.6x: "
        f"{'met' if ratio <= 0.6 else 'NOT met'}.",
        "",
        f"Same final evaluations with 1 and 2 workers (runs are deterministic; scheduling changes nothing): {same}.",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python "
        f"{platform.python_version()}, torch {torch.__version__}; load average before "
        f"{load_before[0]:.2f}, after {load_after[0]:.2f} (anything else running shows here).",
        "",
        "Where the time goes: the median run's training clock (results.csv `wall_seconds`, evaluations "
        f"excluded) reads {run_median[1]:.2f} s with one worker and {run_median[2]:.2f} s with two side by side "
        f"({run_median[2] / run_median[1]:.2f}x: two runs at once share the machine's caches and memory "
        f"bandwidth); 12 runs at that pace would take {ideal[1]:.1f} s and {ideal[2]:.1f} s. The rest of each "
        "study's time (evaluations, checkpoints, learning-curve plots, starting the worker processes, which "
        f"import torch and warm it up once each) is {median[1][0] - ideal[1]:.1f} s and "
        f"{median[2][0] - ideal[2]:.1f} s.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"ratio {ratio:.2f}x; wrote {args.out}")


if __name__ == "__main__":
    main()
