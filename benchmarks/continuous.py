"""Continuous control with the presets: scores after 1M steps against the published ones, SB3 on the same seeds,
and speed vs SB3.

    .venv/bin/python benchmarks/continuous.py [--workers 2] [--only ppo:HalfCheetah-v5 ...] [--quick] [--no-sb3]
                                              [--skip-speed | --skip-learning] [--resume]
                                              [--out benchmarks/results/CONTINUOUS.md]

Two sections, written to one Markdown file:

1. Speed: PPO on HalfCheetah-v5 with RL Baselines3 Zoo's tuned hyperparameters, policygrad (its preset,
   which is those values field for field) and Stable-Baselines3 with the same values, alternated in
   fresh single-threaded processes, one at a time, before any learning run starts.
2. Learning: every (algorithm, environment) of LEARNING on seeds 1, 2, 3 (PPO on Pendulum: seeds 1-5 at
   100k steps), each seed a fresh process with the environment's preset and its budget, run ``--workers``
   at a time. Where the preset is RL Baselines3 Zoo's setting (its values equal sb3_same_seeds.ZOO's entry,
   translated), Stable-Baselines3 runs the same values on the same seeds, its rows right under policygrad's
   (``--no-sb3`` leaves them out). Every run is scored the same way: 20 deterministic episodes on
   evaluation seed 12345 (policygrad's evaluation; SB3's policy plays the very same episode starts, with its
   normalization statistics frozen). A summary per (algorithm, environment, library) gives the mean over
   seeds, the worst seed, the target (issue 32) and the gap where it is missed, and the wall time per seed;
   the reference says where it comes from (the zoo's single run, or CleanRL's seeds for a CleanRL preset).
   Where both libraries ran a row, a last table says whether the seeds tell a gap between them (Welch).

The Markdown is rewritten after every finished run, and each result is also appended to a JSON-lines
file beside it (with its library), so a crash loses only the runs in flight; ``--resume`` keeps the
results recorded with the same library code (src/ outside the presets: benchtools.code_version) and the same
setting of their row (its preset's values, or the zoo's values SB3 runs), and runs the rest: a preset
changed since reruns its own row only. Each row names the commit it ran at. Needs the MuJoCo extra
(``pip install -e '.[mujoco]'``), Box2D for LunarLanderContinuous and, for SB3's rows and the speed
section, Stable-Baselines3 (the bench extra).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchtools import code_version, commit, digest, spawn  # noqa: E402
from sb3_same_seeds import (  # noqa: E402
    ZOO,
    ZOO_OTHER_ENTRIES,
    ZooSetting,
    build_sb3,
    evaluate_as_policygrad,
    train_sb3,
    zoo_as_policygrad,
)

EVAL_SEED = 12345  # the evaluation seed of issue 32's numbers and of the candidate sweeps
EVAL_EPISODES = 20
LIBRARIES = ("policygrad", "sb3")


@dataclass(frozen=True)
class Target:
    """What a row must reach (issue 32; issue 16 for the Pendulum rows): the mean over seeds, every seed."""

    mean: float | None = None
    each: float | None = None

    def describe(self) -> str:
        parts = ([f"mean >= {self.mean:,.0f}"] if self.mean is not None else []) + (
            [f"every seed >= {self.each:,.0f}"] if self.each is not None else [])
        return ", ".join(parts)

    def gaps(self, scores: list[float]) -> list[str]:
        """What is missed, each with its gap; empty when met."""
        missed = []
        if self.mean is not None and statistics.mean(scores) < self.mean:
            missed.append(f"mean by {self.mean - statistics.mean(scores):,.1f}")
        if self.each is not None and min(scores) < self.each:
            below = sum(s < self.each for s in scores)
            missed.append(f"{below} seed{'s' if below > 1 else ''} below {self.each:,.0f}, "
                          f"the worst by {self.each - min(scores):,.1f}")
        return missed


@dataclass(frozen=True)
class Reference:
    """A published score for a setting: where it comes from and what it is."""

    source: str  # whose setting it measures: zoo | cleanrl
    score: float
    note: str  # who ran it, on which environment version, how many seeds
    spread: float | None = None  # +- over its seeds, where it reports one

    def describe(self) -> str:
        spread = "" if self.spread is None else f" +- {self.spread:,.0f}"
        return f"{self.score:,.0f}{spread} ({self.note})"


@dataclass(frozen=True)
class Job:
    algo: str
    env_id: str
    steps: int
    seeds: tuple[int, ...]
    target: Target | None

    @property
    def key(self) -> str:
        return f"{self.algo}:{self.env_id}"

    @property
    def source(self) -> str:
        """Whose setting the shipped preset is (zoo | cleanrl | own | none), read from the preset file."""
        return preset_source(self.algo, self.env_id)


SEEDS = (1, 2, 3)
LEARNING = (  # longest first, so that two workers finish close together
    Job("ppo", "HalfCheetah-v5", 1_000_000, SEEDS, Target(mean=5300, each=4500)),
    Job("ppo", "Walker2d-v5", 1_000_000, SEEDS, Target(each=3400)),
    Job("ppo", "Hopper-v5", 1_000_000, SEEDS, Target(mean=3200, each=2500)),
    Job("a2c", "HalfCheetah-v5", 1_000_000, SEEDS, None),
    Job("ppo", "Swimmer-v5", 1_000_000, SEEDS, None),
    Job("ppo", "LunarLanderContinuous-v3", 1_000_000, SEEDS, Target(each=250)),
    Job("a2c", "Pendulum-v1", 1_000_000, SEEDS, Target(each=-250)),
    Job("ppo", "Pendulum-v1", 100_000, (1, 2, 3, 4, 5), Target(each=-200)),
)

ZOO_NOTE = "RL Baselines3 Zoo's benchmark, {}, 1M steps, one run"
REFERENCES = {
    ("ppo", "HalfCheetah-v5"): [Reference("zoo", 5819, ZOO_NOTE.format("v3"))],
    ("ppo", "Walker2d-v5"): [Reference("zoo", 3479, ZOO_NOTE.format("v3"))],
    ("ppo", "Hopper-v5"): [Reference("zoo", 2410, ZOO_NOTE.format("v3")),
                           Reference("cleanrl", 2383, "CleanRL's ppo_continuous_action.py, Hopper-v4, 1M steps, "
                                     "3 seeds", spread=272)],
    ("a2c", "HalfCheetah-v5"): [Reference("zoo", 3041, ZOO_NOTE.format("v3"))],
    ("ppo", "Swimmer-v5"): [Reference("zoo", 282, ZOO_NOTE.format("v3"))],
    ("ppo", "LunarLanderContinuous-v3"): [Reference("zoo", 271, ZOO_NOTE.format("v2"))],
    ("a2c", "Pendulum-v1"): [Reference("zoo", -163, ZOO_NOTE.format("v1"))],
}

# CleanRL's ppo_continuous_action.py with its plain defaults, as policygrad fields (issue 32's flags)
CLEANRL_PPO: dict[str, Any] = dict(
    num_envs=1, num_steps=2048, learning_rate=3e-4, anneal_lr=True, gamma=0.99, gae_lambda=0.95, num_minibatches=32,
    update_epochs=10, norm_adv=True, clip_coef=0.2, clip_vloss=True, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
    hidden_sizes=(64, 64), activation="tanh", init="orthogonal", log_std_init=0.0, normalize_obs=True,
    reward_norm="scale", distribution="gaussian")


def same(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.isclose(value, wanted, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(wanted, (list, tuple)):
        return isinstance(value, (list, tuple)) and tuple(value) == tuple(wanted)
    return value == wanted


def zoo_settings(algo: str, env_id: str) -> dict[str, ZooSetting]:
    """The zoo's settings a preset for (algo, env_id) may carry, by source: ``zoo`` (the environment's own
    entry, sb3_same_seeds.ZOO) and ``zoo:ENTRY`` (another environment's entry, ZOO_OTHER_ENTRIES)."""
    own = {"zoo": ZOO[algo][env_id]} if env_id in ZOO.get(algo, {}) else {}
    other = ZOO_OTHER_ENTRIES.get(algo, {}).get(env_id)
    return {**own, **({f"zoo:{other.entry}": other} if other is not None else {})}


def source_of(config: Any) -> str:
    """Whose setting ``config`` carries: ``zoo`` when it has the zoo's values for its algorithm and environment
    (translated) in every field the zoo sets, ``zoo:ENTRY`` when it has those of another environment's entry,
    ``cleanrl`` when it has CleanRL's PPO defaults, ``own`` otherwise (values chosen here)."""
    def has(values: dict[str, Any]) -> bool:
        return all(same(getattr(config, name), value) for name, value in values.items())

    for source, zoo in zoo_settings(config.algo, config.env_id).items():
        if has(zoo_as_policygrad(config.algo, config.env_id, zoo)):
            return source
    if config.algo == "ppo" and has(CLEANRL_PPO):
        return "cleanrl"
    return "own"


def is_zoo(source: str) -> bool:
    """Whether a preset source is one of the zoo's settings (so SB3 runs it too)."""
    return source == "zoo" or source.startswith("zoo:")


@functools.cache
def preset_source(algo: str, env_id: str) -> str:
    """Whose setting the shipped preset for (algo, env_id) is, read from run/presets/ALGO.yaml through the
    config it makes (:func:`source_of`); ``none`` without a preset."""
    import policygrad as pg

    config = pg.make_config(algo, env_id=env_id)
    return "none" if config.preset == "none" else source_of(config)


def reference_for(algo: str, env_id: str, source: str) -> str:
    """The published score of the preset's own setting, or the zoo's for another setting, said as such."""
    refs = REFERENCES.get((algo, env_id), [])
    own = next((r for r in refs if r.source == source), None)
    if own is not None:
        return own.describe()
    return "; ".join(f"{r.describe()}, for {r.source}'s setting, not this preset" for r in refs)


# -- workers (each in a fresh process) -----------------------------------------------------------------
def work_learn(spec: dict) -> dict:
    """One policygrad run with the preset, scored by its own final evaluation on EVAL_SEED."""
    import policygrad as pg

    with tempfile.TemporaryDirectory() as tmp:
        cfg = pg.make_config(spec["algo"], env_id=spec["env_id"], total_steps=spec["steps"], seed=spec["seed"],
                             progress=False, tensorboard=False, eval_episodes=EVAL_EPISODES, eval_seed=EVAL_SEED)
        start = time.perf_counter()
        result = pg.train(cfg, run_dir=Path(tmp) / "run")
        wall = time.perf_counter() - start
    ev = result.evaluation
    return {"mean": ev.mean, "std": ev.std, "returns": list(ev.returns), "global_step": result.global_step,
            "wall_seconds": wall, "train_seconds": result.seconds, "sps": result.global_step / result.seconds}


def work_sb3(spec: dict) -> dict:
    """One SB3 run with the zoo's values, playing the episodes policygrad's evaluation plays on EVAL_SEED."""
    import torch

    torch.set_num_threads(1)

    def evaluator(env_id, act, normalize):
        return evaluate_as_policygrad(env_id, act, normalize, seed=EVAL_SEED, episodes=EVAL_EPISODES)

    start = time.perf_counter()
    zoo = zoo_settings(spec["algo"], spec["env_id"])[spec.get("source", "zoo")]
    out = train_sb3(spec["algo"], spec["env_id"], spec["seed"], spec["steps"], evaluator=evaluator, setting=zoo)
    wall = time.perf_counter() - start
    returns = [e["return"] for e in out["episodes"]]
    return {"mean": statistics.mean(returns), "std": statistics.pstdev(returns), "returns": returns,
            "global_step": out["global_step"], "wall_seconds": wall, "train_seconds": out["train_seconds"],
            "sps": out["global_step"] / out["train_seconds"]}


def work_speed(spec: dict) -> dict:
    """Environment steps per second of PPO's training loop on HalfCheetah-v5 (the learn/train call only)."""
    import torch

    torch.set_num_threads(1)
    steps, seed = spec["steps"], spec["seed"]
    if spec["lib"] == "sb3":
        model = build_sb3("ppo", "HalfCheetah-v5", seed)
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


def work(spec: dict) -> dict:
    if spec["kind"] == "speed":
        return work_speed(spec)
    return work_sb3(spec) if spec.get("lib") == "sb3" else work_learn(spec)


# -- driver ---------------------------------------------------------------------------------------------
def run_speed(steps: int, rounds: int) -> dict:
    results: dict[str, list[float]] = {"policygrad": [], "sb3": []}
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    for r in range(rounds):
        for lib in (("policygrad", "sb3") if r % 2 == 0 else ("sb3", "policygrad")):
            out = spawn({"kind": "speed", "lib": lib, "steps": steps, "seed": r + 1}, __file__)
            if "error" in out:
                raise RuntimeError(f"speed run of {lib} failed: {out['error']}")
            results[lib].append(out["sps"])
            print(f"speed {lib} round {r + 1}: {out['sps']:.0f} steps/s", flush=True)
    return {"steps": steps, "rounds": rounds, "load": [load_before, os.getloadavg()[0]], **results}


def selected(only: Iterable[str]) -> list[Job]:
    only = set(only)
    return [job for job in LEARNING if not only or job.key in only]


def learning_specs(jobs: list[Job], sources: dict[str, str], quick: bool, sb3: bool) -> list[dict]:
    """Every run to make: each job's seeds with policygrad, then with SB3 where the preset is the zoo's."""
    specs = []
    for job in jobs:
        source = sources.get(job.key, "own")
        libs = ["policygrad"] + (["sb3"] if sb3 and is_zoo(source) else [])
        for lib in libs:
            for seed in job.seeds:
                specs.append({"kind": "learn", "lib": lib, "algo": job.algo, "env_id": job.env_id, "seed": seed,
                              "steps": 2048 if quick else job.steps, **({"source": source} if lib == "sb3" else {})})
    return specs


RUN_KEY = ("lib", "algo", "env_id", "seed", "steps")


def run_key(record: dict) -> tuple:
    """What identifies a run in the JSON lines (records from before the library was recorded are policygrad's)."""
    return tuple(record.get("lib", "policygrad") if k == "lib" else record[k] for k in RUN_KEY)


def setting(lib: str, algo: str, env_id: str) -> str:
    """A digest of the values a row trains with: policygrad's preset for it, or the zoo's values SB3 runs
    (those the preset carries; the label of the entry they come from is not a value). SB3 has no setting,
    "none", where the preset is not the zoo's (it runs no row there)."""
    if lib == "sb3":
        zoo = zoo_settings(algo, env_id).get(preset_source(algo, env_id))
        return "none" if zoo is None else digest({k: v for k, v in dataclasses.asdict(zoo).items() if k != "entry"})
    import policygrad as pg

    return digest(pg.make_config(algo, env_id=env_id).to_dict())


SPEED_ROW = ("ppo", "HalfCheetah-v5")  # the speed section runs this row's preset and zoo values


def resumable(lines: Iterable[str], code: str, settings: dict[tuple, str]) -> tuple[list[dict], dict | None]:
    """The finished learning runs, and the speed section, recorded with library code ``code`` and the
    setting each row has now (``settings[(lib, algo, env_id)]``); failed runs, runs of dirty code and runs
    of a setting since changed run again."""
    done: dict[tuple, dict] = {}
    speed = None
    for record in map(json.loads, lines):
        if record.get("code") != code or code.endswith("+dirty"):
            continue
        if record["kind"] == "speed":
            wanted = {lib: settings.get((lib, *SPEED_ROW)) for lib in LIBRARIES}
            if record.get("setting") == wanted:
                speed = record
        elif record["kind"] == "learn" and "error" not in record:
            lib = record.get("lib", "policygrad")
            if record.get("setting") == settings.get((lib, record["algo"], record["env_id"])):
                done[run_key(record)] = record
    return list(done.values()), speed


def recorded(lines: Iterable[str]) -> tuple[list[dict], dict | None]:
    """Every learning run of the JSON lines (its last record) and the last speed section, whatever code they
    ran with: what ``--render-only`` shows."""
    runs: dict[tuple, dict] = {}
    speed = None
    for record in map(json.loads, lines):
        if record["kind"] == "speed":
            speed = record
        elif record["kind"] == "learn":
            runs[run_key(record)] = record
    return list(runs.values()), speed


def job_of(row: dict) -> Job:
    return next(j for j in LEARNING if (j.algo, j.env_id) == (row["algo"], row["env_id"]))


def fmt_sps(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({', '.join(f'{v:.0f}' for v in values)})"


LIB_NAMES = {"policygrad": "policygrad", "sb3": "SB3"}
SOURCE_NAMES = {"zoo": "the zoo's", "cleanrl": "CleanRL's defaults", "own": "measured here", "none": "no preset"}


def source_name(source: str) -> str:
    return f"the zoo's {source[4:]} entry" if source.startswith("zoo:") else SOURCE_NAMES[source]


def summary_line(job: Job, lib: str, rows: list[dict], source: str) -> str:
    ok = [r for r in rows if "error" not in r]
    failed = len(rows) - len(ok)
    seeds = f"{len(ok)} of {len(job.seeds)}" + (f" ({failed} failed)" if failed else "")
    target = job.target.describe() if job.target else ""
    if not ok:
        return (f"| {job.algo} | {job.env_id} | {LIB_NAMES[lib]} | {source_name(source)} | {seeds} | | | {target} | "
                f"no result | | {reference_for(job.algo, job.env_id, source)} |")
    scores = [r["mean"] for r in ok]
    verdict = ""
    if job.target is not None:
        gaps = job.target.gaps(scores)
        verdict = "met" if not gaps else "**missed**: " + "; ".join(gaps)
        if len(ok) < len(job.seeds):
            verdict = f"so far {verdict}"
    wall = statistics.mean(r["wall_seconds"] for r in ok)
    return (f"| {job.algo} | {job.env_id} | {LIB_NAMES[lib]} | {source_name(source)} | {seeds} | "
            f"{statistics.mean(scores):,.1f} | {min(scores):,.1f} | {target} | {verdict} | {wall:,.0f} | "
            f"{reference_for(job.algo, job.env_id, source)} |")


def seed_line(job: Job, row: dict) -> str:
    lib = LIB_NAMES[row.get("lib", "policygrad")]
    if "error" in row:
        return f"| {job.algo} | {job.env_id} | {lib} | {row['seed']} | failed: {row['error']} | | | | | |"
    floor = ""
    if job.target is not None and job.target.each is not None:
        gap = row["mean"] - job.target.each
        floor = "met" if gap >= 0 else f"**missed by {-gap:,.1f}**"
    worst = f"{min(row['returns']):,.1f}" if row.get("returns") else ""
    return (f"| {job.algo} | {job.env_id} | {lib} | {row['seed']} | {row['global_step']:,} | "
            f"{row['mean']:,.1f} +- {row['std']:,.1f} | {worst} | {floor} | {row['wall_seconds']:,.0f} | "
            f"{row['sps']:,.0f} |")


def same_values_section(groups: dict[tuple[Job, str], list[dict]]) -> list[str]:
    """policygrad against SB3 on each row both ran (the same values, the same seeds): is there a gap the
    seeds can tell? Welch's t-test (Mann-Whitney beside it) from the project's statistics module."""
    from policygrad.reporting.formatting import format_p
    from policygrad.reporting.statistics import compare

    lines = []
    for (job, lib), rows in groups.items():
        theirs = [r["mean"] for r in groups.get((job, "sb3"), []) if "error" not in r]
        ours = [r["mean"] for r in rows if "error" not in r]
        if lib != "policygrad" or not theirs or not ours:
            continue
        c = compare({"SB3": theirs, "policygrad": ours}, test="welch")[0]
        lines.append(f"| {job.algo} | {job.env_id} | {len(ours)} and {len(theirs)} | "
                     f"{statistics.mean(ours):,.1f} | {statistics.mean(theirs):,.1f} | {c.difference:+,.1f} | "
                     f"{format_p(c.welch_p)} | {format_p(c.mannwhitney_p)} | "
                     f"{'yes' if c.significant else 'no' if c.verdict_possible else 'too few seeds'} |")
    if not lines:
        return []
    return ["", "## policygrad against SB3: the same values on the same seeds", "",
            "Where a row's preset is the zoo's, is there a gap between the libraries that these seeds can "
            "tell? Welch's t-test on the seeds' scores (Mann-Whitney beside it: with 3 seeds a side it cannot go "
            "below 0.1), two-sided, at 0.05.", "",
            "| algorithm | environment | seeds (policygrad and SB3) | policygrad mean | SB3 mean | difference | "
            "Welch p | Mann-Whitney p | a gap at 0.05 |", "|---|---|---|---|---|---|---|---|---|", *lines]


def render(rows: list[dict], sources: dict[str, str], speed: dict | None = None, total: int | None = None,
           command: str = "", here: str = "", started: str = "", machine: str = "", sb3: bool = True,
           rendered_from: str = "") -> str:
    """The Markdown of a (possibly partial) invocation: ``rows`` are the JSON-lines records of learning runs,
    ``sources`` each job's preset source (:func:`preset_source`, by ``ALGO:ENV_ID``); ``rendered_from``, the
    library code of the records when this is ``--render-only`` re-rendering them at commit ``here``."""
    total = len(rows) if total is None else total
    lines = ["# Continuous control: policygrad's presets at the published budgets", ""]
    status = "complete" if len(rows) >= total else f"partial: {len(rows)} of {total} runs finished"
    zoo_rows = [k for k, v in sources.items() if is_zoo(v)]
    if rendered_from:
        ran_at = sorted({r["commit"] for r in [*rows, *([speed] if speed else [])] if r.get("commit")})
        provenance = (f"Re-rendered at commit {here} from the JSON lines beside it, on {started} UTC: the runs ran "
                      f"at commit{'s' if len(ran_at) > 1 else ''} {', '.join(ran_at)}, every one with library "
                      f"code {rendered_from} (src/ outside the presets); rendered {machine}.")
    else:
        earlier = sorted({r["commit"] for r in rows if r.get("commit") and r["commit"] != here})
        resumed = (f" (resumed: {', '.join(earlier)} ran the runs recorded before, with the same library "
                   "code outside the presets and the same setting of their row)") if earlier else ""
        provenance = f"Commit {here}{resumed}, started {started} UTC, {machine}."
    lines += [f"Command: `{command}` ({status}).",
              f"{provenance} Scores: deterministic evaluation of "
              f"{EVAL_EPISODES} episodes after training, on evaluation seed {EVAL_SEED} (policygrad's evaluation: "
              "8 copies, copy i reset from the seed + i; SB3's policy plays the same episode starts, its "
              "normalization statistics frozen). Seconds: wall time of the whole run (training, checkpoints, "
              "evaluation), one process per seed, `--workers` at a time; steps/s: the training clock.",
              "",
              "Preset: whose setting `run/presets/ALGO.yaml` holds, read from the config it makes: the zoo's "
              "(RL Baselines3 Zoo's tuned values, translated field for field: `sb3_same_seeds.ZOO`; or another "
              "environment's entry, named, where it measured better: `ZOO_OTHER_ENTRIES`), CleanRL's "
              "defaults (`ppo_continuous_action.py`), or measured here (neither). The reference is the published "
              "score of that setting; the zoo's are single runs on older environment versions. "
              + ("Stable-Baselines3 (SB3) runs the same values on the same seeds where the preset is the zoo's: "
                 + (", ".join(zoo_rows) if zoo_rows else "none of these rows") + "."
                 if sb3 else "SB3's rows were left out (`--no-sb3`)."), ""]
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

    def order(row: dict) -> tuple:
        return (LEARNING.index(job_of(row)), LIBRARIES.index(row.get("lib", "policygrad")), row["seed"])

    rows = sorted(rows, key=order)
    groups: dict[tuple[Job, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((job_of(row), row.get("lib", "policygrad")), []).append(row)
    lines += ["## Summary", "",
              "One line per algorithm, environment and library: the mean over seeds of each seed's evaluation "
              "mean, the worst seed, the target and the gap where it is missed, the mean wall time per seed.", "",
              "| algorithm | environment | library | preset | seeds | mean | worst seed | target | result | "
              "wall s per seed | reference |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [summary_line(job, lib, group, sources.get(job.key, "own")) for (job, lib), group in groups.items()]
    lines += same_values_section(groups)
    lines += ["", "## Per seed", "",
              "| algorithm | environment | library | seed | env steps | eval mean +- std | worst episode | "
              "every-seed floor | wall s | steps/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [seed_line(job_of(row), row) for row in rows]
    return "\n".join(lines) + "\n"


def render_only(out: Path, sources: dict[str, str], meta: dict, total: int, parser: argparse.ArgumentParser) -> None:
    log = out.with_suffix(".jsonl")
    if not log.exists():
        parser.error(f"--render-only: no {log} to render")
    done, speed = recorded(log.read_text().splitlines())
    codes = sorted({r.get("code", "unknown") for r in [*done, *([speed] if speed else [])]})
    if len(codes) != 1:
        parser.error(f"--render-only: {log.name}'s runs ran with {len(codes)} library code versions "
                     f"({', '.join(codes)}); one table needs one (--resume reruns the others)")
    out.write_text(render(done, sources, speed, max(total, len(done)), rendered_from=codes[0], **meta))
    print(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="learning runs at a time (default: %(default)s)")
    parser.add_argument("--only", nargs="+", default=[], help="ALGO:ENV_ID pairs to run (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="2,048 steps per run: a smoke test of the script (write it elsewhere with --out)")
    parser.add_argument("--no-sb3", action="store_true", help="leave out SB3's runs on the zoo's settings")
    parser.add_argument("--skip-speed", action="store_true", help="leave out the speed section")
    parser.add_argument("--skip-learning", action="store_true", help="only the speed section")
    parser.add_argument("--speed-steps", type=int, default=20_480)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs recorded in OUT's .jsonl with this library code (src/ outside the "
                             "presets) and their row's setting (both libraries); run the rest")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: rewrite OUT from the runs recorded in its .jsonl (after a change of this "
                             "report's layout), refused when they ran with more than one library code")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "CONTINUOUS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(work(json.loads(args.worker))), flush=True)
        return
    unknown = [o for o in args.only if o not in {j.key for j in LEARNING}]
    if unknown:
        parser.error(f"--only {unknown}: expected ALGO:ENV_ID among {[j.key for j in LEARNING]}")
    import torch

    log = args.out.with_suffix(".jsonl")
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    here, code = commit(), code_version()
    jobs = selected(args.only)
    sources = {job.key: job.source for job in jobs}
    settings = {(lib, job.algo, job.env_id): setting(lib, job.algo, job.env_id) for job in LEARNING
                for lib in LIBRARIES if lib == "policygrad" or zoo_settings(job.algo, job.env_id)}
    meta = dict(command=" ".join([".venv/bin/python benchmarks/continuous.py", *sys.argv[1:]]), here=here,
                started=started, sb3=not args.no_sb3,
                machine=f"on {platform.machine()} with {os.cpu_count()} cores, torch {torch.__version__} "
                        "(1 thread per process), CPU")

    if args.render_only:
        render_only(args.out, sources, meta, len(learning_specs(jobs, sources, args.quick, not args.no_sb3)), parser)
        return
    done: list[dict] = []
    speed = None
    if args.resume and log.exists():
        done, speed = resumable(log.read_text().splitlines(), code, settings)
        done = [d for d in done if (d["algo"], d["env_id"]) in {(j.algo, j.env_id) for j in jobs}]
    elif log.exists():
        log.unlink()
    finished = {run_key(d) for d in done}
    specs = [] if args.skip_learning else [s for s in learning_specs(jobs, sources, args.quick, not args.no_sb3)
                                           if run_key(s) not in finished]
    total = len(done) + len(specs)

    def record(entry: dict, row_setting: object) -> None:
        with log.open("a") as f:
            f.write(json.dumps({**entry, "commit": here, "code": code, "setting": row_setting}) + "\n")

    if not args.skip_speed and speed is None:
        speed = {"kind": "speed", **run_speed(2048 if args.quick else args.speed_steps, args.speed_rounds)}
        record(speed, {lib: settings.get((lib, *SPEED_ROW)) for lib in LIBRARIES})
    args.out.write_text(render(done, sources, speed, total, **meta))
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(spawn, spec, __file__): spec for spec in specs}
        for future in as_completed(futures):
            spec = futures[future]
            entry = {**spec, **future.result(), "preset_source": sources[f"{spec['algo']}:{spec['env_id']}"],
                     "eval_seed": EVAL_SEED}
            done.append(entry)
            record(entry, settings[(spec["lib"], spec["algo"], spec["env_id"])])
            args.out.write_text(render(done, sources, speed, total, **meta))
            summary = entry.get("error") or f"{entry['mean']:.1f} in {entry['wall_seconds']:.0f} s"
            print(f"{entry['lib']} {entry['algo']} {entry['env_id']} seed {entry['seed']}: {summary}", flush=True)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
