"""The search space of ``policygrad tune``: which config fields Optuna samples, and from what.

A space maps config fields to what to sample, as a ``--space`` YAML file writes it::

    learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}   # a float field: uniform (log: log-uniform)
    update_epochs: {low: 3, high: 10}                         # an int field: integers in [low, high]
    gamma: {choices: [0.95, 0.98, 0.99, 0.995]}               # any field: one of these
    hidden_sizes: {width: [64, 128], depth: [1, 2]}           # hidden_sizes: width x depth, two parameters
    advantage_estimator: gae                                  # a plain value: fixed, not searched

:func:`load_space` reads such a file with ``yaml.safe_load`` (data only) and checks it: an unknown
field, a field a study sets itself (seed, total_steps...), an unknown key, bounds that are not
numbers of the field's type or not ``low < high`` (``low > 0`` with ``log``), an empty or mistyped
``choices`` list: each is a one-line UserInputError (exit code 2 on the command line). :data:`DEFAULT_SPACES`
holds a space per algorithm whose batch shapes always divide validly (PPO: ``num_steps`` a multiple
of 32 and ``num_minibatches`` at most 8, so ``num_envs * num_steps`` is a multiple of it whatever
``num_envs`` is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policygrad.algos import algorithm
from policygrad.core.config import Config, check_field_names
from policygrad.core.errors import UserInputError
from policygrad.core.yaml_files import read_yaml
from policygrad.reporting.formatting import format_value
from policygrad.studies.spec import RESERVED, field_kind, typed_value

KEYS = {"low", "high", "log", "step", "choices", "width", "depth"}
WIDTH, DEPTH = "hidden_sizes.width", "hidden_sizes.depth"  # the Optuna parameters of {width, depth}

_GAMMAS = [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
_NETWORK = {"width": [32, 64, 128, 256], "depth": [1, 2, 3]}
DEFAULT_SPACES: dict[str, dict[str, Any]] = {
    "ppo": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "gamma": {"choices": _GAMMAS},
            "gae_lambda": {"low": 0.8, "high": 1.0}, "ent_coef": {"low": 0.0, "high": 0.02},
            "hidden_sizes": _NETWORK, "num_steps": {"choices": [32, 64, 128, 256, 512]},
            "num_minibatches": {"choices": [1, 2, 4, 8]}, "update_epochs": {"low": 3, "high": 10},
            "clip_coef": {"choices": [0.1, 0.2, 0.3]}},
    # A2C's default estimator is n-step returns, which ignore gae_lambda: the space switches to GAE
    "a2c": {"advantage_estimator": "gae", "learning_rate": {"low": 1e-4, "high": 3e-3, "log": True},
            "gamma": {"choices": _GAMMAS}, "gae_lambda": {"low": 0.8, "high": 1.0},
            "ent_coef": {"low": 0.0, "high": 0.02}, "hidden_sizes": _NETWORK, "num_steps": {"choices": [5, 8, 16, 32]}},
    "a3c": {"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}, "gamma": {"choices": _GAMMAS},
            "gae_lambda": {"low": 0.8, "high": 1.0}, "ent_coef": {"low": 0.0, "high": 0.02},
            "hidden_sizes": _NETWORK, "num_steps": {"choices": [5, 10, 20]}},
    "actor_critic": {"advantage_estimator": "gae", "learning_rate": {"low": 1e-4, "high": 3e-3, "log": True},
                     "gamma": {"choices": _GAMMAS}, "gae_lambda": {"low": 0.0, "high": 1.0},
                     "ent_coef": {"low": 0.0, "high": 0.02}, "hidden_sizes": _NETWORK,
                     "num_steps": {"choices": [1, 2, 4, 8]}},
    "reinforce": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "gamma": {"choices": _GAMMAS},
                  "ent_coef": {"low": 0.0, "high": 0.02}, "hidden_sizes": _NETWORK,
                  "episodes_per_update": {"choices": [4, 8, 16]}},
}


@dataclass(frozen=True)
class Dimension:
    """One searched field. ``kind``: ``float`` / ``int`` (``low``..``high``, ``log``, ``step``),
    ``choices`` (one of ``choices``, typed as the field holds them) or ``layers`` (hidden_sizes as
    ``width`` x ``depth``: two Optuna parameters)."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: int | None = None
    choices: tuple[Any, ...] = ()
    width: tuple[int, ...] = ()
    depth: tuple[int, ...] = ()

    def to_dict(self) -> Any:
        if self.kind == "choices":
            return {"choices": [list(c) if isinstance(c, tuple) else c for c in self.choices]}
        if self.kind == "layers":
            return {"width": list(self.width), "depth": list(self.depth)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class Space:
    """A checked search space: the searched dimensions and the fixed values, both by field name."""

    dimensions: tuple[Dimension, ...]
    fixed: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """As a space file writes it (JSON-ready; tuples as lists)."""
        out: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.fixed.items()}
        out.update({d.name: d.to_dict() for d in self.dimensions})
        return out

    def suggest(self, trial: Any) -> dict[str, Any]:
        """The config values of an Optuna trial: each dimension sampled with ``trial.suggest_*``, then
        the fixed values. Categorical choices travel to Optuna as text where they are tuples (Optuna's
        choices are scalars), and come back typed."""
        values: dict[str, Any] = {}
        for dim in self.dimensions:
            if dim.kind == "float":
                values[dim.name] = trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log)
            elif dim.kind == "int":
                values[dim.name] = trial.suggest_int(dim.name, dim.low, dim.high, log=dim.log, step=dim.step or 1)
            elif dim.kind == "choices":
                shown = [_optuna_choice(c) for c in dim.choices]
                picked = trial.suggest_categorical(dim.name, shown)
                values[dim.name] = dim.choices[shown.index(picked)]
            else:
                width = trial.suggest_categorical(WIDTH, list(dim.width))
                depth = trial.suggest_categorical(DEPTH, list(dim.depth))
                values[dim.name] = (width,) * depth
        return {**values, **self.fixed}

    def values_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The config values of a trial's recorded Optuna ``params`` (a trial run again on resume)."""
        values: dict[str, Any] = {}
        for dim in self.dimensions:
            if dim.kind == "layers":
                values[dim.name] = (int(params[WIDTH]),) * int(params[DEPTH])
            elif dim.kind == "choices":
                shown = [_optuna_choice(c) for c in dim.choices]
                values[dim.name] = dim.choices[shown.index(params[dim.name])]
            else:
                values[dim.name] = params[dim.name]
        return {**values, **self.fixed}


