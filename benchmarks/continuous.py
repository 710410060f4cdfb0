"""Continuous control with the presets: scores after 1M steps against published PPO/A2C, and speed vs SB3.

    .venv/bin/python benchmarks/continuous.py [--workers 2] [--only ppo:HalfCheetah-v5 ...] [--quick]
                                              [--skip-speed | --skip-learning] [--resume]
                                              [--out benchmarks/results/CONTINUOUS.md]

Two sections, written to one Markdown file:

1. Speed: PPO on HalfCheetah-v5 with RL Baselines3 Zoo's tuned hyperparameters, policygrad (its preset,
   which is those values field for field) and Stable-Baselines3 with the same values, alternated in
   fresh single-threaded processes, one at a time, before any learning run starts.
2. Learning: every (algorithm, environment) of LEARNING, each seed a fresh process with the
   environment's preset and its budget (1M steps; 100k for PPO on Pendulum), run ``--workers`` at a time.
   Each row: the deterministic evaluation (20 episodes) after training, the published number beside it
   and the target, wall seconds and steps per second (training clock).

The Markdown is rewritten after every finished run, and each result is also appended to a JSON-lines
file beside it, so a crash loses only the runs in flight; ``--resume`` keeps the results recorded at the
same commit and runs the rest. Needs the MuJoCo extra (``pip install -e '.[mujoco]'``) and, for the
speed section, Stable-Baselines3 (the bench extra).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Job:
    algo: str
    env_id: str
    steps: int
    seeds: tuple[int, ...]
    reference: float | None  # published score (RL Baselines3 Zoo benchmark.md, 1M steps, one run)
    target: float | None  # what each seed must reach (issue 16)
    source: str = "zoo"


LEARNING = (  # longest first, so that two workers finish close together
    Job("ppo", "HalfCheetah-v5", 1_000_000, (1, 2), 5819, 5800),
    Job("ppo", "Walker2d-v5", 1_000_000, (1, 2), 3479, 3400),
    Job("ppo", "Hopper-v5", 1_000_000, (1, 2), 2410, 2400),
    Job("a2c", "HalfCheetah-v5", 1_000_000, (1, 2), 3041, None),
    Job("ppo", "Swimmer-v5", 1_000_000, (1, 2), 282, None),
    Job("ppo", "LunarLanderContinuous-v3", 1_000_000, (1, 2), 271, 250),
    Job("a2c", "Pendulum-v1", 1_000_000, (1, 2), -163, -250),
    Job("ppo", "Pendulum-v1", 100_000, (1, 2, 3, 4, 5), None, -200),
)

# SB3 with the zoo's HalfCheetah values (hyperparams/ppo.yml), as policygrad's preset has them
SB3_HALFCHEETAH = dict(n_steps=512, batch_size=64, gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762,
                       clip_range=0.1, n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096)


# -- workers (each in a fresh process) -----------------------------------------------------------------
def work_learn(spec: dict) -> dict:
    import policygrad as pg

    with tempfile.TemporaryDirectory() as tmp:
        cfg = pg.make_config(spec["algo"], env_id=spec["env_id"], total_steps=spec["steps"], seed=spec["seed"],
                             progress=False, tensorboard=False, eval_episodes=20)
        start = time.perf_counter()
        result = pg.train(cfg, run_dir=Path(tmp) / "run")
        wall = time.perf_counter() - start
    ev = result.evaluation
    return {"mean": ev.mean, "std": ev.std, "global_step": result.global_step, "wall_seconds": wall,
            "train_seconds": result.seconds, "sps": result.global_step / result.seconds}


def work_speed(spec: dict) -> dict:
    """Environment steps per second of PPO's training loop on HalfCheetah-v5 (the learn/train call only)."""
    import torch

    torch.set_num_threads(1)
    steps, seed = spec["steps"], spec["seed"]
    if spec["lib"] == "sb3":
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import VecNormalize

        env = VecNormalize(make_vec_env("HalfCheetah-v5", n_envs=1, seed=seed), gamma=SB3_HALFCHEETAH["gamma"])
        policy_kwargs = dict(log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU,
                             net_arch=dict(pi=[256, 256], vf=[256, 256]))
        model = PPO("MlpPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device="cpu", verbose=0,
                    **SB3_HALFCHEETAH)
        start = time.perf_counter()
        model.learn(total_timesteps=steps)
        seconds = time.perf_counter() - start
        return {"sps": model.num_timesteps / seconds, "steps": model.num_timesteps}
    import policygrad as pg

    with tempfile.TemporaryDirectory() as tmp:
        cfg = pg.make_config("ppo", env_id="HalfCheetah-v5", total_steps=steps, seed=seed, progress=False,
                             tensorboard=False, eval_episodes=1, checkpoint_every=0)
        result = pg.train(cfg, run_dir=Path(tmp) / "run")
    return {"sps": result.global_step / result.seconds, "steps": result.global_step}


