"""Small synthetic image environments (importable as 'image_envs:...': pytest puts ``tests/`` on
``sys.path``).

Each step shows one bright pixel on a dark image; the reward is 1 when the action names the half of
the image the pixel is in (0: left, 1: right), else 0. Episodes last ``LENGTH`` steps, so a random
policy scores LENGTH / 2 on average and a perfect one LENGTH. The classes differ only in the layout
(CHW or HWC), the dtype (uint8 in [0, 255] or float32 in [0, 1]) and the size.
"""

import gymnasium as gym
import numpy as np
import torch

LENGTH = 8


class BrightPixelEnv(gym.Env):
    """The bright-pixel task on a ``channels x size x size`` image, laid out CHW or HWC, uint8 or float."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    channels_first = True
    dtype: type = np.uint8
    size = 10
    channels = 1

    def __init__(self, render_mode=None):
        shape = ((self.channels, self.size, self.size) if self.channels_first
                 else (self.size, self.size, self.channels))
        high = 255 if self.dtype == np.uint8 else 1.0
        self.observation_space = gym.spaces.Box(0, high, shape, self.dtype)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.t, self.column = 0, 0

    def _obs(self):
        row, self.column = self.np_random.integers(0, self.size, 2)
        image = np.zeros(self.observation_space.shape, self.dtype)
        bright = 255 if self.dtype == np.uint8 else 1.0
        if self.channels_first:
            image[:, row, self.column] = bright
        else:
            image[row, self.column, :] = bright
        self._image = image
        return image

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        right = self.column >= self.size // 2
        reward = float(int(action) == int(right))
        self.t += 1
        return self._obs(), reward, self.t >= LENGTH, False, {}

    def render(self):
        image = self._image if not self.channels_first else np.moveaxis(self._image, 0, -1)
        grey = image[..., :1] if self.dtype == np.uint8 else (image[..., :1] * 255).astype(np.uint8)
        return np.repeat(grey, 3, axis=-1)


class BrightPixelCHW(BrightPixelEnv):
    """1 x 10 x 10 uint8, channels first (the IMPALA encoder's size; too small for the Nature CNN)."""


class BrightPixelHWC(BrightPixelEnv):
    """10 x 10 x 3 uint8, channels last."""

    channels_first = False
    channels = 3


class BrightPixelFloatHWC(BrightPixelEnv):
    """10 x 10 x 1 float32 in [0, 1], channels last."""

    channels_first = False
    dtype = np.float32


class BrightPixelNature(BrightPixelEnv):
    """36 x 36 x 4 uint8, channels last: the smallest image the Nature CNN takes."""

    channels_first = False
    size = 36
    channels = 4


class BrightPixelNatureCHW(BrightPixelEnv):
    """4 x 36 x 36 float32 in [0, 1], channels first."""

    size = 36
    channels = 4
    dtype = np.float32


class AmbiguousImage(BrightPixelEnv):
    """10 x 10 x 10 uint8: no axis is smaller than the others, the layout cannot be told."""

    channels = 10


class WideFloatImage(BrightPixelEnv):
    """A float image whose Box goes up to 255: not an image by the rule (floats must be in [0, 1])."""

    dtype = np.float32

    def __init__(self, render_mode=None):
        super().__init__(render_mode)
        self.observation_space = gym.spaces.Box(0.0, 255.0, self.observation_space.shape, np.float32)


class GreyFrame(gym.Env):
    """An 84 x 84 uint8 grey frame without a channel axis (rank 2): not an image by the rule."""

    observation_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((84, 84), np.uint8), {}

    def step(self, action):
        return np.zeros((84, 84), np.uint8), 0.0, True, False, {}


class UserCNN(torch.nn.Module):
    """A user's own small CNN for CHW uint8 images (``network='image_envs:UserCNN'``): it gets float32
    copies of the raw pixels (0-255) and scales them itself; forward returns (logits, value)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        channels, height, width = observation_space.shape
        self.conv = torch.nn.Sequential(torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Flatten())
        self.policy = torch.nn.Linear(8 * height * width, int(action_space.n))
        self.value = torch.nn.Linear(8 * height * width, 1)

    def forward(self, obs: torch.Tensor):
        features = self.conv(obs / 255.0)
        return self.policy(features), self.value(features)


class Catch(gym.Env):
    """bsuite's Catch from pixels: a ball falls from a random column of the top row, one row a step; the
    paddle on the bottom row moves left, stays or moves right (actions 0, 1, 2). The episode ends when the
    ball reaches the bottom row: reward +1 if the paddle is under it, else -1 (a random policy scores about
    -0.6, a perfect one 1). The 12 x 12 board is drawn 3 pixels a cell: 1 x 36 x 36 uint8, the Nature CNN's
    smallest input. Learning takes some credit assignment over the 11 steps of an episode (benchmarks/
    bf16_effect.py compares fp32 and bf16 on it)."""

    cells, scale = 12, 3

    def __init__(self, render_mode=None):
        side = self.cells * self.scale
        self.observation_space = gym.spaces.Box(0, 255, (1, side, side), np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self.ball = self.paddle = (0, 0)

    def _obs(self):
        board = np.zeros((self.cells, self.cells), np.uint8)
        board[self.ball] = 255
        board[self.paddle] = 255
        return np.kron(board, np.ones((self.scale, self.scale), np.uint8))[None]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.ball = (0, int(self.np_random.integers(self.cells)))
        self.paddle = (self.cells - 1, self.cells // 2)
        return self._obs(), {}

    def step(self, action):
        column = int(np.clip(self.paddle[1] + int(action) - 1, 0, self.cells - 1))
        self.paddle = (self.cells - 1, column)
        self.ball = (self.ball[0] + 1, self.ball[1])
        done = self.ball[0] == self.cells - 1
        reward = (1.0 if self.ball[1] == column else -1.0) if done else 0.0
        return self._obs(), reward, done, False, {}
