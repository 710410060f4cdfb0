"""Returns and advantages: pure functions on time-major ``(T, N)`` tensors.

Shapes (every argument and result): ``(T, N)``, T steps of N parallel environments.

    rewards        r_t, the reward of step t
    terminated     the episode ended at step t by reaching a terminal state: nothing follows it
    truncated      the episode was cut at step t (time limit): the future exists but is not observed
    values         V(s_t), the critic's value of the observation step t acted on
    next_values    V(s_{t+1}), the value of the observation step t *returned*; on the last step of
                   an episode that is the episode's final observation (NEXT_STEP autoreset keeps it)

A terminated episode never bootstraps. A truncated one bootstraps with ``next_values`` where they are
given (Pardo et al. 2018, "Time Limits in Reinforcement Learning"); without them (whole-episode
REINFORCE, which has no critic) truncation simply ends the sum. The last row bootstraps from
``next_values[T-1]`` when the episode is still running there.

Every function takes keyword arguments only, so ``terminated`` and ``truncated`` (two bool tensors of
one shape) cannot be swapped unnoticed. The advantage estimators of the actor-critics sit in
:data:`ESTIMATORS`, one keyword signature for all (see :func:`register_estimator`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from policygrad.core.errors import UserInputError


def _zeros_if_none(x: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if x is None else x


def reward_to_go(
    *,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    next_values: torch.Tensor | None = None,
) -> torch.Tensor:
    """Discounted reward-to-go G_t = r_t + gamma * G_{t+1} inside each episode (Q13).

    Bootstraps truncated episodes and the horizon with ``next_values`` when given.
    """
    next_values = _zeros_if_none(next_values, rewards)
    # Episode ends at t: what follows is V(final obs) if truncated, 0 if terminated. Folded into
    # G_t = base_t + coef_t * G_{t+1}: base_t = r_t + gamma * (that value), coef_t = gamma while the
    # episode runs on, 0 once it ended (the same numbers as stepping through the three cases).
    ended = terminated | truncated
    bootstrap = torch.where(truncated & ~terminated, next_values, torch.zeros_like(next_values))
    base = rewards + gamma * bootstrap
    coef = gamma * (~ended).to(rewards.dtype)
    return _backward_recursion(base, coef, next_values[-1])


def _backward_recursion(base: torch.Tensor, coef: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """out_t = base_t + coef_t * out_{t+1} for t = T-1 .. 0, with out_T = ``last``; shapes ``(T, N)``.

    The loop is inherently sequential in t; on the CPU it runs in NumPy (on the same memory), whose
    per-call cost on small rows is a fraction of torch's, with the same float arithmetic.
    """
    if base.device.type == "cpu" and not base.requires_grad and not coef.requires_grad:
        b, c = base.numpy(force=True), coef.numpy(force=True)
        out = np.empty_like(b)
        running = last.numpy(force=True).astype(b.dtype, copy=False)
        for t in range(b.shape[0] - 1, -1, -1):
            running = out[t] = b[t] + c[t] * running
        return torch.from_numpy(out)
    outputs = torch.empty_like(base)
    value = last
    for t in reversed(range(base.shape[0])):
        value = base[t] + coef[t] * value
        outputs[t] = value
    return outputs


def whole_episode_returns(
    *,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    next_values: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """The discounted return of the whole episode, sum_k gamma^k r_k from its first step, at every step.

    This is the signal of vanilla REINFORCE (Williams 1992): every action of an episode is weighted by
    the same number. ``valid`` (default all True) marks real transitions; a step after an invalid one
    (an autoreset step) starts a new episode.
    """
    rtg = reward_to_go(rewards=rewards, terminated=terminated, truncated=truncated, gamma=gamma,
                       next_values=next_values)
    valid = torch.ones_like(terminated) if valid is None else valid
    out = torch.zeros_like(rtg)
    current = rtg[0]
    for t in range(rewards.shape[0]):
        if t > 0:
            starts = terminated[t - 1] | truncated[t - 1] | ~valid[t - 1]
            current = torch.where(starts, rtg[t], current)
        out[t] = current
    return out


def td_errors(
    *,
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """One-step TD error delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t).

    Truncation needs no special case: ``next_values`` already holds V(final obs) there.
    """
    return rewards + gamma * next_values * (~terminated).float() - values


def nstep_returns(
    *,
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    n: int,
) -> torch.Tensor:
    """n-step TD targets: sum_{k<m} gamma^k r_{t+k} + gamma^m V(s_{t+m}), m = min(n, steps to the cut).

    The sum stops early at an episode's end (bootstrapping only when truncated) and at the horizon.
    """
    if n < 1:
        raise UserInputError(f"n={n!r} is invalid: expected an integer >= 1")
    T = rewards.shape[0]
    if n >= T:  # every sum runs to its episode's end or the horizon: the bootstrapped reward-to-go
        return reward_to_go(rewards=rewards, terminated=terminated, truncated=truncated, gamma=gamma,
                            next_values=next_values)
    out = torch.zeros_like(rewards)
    discount = torch.ones_like(rewards)
    alive = torch.ones_like(terminated)  # the sum for row t still runs at offset k
    for k in range(min(n, T)):
        rows = T - k  # rows t with t + k < T
        live = alive[:rows]
        out[:rows] += torch.where(live, discount[:rows] * rewards[k:], 0.0)
        last = torch.zeros_like(live)
        last[-1] = True  # t + k == T - 1: the horizon
        if k == n - 1:
            last[:] = True
        term, trunc = terminated[k:], truncated[k:]
        bootstrap = live & ~term & (trunc | last)
        out[:rows] += torch.where(bootstrap, discount[:rows] * gamma * next_values[k:], 0.0)
        alive[:rows] = live & ~term & ~trunc & ~last
        discount[:rows] *= gamma
    return out


def gae(
    *,
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """Generalised advantage estimates (Schulman et al. 2016), A_t = delta_t + gamma*lambda*A_{t+1}.

    The recursion stops at every episode end; lambda = 0 gives the TD error, lambda = 1 the
    reward-to-go minus V(s_t). Value targets are ``advantages + values``.
    """
    deltas = td_errors(rewards=rewards, values=values, next_values=next_values, terminated=terminated, gamma=gamma)
    coef = (gamma * gae_lambda) * (~(terminated | truncated)).to(rewards.dtype)
    return _backward_recursion(deltas, coef, torch.zeros_like(rewards[0]))


# -- advantage estimators: one registry, one signature --------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """What an advantage estimator returns; both ``(T, N)``.

    ========== ========================================================================
    advantages A_t, the signal of the policy loss
    targets    what V(s_t) is regressed on (A_t + V(s_t) for the estimators here)
    ========== ========================================================================
    """

    advantages: torch.Tensor
    targets: torch.Tensor


@dataclass(frozen=True)
class Estimator:
    """A registered advantage estimator: the function, the config fields it takes as its own
    keyword parameters (e.g. ``gae_lambda``), and a line of help."""

    fn: Callable[..., Estimate]
    params: tuple[str, ...]
    help: str


ESTIMATORS: dict[str, Estimator] = {}


def register_estimator(name: str, params: tuple[str, ...] = (), help: str = "") -> Callable[
        [Callable[..., Estimate]], Callable[..., Estimate]]:
    """Register ``fn`` as the advantage estimator ``name`` (a decorator). ``fn`` takes, keyword-only,
    ``rewards, values, next_values, terminated, truncated, gamma`` (shapes in the module docs) plus one
    keyword per name in ``params``, each a config field the fixed-horizon algorithms pass on, and
    returns an :class:`Estimate`. ``advantage_estimator=name`` then selects it in any config."""
    def register(fn: Callable[..., Estimate]) -> Callable[..., Estimate]:
        if name in ESTIMATORS and ESTIMATORS[name].fn is not fn:
            raise UserInputError(f"an advantage estimator called {name!r} is already registered")
        ESTIMATORS[name] = Estimator(fn, tuple(params), help or (fn.__doc__ or "").strip().splitlines()[0])
        return fn
    return register


def estimate(name: str, *, rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
             terminated: torch.Tensor, truncated: torch.Tensor, gamma: float,
             params: Mapping[str, Any] | None = None) -> Estimate:
    """Run the registered estimator ``name``. ``params`` may hold more than it takes (a whole config's
    fields): only the names it declared are passed on."""
    if name not in ESTIMATORS:
        raise UserInputError(f"advantage_estimator={name!r} is invalid: expected one of " + " | ".join(ESTIMATORS))
    estimator = ESTIMATORS[name]
    own = {key: (params or {})[key] for key in estimator.params}
    return estimator.fn(rewards=rewards, values=values, next_values=next_values, terminated=terminated,
                        truncated=truncated, gamma=gamma, **own)


@register_estimator("gae", params=("gae_lambda",))
def gae_estimate(*, rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
                 terminated: torch.Tensor, truncated: torch.Tensor, gamma: float, gae_lambda: float) -> Estimate:
    """GAE(lambda) (Schulman et al. 2016): lambda 0 is the TD error, 1 the bootstrapped reward-to-go."""
    advantages = gae(rewards=rewards, values=values, next_values=next_values, terminated=terminated,
                     truncated=truncated, gamma=gamma, gae_lambda=gae_lambda)
    return Estimate(advantages, advantages + values)


@register_estimator("nstep")
def nstep_estimate(*, rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
                   terminated: torch.Tensor, truncated: torch.Tensor, gamma: float) -> Estimate:
    """n-step returns to the horizon (the A3C paper's targets; equals GAE with lambda 1)."""
    # Mnih et al. 2016, algorithm S3: every step sums the rewards up to the horizon (or its episode's
    # end) and bootstraps from V there, so step t looks T - t steps ahead.
    targets = nstep_returns(rewards=rewards, next_values=next_values, terminated=terminated, truncated=truncated,
                            gamma=gamma, n=rewards.shape[0])
    return Estimate(targets - values, targets)


@register_estimator("td")
def td_estimate(*, rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
                terminated: torch.Tensor, truncated: torch.Tensor, gamma: float) -> Estimate:
    """The one-step TD error r + gamma V(s') - V(s) (the one-step actor-critic's)."""
    delta = td_errors(rewards=rewards, values=values, next_values=next_values, terminated=terminated, gamma=gamma)
    return Estimate(delta, delta + values)
