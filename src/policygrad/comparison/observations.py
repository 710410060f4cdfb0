"""What a comparison's other methods (``random``, ``sb3:*``) see of an environment: its arguments, its
observations and its action masks, as policygrad's own methods see them.

- **Environment arguments and masking** travel in the protocol (``env_kwargs``, ``action_masking``):
  :func:`protocol_env` puts them in effect around an external run, in the worker process that runs it,
  as ``train`` does around a policygrad run.
- **Observations** in the evaluation protocol come from :class:`policygrad.core.envs.VecEnv`: a plain
  array, or for Dict/Tuple spaces a flat dict of parts by path (:mod:`policygrad.core.structured`);
  :func:`split_batch` takes the action mask off it (with a mask, a plain observation rides under
  ``"obs"``). A one-level Dict's paths are its keys, so SB3's ``MultiInputPolicy`` reads the dict as
  it is.
- **Masks**: ``random`` samples uniformly among the allowed actions (:class:`RandomPolicy`); SB3 acts
  under them through sb3-contrib's ``MaskablePPO``, which reads ``env.action_masks()``:
  :class:`SB3MaskAdapter` offers that method whatever the environment's convention is, and takes the
  mask key off a Dict observation (a mask is never a feature, as policygrad's encoders skip it).
  :func:`sb3_problem` says in one line why an SB3 method cannot run on an environment (a Tuple or
  nested Dict observation, which SB3 takes no policy for; masks without MaskablePPO).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from policygrad.core.envs import env_kwargs_for, make_vec_env
from policygrad.core.images import is_image_space
from policygrad.core.masks import SOURCES, masking_for
from policygrad.core.structured import MASK_KEY, NATURE_MIN_SIZE, OBS_KEY, is_structured

SB3_PART_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)
RANDOM_SPACES = (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.Box, gym.spaces.MultiBinary)
MASKABLE = {"ppo": "MaskablePPO"}  # the SB3 methods sb3-contrib has a maskable version of
SB3_CONTRIB_INSTALL = "pip install sb3-contrib"


@contextlib.contextmanager
def protocol_env(protocol: Mapping[str, Any]) -> Iterator[None]:
    """The protocol's environment arguments and masking mode in effect (every copy made inside gets them)."""
    with env_kwargs_for(protocol["env_id"], dict(protocol.get("env_kwargs") or {})), \
            masking_for(str(protocol.get("action_masking", "auto"))):
        yield


def mask_source(env_id: str) -> str | None:
    """How ``env_id`` gives action masks (``observation``, ``info``, ``method``: :mod:`policygrad.core.masks`),
    None when it gives none; with the environment arguments in effect. One copy, reset once."""
    with masking_for("auto"):
        envs = make_vec_env(env_id, 1)
    try:
        envs.reset(seed=0)
        return envs.adapter.source if envs.adapter is not None else None
    finally:
        envs.close()


def split_batch(obs: Any) -> tuple[Any, np.ndarray | None]:
    """A batch of observations as :class:`~policygrad.core.envs.VecEnv` gives it (an array, a tensor, or a
    dict of them by path) as NumPy: ``(observation, mask)``, the mask ``(N, width)`` bool or None. A plain
    observation comes back as a float32 array (as SB3's policies and the random policy take it)."""
    if not isinstance(obs, dict):
        return np.asarray(_numpy(obs), dtype=np.float32), None
    parts = {path: _numpy(value) for path, value in obs.items()}
    mask = parts.pop(MASK_KEY, None)
    if set(parts) == {OBS_KEY}:
        return np.asarray(parts[OBS_KEY], dtype=np.float32), mask
    return parts, mask


def _numpy(value: Any) -> np.ndarray:
    return value.numpy(force=True) if hasattr(value, "numpy") else np.asarray(value)


# -- the random policy ----------------------------------------------------------------------------------
def random_problem(space: gym.Space) -> str | None:
    """Why ``random`` cannot act in ``space`` (None: it can)."""
    if isinstance(space, RANDOM_SPACES):
        return None
    return f"it samples Discrete, MultiDiscrete, MultiBinary or Box actions, not {type(space).__name__}"


class RandomPolicy:
    """Uniform random actions for a batch, among the allowed ones when a mask is given: ``(obs, mask)``
    -> ``(N, *action_shape)``, ``mask`` ``(N, width)`` bool (a MultiDiscrete's dimensions side by side)."""

    def __init__(self, space: gym.Space, rng: np.random.Generator) -> None:
        problem = random_problem(space)
        if problem is not None:
            raise ValueError(f"random: {problem}")
        self.space, self.rng = space, rng

    def __call__(self, obs: Any, mask: np.ndarray | None) -> np.ndarray:
        n = len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
        space = self.space
        if isinstance(space, gym.spaces.Discrete):
            return space.start + self._choose(n, int(space.n), mask)
        if isinstance(space, gym.spaces.MultiDiscrete):
            nvec = space.nvec.reshape(-1)
            offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
            columns = [self._choose(n, int(k), None if mask is None else mask[:, o:o + k])
                       for k, o in zip(nvec, offsets)]
            return (np.stack(columns, axis=1) + np.asarray(space.start).reshape(-1)).reshape(n, *space.shape)
        if isinstance(space, gym.spaces.MultiBinary):
            return self.rng.integers(2, size=(n, *space.shape)).astype(space.dtype)
        if not isinstance(space, gym.spaces.Box):  # RANDOM_SPACES, checked when made
            raise RuntimeError(f"random: no sampler for {space}")
        return self.rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(space.dtype)

    def _choose(self, n: int, k: int, mask: np.ndarray | None) -> np.ndarray:
        """One of ``k`` choices per row, uniform over the allowed ones: the first allowed choice at or past
        a uniform rank among them (every row has at least one: the masks are checked as read)."""
        if mask is None:
            return self.rng.integers(k, size=n)
        allowed = np.asarray(mask, dtype=bool).reshape(n, k)
        rank = self.rng.integers(allowed.sum(axis=1))  # which of the row's allowed choices
        return (np.cumsum(allowed, axis=1) > rank[:, None]).argmax(axis=1)


