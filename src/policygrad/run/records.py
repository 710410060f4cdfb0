"""Configs read back from files (a checkpoint's manifest, a run's ``config.json``), safely.

A file may come from anyone. Reading one: every value is type-checked against its field before a
config is built (which then validates ranges and choices), nothing is ever evaluated, and an
``env_id`` of the form ``module:attr`` (which would import and run that module's code) is accepted
only when the caller trusts the file, or when the module is already imported and the attribute is
an environment class; so is a ``network`` (``module:Class``, a user's ``torch.nn.Module``), with
``nn.Module`` classes in place of environment classes. A refusal is a UserInputError saying which
field and why.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import gymnasium as gym
from torch import nn

from policygrad.core.config import Config, user_fields
from policygrad.core.errors import UserInputError
from policygrad.run.presets import is_preset_file


def _type_ok(annotation: str, value: Any) -> bool:
    if annotation == "bool":
        return isinstance(value, bool)
    if annotation == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation == "str":
        return isinstance(value, str)
    if annotation.startswith("dict["):
        return isinstance(value, dict)  # the config checks it is JSON with str keys
    if annotation.startswith("tuple[int"):
        return isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return isinstance(value, (bool, int, float, str))  # any other field: JSON scalars only


def check_env_trusted(env_id: Any, trust_env: bool, source: str) -> None:
    """Refuse a ``module:attr`` env id from an untrusted file unless it is an already-imported
    environment class (building a registered Gymnasium id runs only installed, registered code)."""
    if not isinstance(env_id, str) or env_id in gym.registry or ":" not in env_id or trust_env:
        return
    module_name, _, attr = env_id.partition(":")
    module = sys.modules.get(module_name)
    target = getattr(module, attr, None) if module is not None else None
    if isinstance(target, type) and issubclass(target, gym.Env):
        return
    raise UserInputError(
        f"{source}: env_id={env_id!r} names Python code (module {module_name!r}, {attr!r}); making the "
        "environment would import and run it. If you trust this file, pass trust_env=True (command line: "
        "--trust-env), or import the module yourself first (then an env class is accepted)")


def check_network_trusted(network: Any, trust: bool, source: str) -> None:
    """Refuse a ``network`` (``module:Class``) from an untrusted file unless the module is already
    imported and the name is a ``torch.nn.Module`` class (building it then runs only code you loaded)."""
    if not isinstance(network, str) or not network or trust:
        return
    module_name, _, attr = network.partition(":")
    target: Any = sys.modules.get(module_name)
    for name in attr.split("."):
        target = getattr(target, name, None)
    if isinstance(target, type) and issubclass(target, nn.Module):
        return
    raise UserInputError(
        f"{source}: network={network!r} names Python code (module {module_name!r}, {attr!r}); building the "
        "network would import and run it. If you trust this file, pass trust_env=True (command line: "
        "--trust-env), import the module yourself first (then an nn.Module class is accepted), or pass "
        "the network itself (pg.load(path, network=...))")


def config_from_record(values: Any, trust_env: bool = False, source: str = "config",
                       trust_network: bool | None = None) -> Config:
    """The config a file recorded (``Config.to_dict()`` output, ``algo`` included), type-checked field
    by field; ``source`` names the file in error messages. ``trust_env`` trusts the code the file names
    (``env_id``, ``network``); ``trust_network`` (default: ``trust_env``) that of ``network`` alone,
    for a caller that brings the network itself."""
    from policygrad.algos import algorithm
    from policygrad.run.configure import make_config

    if not isinstance(values, dict):
        raise UserInputError(f"{source}: the config must be a JSON object, not {type(values).__name__}")
    values = dict(values)
    algo = values.pop("algo", None)
    if not isinstance(algo, str):
        raise UserInputError(f"{source}: algo={algo!r} is not an algorithm name")
    config_cls = algorithm(algo).Config
    fields = {f.name: f for f in user_fields(config_cls)}
    for name, value in values.items():
        if name not in fields:
            raise UserInputError(f"{source}: {name!r} is not a field of {config_cls.__name__}")
        annotation = str(fields[name].type)
        if not _type_ok(annotation, value):
            raise UserInputError(f"{source}: {name}={value!r} is invalid: expected a value of type {annotation}, "
                                 f"not {type(value).__name__}")
    check_env_trusted(values.get("env_id", config_cls.env_id), trust_env, source)
    check_network_trusted(values.get("network", ""), trust_env if trust_network is None else trust_network, source)
    preset = values.get("preset")
    if is_preset_file(preset):
        # The record holds every field's value, and recorded values win over a preset's: the file adds
        # nothing, and reading it again would only fail once it is moved, deleted or relative to another
        # directory. Its name stays in the config, saying where the values came from.
        del values["preset"]
        return dataclasses.replace(make_config(algo, preset="none", **values), preset=preset)
    return make_config(algo, **values)
