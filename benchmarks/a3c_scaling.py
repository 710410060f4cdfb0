"""A3C throughput with 1 and 2 workers, alternated so that machine drift hits both alike.

    .venv/bin/python benchmarks/a3c_scaling.py [--rounds 3] [--steps 60000]

Steps per second are read from each run's metrics.csv between its first and last timed rows, so
process start-up (spawning workers, importing torch) is not counted. Results go to
benchmarks/results/a3c_scaling.md.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
from pathlib import Path

import policygrad as pg


def steady_sps(run_dir: Path) -> float:
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["perf/sps"] not in ("", "nan")]
    first, last = rows[0], rows[-1]
    return (float(last["global_step"]) - float(first["global_step"])) / (
        float(last["wall_time"]) - float(first["wall_time"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "a3c_scaling.md")
    args = parser.parse_args()
    results: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for workers in (1, 2):
                cfg = pg.make_config("a3c", total_steps=args.steps, num_workers=workers, progress=False,
                                     tensorboard=False, eval_episodes=1, seed=round_ + 1)
                result = pg.train(cfg, run_dir=Path(tmp) / f"w{workers}r{round_}")
                results[workers].append(steady_sps(result.run_dir))
                print(f"round {round_}: {workers} worker(s): {results[workers][-1]:.0f} steps/s", flush=True)
    med = {w: statistics.median(v) for w, v in results.items()}
    lines = [
        "# A3C scaling: environment steps per second, CartPole-v1",
        "",
        f"Command: `.venv/bin/python benchmarks/a3c_scaling.py --rounds {args.rounds} --steps {args.steps}`, "
        "runs alternated 1, 2, 1, 2, ...; 4 envs x 5 steps per worker update.",
        "",
        "| workers | min | median | max |",
        "|---|---|---|---|",
        *[f"| {w} | {min(v):.0f} | {med[w]:.0f} | {max(v):.0f} |" for w, v in results.items()],
        "",
        f"Ratio of medians, 2 workers / 1 worker: **{med[2] / med[1]:.2f}x**",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
