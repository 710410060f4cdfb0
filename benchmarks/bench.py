"""policygrad against Stable-Baselines3 on CartPole-v1: rollout throughput, training throughput with
identical hyperparameters, and wall-clock time to solve (issue 5).

    make bench                                   # = .venv/bin/python benchmarks/bench.py
    .venv/bin/python benchmarks/bench.py --quick # a smoke run of every section (a few minutes)

Needs the ``bench`` extra (``pip install -c constraints.txt -e '.[bench]'``: Stable-Baselines3).
Every measurement runs in a fresh subprocess of this script (so that each contender's peak memory is
its own and no import or thread setting leaks between them), and the contenders are alternated
(A B, B A, ...) so that drift in the machine's load hits them alike. One run writes every figure to
``benchmarks/results/RESULTS.md`` (``--quick``: ``RESULTS-quick.md``).

Both libraries run with one torch thread: on a small, shared CPU a second thread spin-waiting in
OpenMP made Stable-Baselines3 up to 10x slower in trials, a loss no fair comparison should count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV_ID = "CartPole-v1"
SOLVED = 475.0  # CartPole-v1's reward threshold
EVAL_EPISODES, EVAL_SEED = 20, 10_000

# Stable-Baselines3's tuned CartPole-v1 hyperparameters (RL Baselines3 Zoo, hyperparams/ppo.yml and
# a2c.yml); network 64x64 tanh, separate policy and value MLPs, orthogonal init (SB3's MlpPolicy).
SB3_PPO = dict(n_envs=8, n_timesteps=100_000, n_steps=32, batch_size=256, n_epochs=20, gae_lambda=0.8,
               gamma=0.98, ent_coef=0.0, learning_rate=1e-3, clip_range=0.2)  # both linear schedules
SB3_A2C = dict(n_envs=8, n_timesteps=500_000, ent_coef=0.0)  # SB3 defaults: n_steps 5, lr 7e-4, RMSprop
# The same numbers as policygrad fields (A2C: SB3's learning rate is constant, and its GAE with
# lambda 1 is the n-step return).
PG_SAME_AS_SB3 = {
    "ppo": dict(num_envs=8, num_steps=32, num_minibatches=1, update_epochs=20, gae_lambda=0.8, gamma=0.98,
                ent_coef=0.0, learning_rate=1e-3, anneal_lr=True, clip_coef=0.2, anneal_clip=True, vf_coef=0.5,
                max_grad_norm=0.5, norm_adv=True, optimizer="adam"),
    "a2c": dict(num_envs=8, num_steps=5, learning_rate=7e-4, anneal_lr=False, optimizer="rmsprop", gamma=0.99,
                advantage_estimator="nstep", ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, norm_adv=False),
}


# policygrad's fastest PPO configuration for CartPole-v1 (not the default preset, which keeps the
# 8 x 128 / 4-minibatch / 10-epoch values that also evaluate at 500 after 100k steps on every seed
# tried): the preset's values with half the rollout (8 x 64, 2 minibatches of 256) and 6 epochs, i.e.
# 24 gradient steps per 1,024 transitions instead of 40. Chosen on seeds 11-20, never on the benchmark's
# seeds 1-5 (time to solve by this file's solve worker, medians over 10 seeds): this config 1.35 s
# (9,216 steps, 4k-28k), the preset 2.03 s (13,312 steps, 6k-16k); also tried: 4 epochs 1.26 s but
# 14,336 steps (6k-32k), 8 epochs 2.29 s, one 512-row minibatch 1.97 s, 8 x 32 one minibatch 1.41 s,
# 16 x 32 1.76 s. The previous fast config (32 x 32, 10 whole-batch epochs, lr 3e-3) needed a median
# 33,792 steps on those seeds.
FAST_PPO = dict(num_envs=8, num_steps=64, num_minibatches=2, update_epochs=6, learning_rate=2.5e-3, anneal_lr=True,
                gamma=0.98, gae_lambda=0.9, ent_coef=0.0)


# -- helpers run inside the workers ----------------------------------------------------------------
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def warm_up_torch() -> None:
    """Pay torch's one-time lazy imports (the first optimizer imports torch._dynamo: seconds) before
    any clock starts, for every contender alike."""
    import torch

    torch.set_num_threads(1)
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.zeros(2)
    torch.optim.Adam([p]).step()
    torch.optim.RMSprop([p]).step()


class Evaluator:
    """The deterministic evaluation both libraries are judged by: the first episode of each of 20
    CartPole copies, from the same seeded starts every time; returns the mean return."""

    def __init__(self) -> None:
        import gymnasium as gym

        self.env = gym.make_vec(ENV_ID, num_envs=EVAL_EPISODES, vectorization_mode="vector_entry_point")

    def __call__(self, act) -> float:
        import numpy as np

        obs, _ = self.env.reset(seed=EVAL_SEED)
        total = np.zeros(EVAL_EPISODES)
        done = np.zeros(EVAL_EPISODES, dtype=bool)
        while not done.all():
            obs, reward, terminated, truncated, _ = self.env.step(act(obs))
            total += np.where(done, 0.0, reward)
            done |= terminated | truncated
        return float(total.mean())


def pg_actor(network):
    import torch

    return lambda obs: network.act(torch.as_tensor(obs), deterministic=True).numpy()


class PolicygradRun:
    """policygrad's own training loop (``trainer.synchronous_loop``: collection, update, CSV records,
    non-finite checks, periodic checkpoints) driven in chunks, so that it can be paused to evaluate."""

    def __init__(self, algo: str, run_dir: str, **fields) -> None:
        import policygrad as pg
        from policygrad.algos import algorithm
        from policygrad.core.envs import env_spaces
        from policygrad.core.networks import build_agent
        from policygrad.core.runtime import seed_everything
        from policygrad.run.logger import RunLogger
        from policygrad.run.trainer import Checkpoints, SynchronousRun

        cfg = pg.make_config(algo, env_id=ENV_ID, progress=False, tensorboard=False, device="cpu", **fields)
        self.cfg = cfg
        import torch

        torch.set_num_threads(cfg.torch_threads)
        seed_everything(cfg.seed)
        algo_cls = algorithm(algo)
        self.network = build_agent(cfg, *env_spaces(cfg.env_id), with_value=algo_cls.needs_value(cfg))
        self.run = SynchronousRun(cfg, algo_cls, self.network, torch.device("cpu"))
        self.logger = RunLogger(Path(run_dir), cfg.total_steps, tensorboard=False, progress=False)
        self.checkpoints = Checkpoints(Path(run_dir), cfg, self.network, 0)
        self.streak = 0

    @property
    def steps(self) -> int:
        return self.logger.global_step

    def chunk_config(self, until: int):
        """The config whose ``total_steps`` stops the loop at ``until`` (made outside any clock)."""
        return replace(self.cfg, total_steps=min(until, self.cfg.total_steps))

    def advance(self, chunk_cfg) -> None:
        from policygrad.run.trainer import synchronous_loop

        self.streak = synchronous_loop(chunk_cfg, self.run, self.logger, self.checkpoints, self.streak)

    def close(self) -> None:
        self.logger.close()
        self.run.close()


def sb3_model(algo: str, seed: int, **overrides):
    import torch
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.env_util import make_vec_env

    from policygrad.comparison.methods import quiet_sb3_logger

    torch.set_num_threads(1)
    if algo == "ppo":
        hp = {**SB3_PPO, **overrides}
        env = make_vec_env(ENV_ID, n_envs=hp["n_envs"], seed=seed)
        lr, clip = hp["learning_rate"], hp["clip_range"]
        model = PPO("MlpPolicy", env, n_steps=hp["n_steps"], batch_size=hp["batch_size"], n_epochs=hp["n_epochs"],
                    gae_lambda=hp["gae_lambda"], gamma=hp["gamma"], ent_coef=hp["ent_coef"],
                    learning_rate=lambda progress: progress * lr, clip_range=lambda progress: progress * clip,
                    seed=seed, device="cpu", verbose=0)
    else:
        hp = {**SB3_A2C, **overrides}
        env = make_vec_env(ENV_ID, n_envs=hp["n_envs"], seed=seed)
        model = A2C("MlpPolicy", env, ent_coef=hp["ent_coef"], seed=seed, device="cpu", verbose=0)
    quiet_sb3_logger(model)
    return model


# -- worker: rollout throughput ------------------------------------------------------------------------
def work_rollout(spec: dict) -> dict:
    """Steps per second of (a) the raw vector env stepped with random actions drawn in advance, (b) the
    same with ``action_space.sample()`` each step, (c) policygrad's fixed-horizon collector (a 64x64
    actor-critic acting, its log-probs and values stored). Alternated within each size."""
    import numpy as np
    import torch

    import policygrad as pg
    from policygrad.algos.rollout import FixedHorizonCollector
    from policygrad.core.envs import env_spaces, make_gym_vector_env, make_vec_env
    from policygrad.core.networks import build_agent

    torch.set_num_threads(1)
    duration, chunk = spec["seconds"], 64
    out: dict = {}

    def rate(step_chunk, steps_per_chunk) -> float:
        step_chunk()  # warm
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < duration or done == 0:
            step_chunk()
            done += steps_per_chunk
        return done / elapsed

    for n in spec["sizes"]:
        raw_env = make_gym_vector_env(ENV_ID, n)
        raw_env.reset(seed=0)
        raw_env.action_space.seed(0)
        actions = np.random.default_rng(0).integers(0, 2, (chunk, n))

        def raw_fixed(env=raw_env, actions=actions):
            for a in actions:
                env.step(a)

        def raw_sampled(env=raw_env):
            for _ in range(chunk):
                env.step(env.action_space.sample())

        cfg = pg.make_config("ppo", env_id=ENV_ID, preset="none", num_envs=n, device="cpu")
        net = build_agent(cfg, *env_spaces(ENV_ID), with_value=True)
        collector = FixedHorizonCollector(make_vec_env(ENV_ID, n), net, num_steps=chunk, seed=0)
        contenders = {"raw": (raw_fixed, chunk * n), "raw_sample": (raw_sampled, chunk * n),
                      "policygrad": (collector.collect, chunk * n)}
        rows = {k: [] for k in contenders}
        for rep in range(spec["reps"]):
            order = list(contenders) if rep % 2 == 0 else list(contenders)[::-1]
            for name in order:
                rows[name].append(rate(*contenders[name]))
        out[str(n)] = rows
    return out


# -- worker: training throughput -----------------------------------------------------------------------
def work_train(spec: dict) -> dict:
    """Environment steps per second of a whole training loop with SB3's tuned hyperparameters, and
    the process's memory (peak RSS, and RSS just before training started)."""
    warm_up_torch()
    algo, lib, steps = spec["algo"], spec["lib"], spec["steps"]
    if lib == "sb3":
        model = sb3_model(algo, spec["seed"])
        before = rss_mb()
        start = time.perf_counter()
        model.learn(total_timesteps=steps)
        seconds = time.perf_counter() - start
        done = model.num_timesteps
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run = PolicygradRun(algo, tmp, preset="none", seed=spec["seed"], total_steps=steps,
                                **PG_SAME_AS_SB3[algo])
            chunk = run.chunk_config(steps)
            before = rss_mb()
            start = time.perf_counter()
            run.advance(chunk)
            seconds = time.perf_counter() - start
            done = run.steps
            run.close()
    return {"sps": done / seconds, "steps": done, "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": before}


