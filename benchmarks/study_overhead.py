"""Where a small sweep's time goes, and what 2 workers buy over 1 (issue 27, item 3: the sweep of 8
REINFORCE runs of 20k steps on CartPole-v1, target <= 0.6x with 2 workers on a 2-core machine).

Each measurement is the whole command, ``policygrad sweep reinforce --env CartPole-v1 --vary
learning_rate=0.01,0.02 --seeds 4 --total-steps 20000 --workers K``, as a user types it (process
start, imports, worker processes, the runs, the report, exit), timed from outside; its progress lines
are time-stamped, which splits it into: start (until the study's first line), the first run's wait
(worker start-up plus that run), the runs, and the tail (report, closing the workers, exit). The order
alternates (1, 2, 2, 1, ...) so that a machine warming up or slowing down favours neither.

    .venv/bin/python benchmarks/study_overhead.py [--repeats 2]

Writes benchmarks/results/study_overhead.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMAND = ["sweep", "reinforce", "--env", "CartPole-v1", "--vary", "learning_rate=0.01,0.02", "--seeds", "4",
           "--total-steps", "20000"]


def one(workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-u", "-m", "policygrad.cli", *COMMAND, "--workers", str(workers),
                                 "--out-dir", out, "--name", "s"], stdout=subprocess.PIPE, text=True)
        stamps = []
        assert proc.stdout is not None
        for line in proc.stdout:
            stamps.append((time.perf_counter() - start, line.strip()))
        proc.wait()
        end = time.perf_counter() - start
        if proc.returncode != 0 or not (Path(out) / "s" / "report.md").is_file():
            raise SystemExit(f"the sweep failed: {stamps[-3:]}")
    runs = [t for t, line in stamps if line.startswith("[")]
    first_line = stamps[0][0]
    return {"total": end, "start": first_line, "first_run": runs[0] - first_line, "runs": runs[-1] - runs[0],
            "tail": end - runs[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "study_overhead.md")
    args = parser.parse_args()
    order = [1, 2, 2, 1] * args.repeats
    load_before = os.getloadavg()[0]
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for workers in order[: 2 * args.repeats]:
        results[workers].append(one(workers))
        print(workers, {k: round(v, 2) for k, v in results[workers][-1].items()}, flush=True)
    median = {w: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for w, rs in results.items()}
    ratio = median[2]["total"] / median[1]["total"]
    lines = ["# A small sweep, 1 worker against 2: where the time goes (issue 27)", "",
             f"`benchmarks/study_overhead.py`: `policygrad {' '.join(COMMAND)} --workers K`, the whole command "
             f"timed from outside, median of {args.repeats} (order alternated).", "",
             "| workers | total (s) | start (s) | first run's wait (s) | runs 2-8 (s) | tail: report, exit (s) |",
             "|---|---|---|---|---|---|"]
    for w in (1, 2):
        m = median[w]
        lines.append(f"| {w} | {m['total']:.1f} | {m['start']:.1f} | {m['first_run']:.1f} | {m['runs']:.1f} | "
                     f"{m['tail']:.1f} |")
    verdict = "met" if ratio <= 0.6 else "missed"
    lines += ["", f"**Ratio workers=2 / workers=1: {ratio:.2f}x** (target <= 0.6x: {verdict}).",
              "", "The start, the first run's wait (worker start-up) and the tail do not shrink with more workers; "
              "only the runs do. With F seconds of those and R of runs, two workers give at best (F + R/2) / (F + R).",
              "", f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}; "
              f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
