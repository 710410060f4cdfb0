"""Reward and observation normalization compared on one environment (the guide's Q29).

    .venv/bin/python benchmarks/normalization_comparison.py [--algo ppo] [--env Pendulum-v1]
        [--steps 49152] [--seeds 3] [--eval-episodes 10]

Trains the same algorithm (with the environment's preset, if it has one) once per method and seed,
where a method is a value of ``reward_norm`` (none | scale | standardize | popart), with
``normalize_obs`` off, plus ``normalize_obs`` on for ``none`` and ``scale``. The loop runs seed by
seed and rotates the order of the methods from one seed to the next, so slow phases of a shared
machine hit every method alike. Each run ends with the library's deterministic evaluation (its own
seed, 10000). Results go to benchmarks/results/normalization.md: per method, the min / median / max over
seeds of the evaluation mean and of the training wall seconds, then every run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import policygrad as pg

# (label, the config fields that make the method)
METHODS = [
    ("none", {"reward_norm": "none", "normalize_obs": False}),
    ("scale", {"reward_norm": "scale", "normalize_obs": False}),
    ("standardize", {"reward_norm": "standardize", "normalize_obs": False}),
    ("popart", {"reward_norm": "popart", "normalize_obs": False}),
    ("none + normalize_obs", {"reward_norm": "none", "normalize_obs": True}),
    ("scale + normalize_obs", {"reward_norm": "scale", "normalize_obs": True}),
]


def method_fields(algo: str, fields: dict) -> dict:
    """``standardize`` standardises the advantages of the whole batch, which an actor-critic's
    per-minibatch ``norm_adv`` would undo (the config refuses the pair): turn ``norm_adv`` off for it."""
    has_norm_adv = "norm_adv" in pg.ALGORITHMS[algo].Config.__dataclass_fields__
    if fields["reward_norm"] == "standardize" and has_norm_adv:
        return {**fields, "norm_adv": False}
    return fields


def spread(values: list[float], fmt: str) -> str:
    return " | ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--steps", type=int, default=49_152, help="environment steps per run (PPO's "
                        "Pendulum preset collects 4096 per rollout: 49152 is 12 rollouts)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N for every method")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "normalization.md")
    args = parser.parse_args()

    results: dict[str, list[tuple[int, float, float, int]]] = {label: [] for label, _ in METHODS}
    load_before = os.getloadavg()
    started = time.perf_counter()
    preset = ""
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            shift = (seed - 1) % len(METHODS)
            for label, fields in METHODS[shift:] + METHODS[:shift]:
                cfg = pg.make_config(args.algo, env_id=args.env, total_steps=args.steps, seed=seed,
                                     eval_episodes=args.eval_episodes, progress=False, tensorboard=False,
                                     **method_fields(args.algo, fields))
                preset = cfg.preset
                result = pg.train(cfg, run_dir=Path(tmp) / f"{label.replace(' + ', '+')}-{seed}")
                results[label].append((seed, result.evaluation.mean, result.seconds, result.global_step))
                print(f"seed {seed}  {label:22} eval {result.evaluation.mean:8.1f}  "
                      f"{result.seconds:6.1f} s  {result.global_step} steps", flush=True)
    total_minutes = (time.perf_counter() - started) / 60
    load_after = os.getloadavg()

    steps_done = next(iter(results.values()))[0][3]
    command = (f".venv/bin/python benchmarks/normalization_comparison.py --algo {args.algo} --env {args.env} "
               f"--steps {args.steps} --seeds {args.seeds} --eval-episodes {args.eval_episodes}")
    lines = [
        f"# Reward and observation normalization: {args.algo} on {args.env}",
        "",
        f"Command: `{command}`",
        "",
        f"- Algorithm and environment: `{args.algo}` on `{args.env}`, preset `{preset}` (its values, and "
        "the library's defaults elsewhere; only `reward_norm` and `normalize_obs` change between methods, "
        "and `standardize` runs with `norm_adv` off where the algorithm has it, since per-minibatch "
        "advantage standardisation would undo it).",
        f"- Budget: {steps_done} environment steps per run (asked {args.steps}; training stops at the first "
        f"whole rollout past it), seeds 1..{args.seeds} for every method, {len(METHODS) * args.seeds} runs "
        f"in {total_minutes:.1f} minutes. Runs go seed by seed, the method order rotated each seed.",
        f"- Score: the mean return of the deterministic evaluation at the end of training "
        f"({args.eval_episodes} episodes, evaluation seed 10000). Seconds: the training loop's wall time, "
        "evaluation excluded.",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads "
        f"in this process (each run uses `torch_threads=1`), CPU only; Python {platform.python_version()}, "
        f"torch {torch.__version__}, policygrad {pg.__version__}. The machine was shared: load average "
        f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end, so the seconds are only "
        "comparable within this table.",
        "",
        "| method | eval mean: min | median | max | train seconds: min | median | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, _ in METHODS:
        runs = results[label]
        lines.append(f"| {label} | {spread([r[1] for r in runs], '.1f')} | {spread([r[2] for r in runs], '.1f')} |")
    lines += ["", "Every run:", "", "| method | seed | eval mean | train seconds |", "|---|---|---|---|"]
    for label, _ in METHODS:
        for seed, mean, seconds, _ in results[label]:
            lines.append(f"| {label} | {seed} | {mean:.1f} | {seconds:.1f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("wrote", args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
