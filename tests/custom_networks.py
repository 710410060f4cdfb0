"""Users' own networks for tests (importable as 'custom_networks:...' because pytest puts tests/ on the path).

Each is built as ``Class(observation_space, action_space)``, the signature a config's ``network`` names.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn


def n_outputs(space: gym.Space) -> int:
    """Logits for Discrete(n), the mean for Box((d,)) (the default gaussian head)."""
    return int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape))


class TwoHeaded(nn.Module):
    """forward returns (params, value)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, hidden: int = 32) -> None:
        super().__init__()
        n_in = int(np.prod(observation_space.shape))
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.Tanh())
        self.policy = nn.Linear(hidden, n_outputs(action_space))
        self.critic = nn.Linear(hidden, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(obs)
        return self.policy(features), self.critic(features)


class PolicyOnly(nn.Module):
    """forward returns the params alone, and there is no value: REINFORCE without a critic only."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(int(np.prod(observation_space.shape)), 16), nn.ReLU(),
                                 nn.Linear(16, n_outputs(action_space)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class WithValueMethod(PolicyOnly):
    """forward returns the params; value(obs) returns V(s) as (B,)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__(observation_space, action_space)
        self.critic = nn.Sequential(nn.Linear(int(np.prod(observation_space.shape)), 16), nn.Tanh(), nn.Linear(16, 1))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)


class OneTooMany(PolicyOnly):
    """Returns one output too many: n + 1 logits."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__(observation_space, action_space)
        self.net[-1] = nn.Linear(16, n_outputs(action_space) + 1)


class NeedsWidth(TwoHeaded):
    """A constructor that needs more than the two spaces (from Python only)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, hidden: int) -> None:
        super().__init__(observation_space, action_space, hidden)
