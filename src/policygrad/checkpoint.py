"""Checkpoints without pickle: tensors in safetensors files, everything else in JSON.

A checkpoint is a folder holding ``model.safetensors`` (the network), ``optimizer.safetensors`` (the
optimizer's per-parameter state, flattened to named tensors) and ``checkpoint.json`` (format version,
config, counters, the optimizer's hyperparameters, and a SHA-256 of each tensor file). Loading reads
only tensors and JSON, so an untrusted checkpoint can never run code. Each file is written to a
temporary name, flushed to disk and renamed into place: a crash leaves the old file or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1
MODEL_FILE, OPTIMIZER_FILE, MANIFEST_FILE = "model.safetensors", "optimizer.safetensors", "checkpoint.json"


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file, fsync, rename)."""
    _atomic_write(Path(path), lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entries in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": dict(sorted(state.items())), "param_groups": meta["param_groups"]}


def save_checkpoint(
    folder: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    config: dict[str, Any],
    counters: dict[str, Any],
) -> Path:
    """Write a checkpoint folder (created if missing); returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(folder / MODEL_FILE, lambda tmp: save_file(state, str(tmp)))
    manifest: dict[str, Any] = {"format_version": FORMAT_VERSION, "config": config, "counters": counters,
                                "sha256": {MODEL_FILE: _sha256(folder / MODEL_FILE)}}
    if optimizer is not None:
        tensors, meta = _optimizer_tensors(optimizer)
        _atomic_write(folder / OPTIMIZER_FILE, lambda tmp: save_file(tensors, str(tmp)))
        manifest["optimizer"] = meta
        manifest["sha256"][OPTIMIZER_FILE] = _sha256(folder / OPTIMIZER_FILE)
    write_json(folder / MANIFEST_FILE, manifest)  # last: a manifest only ever names complete files
    return folder


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The checkpoint's JSON manifest, checked for format version; ValueError if missing or unreadable."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ValueError(f"{folder}: no checkpoint here ({MANIFEST_FILE} is missing)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {version!r} is newer than this policygrad reads "
                         f"({FORMAT_VERSION}); upgrade policygrad")
    return manifest


def _load_checked(folder: Path, name: str, manifest: dict[str, Any], device: str | torch.device) -> dict:
    path = folder / name
    expected = manifest.get("sha256", {}).get(name)
    if expected is None or not path.is_file():
        raise ValueError(f"{path}: missing from the checkpoint")
    if _sha256(path) != expected:
        raise ValueError(f"{path}: checksum mismatch (the file is truncated, corrupted or was replaced)")
    return load_file(str(path), device=str(device))


def load_model_state(folder: str | Path, model: torch.nn.Module, device: str | torch.device = "cpu") -> dict:
    """Load the network's weights into ``model`` (strict: missing or extra keys and wrong shapes raise
    ValueError naming them); returns the manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    state = _load_checked(folder, MODEL_FILE, manifest, device)
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"{folder}: checkpoint does not fit the network: missing {missing}, unexpected {extra}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise ValueError(f"{folder}: {key} has shape {tuple(tensor.shape)}, the network expects "
                             f"{tuple(expected[key].shape)}")
    model.load_state_dict(state)
    return manifest


def load_optimizer_state(folder: str | Path, optimizer: torch.optim.Optimizer,
                         device: str | torch.device = "cpu") -> None:
    """Load the optimizer state saved beside the weights (checksummed like them)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    tensors = _load_checked(folder, OPTIMIZER_FILE, manifest, device)
    optimizer.load_state_dict(_optimizer_state(tensors, manifest["optimizer"]))
