"""PPO with its presets on harder continuous-control tasks: steps, returns and seconds.

    .venv/bin/python benchmarks/continuous.py [--steps 300000] [--seeds 1] [--envs ID ...] [--out FILE]

Needs the Box2D dependency (installed by default) and, for HalfCheetah-v5, the MuJoCo extra
(pip install -e '.[mujoco]'); an environment that cannot be made is reported and skipped.
Results go to benchmarks/continuous.md (rewritten whole: to measure one environment again, write to
another file with --out and carry its row over).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

import policygrad as pg

ENVS = ("LunarLanderContinuous-v3", "HalfCheetah-v5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--envs", nargs="+", default=list(ENVS), help="environment ids (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("continuous.md"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in args.envs:
            for seed in range(1, args.seeds + 1):
                try:
                    cfg = pg.make_config("ppo", env_id=env_id, total_steps=args.steps, seed=seed, progress=False,
                                         tensorboard=False)
                except ValueError as exc:
                    rows.append(f"| {env_id} | {seed} | skipped: {exc} | | | |")
                    continue
                start = time.perf_counter()
                result = pg.train(cfg, run_dir=Path(tmp) / f"{env_id}-{seed}")
                seconds = time.perf_counter() - start
                ev = result.evaluation
                rows.append(f"| {env_id} | {seed} | {result.global_step} | {ev.mean:.1f} +- {ev.std:.1f} | "
                            f"{seconds:.0f} | {result.global_step / seconds:.0f} |")
                print(rows[-1], flush=True)
    text = "\n".join([
        "# PPO on continuous control (presets)",
        "",
        f"Command: `.venv/bin/python benchmarks/continuous.py --steps {args.steps} --seeds {args.seeds} "
        f"--envs {' '.join(args.envs)}` on "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, CPU, "
        f"torch {torch.__version__}. Deterministic evaluation over 20 episodes after training; seconds "
        "include the evaluation.",
        "",
        "| environment | seed | env steps | eval mean +- std | seconds | steps/s |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
