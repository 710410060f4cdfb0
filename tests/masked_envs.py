"""Small environments for action masks, Dict/Tuple observations and Box actions of rank 2 (importable as
'masked_envs:...': pytest puts ``tests/`` on ``sys.path``).

**The trap** (:class:`TrapEnv` and its variants): at every step a random subset of the actions is
allowed (at least one, at most half); an allowed action earns +1, a disallowed one -10 and ends the
episode. Episodes last ``LENGTH`` steps. So an episode's return is negative exactly when the policy took
a disallowed action, and a policy that obeys the masks scores LENGTH every episode. The variants give
the mask by each convention (info, a Dict observation's key, an ``action_masks()`` method) and for
Discrete or MultiDiscrete actions (a MultiDiscrete action is disallowed when any dimension's is).

**Image and vector** (:class:`ImageVectorEnv`): a Dict observation of a small uint8 image (one bright
pixel in the left or right half) and a vector (a sign +-1); of 4 actions the right one is
2 * (pixel in the right half) + (sign < 0): neither part alone says it, so the policy must read both
(+1 for the right action; a random policy scores LENGTH / 4, a perfect one LENGTH).

**A (2, 2) Box action** (:class:`MatrixActionEnv`): the observation is a target matrix in [-0.5, 0.5],
the reward minus the squared distance of the action to it (one step per episode).
"""

import gymnasium as gym
import numpy as np
import torch

LENGTH = 10
N_ACTIONS = 4
NVEC = (3, 4)


