"""One Pendulum-v1 training run, printed as one line: the rows of benchmarks/results/pendulum_ladder.md.

    .venv/bin/python benchmarks/pendulum_ladder.py a2c --seed 1 --steps 1000000 --fields '{"log_std_init": -0.5}'
    .venv/bin/python benchmarks/pendulum_ladder.py sb3-a2c --seed 1 --steps 200000 [--sde]

A policygrad run uses the algorithm's Pendulum preset (if any) under ``--fields``, evaluates the
trained policy deterministically over 10 episodes and prints the mean return of the first and last 20
training episodes and of each tenth of them. ``sb3-a2c`` trains Stable-Baselines3's A2C with the RL
Zoo's Pendulum-v1 hyperparameters (needs the ``bench`` extra) and prints its last 100 training episodes.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def run_policygrad(algo: str, seed: int, steps: int, fields: dict) -> str:
    import policygrad as pg

    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    cfg = pg.make_config(algo, env_id="Pendulum-v1", total_steps=steps, seed=seed, progress=False,
                         tensorboard=False, eval_episodes=10, checkpoint_every=0, **fields)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = pg.train(cfg, run_dir=Path(tmp) / "run")
        with open(result.run_dir / "episodes.csv", newline="") as f:
            returns = np.array([float(row["return"]) for row in csv.DictReader(f)])
    tenths = [round(float(part.mean())) for part in np.array_split(returns, 10) if len(part)]
    return (f"{algo} seed {seed}, {result.global_step} steps, {json.dumps(fields)}: eval {result.evaluation.mean:.0f}; "
            f"training first 20 {returns[:20].mean():.0f}, last 20 {returns[-20:].mean():.0f}, tenths {tenths}; "
            f"{time.perf_counter() - start:.0f} s")


def run_sb3_a2c(seed: int, steps: int, sde: bool) -> str:
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from policygrad.comparison.methods import quiet_sb3_logger

    torch.set_num_threads(1)
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=8, seed=seed), gamma=0.9)
    extra = dict(use_sde=True, policy_kwargs=dict(log_std_init=-2, ortho_init=False)) if sde else {}
    model = A2C("MlpPolicy", env, n_steps=8, gae_lambda=0.9, gamma=0.9, vf_coef=0.4, max_grad_norm=0.5,
                use_rms_prop=True, learning_rate=lambda remaining: 7e-4 * remaining, normalize_advantage=False,
                ent_coef=0.0, seed=seed, verbose=0, **extra)
    quiet_sb3_logger(model)
    start = time.perf_counter()
    model.learn(steps)
    last = np.mean([info["r"] for info in model.ep_info_buffer])  # SB3 keeps the last 100 episodes
    return (f"sb3-a2c seed {seed}, {steps} steps, gSDE {sde}: last 100 training episodes {last:.0f}; "
            f"{time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", help="a policygrad algorithm (a2c, ppo, ...) or sb3-a2c")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--fields", default="{}", help="config fields as JSON, applied over the preset")
    parser.add_argument("--sde", action="store_true", help="sb3-a2c only: gSDE exploration, as the zoo has it")
    args = parser.parse_args()
    if args.algo == "sb3-a2c":
        print(run_sb3_a2c(args.seed, args.steps, args.sde))
    else:
        print(run_policygrad(args.algo, args.seed, args.steps, json.loads(args.fields)))


if __name__ == "__main__":
    main()
