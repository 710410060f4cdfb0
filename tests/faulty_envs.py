"""Environments that fail on purpose, to test how training reacts (importable as 'faulty_envs:...')."""

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