# -- worker: time to solve -----------------------------------------------------------------------------
def work_solve(spec: dict) -> dict:
    """Wall seconds from constructing the trainer until the deterministic 20-episode evaluation first
    averages >= 475, evaluating at the first iteration boundary past every ``eval_every`` steps. The
    evaluations' own time is excluded (the clock is paused), for every contender alike."""
    warm_up_torch()
    evaluator = Evaluator()
    every, seed = spec["eval_every"], spec["seed"]
    result = {"solved": False, "seconds": None, "steps": None, "evals": 0, "eval_seconds": 0.0}
    if spec["lib"] == "sb3":
        from stable_baselines3.common.callbacks import BaseCallback

        class SolveCallback(BaseCallback):
            def _on_training_start(self) -> None:
                self.next = every

            def _on_rollout_start(self) -> None:  # after the previous iteration's update
                if self.num_timesteps < self.next:
                    return
                pause = time.perf_counter()
                mean = evaluator(lambda obs: self.model.predict(obs, deterministic=True)[0])
                result["evals"] += 1
                if mean >= SOLVED and not result["solved"]:
                    result.update(solved=True, steps=self.num_timesteps,
                                  seconds=pause - start - result["eval_seconds"], mean=mean)
                result["eval_seconds"] += time.perf_counter() - pause
                while self.next <= self.num_timesteps:
                    self.next += every

            def _on_step(self) -> bool:
                return not result["solved"]

        start = time.perf_counter()
        model = sb3_model("ppo", seed)
        model.learn(total_timesteps=SB3_PPO["n_timesteps"], callback=SolveCallback())
        result["budget"] = SB3_PPO["n_timesteps"]
        return result
    with tempfile.TemporaryDirectory() as tmp:
        budget = spec["budget"]
        start = time.perf_counter()
        run = PolicygradRun(spec["algo"], tmp, preset="auto", seed=seed, total_steps=budget, **spec.get("fields", {}))
        act = pg_actor(run.network)
        next_eval = every
        chunk = run.chunk_config(next_eval)
        while run.steps < budget:
            run.advance(chunk)
            pause = time.perf_counter()
            mean = evaluator(act)
            result["evals"] += 1
            if mean >= SOLVED:
                result.update(solved=True, steps=run.steps, seconds=pause - start - result["eval_seconds"],
                              mean=mean)
                break
            while next_eval <= run.steps:
                next_eval += every
            chunk = run.chunk_config(next_eval)
            result["eval_seconds"] += time.perf_counter() - pause
        run.close()
        result["budget"] = budget
        result["preset"] = {k: v for k, v in run.cfg.to_dict().items()
                            if k in ("num_envs", "num_steps", "num_minibatches", "update_epochs", "learning_rate",
                                     "episodes_per_update", "gae_lambda", "gamma")}
    return result


