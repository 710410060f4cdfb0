"""Checking an environment for what would make training silently wrong (``policygrad check-env``).

Training trusts the environment: observations that leave their declared space, a NaN reward, a
``reset`` that ignores its seed or an action space without bounds do not crash anything, they just
make the numbers wrong or the run irreproducible. :func:`check_env` plays a few episodes and says,
in policygrad's terms, what it found:

- ``error`` (training would fail or learn from garbage): the env cannot be made; ``reset`` or
  ``step`` does not follow the Gymnasium API (signature, number and types of returned values); an
  observation of the wrong shape or outside a Discrete space; a NaN or infinite observation or
  reward; an exception raised by the env;
- ``warning`` (training runs, but maybe not as you think): observations outside the Box bounds or of
  another dtype; an action space that is unbounded; ``reset(seed=s)`` twice giving different
  episodes (the env draws from an unseeded generator: runs are not reproducible).

``train`` runs the cheap version first (``preflight``: a few dozen steps, errors stop the run before
anything is written, warnings are logged); ``policygrad check-env ENV_ID`` runs more steps and also
Gymnasium's own ``env_checker.check_env``, whose warnings it reports as such.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from policygrad.core.errors import UserInputError

log = logging.getLogger("policygrad")

HUGE_REWARD = 1e6
# Gymnasium checker warnings that do not apply to policygrad: networks do not rely on observation
# bounds, the action heads handle any finite bounds, and unbounded actions are reported in our words.
IGNORED_GYMNASIUM_WARNINGS = ("observation space minimum value is -infinity", "observation space maximum value is "
                              "infinity", "action space minimum value is -infinity", "action space maximum value "
                              "is infinity", "we recommend using a symmetric and normalized space")


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" | "warning"
    check: str  # short name of the check: make, reset, step, observation, reward, actions, seeding, gymnasium
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: [{self.check}] {self.message}"


class _Stop(Exception):
    """An error that makes further checks meaningless."""


def _make(env_id: str) -> gym.Env:
    """One raw copy, with the environment arguments in effect (:func:`policygrad.core.envs.env_kwargs_for`:
    a run's ``env_kwargs``): for registered ids without Gymnasium's passive checker (we check, in our words)."""
    from policygrad.core.envs import current_env_kwargs, make_env_fn

    if env_id in gym.registry:
        return gym.make(env_id, disable_env_checker=True, **current_env_kwargs(env_id))
    return make_env_fn(env_id)()


class _Checker:
    def __init__(self, env_id: str, seed: int) -> None:
        self.env_id, self.seed = env_id, seed
        self.findings: list[Finding] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, severity: str, check: str, message: str, key: str | None = None) -> None:
        """Record a finding once per (check, key): a problem that repeats every step is said once."""
        if (check, key or message) in self._seen:
            return
        self._seen.add((check, key or message))
        self.findings.append(Finding(severity, check, message))

    # -- calls that must follow the API -------------------------------------------------------------
    def reset(self, env: gym.Env, seed: int | None) -> Any:
        try:
            result = env.reset(seed=seed)
        except TypeError as exc:
            self.add("error", "reset", f"reset(seed={seed}) failed: {exc} (Gymnasium API: "
                     "reset(*, seed=None, options=None) -> (observation, info))")
            raise _Stop from None
        except Exception as exc:
            self.add("error", "reset", f"reset() raised {type(exc).__name__}: {exc}")
            raise _Stop from None
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            self.add("error", "reset", f"reset() returned {_describe(result)}; expected a tuple (observation, "
                     "info dict) (old Gym API returned the observation alone)")
            raise _Stop
        self.observation(env, result[0], "reset()")
        return result[0]

    def step(self, env: gym.Env, action: Any, where: str) -> tuple[Any, SupportsFloat, bool, bool]:
        try:
            result = env.step(action)
        except Exception as exc:
            self.add("error", "step", f"step() raised {type(exc).__name__} at {where}: {exc}")
            raise _Stop from None
        if not (isinstance(result, tuple) and len(result) == 5):
            hint = " (old Gym API: one done flag instead of terminated and truncated)" if \
                isinstance(result, tuple) and len(result) == 4 else ""
            self.add("error", "step", f"step() returned {_describe(result)}; expected a tuple (observation, "
                     f"reward, terminated, truncated, info){hint}")
            raise _Stop
        obs, reward, terminated, truncated, info = result
        self.observation(env, obs, f"step() at {where}")
        if not isinstance(reward, (int, float, np.integer, np.floating)) or isinstance(reward, bool):
            self.add("error", "reward", f"step() returned a reward of type {type(reward).__name__} at {where}; "
                     "expected a number", key="type")
        elif not np.isfinite(reward):
            self.add("error", "reward", f"step() returned a non-finite reward ({reward}) at {where}", key="finite")
        elif abs(reward) > HUGE_REWARD:
            self.add("warning", "reward", f"step() returned a reward of {reward:g} at {where}: returns of such "
                     "rewards lose precision or overflow float32; scale them (reward_norm=scale)", key="huge")
        for name, flag in (("terminated", terminated), ("truncated", truncated)):
            if not isinstance(flag, (bool, np.bool_)):
                self.add("error", "step", f"step() returned {name}={flag!r} ({type(flag).__name__}) at {where}; "
                         "expected a bool", key=name)
        if not isinstance(info, dict):
            self.add("error", "step", f"step() returned info of type {type(info).__name__}; expected a dict",
                     key="info")
        return obs, reward, bool(terminated), bool(truncated)

    def observation(self, env: gym.Env, obs: Any, where: str) -> None:
        space = env.observation_space
        if isinstance(space, gym.spaces.Box):
            array = np.asarray(obs)
            if array.shape != space.shape:
                self.add("error", "observation", f"{where} returned an observation of shape {array.shape}; the "
                         f"observation space declares {space.shape}", key="shape")
                return
            if array.dtype.kind not in "biuf":
                self.add("error", "observation", f"{where} returned an observation of dtype {array.dtype}; "
                         "expected numbers", key="dtype")
                return
            if not np.isfinite(array).all():
                self.add("error", "observation", f"{where} returned a non-finite observation {_first_bad(array)}",
                         key="finite")
                return
            if array.dtype != space.dtype:
                self.add("warning", "observation", f"{where} returned dtype {array.dtype}, the space declares "
                         f"{space.dtype} (values are converted to float32 for the network)", key="dtype")
            low, high = np.broadcast_to(space.low, space.shape), np.broadcast_to(space.high, space.shape)
            outside = np.flatnonzero((array < low) | (array > high))
            if outside.size:
                i = int(outside[0])
                self.add("warning", "observation",
                         f"{where} returned an observation outside the declared bounds (index {i}: "
                         f"{array.ravel()[i]} not in [{low.ravel()[i]}, {high.ravel()[i]}]): the space does not "
                         "describe what the env returns (fix its bounds; normalize_obs=true rescales large "
                         "values)", key="bounds")
        elif not space.contains(obs):
            self.add("error", "observation", f"{where} returned {obs!r}, which is not in {space}", key="contains")

    # -- the checks ------------------------------------------------------------------------------------
    def action_space(self, env: gym.Env) -> None:
        space = env.action_space
        if isinstance(space, gym.spaces.Box):
            if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
                self.add("warning", "actions", f"the action space {space} is unbounded: Gaussian actions are "
                         "sent to the env unclipped and can be arbitrarily large, and the tanh and beta heads "
                         "need finite bounds; declare the range the env really accepts")
        elif not isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
            self.add("error", "actions", f"the action space {space} is not supported (Box, Discrete, "
                     "MultiDiscrete or MultiBinary)")

    def episodes(self, env: gym.Env, steps: int) -> None:
        env.action_space.seed(self.seed)
        self.reset(env, self.seed)
        episode_step = 0
        for t in range(steps):
            _, _, terminated, truncated = self.step(env, env.action_space.sample(), f"step {episode_step + 1} "
                                                    f"of an episode (step {t + 1} of the check)")
            episode_step += 1
            if terminated or truncated:
                self.reset(env, None)
                episode_step = 0

    def seeding(self, steps: int) -> None:
        """Two fresh copies reset with the same seed and driven by the same actions must agree."""
        trajectories = []
        for _ in range(2):
            env = _make(self.env_id)
            try:
                env.action_space.seed(self.seed)
                record = [(_comparable(env, self.reset(env, self.seed)), 0.0)]
                for _ in range(steps):
                    obs, reward, terminated, truncated = self.step(env, env.action_space.sample(), "the seeding check")
                    record.append((_comparable(env, obs), float(reward)))
                    if terminated or truncated:
                        break
                trajectories.append(record)
            finally:
                env.close()
        differ = [i for i, (a, b) in enumerate(zip(*trajectories)) if not _same(a, b)]
        if differ or len(trajectories[0]) != len(trajectories[1]):
            first = differ[0] if differ else min(map(len, trajectories))
            where = "the first observation" if first == 0 else f"step {first}"
            self.add("warning", "seeding", f"two copies reset with seed={self.seed} and given the same actions "
                     f"differ at {where}: the env draws from a generator reset() does not seed (use "
                     "self.np_random after super().reset(seed=seed)); runs will not be reproducible")

    def gymnasium(self) -> None:
        from gymnasium.utils.env_checker import check_env as gymnasium_check_env

        env = _make(self.env_id)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    gymnasium_check_env(env.unwrapped, skip_render_check=True)
                except Exception as exc:  # stricter than training needs: our own checks said what matters
                    self.add("warning", "gymnasium", f"Gymnasium's env checker stopped: {type(exc).__name__}: {exc}")
            for w in caught:
                message = str(w.message).removeprefix("\x1b[33m").removesuffix("\x1b[0m").removeprefix("WARN: ")
                if not any(text in message for text in IGNORED_GYMNASIUM_WARNINGS):
                    self.add("warning", "gymnasium", f"Gymnasium's env checker: {message}")
        finally:
            env.close()


def check_env(env_id: str, steps: int = 300, seed: int = 0, gymnasium_checker: bool = True,
              env_kwargs: Mapping[str, Any] | None = None) -> list[Finding]:
    """Play ``steps`` random steps of ``env_id`` (and check seeding, spaces and, with
    ``gymnasium_checker``, Gymnasium's own checks); returns the findings, errors first. ``env_kwargs``:
    the environment's keyword arguments (default: those in effect, a run's ``env_kwargs``)."""
    if env_kwargs is not None:
        from policygrad.core.config import check_json_mapping
        from policygrad.core.envs import env_kwargs_for

        check_json_mapping("env_kwargs", env_kwargs)
        with env_kwargs_for(env_id, dict(env_kwargs)):
            return check_env(env_id, steps, seed, gymnasium_checker)
    checker = _Checker(env_id, seed)
    try:
        try:
            env = _make(env_id)
        except Exception as exc:
            checker.add("error", "make", f"the environment could not be made: {type(exc).__name__}: {exc}")
            raise _Stop from None
        try:
            checker.action_space(env)
            checker.episodes(env, steps)
        finally:
            env.close()
        if not any(f.severity == "error" for f in checker.findings):
            checker.seeding(min(steps, 20))
        if gymnasium_checker and not any(f.severity == "error" for f in checker.findings):
            checker.gymnasium()
    except _Stop:
        pass
    return sorted(checker.findings, key=lambda f: f.severity != "error")


def preflight(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> list[Finding]:
    """The cheap check ``train`` runs first: errors raise UserInputError (nothing has run yet), warnings
    are logged. Returns the warnings. ``env_kwargs``: as :func:`check_env`'s."""
    findings = check_env(env_id, steps=30, gymnasium_checker=False, env_kwargs=env_kwargs)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise UserInputError(f"env_id={env_id!r} fails the environment check: "
                             + "; ".join(f"[{f.check}] {f.message}" for f in errors)
                             + " (policygrad check-env ENV_ID explains; train(..., check_env=False) skips the check)")
    for finding in findings:
        log.warning("env_id=%r: %s", env_id, finding.message)
    return findings


def _comparable(env: gym.Env, obs: Any) -> np.ndarray:
    """An observation as one array to compare: Dict/Tuple observations flattened by Gymnasium (their parts
    side by side), a part that cannot be flattened (Text) by its text."""
    if isinstance(env.observation_space, (gym.spaces.Dict, gym.spaces.Tuple)):
        try:
            return np.asarray(gym.spaces.flatten(env.observation_space, obs))
        except (NotImplementedError, TypeError, ValueError):
            return np.asarray(repr(obs))
    return np.asarray(obs)


def _same(a: tuple[np.ndarray, float], b: tuple[np.ndarray, float]) -> bool:
    (obs_a, reward_a), (obs_b, reward_b) = a, b
    return (obs_a.shape == obs_b.shape and np.array_equal(obs_a, obs_b, equal_nan=obs_a.dtype.kind == "f")
            and (reward_a == reward_b or (np.isnan(reward_a) and np.isnan(reward_b))))


def _describe(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} values"
    return f"a {type(value).__name__}"


def _first_bad(array: np.ndarray) -> str:
    i = int(np.flatnonzero(~np.isfinite(array))[0])
    return f"({array.ravel()[i]} at index {i})"
