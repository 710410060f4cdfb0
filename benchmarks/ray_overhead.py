"""What running a study on Ray costs on one machine (issue 15): the same studies on the local backend
(2 worker processes) and on the Ray backend (a 2-node Ray cluster on this machine, one CPU per node, so
2 runs at a time too), side by side in one invocation.

- the real study: PPO on CartPole-v1, 3 learning rates x 4 seeds = 12 runs of 20k steps each,
  evaluated every 1k steps, periodic checkpoints every 4096 steps (they travel to the driver on Ray);
- the empty study: the same 12 runs of one PPO iteration (1024 steps), whose wall time is almost all
  overhead.

The overhead per run: each of the 2 slots holds 6 runs, so a run holds its slot T_study x 2 / 12
seconds, of which its training clock (``wall_seconds``) is the training proper; the rest (starting
and feeding it, its evaluations and plot, bringing its records back) is its non-training time, and
Ray's overhead per run is the difference of that time between the backends. Subtracting each run's
own training clock keeps the number steady when other jobs slow the machine down between studies.

Study wall times include connecting to Ray (the cluster is started once, before, and its start timed
apart) and the local backend's worker start; the report, written once per study either way, is left
out. The cluster binds to 127.0.0.2 only, with its own temporary directory; it is shut down at the end
(never `ray stop`). Numbers are from a shared 2-core machine: the load average is recorded.

    .venv/bin/python benchmarks/ray_overhead.py [--repeats 3] [--total-steps 10000]

Writes benchmarks/results/ray_overhead.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = 12


def setup_ray_env(base: Path) -> None:
    """Ray's files under ``base`` (short: socket paths), no usage stats, token authentication with a
    token of this benchmark's own (nothing written to ~/.ray)."""
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=str(base), RAY_AUTH_MODE="token",
                      RAY_AUTH_TOKEN=secrets.token_hex(16))
    (base / "ray").mkdir()


