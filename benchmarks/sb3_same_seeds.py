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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchtools import commit, spawn  # noqa: E402


@dataclass(frozen=True)
class ZooSetting:
    """One entry of RL Baselines3 Zoo's hyperparams/ALGO.yml, as data: what SB3 is given, and what
    :func:`zoo_as_policygrad` translates into policygrad's config fields."""

    kwargs: dict[str, Any]  # the algorithm's keywords with constant values (PPO(...) / A2C(...))
    n_envs: int = 1
    normalize: bool = True  # VecNormalize on observations and rewards (both clipped at 10)
    policy: dict[str, Any] = field(default_factory=dict)  # policy_kwargs: log_std_init, ortho_init,
    # activation ("relu" | "tanh"), net_arch (one list: the same for policy and value)
    linear_lr: bool = False  # the zoo's "lin_" learning rate: decayed linearly to 0 over the run
    entry: str = ""  # the zoo's entry these values come from, where it is another environment's


# The zoo's PPO MuJoCo entries (HalfCheetah, Hopper) share this network: 256x256 ReLU, no orthogonal init,
# log std -2. Walker2d's and LunarLanderContinuous's keep SB3's default network.
_PPO_MUJOCO_NET = dict(log_std_init=-2, ortho_init=False, activation="relu", net_arch=[256, 256])

# The zoo's hyperparams/ppo.yml and a2c.yml (v3/v4 entries; LunarLanderContinuous-v2's), as SB3 keywords;
# policygrad's presets translate the same values (the translation rules: run/presets/ppo.yaml's comment and
# zoo_as_policygrad below). A2C's MuJoCo entry is SB3's defaults (64x64 tanh, orthogonal init, log std 0,
# 5-step returns, RMSprop) with normalization.
ZOO: dict[str, dict[str, ZooSetting]] = {
    "ppo": {
        "HalfCheetah-v5": ZooSetting(
            dict(n_steps=512, batch_size=64, gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762,
                 clip_range=0.1, n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096),
            policy=_PPO_MUJOCO_NET),
        "Hopper-v5": ZooSetting(
            dict(n_steps=512, batch_size=32, gamma=0.999, learning_rate=9.80828e-05, ent_coef=0.00229519,
                 clip_range=0.2, n_epochs=5, gae_lambda=0.99, max_grad_norm=0.7, vf_coef=0.835671),
            policy=_PPO_MUJOCO_NET),
        "Walker2d-v5": ZooSetting(
            dict(n_steps=512, batch_size=32, gamma=0.99, learning_rate=5.05041e-05, ent_coef=0.000585045,
                 clip_range=0.1, n_epochs=20, gae_lambda=0.95, max_grad_norm=1.0, vf_coef=0.871923)),
        "LunarLanderContinuous-v3": ZooSetting(
            dict(n_steps=1024, batch_size=64, gamma=0.999, gae_lambda=0.98, n_epochs=4, ent_coef=0.01),
            n_envs=16, normalize=False),
    },
    "a2c": {
        "HalfCheetah-v5": ZooSetting({}),
        "Pendulum-v1": ZooSetting(
            dict(n_steps=8, gamma=0.9, gae_lambda=0.9, ent_coef=0.0, max_grad_norm=0.5, vf_coef=0.4,
                 learning_rate=7e-4, normalize_advantage=False, use_sde=True),
            n_envs=8, policy=dict(log_std_init=-2, ortho_init=False), linear_lr=True),
    },
}
# Entries of the zoo written for other environments, whose values a preset took because they measured better
# on the v5 environment than the zoo's entry for it (run/presets/ALGO.yaml says by how much). A2C on
# HalfCheetah-v5: the zoo's HalfCheetahBulletEnv-v0 entry (PyBullet's HalfCheetah), gSDE, without its
# TimeFeatureWrapper.
ZOO_OTHER_ENTRIES: dict[str, dict[str, ZooSetting]] = {
    "a2c": {
        "HalfCheetah-v5": ZooSetting(
            dict(n_steps=8, gamma=0.99, gae_lambda=0.9, ent_coef=0.0, max_grad_norm=0.5, vf_coef=0.4,
                 learning_rate=9.6e-4, normalize_advantage=False, use_sde=True),
            n_envs=4, policy=dict(log_std_init=-2, ortho_init=False), linear_lr=True,
            entry="HalfCheetahBulletEnv-v0"),
    },
}
# --envs' default (the comparison the results files hold); continuous.py runs SB3 on every entry a preset matches
DEFAULT_ENVS = {"ppo": ["HalfCheetah-v5", "Hopper-v5"], "a2c": ["HalfCheetah-v5"]}

