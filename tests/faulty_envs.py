"""Environments that fail on purpose, to test how training reacts (importable as 'faulty_envs:...')."""

import os
import time
from pathlib import Path

import gymnasium as gym
import numpy as np


class RaisesAfterSteps(gym.Env):
    """CartPole-shaped env that raises RuntimeError on its 50th step."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, fail_at: int = 50):
        self.fail_at, self.steps = fail_at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.steps += 1
        if self.steps >= self.fail_at:
            raise RuntimeError("boom: the environment failed on purpose")
        return np.zeros(4, np.float32), 1.0, self.steps % 10 == 0, False, {}


class _Base(gym.Env):
    """A well-behaved CartPole-shaped env (episodes of 10 steps) that the faulty ones below break in one way."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.t = 0

    def obs(self):
        return self.np_random.uniform(-0.5, 0.5, 4).astype(np.float32)

    def reward(self):
        return 1.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.obs(), {}

    def step(self, action):
        self.t += 1
        return self.obs(), self.reward(), self.t >= 10, False, {}


class WellBehaved(_Base):
    """Nothing wrong: check-env must find nothing."""


class OldResetAPI(_Base):
    """reset() returns the observation alone (the pre-Gymnasium API)."""

    def reset(self, *, seed=None, options=None):
        return super().reset(seed=seed)[0]


class OldStepAPI(_Base):
    """step() returns (obs, reward, done, info): four values."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or truncated, info


class WrongShape(_Base):
    """Observations of shape (3,) in a (4,) space."""

    def obs(self):
        return np.zeros(3, np.float32)


class OutOfBounds(_Base):
    """Observations of 2.0 in a [-1, 1] space."""

    def obs(self):
        return np.full(4, 2.0, np.float32)


class NaNObservation(_Base):
    """The 4th step of every episode returns a NaN in observation index 2."""

    def obs(self):
        obs = super().obs()
        if self.t == 4:
            obs[2] = np.nan
        return obs


class InfReward(_Base):
    """The 3rd step of every episode returns an infinite reward."""

    def reward(self):
        return float("inf") if self.t == 3 else 1.0


class HugeReward(_Base):
    """Finite rewards so large (1e38) that discounted returns overflow float32: the losses go inf/NaN."""

    def reward(self):
        return 1e38


class UnboundedActions(_Base):
    """A continuous action space without bounds."""

    action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)


class IgnoresSeed(_Base):
    """reset() draws its start state from an unseeded generator: the same seed gives different episodes."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.random.default_rng().uniform(-0.5, 0.5, 4).astype(np.float32), {}


class FailsBySeed(_Base):
    """Fails in a study according to the seed it was first reset with (a run's seed, with num_envs=1), on
    its 50th step: seed 2 raises RuntimeError; seed 3 SIGKILLs its own process once (it creates the file
    ``$FAULTY_ENVS_MARKERS/killed-3`` and behaves when that file exists); seed 4 SIGKILLs it every time.
    Any other seed (evaluation seeds, the environment check's) behaves."""

    def __init__(self):
        super().__init__()
        self.first_seed, self.steps = None, 0

    def reset(self, *, seed=None, options=None):
        if self.first_seed is None:
            self.first_seed = seed
        return super().reset(seed=seed)

    def step(self, action):
        self.steps += 1
        if self.steps == 50 and self.first_seed in (2, 3, 4):
            import os
            import signal
            from pathlib import Path

            if self.first_seed == 2:
                raise RuntimeError("boom: the environment failed on purpose")
            marker = Path(os.environ.get("FAULTY_ENVS_MARKERS", ".")) / f"killed-{self.first_seed}"
            if self.first_seed == 4 or not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return super().step(action)


class _OneMillisecondSteps(gym.Wrapper):
    def step(self, action):
        time.sleep(0.001)
        return self.env.step(action)


def cartpole_slow_when_marked(**kwargs):
    """CartPole-v1, slowed by 1 ms a step when the file ``$FAULTY_ENVS_MARKERS/slow`` exists as the copy is
    made: otherwise identical, so a study on it can be slowed down (to catch a run part way, whatever the
    machine's load) and still be compared with the same study run at full speed."""
    env = gym.make("CartPole-v1", **kwargs)
    marked = (Path(os.environ.get("FAULTY_ENVS_MARKERS", ".")) / "slow").exists()
    return _OneMillisecondSteps(env) if marked else env
