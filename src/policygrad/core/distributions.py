"""Action distributions behind one interface, chosen from the action space.

Every head maps features ``(B, F)`` to an :class:`ActionDistribution` with ``sample``, ``log_prob``,
``entropy`` and ``mode``; ``log_prob`` and ``entropy`` return one number per batch row ``(B,)``, summed
over action dimensions where there are several. The deterministic action is always ``mode()``.
Argument validation is off: it costs more than the network on small problems, and the heads only
ever produce valid parameters.
"""

from __future__ import annotations

import functools
import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Bernoulli, Beta, Categorical, Normal
from torch.nn import functional as F

from policygrad.core.errors import UserInputError


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

    def sample_with_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A sample and its log-probability (collectors need both; a head may share work between them)."""
        actions = self.sample()
        return actions, self.log_prob(actions)


class CategoricalDistribution(ActionDistribution):
    """One of ``n`` actions, from unnormalised logits ``(B, n)``; actions are integer indices ``(B,)``.

    Computed directly from one ``log_softmax`` of the logits (kept for the sample, the log-prob and
    the entropy alike) rather than through ``torch.distributions.Categorical``, whose construction,
    broadcasting and lazy properties cost more than the policy network on small problems; :attr:`dist`
    still gives the torch object for anyone who wants it.
    """

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    @functools.cached_property
    def log_pmf(self) -> torch.Tensor:
        """log pi(a|s) for every action ``(B, n)``, computed once (``mode`` never needs it)."""
        return torch.log_softmax(self.logits, dim=-1)

    @property
    def dist(self) -> Categorical:
        """The equivalent ``torch.distributions.Categorical`` (built on demand)."""
        return Categorical(logits=self.logits, validate_args=False)

    def sample(self) -> torch.Tensor:
        return self._sample_index().squeeze(-1)

    def _sample_index(self) -> torch.Tensor:
        """Actions ``(B, 1)``. Inverse CDF: the first action whose cumulative probability exceeds
        u ~ U[0, 1); three times cheaper than torch.multinomial on small batches. Should the
        cumulative sum round to just under 1 and u land above it (a chance of ~1e-7), the clamp
        gives that sliver to the last action."""
        cdf = self.log_pmf.exp().cumsum(-1)
        u = torch.rand((*cdf.shape[:-1], 1), dtype=cdf.dtype, device=cdf.device)
        return torch.searchsorted(cdf, u, right=True).clamp_max_(cdf.shape[-1] - 1)

    def sample_with_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = self._sample_index()
        return index.squeeze(-1), self.log_pmf.gather(-1, index).squeeze(-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_pmf.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        # The clamp keeps 0 * log 0 at 0 should a logit ever be -inf (as torch's Categorical does).
        log_pmf = self.log_pmf.clamp_min(torch.finfo(self.log_pmf.dtype).min)
        return -(log_pmf.exp() * log_pmf).sum(-1)

    def mode(self) -> torch.Tensor:
        return self.logits.argmax(dim=-1)

    @property
    def probs(self) -> torch.Tensor:
        """Action probabilities ``(B, n)``."""
        return self.log_pmf.exp()


class CategoricalHead(nn.Module):
    """Linear layer from features to the logits of a ``Discrete(n)`` action space."""

    def __init__(self, in_features: int, space: gym.spaces.Discrete) -> None:
        super().__init__()
        self.start = int(space.start)
        self.out = nn.Linear(in_features, int(space.n))

    def forward(self, features: torch.Tensor) -> CategoricalDistribution:
        return self.distribution(self.out(features))

    def distribution(self, out: torch.Tensor) -> CategoricalDistribution:
        """The distribution for this head's last-layer output ``out`` (the logits)."""
        return CategoricalDistribution(out)

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """Policy actions ``(B,)`` as the environment wants them (Discrete spaces may start at non-zero;
        with start 0 this is a NumPy view of ``actions``)."""
        indices = actions.cpu().numpy()
        return indices + self.start if self.start else indices

    @property
    def last_layer(self) -> nn.Linear:
        return self.out


