"""A study's grid: every combination of the varied fields' values (the first field varies slowest),
times the seeds, as runs with deterministic ids (``learning_rate=0.001__seed=1``) and their configs.

The order is the spec's, never the scheduling's: run ids, seeds and the rows of results.csv follow it,
so the same spec always gives the same runs, whatever finishes first.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from policygrad.core.config import Config
from policygrad.core.errors import UserInputError
from policygrad.reporting.formatting import format_value
from policygrad.run.configure import make_config
from policygrad.studies.spec import StudySpec

# What every run of a study gets unless the spec fixes it: one torch thread (K runs share the cores),
# no progress bar, no TensorBoard events, and periodic checkpoints to resume from when killed.
RUN_DEFAULTS: dict[str, Any] = {"torch_threads": 1, "tensorboard": False, "keep_checkpoints": 1}
CHECKPOINTS_PER_RUN = 5  # checkpoint_every defaults to total_steps // this


@dataclass(frozen=True)
class GridRun:
    """One run of a study: its id, the varied fields' values, its seed and its config."""

    run_id: str
    values: dict[str, Any]
    seed: int
    config: Config | None  # None: an external run
    external: ExternalRun | None = None


@dataclass(frozen=True)
class ExternalRun:
    """A run that is not a policygrad training (a comparison's ``random`` or ``sb3:*`` method):
    ``entry(run_dir, settings, protocol)``, a module-level function (it travels to the worker
    processes by name), trains and evaluates into ``run_dir``, writing ``evals.csv`` (the trainer's
    columns) and, last, ``eval.json`` (its ``mean``: the final evaluation), which marks the run done.
    ``protocol``: env_id, seed, total_steps, eval_every, eval_episodes, eval_seed."""

    entry: Callable[[Any, Mapping[str, Any], Mapping[str, Any]], None]
    settings: Mapping[str, Any] = field(default_factory=dict)
    protocol: Mapping[str, Any] = field(default_factory=dict)


def grid_points(spec: StudySpec) -> list[dict[str, Any]]:
    """Every combination of ``spec.vary``'s values, the first field varying slowest ([{}] if none)."""
    names = list(spec.vary)
    return [dict(zip(names, combo)) for combo in itertools.product(*(spec.vary[n] for n in names))]


def point_id(values: dict[str, Any]) -> str:
    """``field=value__field=value`` with anything unsafe in a directory name replaced by ``_``."""
    return "__".join(f"{name}={_safe(format_value(value))}" for name, value in values.items())


def run_id(values: dict[str, Any], seed: int) -> str:
    return "__".join(filter(None, [point_id(values), f"seed={seed}"]))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def adjusted(spec: StudySpec, values: dict[str, Any]) -> dict[str, Any]:
    """The fields ``spec.adjust``'s rules set at the grid point ``values`` (later rules win)."""
    out: dict[str, Any] = {}
    for rule in spec.adjust:
        if all(format_value(values[name]) == format_value(v) for name, v in rule["if"].items()):
            out.update(rule["set"])
    return out


def point_config(spec: StudySpec, values: dict[str, Any], seed: int) -> Config:
    """The config of grid point ``values`` with ``seed``: the study's defaults, then ``fixed``, then the
    adjust rules' fields, then the point's values, over the preset (``make_config``)."""
    defaults = {**RUN_DEFAULTS, "checkpoint_every": max(spec.total_steps // CHECKPOINTS_PER_RUN, 1)}
    fields = {**defaults, **spec.fixed, **adjusted(spec, values), **values}
    return make_config(spec.algo, preset=spec.preset, env_id=spec.env_id, total_steps=spec.total_steps, seed=seed,
                       eval_every=spec.eval_every, eval_episodes=spec.eval_episodes, progress=False, **fields)


def iteration_steps(config: Config) -> int:
    """The fewest environment steps one iteration of ``config`` takes: a fixed-horizon rollout
    (num_envs x num_steps), or one step per copy (an episode-based or asynchronous algorithm)."""
    size = getattr(config, "batch_size", None)
    if isinstance(size, int) and size > 0:
        return size
    return max(1, int(getattr(config, "num_envs", 1) or 1))


def check_budget(config: Config) -> None:
    """UserInputError, before any run, where ``total_steps`` cannot hold one iteration: such a run
    would train nothing, evaluate once at most, and leave a report with nothing to plot."""
    steps = iteration_steps(config)
    if config.total_steps < steps:
        size = getattr(config, "batch_size", None)
        what = (f"num_envs {config.num_envs} x num_steps {config.num_steps} = {steps} steps"
                if size == steps and hasattr(config, "num_steps") else f"{steps} steps, one per environment copy")
        raise UserInputError(f"total_steps={config.total_steps} is fewer than one iteration of {config.algo} ({what}): "
                             f"expected total_steps of at least {steps}, and several times that for a learning curve")


def eval_notes(spec: StudySpec, runs: list[GridRun]) -> list[str]:
    """Where ``eval_every`` is shorter than an iteration (evaluations happen at iteration boundaries,
    so at most once an iteration), a note saying how often they will really be made."""
    if not spec.eval_every:
        return []
    sizes = sorted({iteration_steps(r.config) for r in runs
                    if r.config is not None and hasattr(r.config, "batch_size")})
    return [f"eval_every {spec.eval_every} is shorter than one iteration ({size} steps): evaluations are made at "
            f"iteration boundaries, so every {size} steps where an iteration is {size} steps" for size in sizes
            if size > spec.eval_every]


def expand(spec: StudySpec) -> list[GridRun]:
    """Check ``spec`` and build the config of every run, in grid order (grid points, then seeds); a
    UserInputError names the first grid point that cannot run and why. Nothing is written."""
    spec.check()
    runs: list[GridRun] = []
    for values in grid_points(spec):
        try:
            config = point_config(spec, values, spec.seeds[0])
            configs = [config] + [config.replace(seed=seed) for seed in spec.seeds[1:]]
        except ValueError as exc:
            where = f"grid point {point_id(values)}: " if values else ""
            raise UserInputError(f"{where}{exc}") from None
        runs += [GridRun(run_id(values, seed), dict(values), seed, cfg) for seed, cfg in zip(spec.seeds, configs)]
    for run in runs[::len(spec.seeds)]:  # after every point is built: an invalid combination is named first
        try:
            if run.config is not None:
                check_budget(run.config)
        except ValueError as exc:
            where = f"grid point {point_id(run.values)}: " if run.values else ""
            raise UserInputError(f"{where}{exc}") from None
    if spec.eval_every > spec.total_steps:
        raise UserInputError(f"eval_every={spec.eval_every} is more than total_steps={spec.total_steps}: no evaluation "
                             f"would happen during training; expected at most {spec.total_steps}, or 0 for the final "
                             f"evaluation only")
    for note in eval_notes(spec, runs):
        if note not in spec.notes:  # study.json records the evaluations as they will be made, not only as asked
            spec.notes.append(note)
    ids = [run.run_id for run in runs]
    twice = next((i for k, i in enumerate(ids) if i in ids[:k]), None)
    if twice is not None:
        raise UserInputError(f"two runs would share the id {twice!r} (values differing only in characters a directory "
                             "name cannot hold): change one")
    return runs