def spawn(spec: dict, script: str | Path = __file__) -> dict:
    """Run ``script --worker SPEC`` in a fresh process; its last ``RESULT {json}`` line, or the error."""
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]}
    return json.loads(lines[-1][len("RESULT "):])


# -- driver ---------------------------------------------------------------------------------------------
def commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", ":/src"], capture_output=True, text=True,
                           cwd=HERE).stdout.strip()
    return proc.stdout.strip() + ("+dirty" if dirty else "")


def run_speed(steps: int, rounds: int) -> dict:
    results: dict[str, list[float]] = {"policygrad": [], "sb3": []}
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    for r in range(rounds):
        for lib in (("policygrad", "sb3") if r % 2 == 0 else ("sb3", "policygrad")):
            out = spawn({"kind": "speed", "lib": lib, "steps": steps, "seed": r + 1})
            if "error" in out:
                raise RuntimeError(f"speed run of {lib} failed: {out['error']}")
            results[lib].append(out["sps"])
            print(f"speed {lib} round {r + 1}: {out['sps']:.0f} steps/s", flush=True)
    return {"steps": steps, "rounds": rounds, "load": [load_before, os.getloadavg()[0]], **results}


def learning_specs(only: list[str], quick: bool) -> list[dict]:
    specs = []
    for job in LEARNING:
        if only and f"{job.algo}:{job.env_id}" not in only:
            continue
        for seed in job.seeds:
            specs.append({"kind": "learn", "algo": job.algo, "env_id": job.env_id, "seed": seed,
                          "steps": 2048 if quick else job.steps})
    return specs


def job_of(spec: dict) -> Job:
    return next(j for j in LEARNING if (j.algo, j.env_id) == (spec["algo"], spec["env_id"]))


