"""What every algorithm shares: the result of one iteration and the optimizer step."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from policygrad.envs import Episode


@dataclass
class Iteration:
    """One collect-and-update cycle: environment steps it cost, episodes it finished, metrics it logged."""

    steps: int
    episodes: list[Episode]
    metrics: dict[str, float] = field(default_factory=dict)


def make_optimizer(params, learning_rate: float, name: str = "adam") -> torch.optim.Optimizer:
    """Adam (eps 1e-5, as in the PPO/A2C reference code) or RMSprop (the A3C paper's choice)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=learning_rate, eps=1e-5)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=learning_rate, alpha=0.99, eps=1e-5)
    raise ValueError(f"optimizer={name!r} is invalid: expected adam | rmsprop")


def gradient_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params, max_grad_norm: float) -> float:
    """Backpropagate ``loss``, clip the global gradient norm (0: no clipping), step; returns the norm
    before clipping (logged as ``diag/grad_norm``)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for p in params if p.grad is not None]
    limit = max_grad_norm if max_grad_norm > 0 else float("inf")
    norm = nn.utils.clip_grad_norm_(params, limit)
    optimizer.step()
    return float(norm)