def _optuna_choice(value: Any) -> Any:
    return format_value(value) if isinstance(value, tuple) else value


def _number(value: Any, kind: str, where: str) -> float | int:
    """A bound as the field holds it. YAML 1.1 reads ``1e-4`` (no dot) as text: such text is taken as
    the number it spells, so that the common spelling works."""
    if isinstance(value, str):
        try:
            value = float(value) if kind == "float" else int(value)
        except ValueError:
            pass
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "int" and not (ok and float(value).is_integer()):
        raise UserInputError(f"{where}: expected an integer, not {value!r}")
    if not ok:
        raise UserInputError(f"{where}: expected a number, not {value!r}")
    return int(value) if kind == "int" else float(value)


def _int_list(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise UserInputError(f"{where}: expected a non-empty list of integers > 0, not {value!r}")
    if len(set(value)) != len(value):
        raise UserInputError(f"{where}: a value is listed twice")
    return tuple(value)


def _dimension(config_cls: type[Config], name: str, entry: Mapping[str, Any]) -> Dimension:
    where = f"space {name}"
    unknown = sorted(str(k) for k in entry if k not in KEYS)
    if unknown:
        raise UserInputError(f"{where}: unknown key {unknown[0]!r} (expected low/high[/log/step], choices, or "
                             "width/depth)")
    kind = field_kind(config_cls, name)
    if "choices" in entry:
        if set(entry) != {"choices"}:
            raise UserInputError(f"{where}: choices cannot be combined with {sorted(set(entry) - {'choices'})[0]}")
        choices = entry["choices"]
        if not isinstance(choices, list) or not choices:
            raise UserInputError(f"{where}: choices must be a non-empty list, not {choices!r}")
        typed = tuple(typed_value(config_cls, name, c, where + " choice") for c in choices)
        shown = [format_value(c) for c in typed]
        if len(set(shown)) != len(shown):
            raise UserInputError(f"{where}: a choice is listed twice")
        return Dimension(name, "choices", choices=typed)
    if "width" in entry or "depth" in entry:
        if kind != "tuple":
            raise UserInputError(f"{where}: width/depth are for hidden_sizes-like fields (a list of widths), not a "
                                 f"{kind}")
        if set(entry) != {"width", "depth"}:
            raise UserInputError(f"{where}: expected both width and depth (lists of integers), and nothing else")
        return Dimension(name, "layers", width=_int_list(entry["width"], where + " width"),
                         depth=_int_list(entry["depth"], where + " depth"))
    if "low" not in entry or "high" not in entry:
        raise UserInputError(f"{where}: expected low and high, or choices")
    if kind not in ("float", "int"):
        raise UserInputError(f"{where}: a {kind} field is searched with choices, not low/high")
    low, high = _number(entry["low"], kind, where + " low"), _number(entry["high"], kind, where + " high")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise UserInputError(f"{where}: log must be true or false, not {log!r}")
    if not low < high:
        raise UserInputError(f"{where}: low={low!r} must be below high={high!r}")
    if log and low <= 0:
        raise UserInputError(f"{where}: log needs low > 0, not {low!r}")
    step = None
    if "step" in entry:
        if kind != "int":
            raise UserInputError(f"{where}: step is for integer fields")
        step = entry["step"]
        if not isinstance(step, int) or isinstance(step, bool) or step < 1:
            raise UserInputError(f"{where}: step must be an integer >= 1, not {step!r}")
        if log and step != 1:
            raise UserInputError(f"{where}: step cannot be combined with log")
    return Dimension(name, kind, low=low, high=high, log=log, step=step)


def check_space(algo: str, data: Any, source: str = "space") -> Space:
    """A checked :class:`Space` for ``algo`` from a mapping (a space file's content, or a recorded
    space); a one-line UserInputError naming the field otherwise."""
    config_cls = algorithm(algo).Config
    if not isinstance(data, dict) or not data:
        raise UserInputError(f"{source}: expected a mapping of config fields to what to search (low/high, choices)")
    dimensions, fixed = [], {}
    for name, entry in data.items():
        if not isinstance(name, str):
            raise UserInputError(f"{source}: {name!r} is not a field name")
        if name in RESERVED:
            raise UserInputError(f"{source}: {name} is set by the tuning itself (its own option), not searched")
        try:
            check_field_names(config_cls, {name: None})
            if isinstance(entry, dict):
                dimensions.append(_dimension(config_cls, name, entry))
            else:
                fixed[name] = typed_value(config_cls, name, entry, "space")
        except ValueError as exc:
            raise UserInputError(f"{source}: {exc}") from None
    if not dimensions:
        raise UserInputError(f"{source}: nothing to search (every field is a plain value): give one low/high or "
                             "choices")
    return Space(tuple(dimensions), fixed)


def default_space(algo: str) -> Space:
    algorithm(algo)  # an unknown algorithm: its one-line error, naming the algorithms
    if algo not in DEFAULT_SPACES:
        raise UserInputError(f"{algo} has no default search space: give one with --space FILE.yaml")
    return check_space(algo, DEFAULT_SPACES[algo], f"the default space of {algo}")


def load_space(algo: str, path: str | Path) -> Space:
    """The space in the YAML file ``path`` (``yaml.safe_load``), checked for ``algo``."""
    return check_space(algo, read_yaml(path, "space file"), f"space file {path}")
