"""Partially observed tasks: an observation wrapper that hides chosen indices, and registered ids.

A policy that sees positions but no velocities must infer the velocities from what it saw before: a
task for a recurrent policy (core/recurrent.py). The ids follow RL Baselines3 Zoo's recurrent
benchmarks:

- ``CartPoleNoVel-v1``: CartPole-v1 without the cart's and the pole's velocities (indices 1, 3);
- ``PendulumNoVel-v1``: Pendulum-v1 without the angular velocity (index 2);
- ``LunarLanderNoVel-v3``: LunarLander-v3 without its linear and angular velocities (2, 3, 5);
- ``PartiallyObserved-v0``: any Box-observation environment, ``env_id`` and ``hide`` (a list of
  flat indices) given as environment arguments, e.g. ``--env PartiallyObserved-v0 --env-kwargs
  '{"env_id": "Acrobot-v1", "hide": [4, 5]}'``; other keys go to the inner environment.

Environment arguments are how policygrad already passes options to an environment (a config's
``env_kwargs``, JSON): the wrapper needs no field of its own, and a run's record rebuilds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from policygrad.core.errors import UserInputError

# id -> (the full environment, the indices hidden)
NO_VELOCITY = {
    "CartPoleNoVel-v1": ("CartPole-v1", (1, 3)),
    "PendulumNoVel-v1": ("Pendulum-v1", (2,)),
    "LunarLanderNoVel-v3": ("LunarLander-v3", (2, 3, 5)),
}
GENERIC_ID = "PartiallyObserved-v0"


class HideObservation(gym.ObservationWrapper):
    """Removes the entries ``hide`` (flat indices) from a Box observation; the observation space keeps
    the other entries' bounds, flattened."""

    def __init__(self, env: gym.Env, hide: Sequence[int]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise UserInputError(f"hide={list(hide)}: hiding observation entries needs a Box observation space, "
                                 f"not {space}")
        size = int(np.prod(space.shape))
        if isinstance(hide, (str, bytes)) or any(not isinstance(i, (int, np.integer)) or isinstance(i, bool)
                                                 for i in hide):
            raise UserInputError(f"hide={hide!r} is invalid: expected a list of integer indices in [0, {size})")
        hidden = sorted({int(i) for i in hide})
        if not hidden or hidden[0] < 0 or hidden[-1] >= size:
            raise UserInputError(f"hide={list(hide)!r} is invalid: expected one or more indices in [0, {size}) of "
                                 f"the flattened observation {space.shape}")
        if len(hidden) == size:
            raise UserInputError(f"hide={hidden} hides every entry of the observation: keep at least one")
        self.kept = np.array([i for i in range(size) if i not in set(hidden)], dtype=np.int64)
        low, high = space.low.reshape(-1)[self.kept], space.high.reshape(-1)[self.kept]
        self.observation_space = gym.spaces.Box(low, high, dtype=space.dtype)

    def observation(self, observation: Any) -> np.ndarray:
        return np.asarray(observation).reshape(-1)[self.kept]


def make_partially_observed(env_id: str, hide: Sequence[int], **kwargs: Any) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)`` with the observation entries ``hide`` removed."""
    if not isinstance(env_id, str) or env_id not in gym.registry:
        raise UserInputError(f"env_id={env_id!r} is invalid for {GENERIC_ID}: expected a registered Gymnasium id "
                             "(given in env_kwargs, with hide)")
    if not isinstance(hide, (list, tuple)):
        raise UserInputError(f"hide={hide!r} is invalid: expected a list of observation indices")
    return HideObservation(gym.make(env_id, **kwargs), hide)


def register_partially_observed() -> None:
    """Register the ids above with Gymnasium (once; their inner environments are made on use)."""
    entry = f"{__name__}:make_partially_observed"
    for env_id, (inner, hide) in NO_VELOCITY.items():
        if env_id not in gym.registry:
            # The inner id keeps its own time limit; the outer adds none (no max_episode_steps).
            gym.register(env_id, entry_point=entry, kwargs={"env_id": inner, "hide": list(hide)})
    if GENERIC_ID not in gym.registry:
        gym.register(GENERIC_ID, entry_point=entry)
