"""Did a change make training slower? policygrad's own training loop at two commits, side by side.

    .venv/bin/python benchmarks/layout_regression.py --old b9f1e03 [--new HEAD] [--rounds 5]

Checks out each commit into a temporary git worktree and measures, in a fresh subprocess per
measurement with that tree's ``src`` first on the path, the steps per second of
``synchronous_loop`` (collection, update, CSV records; TensorBoard and the progress bar off; model
and environments built outside the clock) with the training-throughput settings of
``benchmarks/bench.py`` (SB3's tuned CartPole-v1 values for PPO and A2C). Old and new alternate
(A B, B A, ...) so that drift in the machine's load hits both alike; the figure to read is the
median of the ratios of neighbouring measurements. On a shared 2-core machine the clock is noisy, so
the script also counts the Python function calls of 30 iterations of each algorithm under cProfile
(after 5 warm-up iterations): a deterministic measure of the work each commit does per iteration.
Writes ``benchmarks/results/layout_regression.md``.
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
sys.path.insert(0, str(HERE))
from bench import PG_SAME_AS_SB3  # noqa: E402  (the settings every throughput figure uses)

STEPS = {"ppo": 40_960, "a2c": 80_000}

# Runs inside the measured tree: the loop's internals moved between layouts, so look for both.
WORKER = r"""
import json, sys, tempfile, time
from pathlib import Path
import torch
import policygrad as pg
from policygrad.algos import algorithm
try:
    from policygrad.run.trainer import Checkpoints, SynchronousRun, synchronous_loop
    from policygrad.run.logger import RunLogger
    from policygrad.core.envs import env_spaces
    from policygrad.core.networks import build_agent
    from policygrad.core.runtime import seed_everything
except ImportError:
    from policygrad.trainer import Checkpoints, SynchronousRun, synchronous_loop
    from policygrad.logger import RunLogger
    from policygrad.envs import env_spaces
    from policygrad.networks import build_agent
    from policygrad.runtime import seed_everything
algo, steps, fields, mode = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
cfg = pg.make_config(algo, env_id="CartPole-v1", total_steps=steps, progress=False, tensorboard=False,
                     device="cpu", seed=1, checkpoint_every=0, torch_threads=1, **fields)
torch.set_num_threads(1)
seed_everything(cfg.seed)
algo_cls = algorithm(algo)
network = build_agent(cfg, *env_spaces(cfg.env_id), with_value=algo_cls.needs_value(cfg))
if mode == "calls":
    import cProfile, pstats
    run = SynchronousRun(cfg, algo_cls, network, torch.device("cpu"))
    for _ in range(5):
        run.algo.iterate()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(30):
        run.algo.iterate()
    profile.disable()
    print(json.dumps({"calls": pstats.Stats(profile).total_calls}))
    sys.exit(0)
with tempfile.TemporaryDirectory() as run_dir:
    run = SynchronousRun(cfg, algo_cls, network, torch.device("cpu"))
    logger = RunLogger(Path(run_dir), cfg.total_steps, tensorboard=False, progress=False)
    checkpoints = Checkpoints(Path(run_dir), cfg, network, 0)
    tick = time.perf_counter()
    synchronous_loop(cfg, run, logger, checkpoints, 0)
    seconds = time.perf_counter() - tick
    logger.close()
    run.close()
print(json.dumps({"sps": logger.global_step / seconds}))
"""


def measure(tree: Path, algo: str, mode: str = "sps") -> float:
    """Steps per second of the loop (``sps``), or Python calls of 30 iterations (``calls``)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", WORKER, algo, str(STEPS[algo]), json.dumps(PG_SAME_AS_SB3[algo]),
                          mode], env=env, capture_output=True, text=True, check=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])[mode]


def worktree(rev: str, parent: Path) -> Path:
    path = parent / rev.replace("/", "_")
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), rev], cwd=ROOT, check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the commit to compare against")
    parser.add_argument("--new", default="HEAD")
    parser.add_argument("--rounds", type=int, default=5, help="measurements of each commit per algorithm")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "layout_regression.md")
    args = parser.parse_args()
    revs = {name: subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.strip() for name, rev in (("old", args.old), ("new", args.new))}
    started, load_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trees = {name: worktree(rev, Path(tmp)) for name, rev in revs.items()}
        try:
            for algo in ("ppo", "a2c"):
                sps: dict[str, list[float]] = {"old": [], "new": []}
                ratios = []
                for round_ in range(args.rounds):
                    order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
                    for name in order:
                        sps[name].append(measure(trees[name], algo))
                    ratios.append(sps["new"][-1] / sps["old"][-1])
                    print(f"{algo} round {round_ + 1}: old {sps['old'][-1]:,.0f}  new {sps['new'][-1]:,.0f} steps/s",
                          flush=True)
                calls = {name: measure(trees[name], algo, "calls") for name in ("old", "new")}
                rows.append((algo, sps, ratios, calls))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    lines = [
        "# Training throughput at two commits, side by side",
        "",
        f"Written by `benchmarks/layout_regression.py --old {args.old} --new {args.new}` on {started}: "
        f"old = {revs['old']}, new = {revs['new']}; {args.rounds} rounds per algorithm, alternated, each "
        "measurement a fresh process with one torch thread. `synchronous_loop` on CartPole-v1 with "
        f"bench.py's SB3 settings (PPO {STEPS['ppo']:,} steps, A2C {STEPS['a2c']:,}). Load average (1 min) "
        f"at start and end: {load_start:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.",
        "",
        "| algorithm | old steps/s (median, min-max) | new steps/s (median, min-max) "
        "| new / old (median of neighbours, min-max) | Python calls in 30 iterations: old, new (new / old) |",
        "|---|---|---|---|---|",
    ]
    for algo, sps, ratios, calls in rows:
        cell = {k: f"{statistics.median(v):,.0f} ({min(v):,.0f}-{max(v):,.0f})" for k, v in sps.items()}
        lines.append(f"| {algo.upper()} | {cell['old']} | {cell['new']} | **{statistics.median(ratios):.2f}** "
                     f"({min(ratios):.2f}-{max(ratios):.2f}) | {calls['old']:,.0f}, {calls['new']:,.0f} "
                     f"(**{calls['new'] / calls['old']:.3f}**) |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
