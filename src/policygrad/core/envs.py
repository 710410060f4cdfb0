"""Environments: N copies stepped as one batch, tensors in and out, episodes recorded.

Autoreset mode is chosen explicitly: NEXT_STEP, Gymnasium 1.x's default and the only mode that the
fast ``vector_entry_point`` implementations (CartPole's, for one) support. In that mode the step that
ends an episode returns the episode's *final* observation; the following step ignores its action,
resets that copy and returns reward 0 with ``terminated = truncated = False``. :class:`VecEnv` marks
such steps ``valid = False`` so that no estimator or loss ever learns from them, and so that the
final observation (needed to bootstrap a truncated episode) is simply the next stored observation.

One copy in a Gymnasium ``SyncVectorEnv`` (MuJoCo's tuned presets collect with one) is stepped
directly: the same calls to the environment and the same NEXT_STEP autoreset, the vector env's own
state kept as its ``step`` keeps it (checkpoints save it), without its per-step bookkeeping of infos
and batching (~70 us a step, half of a HalfCheetah step).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from policygrad.core.atari import is_atari_id, make_atari_env, register_atari
from policygrad.core.config import did_you_mean, import_user_module
from policygrad.core.errors import NonFiniteError, UserInputError
from policygrad.core.images import storage_dtype
from policygrad.core.masks import ObservationAdapter, current_masking, observation_adapter
from policygrad.core.partial_obs import register_partially_observed

register_partially_observed()  # CartPoleNoVel-v1 and the others are ids like any Gymnasium id


def check_env_id(env_id: str) -> None:
    """Raise UserInputError unless ``env_id`` is a registered Gymnasium id or an importable ``module:attr``."""
    if not isinstance(env_id, str) or not env_id:
        raise UserInputError(f"env_id={env_id!r} is invalid: expected a Gymnasium id such as 'CartPole-v1' or "
                             "'module:Class'")
    if is_atari_id(env_id) and env_id not in gym.registry:
        register_atari()  # ALE ids need no manual step; without the atari extra: a one-line error naming it
    if env_id in gym.registry:
        return
    if ":" in env_id:
        module_name, _, attr = env_id.partition(":")
        try:
            module = import_user_module(module_name)
        except ImportError as exc:
            raise UserInputError(f"env_id={env_id!r}: cannot import module {module_name!r} ({exc})") from None
        if not callable(getattr(module, attr, None)):
            raise UserInputError(f"env_id={env_id!r}: module {module_name!r} has no callable {attr!r}")
        return
    raise UserInputError(
        f"env_id={env_id!r} is not a registered Gymnasium environment.{did_you_mean(env_id, list(gym.registry))}"
    )


# The environment arguments of the run being trained, evaluated or recorded (a config's ``env_kwargs``):
# set by the entry points (train, evaluate, load, video) around their work, read wherever a copy of that
# environment is made, so that the code in between (collectors, evaluations) needs no parameter for it.
_ENV_KWARGS: contextvars.ContextVar[tuple[str, dict[str, Any]] | None] = contextvars.ContextVar(
    "env_kwargs", default=None)


@contextlib.contextmanager
def env_kwargs_for(env_id: str, env_kwargs: dict[str, Any]) -> Iterator[None]:
    """Within this context every copy of ``env_id`` is made with ``env_kwargs`` (explicit keyword
    arguments of a call win over them). Spawned processes do not inherit it: A3C's workers enter it again
    with their config's env_kwargs."""
    token = _ENV_KWARGS.set((env_id, dict(env_kwargs)) if env_kwargs else None)
    try:
        yield
    finally:
        _ENV_KWARGS.reset(token)


def current_env_kwargs(env_id: str) -> dict[str, Any]:
    """The environment arguments in effect for ``env_id`` (:func:`env_kwargs_for`; {} outside one)."""
    current = _ENV_KWARGS.get()
    return dict(current[1]) if current is not None and current[0] == env_id else {}


def make_env_fn(env_id: str, training: bool = False, **kwargs: Any) -> Callable[[], gym.Env]:
    """A function that makes one copy of ``env_id`` (a registered id or ``module:Class`` / ``module:fn``).
    ``training``: the copy a run learns from, where that differs (Atari: life loss ends an episode,
    rewards clipped; core/atari.py); otherwise the copy an evaluation plays."""
    check_env_id(env_id)
    kwargs = {**current_env_kwargs(env_id), **kwargs}
    if is_atari_id(env_id):
        return lambda: make_atari_env(env_id, training=training, **kwargs)
    if env_id in gym.registry:
        return lambda: gym.make(env_id, **kwargs)
    module_name, _, attr = env_id.partition(":")
    factory = getattr(import_user_module(module_name), attr)
    return lambda: factory(**kwargs)


