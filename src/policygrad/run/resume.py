"""Resuming a stopped run: finding the checkpoint to continue from, checking the config against it,
and tidying the run directory before the run goes on (``train(resume_from=...)``,
``policygrad resume RUN_DIR``). What a checkpoint holds and how the run is put back together is
described in :mod:`policygrad.run.trainer`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policygrad.algos.base import checked_int
from policygrad.core.config import Config
from policygrad.core.errors import UserInputError
from policygrad.run.checkpoint import (
    CHECKPOINT_DIR,
    CHECKPOINTS_DIR,
    LATEST_FILE,
    MANIFEST_FILE,
    clean_leftovers,
    latest_checkpoint,
    periodic_checkpoints,
    read_manifest,
    remove_checkpoints_after,
    set_latest,
    verify_checkpoint,
)

log = logging.getLogger("policygrad")

# Fields a resumed run may change: they say how long the run goes and what is recorded, not what a
# step computes (device too, but then the resumed run is no longer bit-identical).
RESUME_MAY_CHANGE = ("total_steps", "progress", "tensorboard", "eval_episodes", "eval_every", "eval_seed", "run_dir",
                     "checkpoint_every", "keep_checkpoints", "max_nonfinite_updates", "device")


@dataclass
class ResumePoint:
    """The checkpoint a run continues from, the run directory it belongs to, and its config."""

    folder: Path
    run_dir: Path
    manifest: dict[str, Any]
    config: Config

    @property
    def global_step(self) -> int:
        return int(self.manifest["counters"].get("global_step", 0))


def _resumable_step(folder: Path) -> int | None:
    """The global step of a checkpoint that can be resumed from (None if it cannot)."""
    try:
        manifest = read_manifest(folder)
    except ValueError:
        return None
    if not isinstance(manifest.get("run_state"), dict):
        return None
    step = manifest["counters"].get("global_step")
    return step if isinstance(step, int) else None


def _what_is_there(run_dir: Path, latest: Path | None) -> str:
    """Why ``run_dir`` (with no resumable checkpoint) cannot be resumed, and what to do: one line."""
    final = run_dir / CHECKPOINT_DIR
    if final.is_dir():
        try:
            read_manifest(final)
            found = (f"{CHECKPOINT_DIR}/ holds weights only (written when the run stopped mid-update; "
                     "policygrad eval and load still read it)")
        except ValueError as exc:
            found = f"{CHECKPOINT_DIR}/ is unreadable ({exc})"
    elif (run_dir / "config.json").is_file():
        found = f"there is no final {CHECKPOINT_DIR}/ (the run was killed before it finished, or it was deleted)"
    else:
        return f"not a run directory (no config.json, {CHECKPOINT_DIR}/ or {CHECKPOINTS_DIR}/)"
    periodic = periodic_checkpoints(run_dir)
    if periodic and latest is None:
        return (f"{found}, and {CHECKPOINTS_DIR}/ holds {', '.join(p.name for p in periodic)} but no '{LATEST_FILE}' "
                f"pointer; resume from one by name: pg.train(resume_from={str(periodic[-1])!r}) (policygrad resume "
                f"{run_dir} --checkpoint {periodic[-1].name})")
    return (f"{found}, and there is no periodic checkpoint in {CHECKPOINTS_DIR}/ (none was due yet, or they were "
            "deleted); the run has to start over: set --checkpoint-every (checkpoint_every) below total_steps "
            "to be able to resume the next one")


def resume_run_dir(resume_from: str | Path) -> Path:
    """The run directory a resume of ``resume_from`` (a run directory or one of its checkpoint folders)
    continues in, from the path alone: what :func:`lock_run_dir <policygrad.run.trainer.lock_run_dir>`
    locks before :func:`find_resume_point` reads anything. UserInputError for a path that is neither,
    so that no lock file is left in a directory that is not a run's."""
    path = Path(resume_from)
    if (path / MANIFEST_FILE).is_file():
        if path.name != CHECKPOINT_DIR and path.parent.name != CHECKPOINTS_DIR:
            raise UserInputError(f"{path}: a checkpoint to resume from must be RUN_DIR/checkpoint or "
                                 "RUN_DIR/checkpoints/step_N (the run directory continues with it)")
        return path.parent.parent if path.parent.name == CHECKPOINTS_DIR else path.parent
    if not path.is_dir():
        raise UserInputError(f"{path}: no such run directory or checkpoint")
    if not any((path / name).exists() for name in ("config.json", CHECKPOINT_DIR, CHECKPOINTS_DIR)):
        raise UserInputError(f"{path}: no resumable checkpoint: {_what_is_there(path, None)}")
    return path


