"""Stepping 8 copies of ALE/Pong-v5 with random actions: Gymnasium's SyncVectorEnv of core/atari.py's
stack (evaluation form) against ale-py's own AtariVectorEnv with the same preprocessing (84x84 grey, 4
frames, frame skip 4 with max-pooling, 30 no-ops, fire on reset, sticky actions 0.25, no clipping).

    python benchmarks/atari_vector_env.py [--steps 500]

Prints steps/s of each (the environments alone, no network). Needs the atari extra.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from ale_py.vector_env import AtariVectorEnv
from gymnasium.vector import AutoresetMode

from policygrad.core.atari import make_atari_env

N = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    makers = {
        "SyncVectorEnv of core/atari.py": lambda: gym.vector.SyncVectorEnv(
            [lambda: make_atari_env("ALE/Pong-v5", training=False) for _ in range(N)],
            autoreset_mode=AutoresetMode.NEXT_STEP),
        "ale-py AtariVectorEnv, 1 thread": lambda: AtariVectorEnv(
            "pong", N, num_threads=1, repeat_action_probability=0.25, reward_clipping=False),
        "ale-py AtariVectorEnv, 2 threads": lambda: AtariVectorEnv(
            "pong", N, num_threads=2, repeat_action_probability=0.25, reward_clipping=False),
    }
    for name, make in makers.items():
        env = make()
        env.reset(seed=0)
        start = time.perf_counter()
        for _ in range(args.steps):
            env.step(rng.integers(0, 6, N))
        print(f"{name}: {N * args.steps / (time.perf_counter() - start):.0f} steps/s")
        env.close()


if __name__ == "__main__":
    main()
