"""Stepping 8 copies of an Atari game with random actions, the environments alone (no network): Gymnasium's
SyncVectorEnv of core/atari.py's training stack, with the game's own observation grey (what core/atari.py
makes since the change) and RGB (Gymnasium's default, before it), against ale-py's own AtariVectorEnv with the
nearest options (84x84 grey, 4 frames, frame skip 4 with max-pooling, 30 no-ops, fire on reset, a lost life
flagged as the learner's episode end, rewards unclipped: clipping is a sign()).

    python benchmarks/atari_vector_env.py [--env ALE/Pong-v5] [--steps 500] [--rounds 3] [--out FILE]

The forms alternate for ``--rounds`` rounds, so that all see the same machine load; the table gives each
one's steps per second of wall time and of this process's CPU time (medians), and the ratio to the RGB
stack. Needs the atari extra.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from ale_py.vector_env import AtariVectorEnv
from gymnasium.vector import AutoresetMode

from policygrad.core.atari import make_atari_env, register_atari

N = 8


def stack(env_id: str, obs_type: str) -> gym.vector.VectorEnv:
    return gym.vector.SyncVectorEnv([lambda: make_atari_env(env_id, training=True, obs_type=obs_type)
                                     for _ in range(N)], autoreset_mode=AutoresetMode.NEXT_STEP)


def native(env_id: str) -> gym.vector.VectorEnv:
    register_atari()
    spec = gym.spec(env_id)
    game = spec.kwargs["game"]
    return AtariVectorEnv(game, N, num_threads=1, repeat_action_probability=spec.kwargs.get(
        "repeat_action_probability", 0.0), reward_clipping=False, life_loss_info=True)


def rates(make: Callable[[], gym.vector.VectorEnv], actions: np.ndarray) -> tuple[float, float]:
    """Steps per wall second and per CPU second of ``len(actions)`` steps of the N copies."""
    env = make()
    env.reset(seed=0)
    env.step(actions[0])
    wall, cpu = time.perf_counter(), time.process_time()
    for action in actions:
        env.step(action)
    steps = N * len(actions)
    result = steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)
    env.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ALE/Pong-v5")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/atari_vector_env.md")
    args = parser.parse_args()
    actions = np.random.default_rng(0).integers(0, 6, (args.steps, N))
    forms = {
        "core/atari.py, the game's observation RGB (before)": lambda: stack(args.env, "rgb"),
        "core/atari.py, the game's observation grey (now)": lambda: stack(args.env, "grayscale"),
        "ale-py AtariVectorEnv, 1 thread": lambda: native(args.env),
    }
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in forms}
    for _ in range(args.rounds):
        for name, make in forms.items():
            measured[name].append(rates(make, actions))
    base = statistics.median(cpu for _, cpu in measured[next(iter(forms))])
    lines = [f"# Stepping {N} copies of {args.env}, the environments alone (benchmarks/atari_vector_env.py)", "",
             f"`python benchmarks/atari_vector_env.py --env {args.env} --steps {args.steps} --rounds {args.rounds}`, "
             f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, random actions, the forms alternating; medians "
             "of the rounds.", "",
             "| form | steps/s (wall) | steps per CPU s | against the RGB stack (CPU) |", "|---|---:|---:|---:|"]
    for name, runs in measured.items():
        wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
        lines.append(f"| {name} | {wall:,.0f} | {cpu:,.0f} | {cpu / base:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
