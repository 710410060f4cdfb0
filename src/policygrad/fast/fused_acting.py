"""Fused acting: the policy and value MLPs of an :class:`ActorCritic` as one MLP, for collecting.

When acting, per-call overhead outweighs arithmetic, so the policy and value MLPs run as one MLP
whose weights are the two side by side (the first layers stacked, the later ones block-diagonal):
half the matrix products and no module calls. The fused weights live in buffers laid out once per
network, device and dtype; taking a new snapshot is a single copy of every parameter into them.
The numbers equal ``ActorCritic.dist_and_value``'s up to float rounding (tests/test_fast_paths.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from policygrad.core.distributions import ActionDistribution, GSDEHead
from policygrad.core.networks import ActorCritic, PolicyNetwork, activation_function

# acting_forward fuses policy and value MLPs up to this width (beyond it the block-diagonal products
# would double real arithmetic rather than save call overhead)
FUSE_MAX_WIDTH = 256
# ... and runs tanh layers as sigmoids (a third of the cost on the CPU) once a snapshot will act on
# this many observations, enough to repay the five extra operations of preparing its weights
SIGMOID_MIN_ROWS = 256

ActingForward = Callable[[torch.Tensor], tuple[ActionDistribution, torch.Tensor | None]]
FusedLayer = tuple[torch.Tensor, torch.Tensor, Callable[..., Any]]
FusedSnapshot = tuple[list[FusedLayer], torch.Tensor, torch.Tensor, int]


@torch.no_grad()
def acting_forward(network: PolicyNetwork, with_value: bool = True, expected_rows: int = 0) -> ActingForward:
    """``network.dist_and_value`` for acting, with the weights of this moment: valid until they change
    or ``acting_forward`` is called again (collectors take one per collection).

    ``expected_rows``: how many observations the snapshot will act on in all (a collector's
    ``num_steps * num_envs``); from SIGMOID_MIN_ROWS on, tanh layers run as sigmoids (see
    :func:`fused_snapshot`), which pays for the few extra operations of the snapshot. Without
    ``with_value`` (or a value head) the value returned is None. Wide networks (> FUSE_MAX_WIDTH
    units), where the block-diagonal products would waste real arithmetic, use ``dist_and_value``, and
    so does any network but the built-in :class:`ActorCritic`'s MLP (a user's module: only it knows its
    layers; an image encoder: convolutions)
    and a gSDE head (its noise needs the last hidden features, which the fused product does not keep).
    """
    value = with_value and network.has_value
    if not isinstance(network, ActorCritic) or not network.mlp_encoder or isinstance(
            network.policy_head, GSDEHead) or max(
            layer.out_features for layer in network.policy_body if isinstance(layer, nn.Linear)) > FUSE_MAX_WIDTH:
        if value:
            return network.dist_and_value
        return lambda obs: (network.dist(obs), None)
    layers, head_weight, head_bias, n_policy = fused_snapshot(network, value, expected_rows >= SIGMOID_MIN_ROWS)
    distribution, value_output = network.policy_head.distribution, network.value_output

    def forward(obs: torch.Tensor) -> tuple[ActionDistribution, torch.Tensor | None]:
        x = network.preprocess(obs)
        for weight, bias, act in layers:
            x = act(nn.functional.linear(x, weight, bias))
        out = nn.functional.linear(x, head_weight, bias=head_bias)
        if not value:
            return distribution(out), None
        return distribution(out[:, :n_policy]), value_output(out[:, n_policy])

    return forward


@torch.no_grad()
def fused_acting_weights(network: ActorCritic) -> FusedSnapshot:
    """A snapshot of the fused policy-and-value weights that :func:`acting_forward` uses, tanh layers
    in their sigmoid form: ``(weight, bias, activation)`` layers (``torch.sigmoid_`` or the layer's
    own activation), the head's weight and bias (policy outputs first, V(s) last) and the policy's
    output count. For acting outside torch (:mod:`policygrad.fast.numpy_acting`): the next snapshot
    rewrites these buffers in place, so views of them hold this snapshot's weights only until then."""
    return fused_snapshot(network, True, True)


