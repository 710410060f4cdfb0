"""Tiny deterministic environments for tests (importable as 'probe_envs:...' because pytest puts
``tests/`` on ``sys.path``).

Their episodes have a known length and known rewards, so episode bookkeeping, autoreset masks and
quotas can be checked against exact numbers.
"""

import gymnasium as gym
import numpy as np


class CountingEnv(gym.Env):
    """Every episode lasts exactly ``length`` steps with reward 1.0 per step; the action is ignored.

    The observation is the number of steps taken so far in the episode (0.0 after reset, ``length``
    at the final observation). The episode ends by termination, or by truncation if ``truncate``.
    """

    observation_space = gym.spaces.Box(0.0, np.inf, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int = 3, truncate: bool = False):
        self.length, self.truncate = length, truncate
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= self.length
        obs = np.array([float(self.t)], np.float32)
        return obs, 1.0, end and not self.truncate, end and self.truncate, {}


class TruncatingEnv(CountingEnv):
    """A :class:`CountingEnv` whose episodes are cut by a time limit (truncated) after ``length`` steps."""

    def __init__(self, length: int = 4):
        super().__init__(length=length, truncate=True)
