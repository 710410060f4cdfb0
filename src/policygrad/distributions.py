"""Action distributions behind one interface, chosen from the action space.

Every head maps features ``(B, F)`` to an :class:`ActionDistribution` with ``sample``, ``log_prob``,
``entropy`` and ``mode``; ``log_prob`` and ``entropy`` return one number per batch row ``(B,)``, summed
over action dimensions where there are several. The deterministic action is always ``mode()``.
Argument validation is off: it costs more than the network on small problems, and the heads only
ever produce valid parameters.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical


class ActionDistribution:
    """The interface every policy head returns. Shapes: B batch rows, actions ``(B, *action_shape)``."""

    def sample(self) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError

    def mode(self) -> torch.Tensor:
        raise NotImplementedError


class CategoricalDistribution(ActionDistribution):
    """One of ``n`` actions, from unnormalised logits ``(B, n)``; actions are integer indices ``(B,)``."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.dist = Categorical(logits=logits, validate_args=False)

    def sample(self) -> torch.Tensor:
        return self.dist.sample()

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(actions.long())

    def entropy(self) -> torch.Tensor:
        return self.dist.entropy()

    def mode(self) -> torch.Tensor:
        return self.dist.logits.argmax(dim=-1)

    @property
    def probs(self) -> torch.Tensor:
        """Action probabilities ``(B, n)``."""
        return self.dist.probs


class CategoricalHead(nn.Module):
    """Linear layer from features to the logits of a ``Discrete(n)`` action space."""

    def __init__(self, in_features: int, space: gym.spaces.Discrete) -> None:
        super().__init__()
        self.start = int(space.start)
        self.out = nn.Linear(in_features, int(space.n))

    def forward(self, features: torch.Tensor) -> CategoricalDistribution:
        return CategoricalDistribution(self.out(features))

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """Policy actions ``(B,)`` as the environment wants them (Discrete spaces may start at non-zero)."""
        return actions.cpu().numpy() + self.start

    @property
    def last_layer(self) -> nn.Linear:
        return self.out


def check_action_space(space: gym.Space, kind: str = "auto") -> None:
    """Raise ValueError unless a head of ``kind`` can act in ``space``."""
    if isinstance(space, gym.spaces.Discrete):
        if kind not in ("auto", "categorical"):
            raise ValueError(f"distribution={kind!r} does not fit a Discrete action space: use 'categorical'")
        return
    raise ValueError(f"action space {space} is not supported: supported are Discrete (categorical)")


def make_head(space: gym.Space, in_features: int, kind: str = "auto") -> nn.Module:
    """The distribution head for ``space``. ``kind`` picks among heads that fit the space."""
    check_action_space(space, kind)
    return CategoricalHead(in_features, space)


def action_shape(space: gym.Space) -> tuple[int, ...]:
    """The shape of one stored action: ``()`` for Discrete."""
    if isinstance(space, gym.spaces.Discrete):
        return ()
    return tuple(space.shape)


def action_dtype(space: gym.Space) -> torch.dtype:
    return torch.long if isinstance(space, gym.spaces.Discrete) else torch.float32
