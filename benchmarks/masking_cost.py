"""What action masks cost, and that the unmasked path lost nothing (issue 31), on PPO CartPole-v1 with its
preset (8 envs x 128 steps, 10 epochs x 4 minibatches).

Four variants, each timed in its own process (seconds per PPO iteration: one collection and one update,
after a warm-up iteration), interleaved round by round so that all see the same load on a shared machine:

- ``before``: the policygrad of ``--before`` (a commit before masks existed), registered CartPole-v1
  (its native vector env, the fast acting paths);
- ``after``: this checkout, the same run: the unmasked path must be as fast;
- ``after, sync``: this checkout, CartPole through a Gymnasium SyncVectorEnv without masks (the
  baseline of the next line: a masked env is always stepped through its own Python env);
- ``after, sync + masks``: the same with an all-allowed ``info["action_mask"]``: the masked path
  (observation dicts, masks read, checked and stored, masked logits, no fused or NumPy acting).

Run: ``python benchmarks/masking_cost.py`` (a few minutes); writes ``benchmarks/results/masking_cost.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VARIANTS = {"before": "CartPole-v1", "after": "CartPole-v1", "after, sync": "masking_cost:plain_cartpole",
            "after, sync + masks": "masking_cost:masked_cartpole"}


def plain_cartpole():
    """CartPole-v1 as a plain Python env (a ``module:fn`` id: stepped through a SyncVectorEnv)."""
    import gymnasium as gym
    return gym.make("CartPole-v1")


def masked_cartpole():
    """CartPole-v1 whose infos carry an all-allowed ``action_mask`` (Gymnasium's convention)."""
    import gymnasium as gym
    import numpy as np

    class Masked(gym.Wrapper):
        def reset(self, **kwargs):
            obs, info = self.env.reset(**kwargs)
            return obs, {**info, "action_mask": np.ones(2, np.int8)}

        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, terminated, truncated, {**info, "action_mask": np.ones(2, np.int8)}

    return Masked(gym.make("CartPole-v1"))


def worker(env_id: str, iterations: int) -> None:
    import torch

    import policygrad as pg
    from policygrad.core.envs import make_vec_env
    from policygrad.core.networks import build_agent
    torch.set_num_threads(1)
    cfg = pg.make_config("ppo", env_id=env_id, progress=False, tensorboard=False)
    torch.manual_seed(0)
    envs = make_vec_env(env_id, cfg.num_envs, training=True)
    agent = build_agent(cfg, envs.single_observation_space, envs.single_action_space, True)
    learner = pg.ALGORITHMS["ppo"](cfg, envs, agent)
    learner.iterate()  # warm-up
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        learner.iterate()
        times.append(time.perf_counter() - start)
    print(json.dumps(times))


def export(commit: str) -> str:
    """The ``src`` folder of ``commit`` in a temporary directory."""
    out = tempfile.mkdtemp(prefix="policygrad_before_")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", out], input=archive.stdout, check=True)
    return str(Path(out) / "src")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="220f884", help="a commit of policygrad before action masks")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--worker", nargs=2, metavar=("ENV_ID", "ITERATIONS"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    sources = {"before": export(args.before), "after": str(ROOT / "src")}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, env_id in VARIANTS.items():
            src = sources["before" if name == "before" else "after"]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(HERE)]), "OMP_NUM_THREADS": "1"}
            proc = subprocess.run([sys.executable, __file__, "--worker", env_id, str(args.iterations)], env=env,
                                  capture_output=True, text=True, check=True)
            times[name] += json.loads(proc.stdout.strip().splitlines()[-1])
    median = {name: statistics.median(t) for name, t in times.items()}
    steps = 8 * 128
    lines = ["# What action masks cost (PPO CartPole-v1, its preset: 8 envs x 128 steps, 10 x 4 minibatches)", "",
             "Written by `python benchmarks/masking_cost.py`: seconds per PPO iteration (collection + update), "
             f"median of {args.rounds} rounds x {args.iterations} iterations, each variant in its own process, "
             "interleaved (a shared 2-core machine: the ratios matter, not the absolute times).", "",
             "| variant | s / iteration | steps/s | vs before | vs after, sync |", "|---|---|---|---|---|"]
    for name in VARIANTS:
        lines.append(f"| {name} | {median[name]:.3f} | {steps / median[name]:.0f} | "
                     f"{median[name] / median['before']:.2f}x | {median[name] / median['after, sync']:.2f}x |")
    lines += ["", f"before: policygrad at commit {args.before}; after: this checkout. Unmasked path: "
              f"{median['after'] / median['before']:.2f}x the time of before; the masked path: "
              f"{median['after, sync + masks'] / median['after, sync']:.2f}x the time of the same env unmasked.", ""]
    out = HERE / "results" / "masking_cost.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
