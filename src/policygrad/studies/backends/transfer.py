"""A run directory as messages, between a Ray node training the run and the driver keeping its copy
(:mod:`~policygrad.studies.backends.ray_cluster`): the files read into ``{relative path: bytes}``, the
newest periodic checkpoint as a message, and their writing on the driver's side, in the order that
leaves its copy resumable whenever the driver is killed. Every write goes through
:mod:`policygrad.run.files`; a path received from a node is checked to stay inside the run directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from policygrad.run import files as run_files
from policygrad.run.checkpoint import CHECKPOINT_DIR, CHECKPOINTS_DIR, LATEST_FILE, STEP_NAME, read_manifest
from policygrad.run.logger import EPISODES_FILE, EVALS_FILE, METRICS_FILE
from policygrad.studies.backends.run_task import EVAL_FILE

CONFIG_FILE = "config.json"
LOG_FILES = (METRICS_FILE, EPISODES_FILE, EVALS_FILE)


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` as ``{relative/posix/path: bytes}``, but hidden ones (the run's lock
    files, leftovers of interrupted writes, at any depth) and ``*.tmp`` files being written."""
    files: dict[str, bytes] = {}
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.name.endswith(".tmp"):
            continue
        if path.is_file() and not path.is_symlink():
            files[rel.as_posix()] = path.read_bytes()
    return files


def checked_path(root: Path, rel: str) -> Path:
    """``root / rel`` for a relative path received from a node, refused (ValueError) if it could lead
    outside ``root`` or name a hidden file."""
    parts = PurePosixPath(rel).parts
    if not rel or "\\" in rel or PurePosixPath(rel).is_absolute() or \
            any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise ValueError(f"a run's node sent a file named {rel[:80]!r}, which is not a path inside its run directory")
    return root.joinpath(*parts)


def write_folder(folder: Path, files: Mapping[str, bytes]) -> None:
    """Replace ``folder`` by one holding ``files`` (names inside it, checked) at once, so that a killed
    driver leaves either the old folder or the new one."""

    def fill(staged: Path) -> None:
        for rel, data in files.items():
            target = checked_path(staged, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    run_files.write_folder(folder, fill)


def split_folders(files: Mapping[str, bytes]) -> tuple[dict[str, dict[str, bytes]], dict[str, bytes]]:
    """``files`` as checkpoint folders (``checkpoint`` and ``checkpoints/step_N``: {folder: {name: data}})
    and the other files."""
    folders: dict[str, dict[str, bytes]] = {}
    rest: dict[str, bytes] = {}
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if len(parts) >= 2 and parts[0] == CHECKPOINT_DIR:
            folders.setdefault(CHECKPOINT_DIR, {})["/".join(parts[1:])] = data
        elif len(parts) >= 3 and parts[0] == CHECKPOINTS_DIR and STEP_NAME.fullmatch(parts[1]):
            folders.setdefault(f"{CHECKPOINTS_DIR}/{parts[1]}", {})["/".join(parts[2:])] = data
        else:
            rest[rel] = data
    return folders, rest


def write_checkpoint(run_dir: Path, files: Mapping[str, bytes], keep: Sequence[str]) -> None:
    """A periodic checkpoint from a node, into the driver's copy of the run: its folder first (whole),
    then the logs and config.json, ``checkpoints/latest`` last, so that whenever the driver is killed
    the copy resumes from this checkpoint or the one before (the logs only grow, and a resume cuts them
    back to its checkpoint's sizes). Periodic folders the node no longer keeps (``keep``) go."""
    folders, rest = split_folders(files)
    for folder, inside in folders.items():
        write_folder(checked_path(run_dir, folder), inside)
    latest = f"{CHECKPOINTS_DIR}/{LATEST_FILE}"
    for rel, data in rest.items():
        if rel != latest:
            run_files.write_bytes_atomic(checked_path(run_dir, rel), data)
    if latest in rest:
        run_files.write_bytes_atomic(checked_path(run_dir, latest), rest[latest])
    root = run_dir / CHECKPOINTS_DIR
    if root.is_dir():
        for old in root.iterdir():
            if old.is_dir() and STEP_NAME.fullmatch(old.name) and old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)


def write_final(run_dir: Path, files: Mapping[str, bytes]) -> None:
    """The finished run directory from a node, over the driver's copy: the logs and periodic
    checkpoints, then the final ``checkpoint/`` (whole), ``eval.json`` last (it marks the run done);
    then whatever the node's directory no longer holds goes (older periodic checkpoints, an old
    error.txt), so that the copy equals the node's directory."""
    folders, rest = split_folders(files)
    for folder, inside in folders.items():
        if folder != CHECKPOINT_DIR:
            write_folder(checked_path(run_dir, folder), inside)
    for rel, data in rest.items():
        if rel != EVAL_FILE:
            run_files.write_bytes_atomic(checked_path(run_dir, rel), data)
    if CHECKPOINT_DIR in folders:
        write_folder(run_dir / CHECKPOINT_DIR, folders[CHECKPOINT_DIR])
    if EVAL_FILE in rest:
        run_files.write_bytes_atomic(run_dir / EVAL_FILE, rest[EVAL_FILE])
    for path in sorted(run_dir.rglob("*"), reverse=True):  # deepest first: files before their folders
        here = path.relative_to(run_dir)
        if here.parts[0].startswith(".") or here.as_posix() in files:
            continue
        if path.is_dir():
            if not any(name.startswith(f"{here.as_posix()}/") for name in files):
                shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


# -- a node's newest checkpoint ------------------------------------------------------------------------------
def checkpoint_message(run_dir: Path) -> dict[str, Any] | None:
    """The newest periodic checkpoint of the run training in ``run_dir``, as a message (None if there
    is none yet, or it went while being read: the next look finds the newer one)."""
    root = run_dir / CHECKPOINTS_DIR
    try:
        name = (root / LATEST_FILE).read_text().strip()
        if not STEP_NAME.fullmatch(name):
            return None
        folder = root / name
        manifest = read_manifest(folder)
        logs = manifest["run_state"]["logs"]
        files = {f"{CHECKPOINTS_DIR}/{name}/{p.name}": p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        for log in LOG_FILES:  # cut where the checkpoint says: rows written since belong to the next one
            size = logs.get(log)
            if isinstance(size, int) and not isinstance(size, bool) and (run_dir / log).is_file():
                files[log] = (run_dir / log).read_bytes()[:size]
        files[CONFIG_FILE] = (run_dir / CONFIG_FILE).read_bytes()
        files[f"{CHECKPOINTS_DIR}/{LATEST_FILE}"] = f"{name}\n".encode()
        keep = sorted(p.name for p in root.iterdir() if p.is_dir() and STEP_NAME.fullmatch(p.name))
        step = int(manifest["counters"]["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"kind": "checkpoint", "name": name, "step": step, "files": files, "keep": keep}
