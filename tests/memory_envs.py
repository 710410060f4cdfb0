"""Small environments that need memory (tests/test_recurrent.py).

``CueEnv``: the first observation shows a cue, -1 or +1 (drawn from the env's generator), in its first
entry; every later observation is the same ``[0, 1]`` whatever the cue was. An episode lasts
``length`` steps; only the action of the last step pays: 1 if it names the cue (action 1 for +1, 0
for -1), else 0. A feed-forward policy sees the same observation at the last step after either cue,
so its action there is the same for both: it earns 1 in at most the share of episodes whose cue is the
one it picked (half, in expectation). A recurrent policy can carry the cue over and earn 1 every time.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class CueEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, length: int = 3) -> None:
        self.length = length
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t, self.cue = 0, 1.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.cue = float(self.np_random.choice([-1.0, 1.0]))
        return np.array([self.cue, 0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        last = self.t >= self.length
        reward = float(int(action) == int(self.cue > 0)) if last else 0.0
        return np.array([0.0, 1.0], dtype=np.float32), reward, last, False, {}


class NoisyEnv(gym.Env):
    """Random observations, episodes that end by termination (``end`` = terminate, at a random step from
    2 to 5) or by truncation (a ``TimeLimit`` of 4 steps, ``end`` = truncate): for the state-reset tests."""

    metadata = {"render_modes": []}

    def __init__(self, end: str = "terminate") -> None:
        self.end = end
        self.observation_space = gym.spaces.Box(-3.0, 3.0, (3,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t, self.stop = 0, 3

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.stop = int(self.np_random.integers(2, 6))
        return self.np_random.normal(size=3).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.end == "terminate" and self.t >= self.stop
        return self.np_random.normal(size=3).astype(np.float32), 1.0, terminated, False, {}


def truncated_noisy_env() -> gym.Env:
    return gym.wrappers.TimeLimit(NoisyEnv("truncate"), max_episode_steps=4)
