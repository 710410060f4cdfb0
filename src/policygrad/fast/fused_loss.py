"""PPO's minibatch loss for the built-in ActorCritic with the state-independent Gaussian head (Box's
default), its last steps fused into one autograd node.

From the outputs of the two MLPs on, the plain loss (``algos/ppo.py``'s ``ppo_minibatch_loss``:
``Normal.log_prob``, the clipped surrogate, the value loss, the entropy bonus) is ~40 small tensor
operations and ~25 backward nodes, which on a 64-row minibatch cost as much as the 256-wide MLPs'
products. :class:`GaussianPPOLoss` computes the same terms in a dozen operations without a graph and
writes their gradients with respect to the policy's mean, its log std and V(s) in a handful more:

    z = (a - mean) / std,  log pi(a|s) = -sum z^2 / 2 - sum log std - D/2 log(2 pi),  r = exp(log pi - log pi_old)
    d loss / d log pi = -r A / B where r A <= clip(r) A (the unclipped term is the minimum), else 0
    d log pi / d mean = z / std,  d log pi / d log std = z^2 - 1,  d entropy / d log std = 1
    d loss / d V = vf_coef (V - target) / B

(on ties of the two surrogate terms torch's ``min`` splits the gradient between them, and inside the
clip range both halves are r A: the same sum). The numbers equal the plain loss's and gradient's up
to float rounding (tests/test_fast_continuous.py). Everything else (a user's network, other heads,
PopArt, value clipping) takes the plain loss.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from policygrad.core.distributions import LOG_STD_MAX, LOG_STD_MIN, BoxHead
from policygrad.core.networks import ActorCritic, PolicyNetwork, run_mlp

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

LossTerms = tuple[torch.Tensor, dict[str, torch.Tensor]]


def fused_loss_supported(network: PolicyNetwork, clip_vloss: bool) -> bool:
    """Whether :func:`fused_ppo_loss` computes ``ppo_minibatch_loss`` for ``network``."""
    head = network.policy_head if isinstance(network, ActorCritic) and network.mlp_encoder else None
    return (isinstance(head, BoxHead) and head.kind == "gaussian" and head.log_std is not None
            and network.value_head is not None and network.popart is None and not clip_vloss)


def fused_ppo_loss(network: ActorCritic, obs: torch.Tensor, actions: torch.Tensor, old_log_probs: torch.Tensor,
                   advantages: torch.Tensor, targets: torch.Tensor, clip: float, vf_coef: float,
                   ent_coef: float) -> LossTerms:
    """``ppo_minibatch_loss`` (without value clipping) for a network :func:`fused_loss_supported` accepts:
    the loss and its terms ``losses/policy``, ``losses/value``, ``losses/entropy`` and ``log_probs``
    (detached). ``advantages``: the minibatch's, already normalised if they are to be."""
    head = network.policy_head
    if not (isinstance(head, BoxHead) and head.log_std is not None and network.value_head is not None):
        raise RuntimeError("the fused PPO loss needs a Gaussian head with a state-independent log std and a "
                           "value head: the caller chose it for another network")
    x = network.preprocess(obs)
    features = run_mlp(network.policy_body, x)
    mean = nn.functional.linear(features, head.out.weight, head.out.bias)
    value_features = features if network.value_body is None else run_mlp(network.value_body, x)
    values = nn.functional.linear(value_features, network.value_head.weight, network.value_head.bias).squeeze(-1)
    loss, policy, value, entropy, log_probs = GaussianPPOLoss.apply(
        mean, head.log_std, values, actions, old_log_probs, advantages, targets, clip, vf_coef, ent_coef)
    return loss, {"losses/policy": policy, "losses/value": value, "losses/entropy": entropy, "log_probs": log_probs}


class GaussianPPOLoss(torch.autograd.Function):
    """PPO's loss from the Gaussian's mean ``(B, D)``, its free log std ``(D,)`` and V(s) ``(B,)``:
    returns the loss and, without gradient, its policy, value and entropy terms and log pi(a|s) ``(B,)``."""

    @staticmethod
    def forward(ctx: Any, mean: torch.Tensor, log_std: torch.Tensor, values: torch.Tensor, actions: torch.Tensor,
                old_log_probs: torch.Tensor, advantages: torch.Tensor, targets: torch.Tensor, clip: float,
                vf_coef: float, ent_coef: float) -> tuple[torch.Tensor, ...]:
        rows, dim = mean.shape
        clamped = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        inv_std = torch.exp(-clamped)
        z = (actions - mean).mul_(inv_std)
        log_norm = clamped.sum()  # sum log std; the Gaussian's constant is added as a number
        log_probs = z.square().sum(-1).mul_(-0.5).sub_(log_norm + dim * HALF_LOG_2PI)
        ratio = (log_probs - old_log_probs).exp_()
        unclipped = ratio * advantages
        clipped = ratio.clamp(1.0 - clip, 1.0 + clip).mul_(advantages)
        unclipped_min = unclipped <= clipped
        policy = -torch.minimum(unclipped, clipped).mean()
        error = values - targets
        value = error.square().mean().mul_(0.5)
        entropy = log_norm + dim * (0.5 + HALF_LOG_2PI)  # every row's: the std does not depend on the state
        loss = policy + vf_coef * value
        if ent_coef:
            loss = loss - ent_coef * entropy
        ctx.save_for_backward(z, inv_std, ratio, advantages, unclipped_min, error, log_std)
        ctx.coefficients = (vf_coef, ent_coef)
        ctx.mark_non_differentiable(policy, value, entropy, log_probs)
        return loss, policy, value, entropy, log_probs

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor, *_: Any) -> tuple[torch.Tensor | None, ...]:
        z, inv_std, ratio, advantages, unclipped_min, error, log_std = ctx.saved_tensors
        vf_coef, ent_coef = ctx.coefficients
        rows = z.shape[0]
        # d loss / d log pi(a|s), one per row
        grad_log_probs = torch.where(unclipped_min, ratio * advantages, 0.0).mul_(grad_loss * (-1.0 / rows))
        grad_mean = (z * inv_std).mul_(grad_log_probs.unsqueeze(1))
        grad_log_std = torch.mv((z * z).sub_(1.0).t(), grad_log_probs)
        if ent_coef:
            grad_log_std.sub_(grad_loss * ent_coef)
        grad_log_std.mul_((log_std >= LOG_STD_MIN) & (log_std <= LOG_STD_MAX))  # the clamp's gradient
        grad_values = error * (grad_loss * (vf_coef / rows))
        return grad_mean, grad_log_std, grad_values, None, None, None, None, None, None, None