def make_gym_vector_env(env_id: str, num_envs: int, training: bool = False, **kwargs: Any) -> gym.vector.VectorEnv:
    """A Gymnasium vector env in NEXT_STEP autoreset mode, natively vectorised where the id has it."""
    merged = {**current_env_kwargs(env_id), **kwargs}
    spec = gym.registry.get(env_id)
    # (not ale-py's own vector env yet: its preprocessing differs from core/atari.py's in details)
    if (spec is not None and spec.vector_entry_point is not None and not merged.get("render_mode")
            and not is_atari_id(env_id)):
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **merged)
    else:
        # the caller's arguments only: make_env_fn adds the ones in effect itself, and passing those
        # as keywords would collide with its own parameters (PartiallyObserved-v0 takes an env_id)
        env = gym.vector.SyncVectorEnv(
            [make_env_fn(env_id, training, **kwargs) for _ in range(num_envs)],
            autoreset_mode=AutoresetMode.NEXT_STEP,
        )
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:  # our masking logic relies on it; refuse anything else loudly
        raise UserInputError(f"env_id={env_id!r}: vector env autoreset mode {mode} is not NEXT_STEP")
    return env


@dataclass
class Step:
    """What one batched step returns; every tensor has shape ``(N,)`` except ``obs`` ``(N, *obs_shape)``.

    ``valid[i]`` is False when copy i only performed an autoreset on this step (see the module docs).
    """

    obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    valid: torch.Tensor


@dataclass(frozen=True)
class Episode:
    """One finished episode: its undiscounted return, its length, and the vector env's step count
    (all copies) when it ended."""

    env_index: int
    ret: float
    length: int
    end_step: int = 0


