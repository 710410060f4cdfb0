"""What a trained MuJoCo policy does, episode by episode (issue 32's failure modes): for each of ``--episodes``
deterministic episodes (episode i reset from ``--seed`` + i), the return split into the environment's own
reward terms (``info["reward_forward"]``, ``reward_ctrl``, ``reward_survive`` where the task has it; computed
the same way for v4 tasks, which do not report them), the
length, the mean forward velocity, and the fraction of steps the torso spends pitched past 90 degrees
(``qpos[2]``, the root's rotation about y: a HalfCheetah on its back, a Hopper fallen over).

    python benchmarks/mujoco_episodes.py RUN_DIR [RUN_DIR ...] [--episodes 20] [--seed 12345] [--out FILE.md]

A Hopper that stands collects reward_survive (1 a step) with a forward term near 0; a flipped cheetah runs
on its back, where its gait earns less forward reward: the table tells these apart from a poor gait.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import gymnasium as gym
import numpy as np

import policygrad as pg

TERMS = ("reward_forward", "reward_ctrl", "reward_survive")


def reward_terms(task: gym.Env, info: dict, action: np.ndarray) -> dict[str, float]:
    """The step's reward terms: v5 tasks put them in ``info``; v4 tasks do not, so they are computed as v4
    does (forward weight x velocity, the control cost, the healthy reward where the task has one)."""
    if "reward_forward" in info:
        return {key: float(info.get(key, 0.0)) for key in TERMS}
    survive = getattr(task, "healthy_reward", 0.0)  # v4's property: paid while healthy (or until termination)
    return {"reward_forward": float(task._forward_reward_weight * info["x_velocity"]),  # type: ignore[attr-defined]
            "reward_ctrl": -float(task.control_cost(action)),  # type: ignore[attr-defined]
            "reward_survive": float(survive)}


def episodes(run_dir: Path, count: int, seed: int) -> list[dict[str, float]]:
    agent = pg.load(run_dir)
    env = gym.make(agent.config.env_id)
    rows = []
    for i in range(count):
        obs, _ = env.reset(seed=seed + i)
        sums = dict.fromkeys(TERMS, 0.0)
        total, steps, pitched, speed, done = 0.0, 0, 0, 0.0, False
        while not done:
            action = agent.act(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            total, steps = total + float(reward), steps + 1
            for key, value in reward_terms(env.unwrapped, info, action).items():
                sums[key] += value
            speed += float(info["x_velocity"])
            pitched += abs(float(env.unwrapped.data.qpos[2])) > math.pi / 2
        rows.append({"return": total, "length": steps, "velocity": speed / steps, "pitched": pitched / steps,
                     **sums})
    env.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    lines = ["| run | episode returns (sorted) | mean | length | forward | ctrl | survive | velocity | "
             "episodes pitched past 90 deg |", "|---|---|---|---|---|---|---|---|---|"]
    for run in args.runs:
        rows = episodes(run, args.episodes, args.seed)
        col = {key: np.array([r[key] for r in rows]) for key in rows[0]}
        lines.append(f"| {run.name} | {', '.join(f'{v:,.0f}' for v in sorted(col['return']))} | "
                     f"{col['return'].mean():,.1f} | {col['length'].mean():.0f} | "
                     f"{col['reward_forward'].mean():,.1f} | "
                     f"{col['reward_ctrl'].mean():,.1f} | {col['reward_survive'].mean():,.1f} | "
                     f"{col['velocity'].mean():.2f} | {int((col['pitched'] > 0.5).sum())} of {len(rows)} |")
        print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
