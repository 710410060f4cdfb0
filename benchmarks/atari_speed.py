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

import torch
from zoo_atari import zoo_atari_learner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ALE/Pong-v5")
    parser.add_argument("--steps", type=int, default=5120)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--algo", choices=("ppo", "a2c"), default="ppo")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    algo = zoo_atari_learner(args.algo, args.env, args.steps, args.threads)
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
