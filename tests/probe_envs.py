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


class ReachTargetEnv(gym.Env):
    """A continuous-control probe that every policy-gradient method learns in seconds.

    A point at ``x`` must reach a target ``g`` (both drawn uniformly in [-1, 1] at reset and observed
    as ``[x, g]``). The action, a velocity in [-1, 1], moves it by ``0.25 * a``; the reward is
    ``-|x - g|`` per step and the episode is truncated after 20 steps (like Pendulum's time limit,
    so algorithms must bootstrap at truncation). Standing still scores about -13 on average, going
    straight to the target about -2: a policy must map the state to the action's sign and size.
    """

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    LENGTH, SPEED = 20, 0.25

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.goal = self.np_random.uniform(-1.0, 1.0, size=2)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.x = float(np.clip(self.x + self.SPEED * np.clip(action[0], -1.0, 1.0), -1.0, 1.0))
        self.t += 1
        return self._obs(), -abs(self.x - self.goal), False, self.t >= self.LENGTH, {}

    def _obs(self):
        return np.array([self.x, self.goal], np.float32)
