"""PPO and A2C on an Atari game, policygrad against Stable-Baselines3 2.9.2 side by side in one invocation
(issue 29's speed target: steps/s >= 1.5x SB3's, CPU, fp32, same thread count).

Both get the same environments: core/atari.py's training stack (no-op starts, frame skip 4, 84x84 grey,
4 stacked frames, fire on reset, life loss ends the learner's episode, rewards clipped) in 8 (PPO) or 16
(A2C) copies stepped in this process (Gymnasium's SyncVectorEnv for policygrad, SB3's DummyVecEnv for SB3),
and the RL Baselines3 Zoo's Atari settings (run/presets/ppo.yaml, a2c.yaml): a Nature CNN shared by policy
and value, fp32; and policygrad again with ``precision=bf16`` (bfloat16 autocast around the CNN, core/precision.py)
unless ``--precisions fp32``. Each runs one warm-up iteration, then ``--steps`` steps, timed; they alternate
for ``--rounds`` rounds so that all see the same machine load, and the median of each is kept.
Two clocks: wall time, and the CPU time of this process (everything runs in it on one thread: the
environments, acting, the update), which other jobs on a shared machine disturb far less.

    python benchmarks/atari_vs_sb3.py [--algo ppo|a2c] [--env ALE/Pong-v5] [--steps 8192] [--rounds 2]
        [--threads 1] [--precisions fp32,bf16] [--out benchmarks/results/ATARI_SPEED.md]

Needs the atari and bench extras.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any

import torch
from zoo_atari import zoo_atari_learner

from policygrad.comparison.methods import quiet_sb3_logger
from policygrad.core.atari import make_atari_env


def ours(algo: str, env_id: str, steps: int, threads: int, precision: str = "fp32") -> tuple[float, float]:
    """policygrad's steps per wall second and per CPU second over ``steps`` steps after one warm-up iteration,
    its network's encoder computing in ``precision``."""
    learner = zoo_atari_learner(algo, env_id, steps, threads, precision)
    learner.iterate()  # warm-up: first allocations, oneDNN kernels
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while done < steps:
        done += learner.iterate().steps
    rates = done / (time.perf_counter() - start), done / (time.process_time() - cpu)
    learner.loop.envs.close()
    return rates


def sb3(algo: str, env_id: str, steps: int) -> tuple[float, float]:
    """Stable-Baselines3's steps per wall and per CPU second with the same settings, environments and threads."""
    from stable_baselines3 import A2C as SB3A2C
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    n = 8 if algo == "ppo" else 16
    venv = DummyVecEnv([lambda: make_atari_env(env_id, training=True) for _ in range(n)])

    def anneal(start: float):
        return lambda remaining: remaining * start

    model: Any = (SB3PPO("CnnPolicy", venv, n_steps=128, n_epochs=4, batch_size=256, learning_rate=anneal(2.5e-4),
                         clip_range=anneal(0.1), ent_coef=0.01, vf_coef=0.5, gamma=0.99, gae_lambda=0.95,
                         device="cpu", seed=1) if algo == "ppo" else
                  SB3A2C("CnnPolicy", venv, n_steps=5, learning_rate=7e-4, ent_coef=0.01, vf_coef=0.25, gamma=0.99,
                         policy_kwargs=dict(optimizer_class=torch.optim.RMSprop,
                                            optimizer_kwargs=dict(alpha=0.99, eps=1e-5, weight_decay=0)),
                         device="cpu", seed=1))
    quiet_sb3_logger(model)
    iteration = n * model.n_steps
    model.learn(iteration)  # warm-up, as above
    start, cpu = time.perf_counter(), time.process_time()
    model.learn(steps, reset_num_timesteps=False)
    rates = steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)
    venv.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=("ppo", "a2c"), default="ppo")
    parser.add_argument("--env", default="ALE/Pong-v5")
    parser.add_argument("--steps", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precisions", default="fp32,bf16", help="policygrad's precisions to time, in this order")
    parser.add_argument("--out", default=None, help="append the table to this Markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    precisions = args.precisions.split(",")
    rates: dict[str, list[tuple[float, float]]] = {**{p: [] for p in precisions}, "sb3": []}
    for _ in range(args.rounds):
        for precision in precisions:
            rates[precision].append(ours(args.algo, args.env, args.steps, args.threads, precision))
        torch.set_num_threads(args.threads)  # policygrad's config sets it; SB3 gets the same
        rates["sb3"].append(sb3(args.algo, args.env, args.steps))
        print(rates, flush=True)

    def cell(name: str, clock: int) -> str:
        return ", ".join(f"{r[clock]:.0f}" for r in rates[name])

    def ratio(name: str, clock: int) -> float:
        return (statistics.median(r[clock] for r in rates[name])
                / statistics.median(r[clock] for r in rates["sb3"]))

    lines = [f"| {args.algo} | {p} | {args.env} | {args.steps} x {args.rounds} | {args.threads} | {cell(p, 0)} | "
             f"{cell('sb3', 0)} | {ratio(p, 0):.2f}x | {cell(p, 1)} | {cell('sb3', 1)} | {ratio(p, 1):.2f}x |"
             for p in precisions]
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("| algo | policygrad precision | env | steps x rounds | threads | policygrad steps/s (wall) | "
          "SB3 steps/s (wall) | ratio | policygrad steps per CPU s | SB3 steps per CPU s | ratio |")
    print("\n".join(lines))
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