class MultiCategoricalDistribution(ActionDistribution):
    """Independent categoricals, one per ``MultiDiscrete`` dimension; actions ``(B, D)`` of indices."""

    def __init__(self, logits: torch.Tensor, nvec: list[int]) -> None:
        self.dists = [Categorical(logits=chunk, validate_args=False) for chunk in torch.split(logits, nvec, dim=-1)]

    def sample(self) -> torch.Tensor:
        return torch.stack([d.sample() for d in self.dists], dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return sum(d.log_prob(a) for d, a in zip(self.dists, actions.long().unbind(-1)))

    def entropy(self) -> torch.Tensor:
        return sum(d.entropy() for d in self.dists)

    def mode(self) -> torch.Tensor:
        return torch.stack([d.logits.argmax(dim=-1) for d in self.dists], dim=-1)


class BernoulliDistribution(ActionDistribution):
    """Independent on/off switches for ``MultiBinary(n)``; actions ``(B, n)`` of 0.0 / 1.0."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.dist = Bernoulli(logits=logits, validate_args=False)

    def sample(self) -> torch.Tensor:
        return self.dist.sample()

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(actions.float()).sum(-1)

    def entropy(self) -> torch.Tensor:
        return self.dist.entropy().sum(-1)

    def mode(self) -> torch.Tensor:
        return (self.dist.logits > 0).float()


# Log std is clamped to [LOG_STD_MIN, LOG_STD_MAX]: std from 0.0067 to 7.4. Below, log-probs blow up
# as the policy collapses; above, actions are noise. (SB3 and Spinning Up clamp similarly.)
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class GaussianDistribution(ActionDistribution):
    """Diagonal Gaussian over ``Box`` actions ``(B, D)``; log-prob and entropy summed over D."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.dist = Normal(mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp(), validate_args=False)

    def sample(self) -> torch.Tensor:
        return self.dist.sample()

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(actions).sum(-1)

    def entropy(self) -> torch.Tensor:
        return self.dist.entropy().sum(-1)

    def mode(self) -> torch.Tensor:
        return self.dist.mean


def _log1m_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2) computed stably as 2 * (log 2 - u - softplus(-2u))."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


class TanhGaussianDistribution(ActionDistribution):
    """a = low + (tanh(u) + 1) / 2 * (high - low), u ~ N(mean, std): always inside the bounds.

    ``log_prob`` is exact by change of variables: log N(u) - sum log(1 - tanh(u)^2) - sum log(scale)
    (Haarnoja et al. 2018, appendix C), with u recovered by atanh of the stored action. There is no
    closed-form entropy; ``entropy`` is the one-sample estimate -log pi(a) at a fresh sample.
    """

    EPS = 1e-6  # keeps atanh finite for actions stored exactly at a bound

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> None:
        self.base = GaussianDistribution(mean, log_std)
        self.loc, self.scale = (high + low) / 2, (high - low) / 2

    def _squash(self, u: torch.Tensor) -> torch.Tensor:
        return self.loc + self.scale * torch.tanh(u)

    def sample(self) -> torch.Tensor:
        return self._squash(self.base.sample())

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        y = ((actions - self.loc) / self.scale).clamp(-1 + self.EPS, 1 - self.EPS)
        u = torch.atanh(y)
        return self.base.log_prob(u) - (_log1m_tanh_sq(u) + self.scale.log()).sum(-1)

    def entropy(self) -> torch.Tensor:
        u = self.base.dist.rsample()
        return -(self.base.log_prob(u) - (_log1m_tanh_sq(u) + self.scale.log()).sum(-1))

    def mode(self) -> torch.Tensor:
        return self._squash(self.base.mode())