# -- Stable-Baselines3 ----------------------------------------------------------------------------------
def sb3_observation_space(space: gym.Space) -> gym.Space:
    """The observation space SB3 sees: a Dict without its mask key (:class:`SB3MaskAdapter` takes it off)."""
    if isinstance(space, gym.spaces.Dict) and MASK_KEY in space.spaces:
        return gym.spaces.Dict({k: v for k, v in space.spaces.items() if k != MASK_KEY})
    return space


def sb3_policy(space: gym.Space) -> str:
    """SB3's policy class for an observation space (as :func:`sb3_observation_space` gives it)."""
    if isinstance(space, gym.spaces.Dict):
        return "MultiInputPolicy"
    return "CnnPolicy" if is_image_space(space) else "MlpPolicy"


def sb3_contrib_available() -> bool:
    try:
        import sb3_contrib  # noqa: F401
    except ImportError:
        return False
    return True


def sb3_problem(algo: str, space: gym.Space, source: str | None, masking: str) -> str | None:
    """Why SB3's ``algo`` cannot run on an environment with observation ``space`` whose masks come by
    ``source`` (None: none), in words that follow "sb3:ALGO cannot run on ENV: "; None when it can."""
    seen = sb3_observation_space(space)
    if isinstance(seen, gym.spaces.Tuple):
        return (f"Stable-Baselines3 has no policy for a Tuple observation space ({space}); its MultiInputPolicy "
                "takes a Dict")
    if isinstance(seen, gym.spaces.Dict):
        for key, sub in seen.spaces.items():
            if is_structured(sub) or not isinstance(sub, SB3_PART_SPACES):
                return (f"Stable-Baselines3's MultiInputPolicy takes a Dict of Box, Discrete, MultiDiscrete and "
                        f"MultiBinary parts, and part {key!r} is {type(sub).__name__} (nested Dict/Tuple: no)")
            if is_image_space(sub) and min(sorted(sub.shape or ())[1:] or (0,)) < NATURE_MIN_SIZE:
                return (f"Stable-Baselines3's MultiInputPolicy reads image part {key!r} {sub.shape} with its Nature "
                        f"CNN, which needs at least {NATURE_MIN_SIZE}x{NATURE_MIN_SIZE} pixels")
    if source is None or masking == "off":
        return None
    where = SOURCES[source]
    if algo not in MASKABLE:
        return (f"the environment gives action masks ({where}), which SB3's {algo} would ignore (sb3-contrib masks "
                f"only {', '.join(MASKABLE.values())}); compare without masks with --shared action_masking=off")
    if not sb3_contrib_available():
        return (f"the environment gives action masks ({where}), which SB3's {algo} would ignore; sb3-contrib's "
                f"{MASKABLE[algo]} obeys them ({SB3_CONTRIB_INSTALL}), or compare without masks with --shared "
                "action_masking=off")
    return None


class SB3MaskAdapter(gym.Wrapper):
    """One copy of the environment as SB3 trains on it: the mask key taken off a Dict observation, and
    the mask of the current step offered as ``action_masks()`` (sb3-contrib's convention), read by the
    environment's own convention (``source``; None: every action allowed)."""

    def __init__(self, env: gym.Env, source: str | None) -> None:
        super().__init__(env)
        self.source = source
        self.observation_space = sb3_observation_space(env.observation_space)
        self._strip = self.observation_space is not env.observation_space
        self._mask: np.ndarray | None = None

    def _seen(self, obs: Any, info: dict[str, Any]) -> Any:
        if self.source == "observation":
            self._mask = np.asarray(obs[MASK_KEY], dtype=bool)
        elif self.source == "info":
            self._mask = np.asarray(info[MASK_KEY], dtype=bool) if MASK_KEY in info else None
        if self._strip:
            obs = {k: v for k, v in obs.items() if k != MASK_KEY}
        return obs

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._seen(obs, info), info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._seen(obs, info), reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        if self.source == "method":
            return np.asarray(self.env.get_wrapper_attr("action_masks")(), dtype=bool)
        if self._mask is None:  # no mask at this step (or none read): every action allowed
            space = self.action_space
            width = int(np.sum(space.nvec)) if isinstance(space, gym.spaces.MultiDiscrete) else \
                int(getattr(space, "n", 0))
            return np.ones(width, dtype=bool)
        return self._mask
