"""Checkpoints without pickle: tensors in safetensors files, everything else in JSON.

A checkpoint is a folder holding ``model.safetensors`` (the network, normalization statistics
included), ``optimizer.safetensors`` (the optimizer's per-parameter state, flattened to named
tensors), for a resumable checkpoint ``state.safetensors`` (torch random state, in-flight
observations), and ``checkpoint.json``: format version, config, counters, the optimizer's
hyperparameters, the run state that is not tensors (Python/NumPy random states, environment state,
log positions), a SHA-256 of each tensor file and one of the manifest's own content.

Loading reads only tensors and JSON, so an untrusted checkpoint can never run code; every file is
checked against its checksum before it is used, and every mismatch is a UserInputError naming the file.

Writes are crash-safe (all of them through :mod:`policygrad.run.files`): a checkpoint folder is
written as a hidden temporary folder beside its final place, every file and the folder are fsynced,
and only then is it renamed into place. A crash leaves
the old folder or the new one, never a mix. Periodic checkpoints live in ``RUN_DIR/checkpoints/``
as ``step_000012345/`` folders; ``checkpoints/latest`` names the newest complete one and is itself
replaced atomically after that folder exists, so it only ever names a complete checkpoint. A write
that fails (a full disk, a read-only directory) deletes its temporary files, leaves the previous
checkpoint and ``latest`` as they were, and raises RunWriteError naming the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from policygrad.core.errors import UserInputError
from policygrad.fast.flat_optim import saved_parameters
from policygrad.run import files

FORMAT_VERSION = 2  # 2: manifest checksum, run state, folder-atomic writes
READABLE_VERSIONS = (1, 2)
MODEL_FILE, OPTIMIZER_FILE, STATE_FILE = "model.safetensors", "optimizer.safetensors", "state.safetensors"
MANIFEST_FILE = "checkpoint.json"
CHECKPOINT_DIR = "checkpoint"  # RUN_DIR/checkpoint/: the final weights, which policygrad.load reads
CHECKPOINTS_DIR, LATEST_FILE = "checkpoints", "latest"
STEP_NAME = re.compile(r"step_\d{9,}")


def clean_leftovers(run_dir: str | Path) -> list[Path]:
    """Undo what interrupted writes left in a run directory and its ``checkpoints/`` (see
    :func:`policygrad.run.files.clean_leftovers`); returns what was deleted."""
    return files.clean_leftovers(Path(run_dir), Path(run_dir) / CHECKPOINTS_DIR)


# -- the manifest ------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state into named tensors and a JSON-ready remainder."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    # clone: a flat optimizer's parameters and moments are views of one buffer, which safetensors refuses
    try:
        save_file({k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in tensors.items()},
                  str(path))
    except SafetensorError as exc:  # its I/O errors (a full disk...) are not OSErrors: make them one
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from exc
    return _sha256(path)


def save_checkpoint(
    folder: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    config: dict[str, Any],
    counters: dict[str, Any],
    run_state: dict[str, Any] | None = None,
    state_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint folder (replacing one already there); returns its path.

    ``run_state`` (JSON) and ``state_tensors`` make it resumable: everything beyond the weights and
    the optimizer that the run needs to continue exactly. The folder appears complete or not at all.
    """

    def fill(tmp: Path) -> None:
        manifest: dict[str, Any] = {"format_version": FORMAT_VERSION, "config": config, "counters": counters,
                                    "sha256": {MODEL_FILE: _save_tensors(tmp / MODEL_FILE, model.state_dict())}}
        if optimizer is not None:
            tensors, meta = _optimizer_tensors(optimizer)
            manifest["sha256"][OPTIMIZER_FILE] = _save_tensors(tmp / OPTIMIZER_FILE, tensors)
            manifest["optimizer"] = meta
        if run_state is not None:
            manifest["run_state"] = run_state
            manifest["sha256"][STATE_FILE] = _save_tensors(tmp / STATE_FILE, state_tensors or {})
        manifest["manifest_sha256"] = _manifest_digest(manifest)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    # a full disk or a read-only directory: the folder already there stays, the temporary one goes
    return files.write_folder(folder, fill, what="checkpoint")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The checkpoint's JSON manifest, checked for format version and integrity; UserInputError naming
    what is wrong if it is missing, unreadable, corrupted or from a newer policygrad."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise UserInputError(f"{folder}: no checkpoint here ({MANIFEST_FILE} is missing)")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UserInputError(f"{path}: not valid JSON, so not a checkpoint manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise UserInputError(f"{path}: not a checkpoint manifest (a JSON object was expected)")
    version = manifest.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise UserInputError(f"{path}: checkpoint format {version} is newer than this policygrad reads "
                             f"({FORMAT_VERSION}); upgrade policygrad")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise UserInputError(f"{path}: unknown checkpoint format version {version!r} (this policygrad reads "
                             f"{', '.join(map(str, READABLE_VERSIONS))})")
    if version >= 2 and manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise UserInputError(f"{path}: checksum mismatch (the manifest is corrupted or was edited)")
    for key, kind in (("config", dict), ("counters", dict), ("sha256", dict)):
        if not isinstance(manifest.get(key), kind):
            raise UserInputError(f"{path}: the manifest's {key!r} is missing or not a JSON object")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in manifest["sha256"].items()):
        raise UserInputError(f"{path}: the manifest's 'sha256' must map file names to hex digests")
    return manifest