def fmt_sps(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({', '.join(f'{v:.0f}' for v in values)})"


def render(args, speed: dict | None, done: list[dict], total: int, started: str) -> str:
    import torch

    lines = ["# Continuous control: policygrad's presets at the published budgets", ""]
    status = "complete" if len(done) == total else f"partial: {len(done)} of {total} runs finished"
    command = f"`.venv/bin/python benchmarks/continuous.py {' '.join(sys.argv[1:])}`".replace(" `", "`")
    lines += [f"Command: {command} ({status}).",
              f"Commit {commit()}, started {started} UTC, on {platform.machine()} with {os.cpu_count()} cores, "
              f"torch {torch.__version__} (1 thread per process), CPU. Scores: deterministic evaluation over 20 "
              "episodes after training. Reference: RL Baselines3 Zoo's benchmark (one run at the same budget, "
              "v3/v4 environments where we run v5). Seconds: wall time of the whole run (training, "
              "checkpoints, evaluation); steps/s: the training clock.", ""]
    if speed:
        pg_med, sb_med = statistics.median(speed["policygrad"]), statistics.median(speed["sb3"])
        lines += ["## Speed: PPO on HalfCheetah-v5 with the zoo's hyperparameters", "",
                  f"{speed['steps']:,} steps per run, {speed['rounds']} rounds alternating the order, each run a "
                  f"fresh single-threaded process, one at a time (load average {speed['load'][0]:.1f} before, "
                  f"{speed['load'][1]:.1f} after): 512-step rollouts of one environment, "
                  "20 epochs of 64-row minibatches, separate 256x256 ReLU networks, observation and reward "
                  "normalization.", "",
                  "| library | steps/s: median (each round) |", "|---|---|",
                  f"| policygrad | {fmt_sps(speed['policygrad'])} |",
                  f"| Stable-Baselines3 | {fmt_sps(speed['sb3'])} |", "",
                  f"Ratio of medians, policygrad / SB3: **{pg_med / sb_med:.2f}x** (target >= 1.5x: "
                  f"{'met' if pg_med / sb_med >= 1.5 else 'missed'}).", ""]
    lines += ["## Learning", "",
              "| algorithm | environment | seed | env steps | eval mean +- std | reference | target | "
              "seconds | steps/s |", "|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(done, key=lambda r: (LEARNING.index(job_of(r)), r["seed"])):
        job = job_of(row)
        ref = "" if job.reference is None else f"{job.reference:g}"
        if "error" in row:
            lines.append(f"| {job.algo} | {job.env_id} | {row['seed']} | failed: {row['error']} | | {ref} | | | |")
            continue
        target = ""
        if job.target is not None:
            gap = row["mean"] - job.target
            target = f">= {job.target:g}: " + ("met" if gap >= 0 else f"**missed by {-gap:.0f}**")
        lines.append(f"| {job.algo} | {job.env_id} | {row['seed']} | {row['global_step']:,} | "
                     f"{row['mean']:.1f} +- {row['std']:.1f} | {ref} | {target} | {row['wall_seconds']:.0f} | "
                     f"{row['sps']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="learning runs at a time (default: %(default)s)")
    parser.add_argument("--only", nargs="+", default=[], help="ALGO:ENV_ID pairs to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="2,048 steps per run: a smoke test of the script")
    parser.add_argument("--skip-speed", action="store_true", help="leave out the speed section")
    parser.add_argument("--skip-learning", action="store_true", help="only the speed section")
    parser.add_argument("--speed-steps", type=int, default=20_480)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--resume", action="store_true", help="keep results recorded at this commit")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "CONTINUOUS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        result = work_learn(spec) if spec["kind"] == "learn" else work_speed(spec)
        print("RESULT " + json.dumps(result), flush=True)
        return
    unknown = [o for o in args.only if o not in {f"{j.algo}:{j.env_id}" for j in LEARNING}]
    if unknown:
        parser.error(f"--only {unknown}: expected ALGO:ENV_ID among {[f'{j.algo}:{j.env_id}' for j in LEARNING]}")
    log = args.out.with_suffix(".jsonl")
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    here = commit()
    done: list[dict] = []
    speed = None
    if args.resume and log.exists():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if record.get("commit") == here and record["kind"] == "learn":
                done.append(record)
            elif record.get("commit") == here and record["kind"] == "speed":
                speed = record
    elif log.exists():
        log.unlink()
    specs = [] if args.skip_learning else [s for s in learning_specs(args.only, args.quick)
             if not any((d["algo"], d["env_id"], d["seed"]) == (s["algo"], s["env_id"], s["seed"]) for d in done)]
    total = len(done) + len(specs)

    def record(entry: dict) -> None:
        with log.open("a") as f:
            f.write(json.dumps({**entry, "commit": here}) + "\n")

    if not args.skip_speed and speed is None:
        speed = {"kind": "speed", **run_speed(2048 if args.quick else args.speed_steps, args.speed_rounds)}
        record(speed)
    args.out.write_text(render(args, speed, done, total, started))
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(spawn, spec): spec for spec in specs}
        for future in as_completed(futures):
            entry = {**futures[future], **future.result()}
            done.append(entry)
            record(entry)
            args.out.write_text(render(args, speed, done, total, started))
            summary = entry.get("error") or f"{entry['mean']:.1f} in {entry['wall_seconds']:.0f} s"
            print(f"{entry['algo']} {entry['env_id']} seed {entry['seed']}: {summary}", flush=True)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
