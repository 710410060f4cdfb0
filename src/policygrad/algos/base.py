"""What every algorithm shares: the result of one iteration and the optimizer step."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import torch
from torch import nn

from policygrad.core.envs import Episode
from policygrad.fast.flat_optim import FlatAdam, FlatOptimizer, FlatRMSprop


@dataclass
class Iteration:
    """One collect-and-update cycle: environment steps it cost, episodes it finished, metrics it logged."""

    steps: int
    episodes: list[Episode]
    metrics: dict[str, float] = field(default_factory=dict)


def make_optimizer(params, learning_rate: float, name: str = "adam", flat: bool = True) -> torch.optim.Optimizer:
    """Adam (eps 1e-5, as in the PPO/A2C reference code) or RMSprop (the A3C paper's choice).

    ``flat``: step every parameter as one flat buffer (:mod:`policygrad.fast.flat_optim`); it rebinds the
    parameters, so the network must already be on its device. A3C's shared-memory network passes False."""
    # Small networks: per-parameter kernel launches dominate a step, so update every tensor at once
    # (fused Adam: one kernel for all; RMSprop has foreach). The update is the same, up to rounding.
    params = list(params)
    if name == "adam":
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        return (FlatAdam if flat else torch.optim.Adam)(params, lr=learning_rate, eps=1e-5, fused=fused or None)
    if name == "rmsprop":
        return (FlatRMSprop if flat else torch.optim.RMSprop)(params, lr=learning_rate, alpha=0.99, eps=1e-5,
                                                              foreach=True)
    raise ValueError(f"optimizer={name!r} is invalid: expected adam | rmsprop")


# Steps gradient_step refused because the loss or the gradient was not finite, per optimizer.
_SKIPPED: weakref.WeakKeyDictionary[torch.optim.Optimizer, int] = weakref.WeakKeyDictionary()


def skipped_steps(optimizer: torch.optim.Optimizer) -> int:
    """How many of ``optimizer``'s steps :func:`gradient_step` has skipped as non-finite so far."""
    return _SKIPPED.get(optimizer, 0)


def gradient_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params, max_grad_norm: float) -> float:
    """Backpropagate ``loss``, clip the global gradient norm (0: no clipping), step; returns the norm
    before clipping (logged as ``diag/grad_norm``).

    The one guard against non-finite numbers: if the loss or the gradient norm is NaN or infinite,
    the step is skipped (gradients dropped, parameters and optimizer state untouched) and counted in
    :func:`skipped_steps`; the trainer reports it and stops the run after ``max_nonfinite_updates``
    such updates in a row.
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if isinstance(optimizer, FlatOptimizer):  # one tensor: clip_grad_norm_'s own arithmetic, without its loops
        grad = optimizer.flat_grad
        norm = torch.linalg.vector_norm(grad)
        if max_grad_norm > 0:
            grad.mul_(torch.clamp(max_grad_norm / (norm + 1e-6), max=1.0))
    else:
        params = [p for p in params if p.grad is not None]
        limit = max_grad_norm if max_grad_norm > 0 else float("inf")
        norm = nn.utils.clip_grad_norm_(params, limit, foreach=True)
    norm_value, loss_value = torch.stack([norm.detach().float(), loss.detach().float()]).tolist()  # one sync
    if not (math.isfinite(norm_value) and math.isfinite(loss_value)):
        optimizer.zero_grad(set_to_none=True)
        _SKIPPED[optimizer] = _SKIPPED.get(optimizer, 0) + 1
        return norm_value
    optimizer.step()
    return norm_value


def nonfinite_term(metrics: dict[str, float]) -> str:
    """The loss term that went non-finite (the first ``losses/`` metric that is NaN or inf)."""
    for key, value in metrics.items():
        if key.startswith("losses/") and isinstance(value, float) and not math.isfinite(value):
            return f"{key} ({value})"
    return "the gradient (every loss term was finite)"