def _load_checked(folder: Path, name: str, manifest: dict[str, Any], device: str | torch.device) -> dict:
    path = folder / name
    expected = manifest["sha256"].get(name)
    if expected is None or not path.is_file():
        raise UserInputError(f"{path}: missing from the checkpoint")
    if _sha256(path) != expected:
        raise UserInputError(f"{path}: checksum mismatch (the file is truncated, corrupted or was replaced)")
    try:
        return load_file(str(path), device=str(device))
    except Exception as exc:  # safetensors parses a header and raw bytes: it never runs code
        raise UserInputError(f"{path}: not a safetensors file ({type(exc).__name__}: {exc})") from None


def verify_checkpoint(folder: str | Path) -> dict[str, Any]:
    """Check a whole checkpoint without a network to load it into: manifest, then every file it
    lists (present, checksum, parses as safetensors). Returns the manifest; UserInputError otherwise."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    for name in manifest["sha256"]:
        if name not in (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE):
            raise UserInputError(f"{folder}: the manifest lists an unexpected file {name!r}")
        _load_checked(folder, name, manifest, "cpu")
    return manifest


def load_model_state(folder: str | Path, model: torch.nn.Module, device: str | torch.device = "cpu") -> dict:
    """Load the network's weights into ``model`` (strict: missing or extra keys, wrong shapes and
    dtypes raise UserInputError naming them, before anything is copied); returns the manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    state = _load_checked(folder, MODEL_FILE, manifest, device)
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise UserInputError(f"{folder}: checkpoint does not fit the network: missing {missing}, unexpected {extra}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise UserInputError(f"{folder}: {key} has shape {tuple(tensor.shape)}, the network expects "
                                 f"{tuple(expected[key].shape)}")
        if tensor.dtype != expected[key].dtype:
            raise UserInputError(f"{folder}: {key} has dtype {tensor.dtype}, the network expects {expected[key].dtype}")
    model.load_state_dict(state)
    return manifest


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: Any, optimizer: torch.optim.Optimizer,
                     where: Path) -> dict[str, Any]:
    """Rebuild a torch optimizer state dict, checking it against ``optimizer``'s parameters."""
    if not (isinstance(meta, dict) and isinstance(meta.get("param_groups"), list)
            and all(isinstance(g, dict) for g in meta["param_groups"]) and isinstance(meta.get("scalars", {}), dict)):
        raise UserInputError(f"{where}: the optimizer's hyperparameters are malformed")
    params = saved_parameters(optimizer)
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, _, key = name.partition(".")
        if not index.isdigit() or int(index) >= len(params) or not key:
            raise UserInputError(f"{where}: optimizer tensor {name!r} does not belong to any of the "
                                 f"{len(params)} parameters")
        shape = tuple(params[int(index)].shape)
        if value.dim() > 0 and tuple(value.shape) != shape:
            raise UserInputError(f"{where}: optimizer tensor {name!r} has shape {tuple(value.shape)}, its "
                                 f"parameter has {shape}")
        state.setdefault(int(index), {})[key] = value
    for index, entries in meta.get("scalars", {}).items():
        if not (str(index).isdigit() and isinstance(entries, dict)):
            raise UserInputError(f"{where}: the optimizer's scalar state is malformed")
        state.setdefault(int(index), {}).update(entries)
    return {"state": dict(sorted(state.items())), "param_groups": meta["param_groups"]}


def load_optimizer_state(folder: str | Path, optimizer: torch.optim.Optimizer,
                         device: str | torch.device = "cpu") -> None:
    """Load the optimizer state saved beside the weights (checksummed and shape-checked like them)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    tensors = _load_checked(folder, OPTIMIZER_FILE, manifest, device)
    state = _optimizer_state(tensors, manifest.get("optimizer"), optimizer, folder / MANIFEST_FILE)
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"{folder}: the optimizer state does not fit this optimizer ({exc})") from None


def load_run_state(folder: str | Path, device: str | torch.device = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """The run state (JSON part and tensors) of a resumable checkpoint; UserInputError if it has none."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if not isinstance(manifest.get("run_state"), dict):
        raise UserInputError(f"{folder}: this checkpoint cannot be resumed from (it holds weights only: it was "
                             "written when a run stopped mid-update, or by an older policygrad)")
    return manifest["run_state"], _load_checked(folder, STATE_FILE, manifest, device)