def fused_snapshot(network: ActorCritic, value: bool, sigmoid: bool) -> FusedSnapshot:
    """Copy the parameters into the fused layout (built on first use, per device and dtype);
    returns its ``(weight, bias, activation)`` layers, head weight and bias, and policy width."""
    # The layouts are a cache of views into the network's parameters, so they live with the network.
    cache = network.__dict__.setdefault("_fused_layouts", {})
    like = network.policy_head.last_layer.weight
    layout = cache.get(value)
    if layout is None or layout["device"] != like.device or layout["dtype"] != like.dtype:
        layout = cache[value] = _fused_layout(network, value)
    torch._foreach_copy_(layout["dst"], layout["src"])  # one call for every parameter
    if not (sigmoid and layout["tanh"]):
        return layout["layers"], layout["head_weight"], layout["head_bias"], layout["n_policy"]
    # tanh(z) = 2 sigmoid(2z) - 1, and torch's sigmoid costs a third of its tanh on the CPU.
    # With s_k = sigmoid(2 z_k) in place of h_k = tanh(z_k) = 2 s_k - 1, each layer after a
    # hidden one takes (2W) s + (b - W 1): the factors and offsets go into the weights here
    # (block-diagonal zeros add nothing to the row sums), and acting costs sigmoids only.
    weights = [w for w, _, _ in layout["layers"]] + [layout["head_weight"]]
    biases = [b for _, b, _ in layout["layers"]] + [layout["head_bias"]]
    torch._foreach_sub_(biases[1:], [w.sum(1) for w in weights[1:]])
    scale = [2.0] + [4.0] * (len(weights) - 2) + [2.0]
    torch._foreach_mul_(weights, scale)
    torch._foreach_mul_(biases[:-1], 2.0)
    layers: list[FusedLayer] = [(weight, bias, torch.sigmoid_) for weight, bias, _ in layout["layers"]]
    return layers, layout["head_weight"], layout["head_bias"], layout["n_policy"]


def _fused_layout(network: ActorCritic, value: bool) -> dict[str, Any]:
    """Buffers for the fused MLP (``(out, in)`` weights, zero off the diagonal blocks) and the
    (buffer view, parameter) pairs a snapshot copies."""
    like = network.policy_head.last_layer.weight
    zeros = functools.partial(torch.zeros, device=like.device, dtype=like.dtype)
    dst: list[torch.Tensor] = []
    src: list[torch.Tensor] = []

    def place(buffer: torch.Tensor, parts: list[torch.Tensor], diagonal: bool) -> torch.Tensor:
        row = col = 0
        for part in parts:
            rows = part.shape[0]
            cols = part.shape[1] if part.dim() == 2 else 0
            view = buffer[row:row + rows] if part.dim() == 1 else (
                buffer[row:row + rows, col:col + cols] if diagonal else buffer[row:row + rows])
            dst.append(view)
            src.append(part)
            row, col = row + rows, col + cols
        return buffer

    separate = value and network.value_body is not None
    policy_linear = [m for m in network.policy_body if isinstance(m, nn.Linear)]
    value_body = network.value_body if separate else None
    value_linear = [m for m in value_body if isinstance(m, nn.Linear)] if value_body else []
    activations = [activation_function(m) for m in network.policy_body if not isinstance(m, nn.Linear)]
    layers = []
    for k, (linear, act) in enumerate(zip(policy_linear, activations)):
        parts = [linear] + ([value_linear[k]] if separate else [])
        out_features = sum(p.out_features for p in parts)
        in_features = sum(p.in_features for p in parts) if k > 0 else linear.in_features
        weight = place(zeros(out_features, in_features), [p.weight for p in parts], diagonal=k > 0)
        bias = place(zeros(out_features), [p.bias for p in parts], diagonal=False)
        layers.append((weight, bias, act))
    heads = [network.policy_head.last_layer] + ([network.value_head] if value and network.value_head else [])
    in_features = sum(h.in_features for h in heads) if separate else heads[0].in_features
    head_weight = place(zeros(sum(h.out_features for h in heads), in_features), [h.weight for h in heads],
                        diagonal=separate)
    head_bias = place(zeros(sum(h.out_features for h in heads)), [h.bias for h in heads], diagonal=False)
    tanh = all(type(m) is nn.Tanh for m in network.policy_body if not isinstance(m, nn.Linear))
    return {"device": like.device, "dtype": like.dtype, "dst": dst, "src": src, "layers": layers, "tanh": tanh,
            "head_weight": head_weight, "head_bias": head_bias,
            "n_policy": network.policy_head.last_layer.out_features}