class BetaDistribution(ActionDistribution):
    """a = low + x * (high - low), x ~ Beta(alpha, beta) per dimension (Chou et al. 2017): bounded
    without squashing. alpha, beta >= 1 keeps it unimodal; the deterministic action is the mean."""

    def __init__(self, alpha: torch.Tensor, beta: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> None:
        self.dist = Beta(alpha, beta, validate_args=False)
        self.low, self.width = low, high - low

    def sample(self) -> torch.Tensor:
        return self.low + self.dist.sample() * self.width

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        x = ((actions - self.low) / self.width).clamp(1e-6, 1 - 1e-6)
        return (self.dist.log_prob(x) - self.width.log()).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (self.dist.entropy() + self.width.log()).sum(-1)

    def mode(self) -> torch.Tensor:
        return self.low + self.dist.mean * self.width


class MultiCategoricalHead(nn.Module):
    def __init__(self, in_features: int, space: gym.spaces.MultiDiscrete) -> None:
        super().__init__()
        self.nvec = [int(n) for n in space.nvec.reshape(-1)]
        self.start = np.asarray(space.start).reshape(-1)
        self.out = nn.Linear(in_features, sum(self.nvec))

    def forward(self, features: torch.Tensor) -> MultiCategoricalDistribution:
        return self.distribution(self.out(features))

    def distribution(self, out: torch.Tensor) -> MultiCategoricalDistribution:
        return MultiCategoricalDistribution(out, self.nvec)

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        return actions.cpu().numpy() + self.start

    @property
    def last_layer(self) -> nn.Linear:
        return self.out


class BernoulliHead(nn.Module):
    def __init__(self, in_features: int, space: gym.spaces.MultiBinary) -> None:
        super().__init__()
        self.out = nn.Linear(in_features, int(np.prod(space.shape)))

    def forward(self, features: torch.Tensor) -> BernoulliDistribution:
        return self.distribution(self.out(features))

    def distribution(self, out: torch.Tensor) -> BernoulliDistribution:
        return BernoulliDistribution(out)

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        return actions.cpu().numpy().astype(np.int8)

    @property
    def last_layer(self) -> nn.Linear:
        return self.out


class BoundedBoxHead(nn.Module):
    """What every head of ``Box`` actions shares: the bounds as buffers and the action shape, the clip of
    actions ``(B, D)`` into the bounds on their way to the environment (never the stored action) and the
    reshape to ``(B, *shape)``; ``out`` is the head's last layer."""

    low: torch.Tensor  # buffers, registered in __init__
    high: torch.Tensor
    out: nn.Linear

    def __init__(self, space: gym.spaces.Box) -> None:
        super().__init__()
        self.env_shape = tuple(int(n) for n in space.shape)
        self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32).reshape(-1))
        self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32).reshape(-1))

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """Actions ``(B, D)`` clipped to the bounds, as ``(B, *shape)`` of the action space."""
        clipped = torch.max(torch.min(actions, self.high), self.low).cpu().numpy()
        return clipped if len(self.env_shape) == 1 else clipped.reshape(-1, *self.env_shape)

    @property
    def last_layer(self) -> nn.Linear:
        return self.out