# -- periodic checkpoints of a run -------------------------------------------------------------------
def step_name(global_step: int) -> str:
    return f"step_{global_step:09d}"


def periodic_checkpoints(run_dir: str | Path) -> list[Path]:
    """The periodic checkpoint folders of ``run_dir``, oldest first (hidden temporary ones excluded)."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and STEP_NAME.fullmatch(p.name))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The folder ``checkpoints/latest`` names (None when there is no pointer yet)."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    pointer = root / LATEST_FILE
    if not pointer.is_file():
        return None
    name = pointer.read_bytes().decode("utf-8", errors="replace").strip()
    if not STEP_NAME.fullmatch(name):  # never a path: a crafted pointer cannot lead outside the run
        raise UserInputError(f"{pointer}: names {name[:40]!r}, which is not a checkpoint folder name (step_NNNNNNNNN)")
    if not (root / name).is_dir():
        raise UserInputError(f"{pointer}: names {name}, which does not exist")
    return root / name


def newest_periodic(run_dir: str | Path) -> Path | None:
    """The newest periodic checkpoint: the one ``checkpoints/latest`` names, else the highest step
    (None when there is none)."""
    try:
        latest = latest_checkpoint(run_dir)
    except ValueError:
        latest = None
    found = periodic_checkpoints(run_dir)
    return latest or (found[-1] if found else None)


def checkpoint_to_load(path: str | Path) -> Path:
    """The folder ``policygrad.load(path)`` reads: the run directory's final ``checkpoint/``, or ``path``
    itself (a checkpoint folder). A run without a final checkpoint (killed, or still training) is a
    UserInputError that names its newest periodic checkpoint: loading one is left to the caller, who
    passes that folder, so that a half-trained agent is never taken for the finished one."""
    path = Path(path)
    if (path / CHECKPOINT_DIR).is_dir() or (path / MANIFEST_FILE).is_file():
        return path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
    if not path.is_dir():
        raise UserInputError(f"{path}: no checkpoint here (no such run directory or checkpoint folder)")
    periodic = newest_periodic(path)
    if periodic is not None:
        raise UserInputError(f"{path}: no final checkpoint ({CHECKPOINT_DIR}/ is missing: the run was stopped before "
                             f"it finished, is still training, or {CHECKPOINT_DIR}/ was deleted); its newest periodic "
                             f"checkpoint is {periodic} (step {int(periodic.name.split('_')[1])}): load or evaluate "
                             f"that folder, or finish the run: pg.train(resume_from={str(path)!r}) "
                             f"(policygrad resume {path})")
    if (path / "config.json").is_file():
        raise UserInputError(f"{path}: no checkpoint here (a run directory with neither {CHECKPOINT_DIR}/ nor "
                             f"{CHECKPOINTS_DIR}/step_N/: the run stopped before its first checkpoint, or they were "
                             "deleted)")
    raise UserInputError(f"{path}: no checkpoint here (neither a run directory: no config.json, {CHECKPOINT_DIR}/ or "
                         f"{CHECKPOINTS_DIR}/; nor a checkpoint folder: no {MANIFEST_FILE})")


def set_latest(run_dir: str | Path, folder: Path) -> None:
    root = Path(run_dir) / CHECKPOINTS_DIR
    files.write_text_atomic(root / LATEST_FILE, folder.name + "\n")


def save_periodic(run_dir: str | Path, global_step: int, keep: int, **checkpoint: Any) -> Path:
    """Write ``checkpoints/step_<global_step>/`` (see :func:`save_checkpoint` for ``checkpoint``), point
    ``latest`` at it, then delete all but the newest ``keep`` periodic checkpoints."""
    folder = save_checkpoint(Path(run_dir) / CHECKPOINTS_DIR / step_name(global_step), **checkpoint)
    set_latest(run_dir, folder)
    for old in periodic_checkpoints(run_dir)[:-keep]:
        if old != folder:
            files.remove_folder(old)
    return folder


def remove_checkpoints_after(run_dir: str | Path, global_step: int) -> list[Path]:
    """Delete periodic checkpoints newer than ``global_step`` (a run resumed from an older one
    recomputes that future); returns them."""
    newer = [p for p in periodic_checkpoints(run_dir) if int(p.name.split("_")[1]) > global_step]
    for path in newer:
        files.remove_folder(path)
    return newer