class VecEnv:
    """N copies of one environment behind a tensor interface, recording every finished episode.

    ``step`` returns a :class:`Step`; finished episodes accumulate in ``self.finished`` until
    :meth:`pop_episodes` hands them over.
    """

    def __init__(self, env: gym.vector.VectorEnv, device: torch.device | str = "cpu", games: bool = False) -> None:
        self.env = env
        self.device = torch.device(device)
        self.num_envs = env.num_envs
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space
        self.obs_dtype = storage_dtype(self.single_observation_space)  # uint8 images stay uint8
        # Dict/Tuple observations and action masks come as observation dicts (core/masks.py); decided at
        # each reset (Gymnasium's masks arrive in the reset's infos). None: plain arrays, the fast paths.
        self.masking = current_masking()
        self.adapter: ObservationAdapter | None = None
        # games: the episodes recorded are whole games, which the environment reports in its infos
        # (Atari's training form: the learner's episodes end at a lost life and see clipped rewards;
        # curves show the game's own score, core/atari.py)
        self.games = games
        self._returns = np.zeros(self.num_envs, dtype=np.float64)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)  # last step ended this copy's episode
        self.finished: list[Episode] = []
        self.step_count = 0  # environment steps taken, all copies, since this VecEnv was made
        self._single = single_sync_env(env)  # step its one copy directly (see the module)

    def _tensor(self, array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=dtype, device=self.device)

    @property
    def structured(self) -> bool:
        """Whether observations are dicts (Dict/Tuple parts, or an action mask with them)."""
        return self.adapter is not None

    def obs_tensor(self, obs: Any) -> Any:
        """Observations as :meth:`step_arrays` returns them, as the tensor (or dict of tensors) collectors store."""
        if self.adapter is not None:
            return self.adapter.tensors(obs, self.device)
        return self._tensor(obs, self.obs_dtype)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every copy (seeded from ``seed`` when given: ``seed + i`` for copy i of a sync vector
        env); episodes in flight are dropped."""
        obs, infos = self.env.reset(seed=seed)
        if seed is not None:
            self.env.action_space.seed(seed)
        self._returns[:] = 0.0
        self._lengths[:] = 0
        self._needs_reset[:] = False
        self.adapter = observation_adapter(self.env, infos, self.masking)
        if self.adapter is not None:
            obs = self.adapter.arrays(obs, infos, None, self.step_count // self.num_envs)
        return self.obs_tensor(obs)

    def step(self, actions: np.ndarray) -> Step:
        """Step every copy with ``actions`` (a NumPy array in the env's action format). A NaN or
        infinite observation or reward raises :class:`NonFiniteError` naming the copy and the step."""
        obs, reward, terminated, truncated, valid = self.step_arrays(actions)
        return Step(
            obs=self.obs_tensor(obs),
            reward=self._tensor(reward),
            terminated=self._tensor(terminated, torch.bool),
            truncated=self._tensor(truncated, torch.bool),
            valid=self._tensor(valid, torch.bool),
        )

    def step_arrays(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`step` as NumPy arrays ``(obs, reward, terminated, truncated, valid)``, reward in
        float64: for collectors that copy them straight into their buffers (five tensors a step
        cost more than CartPole itself)."""
        if self._single and self.adapter is None:
            return self._step_single(actions)
        obs, reward, terminated, truncated, infos = self.env.step(actions)
        reward = np.asarray(reward, dtype=np.float64)
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        self.step_count += self.num_envs
        if self.adapter is not None:  # the parts by path, the mask (all-allowed where the copy resets next)
            obs = self.adapter.arrays(obs, infos, (terminated | truncated) & ~self._needs_reset,
                                      self.step_count // self.num_envs)
        # One cheap check per step: a NaN or infinity anywhere makes the sum non-finite (a sum that
        # merely overflows costs the exact scan, which then finds nothing).
        if not math.isfinite(reward.sum() + _obs_sum(obs)):
            self._report_non_finite(obs, reward)
        valid = ~self._needs_reset
        self._returns += reward
        self._lengths += 1
        if not valid.all():  # copies that only reset on this step start their new episode at zero
            self._returns[~valid] = 0.0
            self._lengths[~valid] = 0
        done = (terminated | truncated) & valid
        if self.games:
            if "_game_score" in infos:
                for i in np.flatnonzero(infos["_game_score"]):
                    self.finished.append(Episode(int(i), float(infos["game_score"][i]),
                                                 int(infos["game_length"][i]), self.step_count))
        elif done.any():
            for i in np.flatnonzero(done):
                self.finished.append(Episode(int(i), float(self._returns[i]), int(self._lengths[i]),
                                             self.step_count))
        self._needs_reset = done
        return obs, reward, terminated, truncated, valid

    def _step_single(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`step_arrays` of the one copy of a ``SyncVectorEnv``, stepped as the vector env's own
        NEXT_STEP ``step`` does (a reset in place of the step after an episode's end, reward 0) and
        leaving its state as that would; the rest in scalars."""
        vector = self.env
        if not isinstance(vector, gym.vector.SyncVectorEnv):  # single_sync_env picked it
            raise RuntimeError(f"the single-env fast path needs a SyncVectorEnv, not {type(vector).__name__}")
        env = vector.envs[0]  # (looked up each step: restoring a snapshot may replace it)
        reward: SupportsFloat
        info: dict[str, Any] = {}
        if vector._autoreset_envs[0]:
            obs, _ = env.reset()
            reward, terminated, truncated = 0.0, False, False
        else:
            obs, reward, terminated, truncated, info = env.step(actions[0])
        # the vector env's state, as its step leaves it (a snapshot saves it; its own step may follow)
        vector._env_obs[0] = obs
        vector._rewards[0], vector._terminations[0], vector._truncations[0] = reward, terminated, truncated
        vector._autoreset_envs = np.logical_or(vector._terminations, vector._truncations)
        batched = np.empty((1, *np.shape(obs)), dtype=self.single_observation_space.dtype)  # a copy, as its step gives
        batched[0] = obs
        vector._observations[0] = obs
        value, done = float(reward), bool(terminated or truncated)
        self.step_count += 1
        if not math.isfinite(value + float(np.sum(batched, dtype=np.float64))):
            self._report_non_finite(batched, np.array([value]))
        if self._needs_reset[0]:  # this step only reset the copy: its new episode starts at zero
            valid = False
            self._returns[0], self._lengths[0] = 0.0, 0
        else:
            valid = True
            self._returns[0] += value
            self._lengths[0] += 1
        ended = done and valid
        if self.games:
            if "game_score" in info:
                self.finished.append(Episode(0, float(info["game_score"]), int(info["game_length"]), self.step_count))
        elif ended:
            self.finished.append(Episode(0, float(self._returns[0]), int(self._lengths[0]), self.step_count))
        self._needs_reset[0] = ended
        return (batched, np.array([value]), np.array([bool(terminated)]), np.array([bool(truncated)]),
                np.array([valid]))

    def _report_non_finite(self, obs: Any, reward: np.ndarray) -> None:
        if isinstance(obs, dict):  # the parts side by side (the index then counts across them)
            obs = np.concatenate([np.asarray(v, dtype=np.float64).reshape(self.num_envs, -1) for v in obs.values()],
                                 axis=1)
        obs = np.asarray(obs).reshape(self.num_envs, -1)
        for i in range(self.num_envs):
            for what, values in (("observation", obs[i]), ("reward", reward[i:i + 1])):
                bad = np.flatnonzero(~np.isfinite(values))
                if bad.size:
                    where = f" at index {int(bad[0])}" if what == "observation" else ""
                    raise NonFiniteError(
                        f"environment {i} of {self.num_envs} returned a non-finite {what} ({values[bad[0]]}"
                        f"{where}) at vector step {self.step_count // self.num_envs} (step "
                        f"{int(self._lengths[i]) + 1} of its episode); policygrad check-env finds such "
                        "problems before training")

    def bookkeeping(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The per-copy episode accumulators (returns, lengths, needs_reset) and the step count: what
        this wrapper adds to the environments' own state (checkpoints save it, run/snapshot.py)."""
        return self._returns, self._lengths, self._needs_reset, self.step_count

    def restore_bookkeeping(self, returns: np.ndarray, lengths: np.ndarray, needs_reset: np.ndarray,
                            step_count: int) -> None:
        """Put back :meth:`bookkeeping` (episodes already recorded as finished are dropped)."""
        self._returns, self._lengths, self._needs_reset = returns, lengths, needs_reset
        self.step_count = step_count
        self.finished = []

    def pop_episodes(self) -> list[Episode]:
        episodes, self.finished = self.finished, []
        return episodes

    def close(self) -> None:
        self.env.close()


def _obs_sum(obs: Any) -> float:
    """The sum of every number of an observation batch (or of every part of an observation dict)."""
    if isinstance(obs, dict):
        return float(sum(np.sum(v, dtype=np.float64) for v in obs.values()))
    return np.sum(obs, dtype=np.float64)


def single_sync_env(env: gym.vector.VectorEnv) -> bool:
    """Whether ``env`` is a plain ``SyncVectorEnv`` of one copy in NEXT_STEP mode, with Box
    observations and an action space whose batch of one its own step indexes by ``[0]``: then
    :class:`VecEnv` steps that copy directly."""
    return (type(env) is gym.vector.SyncVectorEnv and env.num_envs == 1
            and env.autoreset_mode == AutoresetMode.NEXT_STEP
            and isinstance(env.single_action_space, SINGLE_ACTION_SPACES)
            and isinstance(env.single_observation_space, gym.spaces.Box))


SINGLE_ACTION_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)


def make_vec_env(env_id: str, num_envs: int, device: torch.device | str = "cpu", training: bool = False,
                 **kwargs: Any) -> VecEnv:
    """``num_envs`` copies of ``env_id`` as one :class:`VecEnv` (reset it with the run's seed before use).
    ``training``: the copies a run learns from (:func:`make_env_fn`); for Atari they record whole games."""
    return VecEnv(make_gym_vector_env(env_id, num_envs, training, **kwargs), device,
                  games=training and is_atari_id(env_id))


def env_spaces(env_id: str) -> tuple[gym.Space, gym.Space]:
    """The single-copy observation and action spaces of ``env_id`` with the environment arguments in
    effect (:func:`env_kwargs_for`: ``continuous=True`` changes LunarLander's actions), made once per
    id and arguments and remembered."""
    return _env_spaces(env_id, json.dumps(current_env_kwargs(env_id), sort_keys=True))


@functools.lru_cache(maxsize=64)
def _env_spaces(env_id: str, env_kwargs_json: str) -> tuple[gym.Space, gym.Space]:
    """:func:`env_spaces` for one id and its arguments (the JSON only keys the cache: the context holds them)."""
    try:
        env = make_env_fn(env_id)()
    except ValueError:
        raise
    except Exception as exc:  # a missing extra (MuJoCo, Box2D) or a broken user env: say which, in one line
        raise UserInputError(f"env_id={env_id!r} could not be made: {type(exc).__name__}: {exc}") from exc
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()
