"""The policy-gradient estimators compared by ``policygrad diagnose gradients``, as per-step weights.

Every estimator is a weight w_t on each step's score, and its gradient on a batch of M episodes is

    g = (1/M) sum_episodes sum_t w_t grad log pi(a_t | s_t)

(:mod:`policygrad.diagnostics.gradients`). All of them are computed on the same episodes. The target
is the gradient of the discounted objective J = E[sum_t gamma^t r_t], whose policy-gradient theorem
carries a gamma^t: the Monte-Carlo estimators below are exactly unbiased for it,

    total           w_t = G_0                            (the whole episode's return at every step)
    reward_to_go    w_t = gamma^t G_t                    (rewards before t dropped: zero mean)
    mean_baseline   w_t = gamma^t (G_t - b)              b: the mean G_t of the batch's *other* episodes
    value_baseline  w_t = gamma^t (G_t - V(s_t))         V: a critic, a baseline that ignores the action

and the critic's estimators, gamma^t A_t with A_t from ``policygrad.core.returns``, are biased where
the critic is wrong (and where it bootstraps a time limit):

    td              A_t = r_t + gamma V(s_{t+1}) - V(s_t)
    gae:LAMBDA      A_t = GAE(gamma, LAMBDA)             (Schulman et al. 2016)
    nstep:N         A_t = N-step return - V(s_t)
    NAME            any estimator registered in ``returns.ESTIMATORS`` (``gae`` takes gae_lambda)

G_t is the discounted reward-to-go inside the episode, not bootstrapped (the episode's own end,
terminal or time limit, ends the objective's sum). The algorithms drop the gamma^t (a common practice
that makes their update slightly biased for J; Nota & Thomas 2020); with gamma = 1 the two agree. The
mean baseline leaves each episode out of its own mean, so that it is exactly unbiased (the library's
REINFORCE ``baseline=mean`` includes it, a bias of order 1/steps).

An :class:`Estimator` of your own takes the :class:`Signals` of a batch and returns its weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from policygrad.core import returns
from policygrad.core.errors import UserInputError

DEFAULT_ESTIMATORS = ("total", "reward_to_go", "mean_baseline", "value_baseline", "td", "gae:0.9", "gae:0.95",
                      "nstep:5")
UNBIASED = ("total", "reward_to_go", "mean_baseline", "value_baseline")  # in order of expected variance


@dataclass(frozen=True)
class Signals:
    """What an estimator may read about one batch; every tensor is ``(T, N)`` (rows as collected).

    ========== ===============================================================================
    rewards    r_t                                     terminated / truncated: the episode ended at t
    valid      the row is a step of an episode (no estimator's weight counts elsewhere)
    actions    a_t, ``(T, N, *action_shape)``          obs: s_t, ``(T, N, *obs_shape)``
    step       t, the step's index in its episode      discount: gamma^t
    rtg        G_t, the discounted reward-to-go inside the episode (no bootstrap)
    total      G_0 of the step's episode
    mean_other the mean G_t over the valid steps of the batch's other episodes
    values     V(s_t) (zeros without a critic)         next_values: V(s_{t+1}), V(final obs) at an end
    ========== ===============================================================================
    """

    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    valid: torch.Tensor
    actions: torch.Tensor
    obs: torch.Tensor
    step: torch.Tensor
    discount: torch.Tensor
    rtg: torch.Tensor
    total: torch.Tensor
    mean_other: torch.Tensor
    values: torch.Tensor
    next_values: torch.Tensor
    gamma: float


@dataclass(frozen=True)
class Estimator:
    """A named estimator: ``weights(signals)`` gives w_t ``(T, N)``; ``unbiased``: exactly unbiased for
    the policy gradient whatever the critic (a reference candidate); ``needs_critic``: reads ``values``."""

    name: str
    weights: Callable[[Signals], torch.Tensor]
    unbiased: bool = False
    needs_critic: bool = False


def _registered(name: str, params: Mapping[str, Any]) -> Callable[[Signals], torch.Tensor]:
    def weights(s: Signals) -> torch.Tensor:
        estimate = returns.estimate(name, rewards=s.rewards, values=s.values, next_values=s.next_values,
                                    terminated=s.terminated, truncated=s.truncated, gamma=s.gamma, params=params)
        return s.discount * estimate.advantages
    return weights


def _nstep(n: int) -> Callable[[Signals], torch.Tensor]:
    def weights(s: Signals) -> torch.Tensor:
        targets = returns.nstep_returns(rewards=s.rewards, next_values=s.next_values, terminated=s.terminated,
                                        truncated=s.truncated, gamma=s.gamma, n=n)
        return s.discount * (targets - s.values)
    return weights


BUILT_IN: dict[str, Estimator] = {
    "total": Estimator("total", lambda s: s.total, unbiased=True),
    "reward_to_go": Estimator("reward_to_go", lambda s: s.discount * s.rtg, unbiased=True),
    "mean_baseline": Estimator("mean_baseline", lambda s: s.discount * (s.rtg - s.mean_other), unbiased=True),
    "value_baseline": Estimator("value_baseline", lambda s: s.discount * (s.rtg - s.values), unbiased=True,
                                needs_critic=True),
}


def known_names() -> str:
    registered = " | ".join(returns.ESTIMATORS)
    return f"{' | '.join(BUILT_IN)} | gae:LAMBDA | nstep:N | a registered advantage estimator ({registered})"


def parse_estimator(text: str, defaults: Mapping[str, Any] | None = None) -> Estimator:
    """An estimator by name: a built-in one, ``gae:LAMBDA`` (LAMBDA in [0, 1]), ``nstep:N`` (N >= 1),
    or a registered advantage estimator; UserInputError naming what is allowed otherwise. ``defaults``
    (a run's config fields) supply a registered estimator's own parameters (``gae``: gae_lambda,
    else 0.95)."""
    name = text.strip()
    if name in BUILT_IN:
        return BUILT_IN[name]
    match = re.fullmatch(r"(gae|nstep):(.+)", name)
    if match:
        kind, value = match.groups()
        try:
            number = float(value) if kind == "gae" else int(value)
        except ValueError:
            number = None
        if kind == "gae":
            if number is None or not 0.0 <= number <= 1.0:
                raise UserInputError(f"estimator {name!r}: expected gae:LAMBDA with LAMBDA in [0, 1], e.g. gae:0.95")
            return Estimator(name, _registered("gae", {"gae_lambda": number}), needs_critic=True)
        if number is None or number < 1:
            raise UserInputError(f"estimator {name!r}: expected nstep:N with an integer N >= 1, e.g. nstep:5")
        return Estimator(name, _nstep(int(number)), needs_critic=True)
    if name in returns.ESTIMATORS:
        params = {"gae_lambda": 0.95, **(defaults or {})}
        missing = [p for p in returns.ESTIMATORS[name].params if p not in params]
        if missing:
            raise UserInputError(f"estimator {name!r} needs {', '.join(missing)}, which the run's config does not have")
        own = {p: params[p] for p in returns.ESTIMATORS[name].params}
        label = name + "".join(f":{v:g}" if isinstance(v, float) else f":{v}" for v in own.values())
        return Estimator(label, _registered(name, own), needs_critic=True)
    raise UserInputError(f"unknown estimator {name!r}: expected one of {known_names()}")


def parse_estimators(items: Sequence[str | Estimator] | str,
                     defaults: Mapping[str, Any] | None = None) -> list[Estimator]:
    """Names (a list, or one comma-separated string) and :class:`Estimator` objects, as estimators;
    UserInputError on an unknown one, a repeated one, none, or none of the unbiased ones (the reference
    gradient needs one)."""
    if isinstance(items, str):
        items = [part for part in items.split(",") if part.strip()]
    out = [item if isinstance(item, Estimator) else parse_estimator(item, defaults) for item in items]
    names = [e.name for e in out]
    if not out:
        raise UserInputError("no estimator given: expected one or more of " + known_names())
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(f"estimator {repeated[0]!r} is given twice")
    if not any(e.unbiased for e in out):
        raise UserInputError(f"estimators {','.join(names)} include no unbiased one: add one of {', '.join(UNBIASED)} "
                             "(the reference gradient is the lowest-variance unbiased estimator)")
    return out