WORKERS = {"rollout": work_rollout, "train": work_train, "solve": work_solve}


# -- the orchestrator ------------------------------------------------------------------------------------
def spawn(spec: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {spec} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def fmt(values: list[float], digits: int = 0) -> str:
    lo, med, hi = stats(values)
    return f"{med:,.{digits}f} | {lo:,.{digits}f} | {hi:,.{digits}f}"


def cell(values: list[float], digits: int = 0) -> str:
    """median (min to max), in one table cell"""
    lo, med, hi = stats(values)
    return f"{med:,.{digits}f} ({lo:,.{digits}f} to {hi:,.{digits}f})"


def machine() -> list[str]:
    import gymnasium
    import numpy
    import stable_baselines3
    import torch

    import policygrad

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "src"], capture_output=True,
                           text=True, cwd=HERE).stdout.strip()
    return [
        f"- Machine: {cpu}, {os.cpu_count()} logical CPUs, {mem:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}",
        f"- Versions: Python {platform.python_version()}, torch {torch.__version__}, gymnasium "
        f"{gymnasium.__version__}, NumPy {numpy.__version__}, Stable-Baselines3 {stable_baselines3.__version__}, "
        f"policygrad {policygrad.__version__} (commit {commit}{', src modified' if dirty else ''})",
        f"- Load average (1 min) at start and end: {{load_start}} / {{load_end}} on {os.cpu_count()} CPUs "
        "(other work shares this machine: compare figures within one run only)",
    ]


