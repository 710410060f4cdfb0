"""PPO's (or A2C's) steps per second on an Atari game with the standard preprocessing (core/atari.py) and the RL
Baselines3 Zoo's Atari settings (8 envs x 128 steps, 4 epochs, minibatches of 256, Nature CNN shared by
policy and value), fp32 on the CPU, the environments stepped in this process (Gymnasium's SyncVectorEnv).

    python benchmarks/atari_speed.py [--algo ppo|a2c] [--env ALE/Pong-v5] [--steps 5120] [--threads 1]

Prints the steps/s of the whole loop (collection and update) and of each part. Needs the atari extra.
The PPO object is driven directly: the trainer does not yet build Atari's preprocessing for an ALE id.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode

from policygrad.algos.a2c import A2C, A2CConfig
from policygrad.algos.ppo import PPO, PPOConfig
from policygrad.core.atari import make_atari_env
from policygrad.core.envs import VecEnv
from policygrad.core.networks import build_agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ALE/Pong-v5")
    parser.add_argument("--steps", type=int, default=5120)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--algo", choices=("ppo", "a2c"), default="ppo")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # the presets' values (run/presets/ppo.yaml, a2c.yaml: RL Baselines3 Zoo's Atari entries)
    cfg: Any = (PPOConfig(env_id="CartPole-v1", num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4,
                          learning_rate=2.5e-4, clip_coef=0.1, anneal_clip=True, ent_coef=0.01, vf_coef=0.5,
                          gamma=0.99, gae_lambda=0.95, shared_trunk=True, total_steps=args.steps,
                          torch_threads=args.threads) if args.algo == "ppo" else
                A2CConfig(env_id="CartPole-v1", num_envs=16, num_steps=5, learning_rate=7e-4, optimizer="rmsprop",
                          anneal_lr=False, advantage_estimator="nstep", ent_coef=0.01, vf_coef=0.25, gamma=0.99,
                          shared_trunk=True, total_steps=args.steps, torch_threads=args.threads))
    vector = gym.vector.SyncVectorEnv([lambda: make_atari_env(args.env, training=True) for _ in range(cfg.num_envs)],
                                      autoreset_mode=AutoresetMode.NEXT_STEP)
    envs = VecEnv(vector)
    torch.manual_seed(cfg.seed)
    network = build_agent(cfg, envs.single_observation_space, envs.single_action_space, with_value=True)
    algo = (PPO if args.algo == "ppo" else A2C)(cfg, envs, network)
    collect_time = 0.0
    collector = algo.loop.collector
    original = collector.collect

    def timed_collect():
        nonlocal collect_time
        start = time.perf_counter()
        batch = original()
        collect_time += time.perf_counter() - start
        return batch

    collector.collect = timed_collect  # type: ignore[method-assign]
    algo.iterate()  # warm-up (first allocations, oneDNN kernels)
    collect_time, steps, start = 0.0, 0, time.perf_counter()
    while steps < args.steps:
        steps += algo.iterate().steps
    total = time.perf_counter() - start
    print(f"{args.env}: {args.algo}, {steps} steps after one warm-up iteration, {args.threads} thread(s): "
          f"{steps / total:.0f} steps/s overall; collection {collect_time:.1f} s ({steps / collect_time:.0f} steps/s), "
          f"update {total - collect_time:.1f} s; rollout obs buffer {collector.obs_buf.dtype}, "
          f"{collector.obs_buf.numel() * collector.obs_buf.element_size() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
