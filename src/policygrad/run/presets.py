"""Tuned hyperparameters per algorithm and environment, shipped as YAML inside the package.

``presets/ALGO.yaml`` maps environment ids to field values. ``make_config`` applies the preset of the
config's environment when there is one (``preset="auto"``), then the caller's own values on top;
``preset="none"`` starts from the plain defaults. Presets are read with ``yaml.safe_load``: data
only, never code.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml


def _load(algo: str) -> dict[str, dict[str, Any]]:
    path = resources.files("policygrad.run") / "presets" / f"{algo}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"preset file {path} must map environment ids to field values")
    return data


def available(algo: str) -> list[str]:
    """Environment ids that have a preset for ``algo``."""
    return sorted(_load(algo))


def preset_values(algo: str, env_id: str, preset: str = "auto") -> tuple[str, dict[str, Any]]:
    """The preset to apply and its values: ``auto`` takes ``env_id``'s preset if any, ``none`` none,
    any other name that environment's preset (for using one environment's values on another)."""
    if preset == "none":
        return "none", {}
    table = _load(algo)
    name = env_id if preset == "auto" else preset
    if name in table:
        return name, dict(table[name])
    if preset == "auto":
        return "none", {}
    raise ValueError(f"preset={preset!r} does not exist for {algo}: expected auto | none | "
                     + " | ".join(available(algo)))