def run_rollout(args, report: list[str]) -> dict:
    sizes = [1, 8, 64, 256]
    spec = {"section": "rollout", "sizes": sizes, "seconds": 0.3 if args.quick else 1.0, "reps": 2 if args.quick else 4}
    rounds = [spawn(spec) for _ in range(1 if args.quick else 2)]
    print("rollout done", flush=True)
    report += [
        "## Rollout throughput",
        "",
        "Environment steps per second (all copies) of CartPole-v1's vector env (Gymnasium's native",
        "`vector_entry_point` implementation, NEXT_STEP autoreset): **raw** with random actions drawn in",
        "advance (the limit), **raw, sample()** drawing them with `action_space.sample()` each step, and",
        "**policygrad**: `FixedHorizonCollector` with the default 64x64 actor-critic, which samples every",
        "action from the policy and stores observations, actions, log-probs, values, rewards and flags in",
        "its (T, N) buffers (64 steps per collection). One torch thread. Median (min to max) over "
        f"{len(rounds) * spec['reps']} alternated measurements of {spec['seconds']} s each, in "
        f"{len(rounds)} processes; the ratio is the median of the ratios of neighbouring measurements.",
        "",
        "| N envs | raw | raw, sample() | policygrad | policygrad / raw |",
        "|---|---|---|---|---|",
    ]
    ratios = {}
    for n in sizes:
        rows = {k: sum((r[str(n)][k] for r in rounds), []) for k in ("raw", "raw_sample", "policygrad")}
        pairs = [p / r for p, r in zip(rows["policygrad"], rows["raw"])]
        report.append(f"| {n} | {cell(rows['raw'])} | {cell(rows['raw_sample'])} | {cell(rows['policygrad'])} | "
                      f"**{statistics.median(pairs):.0%}** ({min(pairs):.0%} to {max(pairs):.0%}) |")
        ratios[n] = statistics.median(pairs)
    report.append("")
    return ratios


