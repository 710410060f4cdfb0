"""PPO and A2C with RL Baselines3 Zoo's values on MuJoCo: policygrad and Stable-Baselines3 on the same seeds.

    .venv/bin/python benchmarks/sb3_same_seeds.py [--algo ppo|a2c] [--envs HalfCheetah-v5 Hopper-v5]
                                                  [--libs sb3 policygrad]
                                                  [--seeds 1 2] [--steps 1000000] [--workers 2]
                                                  [--out benchmarks/results/sb3_same_seeds_ALGO.md]

The question it answers: when policygrad's preset (the zoo's values field for field) ends below the zoo's
published score (v3 environments, one run each), is that an implementation difference or the seed and the
environment version? So SB3 runs the same values on the same v5 environment and seeds, and both are
evaluated the same way: 20 deterministic episodes from the same start seeds, observations normalized with
the frozen training statistics. Each episode records its return, length, the distance run (x position at
the end; a Hopper that only stands scores ~1 a step for 1,000 steps and runs nowhere) and the fraction of
steps spent upside down (|root pitch| > pi/2: HalfCheetah's known "runs on its back" optimum).

Each (environment, library, seed) is a fresh single-threaded process; results are appended to a JSON-lines
file beside the Markdown after every run, and the Markdown is rewritten, so a crash loses only the runs in
flight. Needs the MuJoCo extra and Stable-Baselines3 (the bench extra).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from continuous import SB3_HALFCHEETAH, commit, spawn  # noqa: E402  (the zoo's values, as the speed section uses them)

# The zoo's hyperparams/ppo.yml and a2c.yml (v3/v4 entries), as SB3 keywords; policygrad's presets
# translate the same values. PPO's MuJoCo entries use 256x256 ReLU networks without orthogonal init and a
# log std of -2; A2C's are SB3's defaults (64x64 tanh, orthogonal init, log std 0, 5-step returns, RMSprop).
ZOO = {
    "ppo": {
        "HalfCheetah-v5": dict(SB3_HALFCHEETAH),
        "Hopper-v5": dict(n_steps=512, batch_size=32, gamma=0.999, learning_rate=9.80828e-05,
                          ent_coef=0.00229519, clip_range=0.2, n_epochs=5, gae_lambda=0.99, max_grad_norm=0.7,
                          vf_coef=0.835671),
    },
    "a2c": {"HalfCheetah-v5": {}},
}
PUBLISHED = {("ppo", "HalfCheetah-v5"): 5819, ("ppo", "Hopper-v5"): 2410,  # the zoo's benchmark.md, v3, 1M steps,
             ("a2c", "HalfCheetah-v5"): 3041}  # one run each
EVAL_EPISODES = 20
EVAL_SEED = 10_000  # policygrad's evaluation seeds: episode i starts from seed 10,000 + i


def evaluate(env_id: str, act, normalize) -> list[dict]:
    """20 deterministic episodes; ``act`` maps a normalized observation to an action."""
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id)
    episodes = []
    for i in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        total, steps, flipped, done, info = 0.0, 0, 0, False, {}
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(normalize(obs)))
            total += float(reward)
            steps += 1
            flipped += abs(float(obs[1])) > np.pi / 2  # obs[1]: the root's (torso's) pitch angle
            done = terminated or truncated
        episodes.append({"return": total, "length": steps, "x": float(info.get("x_position", float("nan"))),
                         "flipped_fraction": flipped / steps})
    return episodes


def train_sb3(algo: str, env_id: str, seed: int, steps: int) -> list[dict]:
    import numpy as np
    import torch
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    values = ZOO[algo][env_id]
    # the zoo gives VecNormalize the algorithm's gamma (0.99, SB3's default, where the entry has none)
    env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed), gamma=values.get("gamma", 0.99))
    if algo == "ppo":
        policy_kwargs = dict(log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU,
                             net_arch=dict(pi=[256, 256], vf=[256, 256]))
        model = PPO("MlpPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device="cpu", verbose=0, **values)
    else:
        model = A2C("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **values)
    model.learn(total_timesteps=steps)
    env.training = False  # frozen statistics, as SB3's and the zoo's evaluation use them

    def act(obs):
        return model.predict(obs, deterministic=True)[0]

    return evaluate(env_id, act, lambda obs: env.normalize_obs(np.asarray(obs, dtype=np.float32)))


def train_policygrad(algo: str, env_id: str, seed: int, steps: int) -> list[dict]:
    import policygrad as pg

    with tempfile.TemporaryDirectory() as tmp:
        cfg = pg.make_config(algo, env_id=env_id, total_steps=steps, seed=seed, progress=False, tensorboard=False,
                             eval_episodes=EVAL_EPISODES)
        result = pg.train(cfg, run_dir=Path(tmp) / "run")
        agent = pg.load(Path(tmp) / "run")
        episodes = evaluate(env_id, lambda obs: agent.act(obs, deterministic=True), lambda obs: obs)  # act normalizes
    # The trainer's own evaluation, a cross-check of the level only: its 20 episodes run on 8 copies reset from
    # seeds 10,000-10,007, so episodes 9-20 start elsewhere than ``evaluate``'s (seed 10,000 + i each)
    built_in = result.evaluation.returns
    return [{**e, "trainer_return": r} for e, r in zip(episodes, built_in, strict=True)]


def work(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    train = train_sb3 if spec["lib"] == "sb3" else train_policygrad
    episodes = train(spec["algo"], spec["env_id"], spec["seed"], spec["steps"])
    return {"episodes": episodes, "wall_seconds": time.perf_counter() - start}


def render(algo: str, rows: list[dict], total: int, started: str, here: str, steps: int) -> str:
    lines = [
        f"# {algo.upper()} with the zoo's values on MuJoCo v5: policygrad and Stable-Baselines3, same seeds",
        "",
        f"Written by `benchmarks/sb3_same_seeds.py` at commit {here}, {started} UTC; the runs come from "
        f"{len({r['commit'] for r in rows}) or 1} invocation(s), each row names the commit it ran at; "
        f"{len(rows)} of {total} runs done. Each run: {steps:,} steps, then {EVAL_EPISODES} deterministic "
        f"episodes from seeds {EVAL_SEED}..{EVAL_SEED + EVAL_EPISODES - 1}. Published (the zoo, v3, one run): "
        + ", ".join(f"{env} {score:,}" for (a, env), score in PUBLISHED.items() if a == algo)
        + ". 'x' is the distance run by the end of an episode; 'upside down' counts the episodes that spent "
        "more than half their steps with |root pitch| > pi/2.",
        "",
        "| environment | library | seed | mean +- std | min | max | mean length | mean x | upside down | wall s "
        "| commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["env_id"], r["lib"], r["seed"])):
        if "error" in row:
            lines.append(f"| {row['env_id']} | {row['lib']} | {row['seed']} | failed: {row['error']} | | | | | | | "
                         f"{row['commit']} |")
            continue
        eps = row["episodes"]
        returns = [e["return"] for e in eps]
        flipped = sum(e["flipped_fraction"] > 0.5 for e in eps)
        lines.append(f"| {row['env_id']} | {row['lib']} | {row['seed']} | {statistics.mean(returns):.1f} +- "
                     f"{statistics.pstdev(returns):.1f} | {min(returns):.1f} | {max(returns):.1f} | "
                     f"{statistics.mean(e['length'] for e in eps):.0f} | {statistics.mean(e['x'] for e in eps):.1f} | "
                     f"{flipped} of {len(eps)} | {row['wall_seconds']:.0f} | {row['commit']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="ppo", choices=list(ZOO))
    parser.add_argument("--envs", nargs="+", help="default: every environment with zoo values for --algo")
    parser.add_argument("--libs", nargs="+", default=["sb3", "policygrad"], choices=["sb3", "policygrad"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/sb3_same_seeds_ALGO.md")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs recorded in OUT's .jsonl (SB3's do not depend on policygrad's commit) "
                             "and run only the others")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.envs = args.envs or list(ZOO[args.algo])
    args.out = args.out or HERE / "results" / f"sb3_same_seeds_{args.algo}.md"
    unknown = [env_id for env_id in args.envs if env_id not in ZOO[args.algo]]
    if unknown:
        parser.error(f"--envs {unknown}: {args.algo} has zoo values for {list(ZOO[args.algo])} only")
    if args.worker:
        print("RESULT " + json.dumps(work(json.loads(args.worker))), flush=True)
        return
    log, here = args.out.with_suffix(".jsonl"), commit()
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    rows: list[dict] = []
    if args.resume and log.exists():
        rows = [r for r in map(json.loads, log.read_text().splitlines()) if "error" not in r]
    elif log.exists():
        log.unlink()
    key = ("algo", "env_id", "lib", "seed", "steps")
    specs = [{"algo": args.algo, "env_id": env_id, "lib": lib, "seed": seed, "steps": args.steps}
             for env_id in args.envs for seed in args.seeds for lib in args.libs]
    specs = [s for s in specs if not any(all(r[k] == s[k] for k in key) for r in rows)]
    total = len(rows) + len(specs)
    args.out.write_text(render(args.algo, rows, total, started, here, args.steps))
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(spawn, spec, __file__): spec for spec in specs}
        for future in as_completed(futures):
            row = {**futures[future], **future.result(), "commit": here}
            rows.append(row)
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
            args.out.write_text(render(args.algo, rows, total, started, here, args.steps))
            print(f"{row['env_id']} {row['lib']} seed {row['seed']}: {row.get('error') or 'done'}", flush=True)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
