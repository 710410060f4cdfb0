"""Losses as pure functions: each returns one scalar term; diagnostics are separate functions.

Shapes: every argument is a flat batch ``(B,)``; ``weights`` (optional, ``(B,)``) are 1 for real
transitions and 0 for padding (steps that must not count), so means are over real transitions only.
Only an algorithm's update adds the terms up, with its own coefficients.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F


def masked_mean(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``x`` over the rows where ``weights`` is 1 (all rows when None); 0 when there are none."""
    if weights is None:
        return x.mean() if x.numel() else x.sum()  # the sum of nothing: 0, with gradient
    return (x * weights).sum() / weights.sum().clamp_min(1.0)


def policy_gradient_loss(
    log_probs: torch.Tensor, advantages: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """-E[log pi(a|s) * A]: its gradient is the score-function policy gradient (Q14, Q15).

    ``advantages`` are constants (detached): only the log-probabilities carry gradient.
    """
    return -masked_mean(log_probs * advantages.detach(), weights)


def value_loss(
    values: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
    old_values: torch.Tensor | None = None,
    clip_coef: float | None = None,
) -> torch.Tensor:
    """0.5 * E[(V(s) - target)^2]; with ``old_values`` and ``clip_coef``, the PPO2 clipped variant
    that takes the larger of the clipped and unclipped errors."""
    targets = targets.detach()
    if weights is None and (old_values is None or clip_coef is None) and values.numel():
        return 0.5 * F.mse_loss(values, targets)  # one fused op (and one backward node) for the plain case
    error = (values - targets).pow(2)
    if old_values is not None and clip_coef is not None:
        clipped = old_values + (values - old_values).clamp(-clip_coef, clip_coef)
        error = torch.max(error, (clipped - targets).pow(2))
    return 0.5 * masked_mean(error, weights)


def entropy_term(entropy: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean policy entropy; an update *subtracts* ``ent_coef`` times it to keep exploring."""
    return masked_mean(entropy, weights)


def with_entropy_bonus(loss: torch.Tensor, entropy_of: Callable[[], torch.Tensor], ent_coef: float,
                       weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``loss - ent_coef * E[H]`` and the mean entropy E[H] (logged as ``losses/entropy``).

    ``entropy_of``: the policy's per-row entropy, called once (``dist.entropy``). With ``ent_coef``
    0 the entropy is only logged, so it is computed without a graph: no backward pass to pay for.
    """
    if ent_coef:
        entropy = entropy_term(entropy_of(), weights)
        return loss - ent_coef * entropy, entropy
    with torch.no_grad():
        return loss, entropy_term(entropy_of(), weights)


def ppo_clip_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """PPO's clipped surrogate, -E[min(r A, clip(r, 1-eps, 1+eps) A)], r = pi/pi_old (Schulman 2017, eq. 7)."""
    ratio = (log_probs - old_log_probs.detach()).exp()
    advantages = advantages.detach()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef) * advantages
    return -masked_mean(torch.min(unclipped, clipped), weights)


# -- diagnostics (no gradient) ---------------------------------------------------------------------
@torch.no_grad()
def approx_kl(log_probs: torch.Tensor, old_log_probs: torch.Tensor, weights: torch.Tensor | None = None) -> float:
    """KL(pi_old || pi) estimated as E[(r - 1) - log r] (Schulman's k3: unbiased, never negative)."""
    log_ratio = log_probs - old_log_probs
    return float(masked_mean((log_ratio.exp() - 1) - log_ratio, weights))


@torch.no_grad()
def ratio_diagnostics(log_probs: torch.Tensor, old_log_probs: torch.Tensor, clip_coef: float,
                      weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`approx_kl` and :func:`clip_fraction` as 0-d tensors, from one probability ratio (no read
    of the device: an update can log them in bulk)."""
    log_ratio = log_probs - old_log_probs
    ratio_m1 = log_ratio.exp() - 1
    return masked_mean(ratio_m1 - log_ratio, weights), masked_mean((ratio_m1.abs() > clip_coef).float(), weights)


@torch.no_grad()
def clip_fraction(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, clip_coef: float, weights: torch.Tensor | None = None
) -> float:
    """Share of samples whose probability ratio left [1 - clip_coef, 1 + clip_coef]."""
    ratio = (log_probs - old_log_probs).exp()
    return float(masked_mean(((ratio - 1.0).abs() > clip_coef).float(), weights))


@torch.no_grad()
def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - Var[target - prediction] / Var[target]: 1 is perfect, 0 no better than a constant, NaN if
    the targets do not vary."""
    return float(explained_variance_tensor(predictions, targets))


@torch.no_grad()
def explained_variance_tensor(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """:func:`explained_variance` as a 0-d tensor (no read of the device, for logging in bulk)."""
    var_targets = targets.var(unbiased=False)
    ratio = 1.0 - (targets - predictions).var(unbiased=False) / var_targets
    return torch.where(var_targets == 0, torch.nan, ratio)


def normalize(x: torch.Tensor, weights: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """Standardise ``x`` to zero mean, unit std over the rows ``weights`` selects."""
    mean = masked_mean(x, weights)
    var = masked_mean((x - mean).pow(2), weights)
    return (x - mean) / (var.sqrt() + eps)
