"""The algorithms, by the name the command line and configs use."""

from __future__ import annotations

from policygrad.algos.a2c import A2C
from policygrad.algos.a3c import A3C
from policygrad.algos.actor_critic import OneStepActorCritic
from policygrad.algos.ppo import PPO
from policygrad.algos.reinforce import Reinforce

ALGORITHMS = {
    "reinforce": Reinforce,
    "actor_critic": OneStepActorCritic,
    "a2c": A2C,
    "a3c": A3C,
    "ppo": PPO,
}


def algorithm(name: str):
    """The algorithm class called ``name``; ValueError naming the known ones otherwise."""
    import difflib

    if name not in ALGORITHMS:
        close = difflib.get_close_matches(str(name), list(ALGORITHMS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"algo={name!r} is not an algorithm: expected one of {' | '.join(ALGORITHMS)}.{hint}")
    return ALGORITHMS[name]


def make_config(algo: str, preset: str = "auto", **values):
    """A validated config for ``algo``; ``values`` may come from JSON or YAML (lists become tuples).

    ``preset="auto"`` starts from the tuned values for the environment (``presets/ALGO.yaml``) when
    there are some; ``values`` always win over the preset.
    """
    from policygrad.core.config import coerce_field_values
    from policygrad.run.presets import preset_values

    config_cls = algorithm(algo).Config
    env_id = values.get("env_id", config_cls.env_id)
    name, tuned = preset_values(algo, env_id, values.pop("preset", preset))
    merged = {**coerce_field_values(config_cls, tuned), **coerce_field_values(config_cls, values)}
    return config_cls(preset=name, **merged)