# SB3 2.x's defaults, for the keywords an entry leaves out
SB3_DEFAULTS = {
    "ppo": dict(n_steps=2048, batch_size=64, n_epochs=10, gamma=0.99, gae_lambda=0.95, clip_range=0.2, ent_coef=0.0,
                vf_coef=0.5, max_grad_norm=0.5, learning_rate=3e-4, normalize_advantage=True, use_sde=False,
                sde_sample_freq=-1),
    "a2c": dict(n_steps=5, gamma=0.99, gae_lambda=1.0, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                learning_rate=7e-4, use_rms_prop=True, normalize_advantage=False, use_sde=False, sde_sample_freq=-1),
}
SB3_POLICY_DEFAULTS = dict(log_std_init=0.0, ortho_init=True, activation="tanh", net_arch=[64, 64])


def zoo_as_policygrad(algo: str, env_id: str, setting: ZooSetting | None = None) -> dict[str, Any]:
    """The zoo's entry for (algo, env_id) as policygrad config fields: SB3's batch_size B of a rollout of
    N = n_envs * n_steps rows is num_minibatches = N / B; SB3's value loss is the mean squared error where
    ours is half of it, so vf_coef doubles; normalize is normalize_obs + reward_norm scale; ortho_init=False
    is init torch-default; a constant learning rate is anneal_lr false; A2C's gae_lambda 1 is n-step returns.
    ``setting``: another entry's values (ZOO_OTHER_ENTRIES) instead of the environment's own."""
    setting = setting or ZOO[algo][env_id]
    v = {**SB3_DEFAULTS[algo], **setting.kwargs}
    net = {**SB3_POLICY_DEFAULTS, **setting.policy}
    out: dict[str, Any] = dict(
        num_envs=setting.n_envs, num_steps=v["n_steps"], gamma=v["gamma"], learning_rate=v["learning_rate"],
        anneal_lr=setting.linear_lr, ent_coef=v["ent_coef"], vf_coef=2 * v["vf_coef"],
        max_grad_norm=v["max_grad_norm"], norm_adv=v["normalize_advantage"], normalize_obs=setting.normalize,
        reward_norm="scale" if setting.normalize else "none", hidden_sizes=tuple(net["net_arch"]),
        activation=net["activation"], init="orthogonal" if net["ortho_init"] else "torch-default",
        log_std_init=float(net["log_std_init"]))
    if v["use_sde"]:  # (without it: the Gaussian head, whichever way the preset names it)
        out.update(distribution="gsde", sde_sample_freq=v["sde_sample_freq"])
    if algo == "ppo":
        out.update(num_minibatches=setting.n_envs * v["n_steps"] // v["batch_size"], update_epochs=v["n_epochs"],
                   clip_coef=v["clip_range"], advantage_estimator="gae", gae_lambda=v["gae_lambda"])
    else:
        out["optimizer"] = "rmsprop" if v["use_rms_prop"] else "adam"
        out.update(advantage_estimator="nstep") if v["gae_lambda"] == 1.0 else out.update(
            advantage_estimator="gae", gae_lambda=v["gae_lambda"])
    return out


PUBLISHED = {("ppo", "HalfCheetah-v5"): 5819, ("ppo", "Hopper-v5"): 2410,  # the zoo's benchmark.md, v3, 1M steps,
             ("a2c", "HalfCheetah-v5"): 3041}  # one run each
EVAL_EPISODES = 20
EVAL_SEED = 10_000  # this script's evaluation: episode i starts from seed 10,000 + i
# policygrad's evaluation plays min(episodes, 8) copies (algos/rollout.py, evaluation_episodes)
POLICYGRAD_EVAL_COPIES = 8

Act = Callable[[Any], Any]


def play(env, act: Act, normalize: Act, reset_seed: int | None) -> dict:
    """One deterministic episode of ``env`` from ``env.reset(seed=reset_seed)``: its return, length, distance
    run and the fraction of steps upside down. ``act`` maps a normalized observation to an action."""
    import numpy as np

    obs, _ = env.reset(seed=reset_seed)
    total, steps, flipped, done, info = 0.0, 0, 0, False, {}
    while not done:
        obs, reward, terminated, truncated, info = env.step(act(normalize(obs)))
        total += float(reward)
        steps += 1
        flipped += abs(float(obs[1])) > np.pi / 2  # obs[1]: the root's (torso's) pitch angle (MuJoCo)
        done = terminated or truncated
    return {"return": total, "length": steps, "x": float(info.get("x_position", float("nan"))),
            "flipped_fraction": flipped / steps}