def one_study(backend, total_steps: int, out: Path, name: str) -> tuple[float, list[dict]]:
    from policygrad.studies import runner
    from policygrad.studies.spec import make_spec

    spec = make_spec("ppo", "CartPole-v1", {"learning_rate": [1e-3, 2.5e-3, 5e-3]}, seeds=4, total_steps=total_steps,
                     eval_every=min(1000, total_steps), fixed={"checkpoint_every": 4096}, name=name)
    # the report is the same for both: left out
    report, runner.write_report_or_say = runner.write_report_or_say, lambda study_dir, echo: None
    try:
        start = time.perf_counter()
        result = runner.run_study(spec, out, 2, backend=backend, echo=None)
        seconds = time.perf_counter() - start
    finally:
        runner.write_report_or_say = report
    if result.failed:
        raise SystemExit(f"{len(result.failed)} runs failed: {result.failed[0]['error']}")
    return seconds, result.results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--total-steps", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ray_overhead.md")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pgbench", dir="/tmp"))
    setup_ray_env(base)
    import ray
    import torch
    from ray.cluster_utils import Cluster

    from policygrad.studies.backends.local import LocalBackend
    from policygrad.studies.backends.ray_cluster import RayBackend

    load_before = os.getloadavg()
    start = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.2", "temp_dir": str(base / "ray"), "include_dashboard": False})
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.2")
    cluster.wait_for_nodes()
    cluster_start = time.perf_counter() - start
    times: dict[tuple[str, str], list[float]] = {}
    train_clock: dict[tuple[str, str], list[float]] = {}
    non_training: dict[tuple[str, str], list[float]] = {}  # per study: T x 2 / 12 - mean training clock
    connects: list[float] = []  # seconds for the driver to connect to the cluster
    finals: dict[str, list[str]] = {}
    try:
        order = [b for i in range(args.repeats) for b in (("local", "ray") if i % 2 == 0 else ("ray", "local"))]
        for k, which in enumerate(order):
            for study, steps in (("real", args.total_steps), ("empty", 1024)):
                backend = LocalBackend(echo=None) if which == "local" else RayBackend(cluster.address, echo=None)
                with backend:
                    connect = 0.0
                    if isinstance(backend, RayBackend):  # timed apart, and counted in the study's time
                        began = time.perf_counter()
                        backend.start()
                        connect = time.perf_counter() - began
                        connects.append(connect)
                    seconds, rows = one_study(backend, steps, base / f"{k}_{which}", f"{study}_{which}")
                    seconds += connect
                clock = [float(r["wall_seconds"]) for r in rows]
                times.setdefault((which, study), []).append(seconds)
                train_clock.setdefault((which, study), []).extend(clock)
                non_training.setdefault((which, study), []).append(seconds * 2 / RUNS - statistics.mean(clock))
                if study == "real":
                    finals[which] = [r["final_eval"] for r in rows]
                print(f"{which:5} {study:5}: {seconds:6.1f} s, training clock {statistics.mean(clock):.2f} s a run",
                      flush=True)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(base, ignore_errors=True)
    load_after = os.getloadavg()

    def med(which: str, study: str, data: dict = times) -> float:
        return statistics.median(data[(which, study)])

    overhead = {study: med("ray", study, non_training) - med("local", study, non_training)
                for study in ("real", "empty")}
    same = finals["local"] == finals["ray"]
    lines = [
        "# Studies on Ray: wall time against the local backend (issue 15)",
        "",
        f"Generated by `benchmarks/ray_overhead.py --repeats {args.repeats} --total-steps {args.total_steps}` on "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
        f"Ray {ray.__version__}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (a machine shared "
        "with other jobs: the study times move with its load, the non-training times much less).",
        "",
        f"Both backends run {RUNS} PPO CartPole-v1 runs (3 learning rates x 4 seeds), 2 at a time: the local backend "
        "in 2 worker processes, the Ray backend as Ray tasks on a 2-node cluster on this machine (1 CPU per node, "
        "bound to 127.0.0.2), periodic checkpoints every 4096 steps. Study wall time: from the call to the last row of "
        "results.csv (connecting to Ray and starting the local worker processes included, the report left out). "
        "Non-training time per run: study time x 2 slots / 12 runs, less the runs' mean training clock "
        f"(`wall_seconds`). Medians of {args.repeats} repeat(s), the backends' order alternating.",
        "",
        "| study | runs x steps | local: study | Ray: study | local: non-training a run | Ray: non-training a run |",
        "|---|---|---|---|---|---|",
    ]
    for study, steps in (("real", args.total_steps), ("empty", 1024)):
        lines.append(f"| {study} | {RUNS} x {steps} | {med('local', study):.1f} s | {med('ray', study):.1f} s | "
                     f"{med('local', study, non_training):.2f} s | {med('ray', study, non_training):.2f} s |")
    clock_local, clock_ray = (statistics.mean(train_clock[(w, "real")]) for w in ("local", "ray"))
    # How much the same study's non-training time per run moves from one repeat to the next, either backend
    spread = max(max(v) - min(v) for v in non_training.values())
    verdict = (f"within the repeat-to-repeat spread of the same study ({spread:.2f} s a run): not measurable here"
               if abs(overhead["real"]) <= spread else f"beyond the repeat-to-repeat spread ({spread:.2f} s a run)")
    lines += [
        "",
        f"- **Overhead per run on Ray: {overhead['real']:+.2f} s** (real study; {overhead['empty']:+.2f} s in the "
        f"empty one): the difference of non-training time per run, Ray minus local; {verdict}.",
        f"- Study wall time, real study: Ray / local = {med('ray', 'real') / med('local', 'real'):.2f}x.",
        f"- Connecting the driver to the cluster: {statistics.median(connects):.2f} s (median; in Ray's study times).",
        f"- Starting the 2-node cluster (once, not in the study times): {cluster_start:.1f} s.",
        f"- Training clock per run (mean, real study): local {clock_local:.2f} s, Ray {clock_ray:.2f} s.",
        f"- Final evaluations identical on both backends: {'yes' if same else 'NO'} (seeds come from the spec).",
        "- Raw study times (s): " + "; ".join(f"{w} {st}: {', '.join(f'{t:.1f}' for t in times[(w, st)])}"
                                            for w in ("local", "ray") for st in ("real", "empty")) + ".",
        "",
        "What Ray adds to a run: it is a task whose arguments (its config and, when resuming, its run directory) "
        "and messages (each periodic checkpoint, then the finished run directory, about 0.5 MB for these runs) go "
        "through Ray's object store, and the driver writes them into the study directory. What both backends pay "
        "alike: a new worker process imports torch and warms up before its first run, and every run is evaluated "
        "and plotted. On one machine Ray brings no speed, only the cluster to start; it pays when a study "
        "outgrows the machine's cores.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