def run_train(args, report: list[str]) -> dict:
    steps = {"ppo": 10_240 if args.quick else 40_960, "a2c": 20_000 if args.quick else 80_000}
    rounds = 1 if args.quick else 3
    contenders = [(algo, lib) for algo in ("ppo", "a2c") for lib in ("policygrad", "sb3")]
    results: dict = {c: [] for c in contenders}
    for r in range(rounds):
        for algo in ("ppo", "a2c"):
            libs = ["policygrad", "sb3"] if r % 2 == 0 else ["sb3", "policygrad"]
            for lib in libs:
                results[(algo, lib)].append(spawn({"section": "train", "algo": algo, "lib": lib,
                                                   "steps": steps[algo], "seed": r + 1}))
                print(f"train {algo} {lib} round {r}: {results[(algo, lib)][-1]['sps']:.0f} steps/s", flush=True)
    report += [
        "## Training throughput with identical hyperparameters",
        "",
        "Each library's own training loop (policygrad: `trainer.synchronous_loop`, as `train()` runs it,",
        "CSV records on, TensorBoard and progress bar off; SB3: `model.learn`, `verbose=0`) on CartPole-v1",
        "with SB3's tuned hyperparameters (RL Baselines3 Zoo) in both: PPO 8 envs x 32 steps, one",
        "minibatch of 256, 20 epochs, gamma 0.98, GAE lambda 0.8, lr 1e-3 and clip 0.2 both linearly annealed,",
        "no entropy bonus; A2C 8 envs x 5 steps, RMSprop lr 7e-4, gamma 0.99, n-step returns, no entropy",
        "bonus; both 64x64 tanh, separate policy and value networks, max grad norm 0.5. Model and",
        f"environment construction is outside the clock. PPO {steps['ppo']:,} steps, A2C {steps['a2c']:,};",
        f"{rounds} rounds, alternated, each run in its own process. Environments: policygrad steps",
        "Gymnasium's vectorised CartPole, SB3 its `DummyVecEnv` of 8 `CartPole-v1` (each library's",
        "standard way).",
        "",
        "| algorithm | library | steps/s: median | min | max | peak RSS MiB (median) | RSS at start MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = {}
    for algo in ("ppo", "a2c"):
        for lib in ("policygrad", "sb3"):
            rows = results[(algo, lib)]
            report.append(f"| {algo.upper()} | {lib} | {fmt([x['sps'] for x in rows])} | "
                          f"{statistics.median(x['peak_rss_mb'] for x in rows):.0f} | "
                          f"{statistics.median(x['rss_before_mb'] for x in rows):.0f} |")
        pg_sps = [x["sps"] for x in results[(algo, "policygrad")]]
        sb_sps = [x["sps"] for x in results[(algo, "sb3")]]
        pairs = [p / s for p, s in zip(pg_sps, sb_sps)]
        ratios[algo] = statistics.median(pg_sps) / statistics.median(sb_sps)
        report.append(f"| {algo.upper()} | **policygrad / SB3** | **{ratios[algo]:.2f}x** (ratio of medians; "
                      f"per round {min(pairs):.2f}x to {max(pairs):.2f}x) | | | | |")
    report.append("")
    return ratios


def run_solve(args, report: list[str]) -> dict:
    seeds = [1, 2] if args.quick else [1, 2, 3, 4, 5]
    every = 2_000
    contenders = [("policygrad PPO (fast config)", {"lib": "policygrad", "algo": "ppo", "budget": 100_000,
                                                     "fields": FAST_PPO}),
                  ("SB3 PPO (zoo)", {"lib": "sb3", "algo": "ppo"}),
                  ("policygrad PPO (preset)", {"lib": "policygrad", "algo": "ppo", "budget": 100_000}),
                  ("policygrad REINFORCE (preset)", {"lib": "policygrad", "algo": "reinforce", "budget": 300_000}),
                  ("policygrad A2C (preset)", {"lib": "policygrad", "algo": "a2c", "budget": 500_000})]
    if args.quick:
        contenders = contenders[:2]
    results: dict = {name: [] for name, _ in contenders}
    for i, seed in enumerate(seeds):
        order = contenders if i % 2 == 0 else contenders[::-1]
        for name, spec in order:
            res = spawn({"section": "solve", "seed": seed, "eval_every": every, **spec})
            results[name].append(res)
            print(f"solve {name} seed {seed}: {res['seconds']} s at {res['steps']} steps", flush=True)
    report += [
        "## Time to solve CartPole-v1",
        "",
        f"Wall seconds from constructing the trainer (network, environments) until a deterministic "
        f"{EVAL_EPISODES}-episode evaluation first averages >= {SOLVED:.0f}. Every contender is evaluated by the",
        f"same code on the same {EVAL_EPISODES} seeded starts, at the first iteration boundary past every "
        f"{every:,} environment steps;",
        "**evaluation time is excluded** (the clock is paused while evaluating), for all alike. A run that",
        "never reaches 475 within its budget (the preset's `total_steps`, which also sets its learning-rate",
        "schedule) counts as unsolved and is left out of the median. Each seed is its own process; seeds",
        "alternate the order of the contenders. policygrad's **fast config** (`FAST_PPO` in bench.py: 8",
        "envs x 64 steps, 2 minibatches, 6 epochs, chosen on seeds 11-20) is its fastest PPO for CartPole;",
        "the **preset** (8 x 128, 4 minibatches, 10 epochs) is what `policygrad train ppo` uses by default.",
        "",
        "| contender | solved | seconds: median | min | max | steps: median | min | max | hyperparameters |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    medians = {}
    for name, _ in contenders:
        rows = results[name]
        solved = [r for r in rows if r["solved"]]
        preset = rows[0].get("preset") or {"zoo": "n_envs 8, n_steps 32, batch 256, 20 epochs, lr lin 1e-3"}
        hp = ", ".join(f"{k} {v}" for k, v in preset.items())
        if solved:
            medians[name] = statistics.median(r["seconds"] for r in solved)
            report.append(f"| {name} | {len(solved)}/{len(rows)} | {fmt([r['seconds'] for r in solved], 2)} | "
                          f"{fmt([r['steps'] for r in solved])} | {hp} |")
        else:
            report.append(f"| {name} | 0/{len(rows)} | - | - | - | - | - | - | {hp} |")
    sb3 = medians.get("SB3 PPO (zoo)")
    for name in ("policygrad PPO (fast config)", "policygrad PPO (preset)"):
        if medians.get(name) and sb3:
            report += ["", f"Ratio of medians, SB3 PPO / {name}: **{sb3 / medians[name]:.1f}x** "
                       f"(policygrad's median is {medians[name] / sb3:.0%} of SB3's)."]
    report.append("")
    return medians


def targets(rollout: dict, train: dict, solve: dict) -> list[str]:
    """The issue's targets against this run's figures (what each gap comes from: PROFILE.md)."""
    rows = []
    if train:
        for algo in ("ppo", "a2c"):
            rows.append((f"training steps/s with SB3's hyperparameters, {algo.upper()}", ">= 2x SB3",
                         f"{train[algo]:.3f}x", train[algo] >= 2))
    sb3 = solve.get("SB3 PPO (zoo)")
    for name, label in (("policygrad PPO (fast config)", "fast config"), ("policygrad PPO (preset)", "preset")):
        ppo = solve.get(name)
        if ppo and sb3:
            rows.append((f"time to solve, PPO ({label}): median", "<= 1/5 of SB3 PPO's",
                         f"{ppo / sb3:.2f} of SB3's ({ppo:.2f} s vs {sb3:.2f} s)", ppo <= sb3 / 5))
    if 64 in rollout:
        rows.append(("rollout throughput at N = 64", ">= 50% of raw", f"{rollout[64]:.0%}", rollout[64] >= 0.5))
    if not rows:
        return []
    return ["## Targets (issue 5)", "", "| target | wanted | this run | met |", "|---|---|---|---|",
            *[f"| {name} | {want} | {got} | {'yes' if ok else '**no**'} |" for name, want, got, ok in rows], "",
            "Where the time goes, and why a target is missed: [PROFILE.md](PROFILE.md).", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run of every section")
    parser.add_argument("--sections", default="rollout,train,solve", help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/RESULTS.md (--quick: "
                        "RESULTS-quick.md)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        print("RESULT " + json.dumps(WORKERS[spec["section"]](spec)), flush=True)
        return
    out = args.out or HERE / "results" / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    sections = args.sections.split(",")
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    report: list[str] = []
    rollout = run_rollout(args, report) if "rollout" in sections else {}
    train = run_train(args, report) if "train" in sections else {}
    solve = run_solve(args, report) if "solve" in sections else {}
    report += targets(rollout, train, solve)
    header = [
        "# Benchmarks: policygrad and Stable-Baselines3 on CartPole-v1",
        "",
        f"Written by `{' '.join(['.venv/bin/python', 'benchmarks/bench.py', *sys.argv[1:]])}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {(time.perf_counter() - started) / 60:.1f} "
        "minutes (one run; every figure below comes from it).",
        "",
        *[line.format(load_start=f"{load_start:.1f}", load_end=f"{os.getloadavg()[0]:.1f}") for line in machine()],
        "",
    ]
    out.write_text("\n".join(header + report))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