def evaluate(env_id: str, act: Act, normalize: Act) -> list[dict]:
    """20 deterministic episodes, episode i reset from seed EVAL_SEED + i (this script's own evaluation)."""
    import gymnasium as gym

    env = gym.make(env_id)
    return [play(env, act, normalize, EVAL_SEED + i) for i in range(EVAL_EPISODES)]


def evaluate_as_policygrad(env_id: str, act: Act, normalize: Act, seed: int,
                           episodes: int = EVAL_EPISODES) -> list[dict]:
    """The episodes ``policygrad.evaluate(agent, episodes, seed=seed)`` plays, for any policy: policygrad runs
    ``min(episodes, 8)`` copies, copy i reset from ``seed + i`` and then reset unseeded by the vector env's
    autoreset, each copy playing its share of the episodes (split_quota). A deterministic policy's episodes
    do not depend on which copies run beside it, so playing the copies one after the other gives the same
    episodes (tests/test_benchmarks_continuous.py checks this against policygrad's own evaluation)."""
    import gymnasium as gym

    from policygrad.algos.rollout import split_quota

    played = []
    for i, share in enumerate(split_quota(episodes, min(episodes, POLICYGRAD_EVAL_COPIES))):
        env = gym.make(env_id)
        played += [play(env, act, normalize, seed + i if k == 0 else None) for k in range(share)]
        env.close()
    return played


def build_sb3(algo: str, env_id: str, seed: int, setting: ZooSetting | None = None):
    """SB3's model with the zoo's values for (algo, env_id) (or ``setting``'s), on its own (VecNormalize'd where
    the zoo normalizes) training environments seeded with ``seed``."""
    import torch
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from policygrad.comparison.methods import quiet_sb3_logger

    setting = setting or ZOO[algo][env_id]
    values = dict(setting.kwargs)
    env = make_vec_env(env_id, n_envs=setting.n_envs, seed=seed)
    if setting.normalize:  # the zoo gives VecNormalize the algorithm's gamma (SB3's default where the entry has none)
        env = VecNormalize(env, gamma=values.get("gamma", SB3_DEFAULTS[algo]["gamma"]))
    if setting.linear_lr:
        rate = values["learning_rate"]
        values["learning_rate"] = lambda progress_remaining: progress_remaining * rate
    policy_kwargs: dict[str, Any] = {k: v for k, v in setting.policy.items() if k not in ("activation", "net_arch")}
    if "activation" in setting.policy:
        policy_kwargs["activation_fn"] = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[setting.policy["activation"]]
    if "net_arch" in setting.policy:
        policy_kwargs["net_arch"] = dict(pi=list(setting.policy["net_arch"]), vf=list(setting.policy["net_arch"]))
    cls = PPO if algo == "ppo" else A2C
    model = cls("MlpPolicy", env, policy_kwargs=policy_kwargs or None, seed=seed, device="cpu", verbose=0, **values)
    quiet_sb3_logger(model)
    return model


def train_sb3(algo: str, env_id: str, seed: int, steps: int, evaluator=evaluate,
              setting: ZooSetting | None = None) -> dict:
    """Train SB3 with the zoo's values, then ``evaluator(env_id, act, normalize)`` with the training's
    normalization statistics frozen. Returns the episodes, the steps taken and the training seconds."""
    import numpy as np
    from stable_baselines3.common.vec_env import VecNormalize

    model = build_sb3(algo, env_id, seed, setting)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - start
    env = model.get_env()
    if isinstance(env, VecNormalize):
        env.training = False  # frozen statistics, as SB3's and the zoo's evaluation use them

    def normalize(obs):
        obs = np.asarray(obs, dtype=np.float32)
        return env.normalize_obs(obs) if isinstance(env, VecNormalize) else obs

    def act(obs):
        return model.predict(obs, deterministic=True)[0]

    return {"episodes": evaluator(env_id, act, normalize), "global_step": int(model.num_timesteps),
            "train_seconds": seconds}


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
    if spec["lib"] == "sb3":
        episodes = train_sb3(spec["algo"], spec["env_id"], spec["seed"], spec["steps"])["episodes"]
    else:
        episodes = train_policygrad(spec["algo"], spec["env_id"], spec["seed"], spec["steps"])
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
    args.envs = args.envs or list(DEFAULT_ENVS[args.algo])
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
