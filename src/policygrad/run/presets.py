"""Tuned hyperparameters per algorithm and environment, shipped as YAML inside the package.

``presets/ALGO.yaml`` maps environment ids to field values. ``make_config`` applies the preset of the
config's environment when there is one (``preset="auto"``), then the caller's own values on top;
``preset="none"`` starts from the plain defaults. ``preset="PATH.yaml"`` starts from a file of your
own, ``field: value`` per line (what ``policygrad tune`` writes as its best config). Presets are read
with ``yaml.safe_load``: data only, never code; the config then checks every name and value.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from policygrad.core.errors import UserInputError
from policygrad.core.yaml_files import read_yaml


def _load(algo: str) -> dict[str, dict[str, Any]]:
    path = resources.files("policygrad.run") / "presets" / f"{algo}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise UserInputError(f"preset file {path} must map environment ids to field values")
    return data


def available(algo: str) -> list[str]:
    """Environment ids that have a preset for ``algo``."""
    return sorted(_load(algo))


# Config fields whose value is a mapping (gymnasium.make's keyword arguments)
MAPPING_FIELDS = ("env_kwargs",)

# Keys a preset file may not set: the command line gives the environment, and a preset names no other
PRESET_FILE_RESERVED = ("env_id", "preset", "run_dir")


def is_preset_file(preset: str) -> bool:
    """Whether ``preset`` names a file rather than an environment's preset (no env id ends in .yaml)."""
    return isinstance(preset, str) and preset.lower().endswith((".yaml", ".yml"))


def read_preset_file(path: str | Path) -> dict[str, Any]:
    """The ``field: value`` mapping of a preset file (``yaml.safe_load``: data only); UserInputError in one
    line when it cannot be read or is not such a mapping. Field names and values are checked by the
    config that ``make_config`` builds from them."""
    data = read_yaml(path, "preset file")
    data = {} if data is None else data
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise UserInputError(f"preset file {path}: expected a mapping of config fields to values (field: value per "
                             "line)")
    # a mapping as a value: a file of presets per environment, except for a field that holds one (env_kwargs)
    nested = next((k for k, v in data.items() if isinstance(v, dict) and k not in MAPPING_FIELDS), None)
    if nested is not None:
        raise UserInputError(f"preset file {path}: {nested} maps to a mapping; expected field: value per line (a file "
                             "of presets per environment is not a preset)")
    reserved = next((k for k in data if k in PRESET_FILE_RESERVED), None)
    if reserved is not None:
        raise UserInputError(f"preset file {path}: {reserved} cannot be set by a preset (give it on the command line)")
    return data


def preset_values(algo: str, env_id: str, preset: str = "auto") -> tuple[str, dict[str, Any]]:
    """The preset to apply and its values: ``auto`` takes ``env_id``'s preset if any, ``none`` none,
    ``PATH.yaml`` that file's values (:func:`read_preset_file`), any other name that environment's
    preset (for using one environment's values on another)."""
    if preset == "none":
        return "none", {}
    if is_preset_file(preset):
        return preset, read_preset_file(preset)
    table = _load(algo)
    name = env_id if preset == "auto" else preset
    if name in table:
        return name, dict(table[name])
    if preset == "auto":
        return "none", {}
    raise UserInputError(f"preset={preset!r} does not exist for {algo}: expected auto | none | a file PATH.yaml | "
                         + " | ".join(available(algo)))
