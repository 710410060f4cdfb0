"""Per-episode policy gradients of every estimator, on the same episodes.

For each episode i and estimator e: x_ei = sum_t w_et grad_theta log pi(a_t | s_t), flattened over the
actor's parameters (those log pi depends on). A batch's gradient is the mean of its episodes' (the
estimate of grad J from M episodes); keeping them per episode lets the statistics form batches of
any size (:mod:`policygrad.diagnostics.statistics`). One forward pass per episode, and one backward
pass per episode for all estimators at once (a batched vector-Jacobian product).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

from policygrad.core import returns
from policygrad.core.errors import UserInputError
from policygrad.core.networks import PolicyNetwork
from policygrad.core.structured import (
    Observation,
    feature_parts,
    flatten_obs,
    is_structured,
    obs_cat,
    obs_index,
    part_dtype,
)
from policygrad.diagnostics.episodes import EpisodeBatch
from policygrad.diagnostics.estimators import Estimator, Signals

MAX_BYTES = 2 * 1024**3  # per-episode gradients kept in memory: estimators x episodes x parameters floats


def actor_parameters(network: PolicyNetwork) -> list[torch.nn.Parameter]:
    """The parameters log pi(a|s) depends on (with a shared trunk, the trunk too), found by
    differentiating it once on a sample observation."""
    params = [p for p in network.parameters() if p.requires_grad]
    dist = network.dist(sample_observation(network.observation_space))
    reached = torch.autograd.grad(dist.log_prob(dist.sample()).sum(), params, allow_unused=True)
    return [p for p, g in zip(params, reached) if g is not None]


def sample_observation(space: gym.Space) -> Observation:
    """One observation of ``space`` as a batch of one, as the network reads it: a tensor, or for a
    Dict/Tuple space a dict of its parts by path in their storage dtypes (no mask: every action allowed)."""
    if not is_structured(space):
        return torch.as_tensor(space.sample(), dtype=torch.float32).unsqueeze(0)
    parts = flatten_obs(space.sample(), space)
    return {path: torch.as_tensor(np.asarray(parts[path]), dtype=part_dtype(sub)).unsqueeze(0)
            for path, sub in feature_parts(space).items()}


@torch.no_grad()
def batch_signals(eb: EpisodeBatch, value: Callable[[Observation], torch.Tensor] | None, gamma: float) -> Signals:
    """The :class:`Signals` of one batch; ``value`` maps observations ``(B, *obs)`` (or observation
    dicts of B rows) to V ``(B,)`` (None: no critic, values are zeros)."""
    b = eb.batch
    T, N = b.rewards.shape
    valid = b.valid
    if value is not None:
        flat = value(obs_cat([b.flat(b.obs), b.next_obs])).reshape(-1)
        values = flat[: T * N].reshape(T, N)
        next_values = torch.cat([values[1:], flat[T * N:].unsqueeze(0)])
    else:
        values = next_values = torch.zeros_like(b.rewards)
    rtg = returns.reward_to_go(rewards=b.rewards, terminated=b.terminated, truncated=b.truncated, gamma=gamma)
    total = returns.whole_episode_returns(rewards=b.rewards, terminated=b.terminated, truncated=b.truncated,
                                          gamma=gamma, valid=valid)
    # the mean G_t over the other episodes' steps: the batch's sums less the episode's own
    episode = eb.episode.clamp_min(0)
    weight = valid.to(rtg.dtype)
    sums = torch.zeros(eb.episodes, dtype=rtg.dtype).index_add_(0, episode.reshape(-1), (rtg * weight).reshape(-1))
    counts = torch.zeros(eb.episodes, dtype=rtg.dtype).index_add_(0, episode.reshape(-1), weight.reshape(-1))
    others = (counts.sum() - counts).clamp_min(1.0)
    mean_other = ((sums.sum() - sums) / others)[episode]
    discount = torch.pow(torch.full_like(rtg, gamma), eb.step.to(rtg.dtype))
    zero = torch.zeros_like(rtg)
    return Signals(rewards=b.rewards, terminated=b.terminated, truncated=b.truncated, valid=valid, actions=b.actions,
                   obs=b.obs, step=eb.step, discount=torch.where(valid, discount, zero), rtg=rtg,
                   total=total, mean_other=torch.where(valid, mean_other, zero), values=values,
                   next_values=next_values, gamma=gamma)


def estimator_weights(signals: Signals, estimators: Sequence[Estimator]) -> torch.Tensor:
    """Every estimator's weights ``(E, T, N)``, zero outside the episodes."""
    rows = []
    for estimator in estimators:
        w = estimator.weights(signals)
        if w.shape != signals.rewards.shape:
            raise UserInputError(f"estimator {estimator.name!r} returned weights of shape {tuple(w.shape)}, expected "
                                 f"{tuple(signals.rewards.shape)}")
        rows.append(torch.where(signals.valid, w.to(torch.float32), torch.zeros_like(w, dtype=torch.float32)))
    return torch.stack(rows)


def _vjp(log_probs: torch.Tensor, params: list[torch.nn.Parameter], weights: torch.Tensor) -> torch.Tensor:
    """``(E, P)``: for each row of ``weights`` ``(E, L)``, sum_t w_t grad log_probs[t], flattened."""
    try:  # all E products in one vectorised backward pass
        grads = torch.autograd.grad(log_probs, params, grad_outputs=weights, is_grads_batched=True, retain_graph=True)
        return torch.cat([g.reshape(weights.shape[0], -1) for g in grads], dim=1)
    except RuntimeError:  # an operation without a batching rule (a distribution of one's own): one at a time
        out = []
        for w in weights:
            grads = torch.autograd.grad(log_probs, params, grad_outputs=w, retain_graph=True)
            out.append(torch.cat([g.reshape(-1) for g in grads]))
        return torch.stack(out)


def episode_gradients(network: PolicyNetwork, params: list[torch.nn.Parameter], eb: EpisodeBatch,
                      weights: torch.Tensor) -> torch.Tensor:
    """``(E, M, P)``: each estimator's gradient on each of the batch's M episodes (``weights`` from
    :func:`estimator_weights`)."""
    b = eb.batch
    episode = eb.episode.reshape(-1)
    order = torch.argsort(episode, stable=True)
    order = order[episode[order] >= 0]
    bounds = torch.cumsum(torch.bincount(episode[order], minlength=eb.episodes), 0).tolist()
    obs, actions = obs_index(b.flat(b.obs), order), b.flat(b.actions)[order]
    w = weights.reshape(weights.shape[0], -1)[:, order]
    out = torch.empty(weights.shape[0], eb.episodes, sum(p.numel() for p in params))
    start = 0
    for i, stop in enumerate(bounds):
        log_probs = network.dist(obs_index(obs, slice(start, stop))).log_prob(actions[start:stop])
        out[:, i] = _vjp(log_probs, params, w[:, start:stop])
        start = stop
    return out