class BoxHead(BoundedBoxHead):
    """Heads for ``Box`` actions of any shape, flattened to ``D = prod(shape)`` for the head and its
    distribution (stored so) and reshaped for the environment (:meth:`to_env`).

    ``kind``: ``gaussian`` (mean from the network, log std a free parameter per dimension, starting at
    0 or ``log_std_init``), ``gaussian_state_std`` (both from the network), ``tanh`` (state-dependent Gaussian squashed
    into the bounds) or ``beta``. Actions are clipped to the bounds on their way to the environment,
    never in the stored action: clipping the stored one would bias the log-probabilities.
    """

    log_std: nn.Parameter | None

    def __init__(self, in_features: int, space: gym.spaces.Box, kind: str) -> None:
        super().__init__(space)
        self.kind = kind
        dim = int(np.prod(space.shape))
        two_outputs = kind in ("gaussian_state_std", "tanh", "beta")
        self.out = nn.Linear(in_features, 2 * dim if two_outputs else dim)
        self.log_std = nn.Parameter(torch.zeros(dim)) if kind == "gaussian" else None

    def init_log_std(self, value: float) -> None:
        """Start the policy's log std at ``value`` (Gaussian and tanh heads): the free parameter, or
        the bias of the log-std outputs when the std depends on the state. The beta head has no std
        and ignores it (so a preset's value does not stop ``--distribution beta``). Call after the
        layer's weight init, which zeroes biases."""
        if self.kind == "beta":
            return
        with torch.no_grad():
            if self.log_std is not None:
                self.log_std.fill_(value)
            else:
                self.out.bias[self.out.out_features // 2:].fill_(value)

    def forward(self, features: torch.Tensor) -> ActionDistribution:
        return self.distribution(self.out(features))

    def distribution(self, out: torch.Tensor) -> ActionDistribution:
        """The distribution for this head's last-layer output ``out``."""
        if self.kind == "gaussian":
            if self.log_std is None:  # set in __init__ for kind "gaussian"
                raise RuntimeError("a Gaussian head without its log std parameter")
            return GaussianDistribution(out, self.log_std.expand_as(out))
        first, second = out.chunk(2, dim=-1)
        if self.kind == "gaussian_state_std":
            return GaussianDistribution(first, second)
        if self.kind == "tanh":
            return TanhGaussianDistribution(first, second, self.low, self.high)
        # softplus + 1: alpha, beta >= 1 (unimodal), and with a 0.01-gain layer both start near
        # 1.69, a broad bump over the whole range.
        return BetaDistribution(F.softplus(first) + 1.0, F.softplus(second) + 1.0, self.low, self.high)

class StateDependentGaussian(GaussianDistribution):
    """The Gaussian of gSDE: mean ``(B, D)``, variance ``features^2 @ std^2`` (see :class:`GSDEHead`).

    ``sample`` draws ``mean + features @ noise[row]`` with the head's current exploration matrices,
    one per row, when there is one for each row (a collector's copies); otherwise (an evaluation
    with another number of copies) it samples the same Gaussian independently at every step.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, features: torch.Tensor,
                 noise: torch.Tensor | None) -> None:
        self.dist = Normal(mean, std, validate_args=False)
        self.features, self.noise = features, noise

    def sample(self) -> torch.Tensor:
        noise = self.noise
        if noise is None or noise.shape[0] != self.features.shape[0]:
            return self.dist.sample()
        with torch.no_grad():
            return self.dist.mean + torch.bmm(self.features.unsqueeze(1), noise).squeeze(1)


class GSDEHead(BoundedBoxHead):
    """Generalized state-dependent exploration (gSDE; Raffin, Kober & Stulp 2022) for Box actions ``(D,)``.

    The exploration noise is a linear function of the policy's last hidden features z(s):
    ``a = mu(s) + z(s) @ E`` with ``E ~ N(0, std^2)``, a ``(features, D)`` matrix drawn per environment
    copy and kept for ``sde_sample_freq`` steps (or a whole rollout) instead of new noise every step.
    Consecutive actions then vary smoothly with the state, which is what lets A2C and PPO explore
    Pendulum and MuJoCo without the jitter that independent per-step noise gives. Given z(s), the action
    is Gaussian with variance ``z(s)^2 @ std^2`` per dimension: its log-probability does not depend on
    E, so the algorithms' losses are unchanged. As in the reference implementation the features enter
    the variance detached (exploration does not reshape them), ``std = exp(log_std)`` is a full
    ``(features, D)`` parameter, and the exploration matrices are not saved (collectors draw new ones).
    """

    kind = "gsde"
    VARIANCE_EPS = 1e-6  # keeps the std positive where every feature is 0 (ReLU)

    def __init__(self, in_features: int, space: gym.spaces.Box, sample_freq: int = -1) -> None:
        super().__init__(space)
        dim = int(np.prod(space.shape))
        self.out = nn.Linear(in_features, dim)
        self.log_std = nn.Parameter(torch.zeros(in_features, dim))
        self.sample_freq = sample_freq
        self.noise: torch.Tensor | None = None  # (rows, in_features, D): collectors' state, never saved

    def init_log_std(self, value: float) -> None:
        with torch.no_grad():
            self.log_std.fill_(value)

    @torch.no_grad()
    def reset_noise(self, rows: int) -> None:
        """New exploration matrices, one per row (environment copy), from torch's generator."""
        std = self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        self.noise = torch.randn((rows, *std.shape), device=std.device) * std

    def distribution(self, out: torch.Tensor, features: torch.Tensor | None = None) -> ActionDistribution:
        """The distribution for the mean ``out``; gSDE needs the features the mean was computed from."""
        if features is None:
            raise ValueError("the gsde head needs the policy's features, not only its last layer's output")
        features = features.detach()
        std = self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        variance = features.pow(2) @ std.pow(2)
        return StateDependentGaussian(out, (variance + self.VARIANCE_EPS).sqrt(), features, self.noise)

    def forward(self, features: torch.Tensor) -> ActionDistribution:
        return self.distribution(self.out(features), features)


# What make_head returns: every head has distribution(out), to_env(actions) and last_layer
ActionHead = CategoricalHead | MultiCategoricalHead | BernoulliHead | BoxHead | GSDEHead

BOX_KINDS = ("gaussian", "gaussian_state_std", "tanh", "beta", "gsde")
DISTRIBUTIONS = ("auto", "categorical", *BOX_KINDS)


def check_action_space(space: gym.Space, kind: str = "auto") -> None:
    """Raise UserInputError unless a head of ``kind`` can act in ``space``."""
    if kind not in DISTRIBUTIONS:
        raise UserInputError(f"distribution={kind!r} is invalid: expected one of {' | '.join(DISTRIBUTIONS)}")
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        if kind not in ("auto", "categorical"):
            raise UserInputError(f"distribution={kind!r} does not fit the discrete action space {space}: "
                                 "leave it at auto")
        return
    if isinstance(space, gym.spaces.Box):
        if kind == "categorical":
            raise UserInputError(f"distribution='categorical' does not fit the continuous action space {space}: "
                                 f"expected one of {' | '.join(BOX_KINDS)}")
        if len(space.shape) == 0:  # (any other shape is flattened for the head and reshaped for the env)
            raise UserInputError(f"action space {space}: Box actions need at least one dimension")
        bounded = bool(np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)))
        if kind in ("tanh", "beta") and not bounded:
            raise UserInputError(f"distribution={kind!r} needs finite action bounds; {space} is unbounded: "
                                 "use gaussian")
        return
    raise UserInputError(f"action space {space} is not supported: expected Discrete, MultiDiscrete, "
                         "MultiBinary or Box")


