"""Building a config for a run: presets under the caller's values (:func:`make_config`), and the
checks that need the environment or the device (:func:`check_runnable`).

A config object is plain data: constructing one validates its values and touches nothing else
(:mod:`policygrad.core.config`). Whether its environment exists, whether that environment's spaces
fit the networks and action heads it asks for, and whether its device exists are questions about
this machine, asked here, before any training step, with the same one-line UserInputErrors.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from policygrad.algos import algorithm
from policygrad.core.config import Config, UserTypeError, applying_preset, coerce_field_values, reject_value
from policygrad.core.distributions import check_action_space
from policygrad.core.envs import check_env_id, env_kwargs_for, env_spaces
from policygrad.core.networks import check_observation_space
from policygrad.core.precision import warn_if_slow
from policygrad.core.runtime import resolve_device
from policygrad.run.presets import preset_values


def check_runnable(config: Config) -> None:
    """Raise UserInputError unless ``config`` can run here: its environment can be made, its spaces fit
    the networks and heads it builds, and an explicit device exists on this machine (the environment
    made with the config's ``env_kwargs``)."""
    with env_kwargs_for(config.env_id, config.env_kwargs):
        _check_runnable(config)


def _check_runnable(config: Config) -> None:
    check_env_id(config.env_id)
    observation_space, action_space = env_spaces(config.env_id)
    check_observation_space(config, observation_space)
    check_action_space(action_space, config.distribution)
    if config.log_std_init != 0.0 and not isinstance(action_space, gym.spaces.Box):
        reject_value("log_std_init", config.log_std_init, f"0 here: the discrete {action_space} has no std to start")
    if config.device != "auto":
        resolve_device(config.device)  # an explicit device this machine lacks fails now, not mid-run
    if config.precision != "fp32":  # bf16 without native bf16 instructions: warned once
        warn_if_slow(config.precision, resolve_device(config.device).type)


def make_config(algo: str, preset: str = "auto", **values: Any) -> Config:
    """A validated config for ``algo`` that can run here; ``values`` may come from JSON or YAML
    (lists become tuples).

    ``preset="auto"`` starts from the tuned values for the environment (``run/presets/ALGO.yaml``)
    when there are some; ``values`` always win over the preset. This is the one place a preset is
    applied (the command line, studies and tuning come here): a config class built directly applies
    none and records ``preset='none'``. An unknown field name is a ``TypeError`` (as from the class).
    """
    if not isinstance(algo, str):
        raise UserTypeError(f"algo={algo!r} is invalid: expected a value of type str (an algorithm name), "
                            f"not {type(algo).__name__}")
    config_cls = algorithm(algo).Config
    env_id = values.get("env_id", config_cls.env_id)
    check_env_id(env_id)  # before the preset lookup, so a typo is named as such
    name, tuned = preset_values(algo, env_id, values.pop("preset", preset))
    merged = {**coerce_field_values(config_cls, tuned), **coerce_field_values(config_cls, values)}
    with applying_preset():
        config = config_cls(preset=name, **merged)
    check_runnable(config)
    return config