class TrapEnv(gym.Env):
    """The trap with Discrete(4) actions; the mask in ``info["action_mask"]`` (Gymnasium's convention).
    ``length``: the steps of an episode (an environment argument, ``env_kwargs``)."""

    convention = "info"
    multi = False

    def __init__(self, length=LENGTH):
        self.length = length
        self.nvec = NVEC if self.multi else (N_ACTIONS,)
        self.action_space = gym.spaces.MultiDiscrete(list(NVEC)) if self.multi else gym.spaces.Discrete(N_ACTIONS)
        width = int(sum(self.nvec))
        self.state_space = gym.spaces.Box(0.0, 1.0, (width,), np.float32)
        if self.convention == "observation":
            self.observation_space = gym.spaces.Dict({
                "state": self.state_space, "action_mask": gym.spaces.Box(0, 1, (width,), np.int8)})
        else:
            self.observation_space = self.state_space
        self.t, self.mask = 0, np.ones(width, np.int8)

    def _new_mask(self):
        chunks = []
        for n in self.nvec:
            allowed = self.np_random.choice(n, size=self.np_random.integers(1, max(1, n // 2) + 1), replace=False)
            chunk = np.zeros(n, np.int8)
            chunk[allowed] = 1
            chunks.append(chunk)
        self.mask = np.concatenate(chunks)

    def _obs(self):
        state = self.mask.astype(np.float32)  # the mask is visible in the state too: the task is learnable
        if self.convention == "observation":
            return {"state": state, "action_mask": self.mask.copy()}
        return state

    def _info(self):
        return {"action_mask": self.mask.copy()} if self.convention == "info" else {}

    def action_masks(self):  # only the "method" variants are read by it (the others are found first)
        return self.mask.astype(bool)

    def allowed(self, action) -> bool:
        index = np.atleast_1d(np.asarray(action)).astype(int)
        offsets = np.concatenate([[0], np.cumsum(self.nvec)[:-1]])
        return bool(all(self.mask[o + a] for o, a in zip(offsets, index)))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self._new_mask()
        return self._obs(), self._info()

    def step(self, action):
        self.t += 1
        if not self.allowed(action):
            return self._obs(), -10.0, True, False, self._info()
        self._new_mask()
        return self._obs(), 1.0, False, self.t >= self.length, self._info()


class TrapMethodEnv(TrapEnv):
    convention = "method"


class TrapObsEnv(TrapEnv):
    convention = "observation"


class TrapMultiEnv(TrapEnv):
    multi = True


class TrapMultiMethodEnv(TrapEnv):
    convention, multi = "method", True


class TrapMultiObsEnv(TrapEnv):
    convention, multi = "observation", True


class BadMaskEnv(TrapEnv):
    """Gives a mask of the wrong shape (``bad="shape"``), dtype (``"dtype"``) or none allowed (``"empty"``)."""

    def __init__(self, bad="shape"):
        super().__init__()
        self.bad = bad

    def _info(self):
        if self.bad == "shape":
            return {"action_mask": np.ones(N_ACTIONS + 1, np.int8)}
        if self.bad == "dtype":
            return {"action_mask": np.ones(N_ACTIONS, np.float32)}
        if self.bad == "empty" and self.t == 3:
            return {"action_mask": np.zeros(N_ACTIONS, np.int8)}
        return super()._info()


class MaskedBoxEnv(gym.Env):
    """A mask offered with a Box action space: refused."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {"action_mask": np.ones(2, np.int8)}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {"action_mask": np.ones(2, np.int8)}


class ImageVectorEnv(gym.Env):
    """The image-and-vector task: a Dict of an 8x8x1 uint8 image and a sign vector (see the module)."""

    size = 8

    def __init__(self, tuple_space=False):
        image = gym.spaces.Box(0, 255, (self.size, self.size, 1), np.uint8)
        vector = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.tuple_space = tuple_space
        self.observation_space = (gym.spaces.Tuple((image, vector)) if tuple_space
                                  else gym.spaces.Dict({"image": image, "vector": vector}))
        self.action_space = gym.spaces.Discrete(4)
        self.t = 0

    def _obs(self):
        row, self.column = self.np_random.integers(0, self.size, 2)
        self.sign = float(self.np_random.choice([-1.0, 1.0]))
        image = np.zeros((self.size, self.size, 1), np.uint8)
        image[row, self.column, 0] = 255
        vector = np.array([self.sign, 0.5], np.float32)
        return (image, vector) if self.tuple_space else {"image": image, "vector": vector}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        right = self.column >= self.size // 2
        target = 2 * int(right) + int(self.sign < 0)
        reward = float(int(action) == target)
        self.t += 1
        return self._obs(), reward, False, self.t >= LENGTH, {}


class NestedEnv(gym.Env):
    """A nested Dict (a Tuple inside) with Discrete and MultiDiscrete parts: shapes only, reward 0."""

    observation_space = gym.spaces.Dict({
        "position": gym.spaces.Discrete(5),
        "inner": gym.spaces.Tuple((gym.spaces.Box(-1.0, 1.0, (3,), np.float32), gym.spaces.MultiDiscrete([2, 3]))),
    })
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), 0.0, False, self.t >= 5, {}


class TextPartEnv(NestedEnv):
    """A Dict with a Text part, which no encoder takes."""

    observation_space = gym.spaces.Dict({"name": gym.spaces.Text(5), "x": gym.spaces.Box(-1.0, 1.0, (2,))})


class MatrixActionEnv(gym.Env):
    """Box actions of shape (2, 2): reward -|a - target|^2 for a target shown in the observation."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = self.np_random.uniform(-0.5, 0.5, (2, 2)).astype(np.float32)
        return self.target.reshape(-1), {}

    def step(self, action):
        action = np.asarray(action)
        if action.shape != (2, 2):
            raise ValueError(f"expected a (2, 2) action, got {action.shape}")
        reward = -float(np.sum((action - self.target) ** 2))
        return self.target.reshape(-1), reward, True, False, {}


class BadMaskShapeEnv(BadMaskEnv):
    def __init__(self):
        super().__init__("shape")


class BadMaskDtypeEnv(BadMaskEnv):
    def __init__(self):
        super().__init__("dtype")


class EmptyMaskEnv(TrapEnv):
    """Every action allowed, except at the 4th observation (after 3 steps), where none is."""

    def _new_mask(self):
        self.mask = np.ones(N_ACTIONS, np.int8) if self.t != 3 else np.zeros(N_ACTIONS, np.int8)


class DictPolicy(torch.nn.Module):
    """A user's network for the trap's Dict observation: it must receive a dict of tensors without the
    mask (the library applies the mask to its logits)."""

    def __init__(self, observation_space, action_space):
        super().__init__()
        width = observation_space["state"].shape[0]
        self.body = torch.nn.Sequential(torch.nn.Linear(width, 32), torch.nn.Tanh())
        self.logits = torch.nn.Linear(32, int(np.sum(getattr(action_space, "nvec", [getattr(action_space, "n", 0)]))))
        self.v = torch.nn.Linear(32, 1)

    def forward(self, obs):
        if not isinstance(obs, dict) or set(obs) != {"state"}:
            raise TypeError(f"expected a dict with the part 'state' only, got {type(obs).__name__}")
        hidden = self.body(obs["state"])
        return self.logits(hidden), self.v(hidden)


class ImageVectorTupleEnv(ImageVectorEnv):
    """The image-and-vector task as a Tuple (image, vector)."""

    def __init__(self):
        super().__init__(tuple_space=True)