def find_resume_point(resume_from: str | Path, trust_env: bool = False) -> ResumePoint:
    """The checkpoint to continue ``resume_from`` from: a checkpoint folder itself, or a run directory
    (then the most advanced resumable one of ``checkpoints/latest`` and the final ``checkpoint/``).
    The checkpoint is verified in full (checksums, format) before anything else happens. ``train``
    calls it under the run directory's lock, so that no other process moves the point before the run
    continues from it."""
    from policygrad.run.records import config_from_record

    path = Path(resume_from)
    run_dir = resume_run_dir(path)
    if (path / MANIFEST_FILE).is_file():
        folder = path
    else:
        candidates = []
        latest = latest_checkpoint(run_dir)  # UserInputError if the pointer is bad: say so, do not guess
        if latest is not None:
            candidates.append((_resumable_step(latest), 0, latest))
        final = run_dir / CHECKPOINT_DIR
        if final.is_dir() and _resumable_step(final) is not None:
            candidates.append((_resumable_step(final), 1, final))
        if latest is not None and candidates[0][0] is None:
            others = ", ".join(p.name for p in periodic_checkpoints(run_dir) if p != latest) or "none"
            verify_checkpoint(latest)  # raises with what is wrong
            raise UserInputError(f"{latest}: cannot be resumed from (other checkpoints: {others})")
        candidates = [c for c in candidates if c[0] is not None]
        if not candidates:
            raise UserInputError(f"{run_dir}: no resumable checkpoint: {_what_is_there(run_dir, latest)}")
        folder = max(candidates)[2]
    manifest = verify_checkpoint(folder)
    if not isinstance(manifest.get("run_state"), dict):
        raise UserInputError(f"{folder}: this checkpoint holds weights only (written when the run stopped "
                             "mid-update): it cannot be resumed from")
    config = config_from_record(manifest["config"], trust_env, source=str(folder / MANIFEST_FILE))
    return ResumePoint(folder, run_dir, manifest, config)


def resume_config(point: ResumePoint, config: Config | None) -> Config:
    """The config to continue with: the checkpoint's, or ``config`` if it differs from it only in
    :data:`RESUME_MAY_CHANGE`; the run must still have steps to take."""
    if config is None:
        config = point.config
    elif not isinstance(config, Config):
        raise UserInputError(f"train() takes a config or None when resuming, not {type(config).__name__}")
    saved, given = point.config.to_dict(), config.to_dict()
    changed = [k for k in given if k not in RESUME_MAY_CHANGE and given[k] != saved.get(k)]
    if changed:
        diffs = ", ".join(f"{k}={given[k]!r} (checkpoint: {saved.get(k)!r})" for k in changed)
        raise UserInputError(f"the config differs from the checkpoint's in what a step computes: {diffs}; only "
                             f"{', '.join(RESUME_MAY_CHANGE)} may change when resuming")
    if point.global_step >= config.total_steps:
        raise UserInputError(f"{point.run_dir}: the run is complete ({point.global_step} of total_steps="
                             f"{config.total_steps}); pass a larger total_steps (--total-steps) to train on")
    return config


def prepare_resume(point: ResumePoint) -> None:
    """Tidy the run directory for continuing from ``point``: leftovers of interrupted writes go, and
    periodic checkpoints newer than ``point`` (a future that is about to be recomputed) too."""
    clean_leftovers(point.run_dir)
    newer = remove_checkpoints_after(point.run_dir, point.global_step)
    if newer:
        log.warning("resuming from %s: deleted the newer checkpoints %s", point.folder.name,
                    ", ".join(p.name for p in newer))
    if point.folder.parent.name == "checkpoints":
        set_latest(point.run_dir, point.folder)


def checked_logs(folder: Path, logs: Any) -> dict[str, Any]:
    """The log positions a checkpoint recorded, type-checked (they become file offsets)."""
    from policygrad.run.logger import EPISODES_FILE, EVALS_FILE, METRICS_FILE

    if not isinstance(logs, dict):
        raise UserInputError(f"{folder}: the checkpoint's log positions are missing")
    for key in (METRICS_FILE, EPISODES_FILE, "global_step", "updates"):
        checked_int(logs, key)
    if EVALS_FILE in logs:  # absent in checkpoints of runs without periodic evaluations (and older ones)
        checked_int(logs, EVALS_FILE)
    if not isinstance(logs.get("wall_time"), (int, float)) or not 0 <= logs["wall_time"] < math.inf:
        raise UserInputError(f"{folder}: the checkpoint's wall_time={logs.get('wall_time')!r} is not a number >= 0")
    return logs


def previous_record(path: Path) -> dict:
    """The run's config.json as written so far (empty if missing or unreadable)."""
    try:
        record = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}