def make_head(space: gym.Space, in_features: int, kind: str = "auto", sde_sample_freq: int = -1) -> ActionHead:
    """The distribution head for ``space``. ``kind`` picks among heads that fit the space
    (``auto``: categorical for discrete spaces, state-independent Gaussian for Box)."""
    check_action_space(space, kind)
    if isinstance(space, gym.spaces.Discrete):
        return CategoricalHead(in_features, space)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return MultiCategoricalHead(in_features, space)
    if isinstance(space, gym.spaces.MultiBinary):
        return BernoulliHead(in_features, space)
    if not isinstance(space, gym.spaces.Box):  # check_action_space accepts nothing else
        raise RuntimeError(f"no action head for {type(space).__name__}")
    if kind == "gsde":
        return GSDEHead(in_features, space, sde_sample_freq)
    return BoxHead(in_features, space, "gaussian" if kind == "auto" else kind)


def action_shape(space: gym.Space) -> tuple[int, ...]:
    """The shape of one stored action: ``()`` for Discrete, ``(D,)`` otherwise."""
    if isinstance(space, gym.spaces.Discrete):
        return ()
    if space.shape is None:  # MultiDiscrete, MultiBinary and Box always have one
        raise RuntimeError(f"{type(space).__name__} action space without a shape")
    return (int(np.prod(space.shape)),)


def action_dtype(space: gym.Space) -> torch.dtype:
    """Integer indices for (Multi)Discrete, floats for Box and MultiBinary."""
    return torch.long if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)) else torch.float32
