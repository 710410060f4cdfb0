"""PPO on HalfCheetah-v5 with RL Baselines3 Zoo's values: policygrad and Stable-Baselines3 on the same seeds.

    .venv/bin/python benchmarks/halfcheetah_seeds.py [--libs sb3 policygrad] [--seeds 1 2] [--steps 1000000]
                                                     [--workers 2] [--out benchmarks/halfcheetah_seeds.md]

The question it answers: when policygrad's preset (the zoo's values field for field) ends below the zoo's
published 5,819 (HalfCheetah-v3, one run), is that an implementation difference or the seed? So SB3 runs
the same values on the same environment version and seeds, and both are evaluated the same way: 20
deterministic episodes from the same start seeds, observations normalized with the frozen training
statistics. Each episode also records how much of it the cheetah spent upside down (|root pitch| > pi/2,
the known "runs on its back" local optimum), which explains an evaluation that is bimodal over episodes.

Each (library, seed) is a fresh single-threaded process; results are appended to a JSON-lines file beside
the Markdown after every run, and the Markdown is rewritten, so a crash loses only the runs in flight.
Needs the MuJoCo extra and Stable-Baselines3 (the bench extra).
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
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from continuous import SB3_HALFCHEETAH, commit  # noqa: E402  (the zoo's values, as the speed section uses them)

ENV_ID = "HalfCheetah-v5"
EVAL_EPISODES = 20
EVAL_SEED = 10_000  # policygrad's evaluation seeds: episode i starts from seed 10,000 + i


def evaluate(act, normalize) -> list[dict]:
    """20 deterministic episodes; ``act`` maps a normalized observation to an action."""
    import gymnasium as gym
    import numpy as np

    env = gym.make(ENV_ID)
    episodes = []
    for i in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        total, steps, flipped, done = 0.0, 0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(normalize(obs)))
            total += float(reward)
            steps += 1
            flipped += abs(float(obs[1])) > np.pi / 2  # obs[1]: the root's pitch angle
            done = terminated or truncated
        episodes.append({"return": total, "flipped_fraction": flipped / steps})
    return episodes


def train_sb3(seed: int, steps: int) -> list[dict]:
    import numpy as np
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env(ENV_ID, n_envs=1, seed=seed), gamma=SB3_HALFCHEETAH["gamma"])
    policy_kwargs = dict(log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU,
                         net_arch=dict(pi=[256, 256], vf=[256, 256]))
    model = PPO("MlpPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device="cpu", verbose=0, **SB3_HALFCHEETAH)
    model.learn(total_timesteps=steps)
    env.training = False  # frozen statistics, as SB3's and the zoo's evaluation use them

    def act(obs):
        return model.predict(obs, deterministic=True)[0]

    return evaluate(act, lambda obs: env.normalize_obs(np.asarray(obs, dtype=np.float32)))


def train_policygrad(seed: int, steps: int) -> list[dict]:
    import policygrad as pg

    with tempfile.TemporaryDirectory() as tmp:
        cfg = pg.make_config("ppo", env_id=ENV_ID, total_steps=steps, seed=seed, progress=False, tensorboard=False,
                             eval_episodes=EVAL_EPISODES)
        result = pg.train(cfg, run_dir=Path(tmp) / "run")
        agent = pg.load(Path(tmp) / "run")
        episodes = evaluate(lambda obs: agent.act(obs, deterministic=True), lambda obs: obs)  # act normalizes
    built_in = result.evaluation.returns  # the trainer's own evaluation of the same episodes, as a cross-check
    return [{**e, "trainer_return": r} for e, r in zip(episodes, built_in, strict=True)]


def work(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    episodes = (train_sb3 if spec["lib"] == "sb3" else train_policygrad)(spec["seed"], spec["steps"])
    return {"episodes": episodes, "wall_seconds": time.perf_counter() - start}


def spawn(spec: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]}
    return json.loads(lines[-1][len("RESULT "):])


def render(rows: list[dict], total: int, started: str, here: str) -> str:
    lines = [
        "# PPO on HalfCheetah-v5 with the zoo's values: policygrad and Stable-Baselines3, same seeds",
        "",
        f"Written by `benchmarks/halfcheetah_seeds.py`, commit {here}, started {started} UTC; {len(rows)} of "
        f"{total} runs done. Each run: {rows[0]['steps'] if rows else '?':,} steps, then {EVAL_EPISODES} "
        f"deterministic episodes from seeds {EVAL_SEED}..{EVAL_SEED + EVAL_EPISODES - 1}. The zoo's published "
        "score: 5,819 (HalfCheetah-v3, one run). 'flipped' = episodes that spent more than half their steps "
        "upside down (|root pitch| > pi/2).",
        "",
        "| library | seed | mean +- std | min | max | flipped episodes | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["lib"], r["seed"])):
        if "error" in row:
            lines.append(f"| {row['lib']} | {row['seed']} | failed: {row['error']} | | | | |")
            continue
        returns = [e["return"] for e in row["episodes"]]
        flipped = sum(e["flipped_fraction"] > 0.5 for e in row["episodes"])
        lines.append(f"| {row['lib']} | {row['seed']} | {statistics.mean(returns):.1f} +- {statistics.pstdev(returns):.1f}"
                     f" | {min(returns):.1f} | {max(returns):.1f} | {flipped} of {len(returns)} | "
                     f"{row['wall_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libs", nargs="+", default=["sb3", "policygrad"], choices=["sb3", "policygrad"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "halfcheetah_seeds.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(work(json.loads(args.worker))), flush=True)
        return
    log, here = args.out.with_suffix(".jsonl"), commit()
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    log.unlink(missing_ok=True)
    specs = [{"lib": lib, "seed": seed, "steps": args.steps} for seed in args.seeds for lib in args.libs]
    rows: list[dict] = []
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(spawn, spec): spec for spec in specs}
        for future in as_completed(futures):
            row = {**futures[future], **future.result()}
            rows.append(row)
            with log.open("a") as f:
                f.write(json.dumps({**row, "commit": here}) + "\n")
            args.out.write_text(render(rows, len(specs), started, here))
            print(f"{row['lib']} seed {row['seed']}: {row.get('error') or 'done'}", flush=True)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
