"""Acting in NumPy on the CPU: the fused acting MLP and action sampling without a torch call per op.

When a collector acts on a few dozen observations per step, each torch call costs 5-10 us of
dispatch for microseconds of arithmetic, and one acting step (the fused MLP, log-softmax, sampling,
log-prob) is ~20 of them. The same step in NumPy costs 1.5-3 us per operation. This module runs the
policy and value MLPs of :func:`policygrad.fast.fused_acting.acting_forward` on NumPy views of its fused weight
buffers (CPU torch tensors share their memory with ``.numpy()``, so each snapshot's copy is seen
without another copy), samples from a NumPy ``Generator`` (Categorical actions by inverse CDF,
Gaussian ones as mean + std * noise), and writes actions, log-probs and values straight into the
rows of the collector's buffers.

It is used only where it computes what the torch path computes (:func:`numpy_actor_class`): CPU
float32 weights, Box observations (running normalization included: the observations are normalized
in NumPy from views of the float64 statistics, with ``ObservationNormalizer``'s float32 operations,
so to the same bits), tanh or ReLU hidden layers no wider than ``FUSE_MAX_WIDTH``, a plain value
head, and a Categorical head (``Discrete``) or the state-independent Gaussian head (``gaussian``,
Box's default). Everything else acts through torch. The numbers equal ``dist_and_value``'s up to
float rounding; the random stream is the Generator's, not torch's (a collector owns the Generator,
and checkpoints save it). The statistics themselves are the collector's to update, before acting.
"""

from __future__ import annotations

import math
from typing import TypeVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from policygrad.core.distributions import LOG_STD_MAX, LOG_STD_MIN, BoxHead, CategoricalHead
from policygrad.core.networks import ActorCritic, PolicyNetwork
from policygrad.fast.fused_acting import FUSE_MAX_WIDTH, fused_acting_weights

# OpenBLAS runs a matrix product on one thread up to this many multiply-adds (M * N * K: its
# GEMM_MULTITHREAD_THRESHOLD of 4 times 65536). Above it, it wakes its other threads, which on a
# small shared CPU costs 10-100x the product itself; there, arithmetic dominates anyway and acting
# stays in torch.
SINGLE_THREAD_PRODUCT = 4 * 65536


def _relu_(x: np.ndarray, _: torch.Tensor) -> None:
    np.maximum(x, 0.0, out=x)


def _sigmoid_(_: np.ndarray, x: torch.Tensor) -> None:
    # torch's CPU sigmoid is vectorised: a third of the time of NumPy's float32 tanh here, and a
    # quarter of exp + add + reciprocal, even with its call overhead
    torch.sigmoid_(x)


# The in-place form of each hidden activation of a fused snapshot (tanh layers come as sigmoids),
# called with a NumPy array and a tensor sharing its memory
NUMPY_ACTIVATIONS = {torch.sigmoid_: _sigmoid_, torch.relu: _relu_}
NUMPY_LAYERS = {nn.Tanh, nn.ReLU}


def sampling_generator(seed: int) -> np.random.Generator:
    """The Generator a collector samples actions with, from the run's seed. The extra word keeps its
    stream apart from a ``default_rng(seed)`` made elsewhere from the same seed (environments, say)."""
    return np.random.default_rng([seed, 0x5A3])


def numpy_actor_class(network: PolicyNetwork, rows: int) -> type[NumpyActor] | None:
    """The NumPy actor that computes what ``network.acting_forward`` does on ``rows`` observations a
    step, with every matrix product on one BLAS thread; None where acting must stay in torch (always
    for a network other than the built-in ActorCritic)."""
    if not isinstance(network, ActorCritic) or not network.mlp_encoder:  # images act in torch
        return None
    if network.value_body is not None and list(map(type, network.value_body)) != list(map(type, network.policy_body)):
        return None
    linear = [m for m in network.policy_body if isinstance(m, nn.Linear)]
    head = network.policy_head
    actor = NumpyCategoricalActor if isinstance(head, CategoricalHead) else (
        NumpyGaussianActor if isinstance(head, BoxHead) and head.kind == "gaussian" else None)
    valid = (head.last_layer.weight.device.type == "cpu"
             and all(p.dtype == torch.float32 for p in network.parameters())
             and isinstance(network.observation_space, gym.spaces.Box)
             and (network.obs_normalizer is None or network.obs_normalizer.stats.mean.device.type == "cpu")
             and network.has_value and network.popart is None
             and all(type(m) in NUMPY_LAYERS for m in network.policy_body if not isinstance(m, nn.Linear))
             and max(m.out_features for m in linear) <= FUSE_MAX_WIDTH
             and all(rows * m.in_features * m.out_features <= SINGLE_THREAD_PRODUCT for m in linear))
    return actor if valid else None


def numpy_acting_supported(network: PolicyNetwork, rows: int) -> bool:
    return numpy_actor_class(network, rows) is not None


def _branch_weights(weight: torch.Tensor, branches: int, first: bool) -> np.ndarray:
    """``(branches, in, out)`` NumPy views of the diagonal blocks of a fused ``(out, in)`` weight
    buffer (the first layer's blocks are stacked rows, sharing the input), for one batched product."""
    w = weight.numpy()
    out_features = w.shape[0] // branches
    in_features = w.shape[1] if first else w.shape[1] // branches
    row, col = w.strides
    block = out_features * row + (0 if first else in_features * col)  # from one block to the next
    blocks = np.lib.stride_tricks.as_strided(w, (branches, out_features, in_features), (block, row, col),
                                             writeable=False)
    return blocks.transpose(0, 2, 1)



H = TypeVar("H")


def _head_of(network: ActorCritic, kind: type[H]) -> H:
    """The network's policy head, which numpy_actor_class chose this actor for (a RuntimeError, not an
    assert, if it is not: ``python -O`` strips asserts)."""
    head = network.policy_head
    if not isinstance(head, kind):
        raise RuntimeError(f"a NumPy actor for {kind.__name__} was given a {type(head).__name__}")
    return head

class NumpyActor:
    """The acting step of one network for ``rows`` observations at a time, in NumPy: the MLP and
    value head shared by every action head (subclasses sample).

    It acts with the weights of the last snapshot (:meth:`refresh`, once per collection, like
    ``acting_forward``). The policy and value MLPs run side by side as one batched product per layer
    over their own ``(in, out)`` blocks: the fused layout's block-diagonal products would double the
    arithmetic, which is what costs at 64 rows, while an extra NumPy call does not.
    """

    def __init__(self, network: ActorCritic, rows: int, generator: np.random.Generator) -> None:
        layers, head_weight, head_bias, n = fused_acting_weights(network)
        branches = 1 if network.value_body is None else 2
        self.network, self.generator, self.rows, self.n_outputs = network, generator, rows, n
        self._head_buffer = head_weight  # the snapshot's buffers, which later snapshots rewrite in place
        self.layers = []
        for k, (weight, bias, activation) in enumerate(layers):
            w = _branch_weights(weight, branches, first=k == 0)
            hidden = np.empty((branches, rows, w.shape[2]), np.float32)
            self.layers.append((w, bias.numpy().reshape(branches, 1, -1), NUMPY_ACTIVATIONS[activation],
                                hidden, torch.from_numpy(hidden)))
        width = head_weight.shape[1] // branches
        head_w, head_b = head_weight.numpy(), head_bias.numpy()
        self.policy_head = (head_w[:n, :width], head_b[:n])  # (n, in) over the policy's features
        # over the value's features (the last branch); the bias as a one-element view, since an
        # indexed element would be a copy that later snapshots do not reach
        self.value_head = (head_w[n, -width:], head_b[n:n + 1])
        self.normalizer = network.obs_normalizer
        if self.normalizer is not None:
            shape = self.normalizer.stats.mean.shape
            self.normalized = np.empty((rows, *shape), np.float32)
            self.norm_mean = np.empty(shape, np.float32)
            self.norm_std = np.empty(shape, np.float32)
            self.norm_var = np.empty(shape, np.float64)
            self._read_stats()

    def _read_stats(self) -> None:
        # views of the statistics' float64 buffers (updated in place between steps)
        if self.normalizer is None:
            raise RuntimeError("observation statistics read without an observation normalizer")
        self.stats_mean, self.stats_var = self.normalizer.stats.mean.numpy(), self.normalizer.stats.var.numpy()

    def refresh(self) -> bool:
        """Take a new snapshot of the network's weights; False when it was laid out anew (moved to
        another device or dtype), so that this actor's views no longer see it: make a new actor."""
        if self.normalizer is not None:
            self._read_stats()
        return fused_acting_weights(self.network)[1] is self._head_buffer

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """``ObservationNormalizer(obs)`` with the statistics of this moment: (obs - mean) / std in
        float32, mean and std rounded from float64 to float32 first, clipped to [-clip, clip]."""
        if self.normalizer is None:
            raise RuntimeError("observation statistics read without an observation normalizer")
        clip = self.normalizer.clip
        np.add(self.stats_var, 1e-8, out=self.norm_var)
        np.sqrt(self.norm_var, out=self.norm_var)
        np.copyto(self.norm_std, self.norm_var, casting="same_kind")
        np.copyto(self.norm_mean, self.stats_mean, casting="same_kind")
        x = np.subtract(obs, self.norm_mean, out=self.normalized)
        np.divide(x, self.norm_std, out=x)
        np.minimum(x, clip, out=x)  # clamp(-clip, clip)
        np.maximum(x, -clip, out=x)
        return x

    def features(self, obs: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The policy's last hidden layer ``(rows, width)``; V(s) written into ``values``."""
        if self.normalizer is not None:
            obs = self.normalize(obs)
        x: np.ndarray = obs.reshape(obs.shape[0], -1)
        for weight, bias, activation_, hidden, hidden_tensor in self.layers:
            np.matmul(x, weight, out=hidden)
            hidden += bias
            activation_(hidden, hidden_tensor)
            x = hidden
        weight, bias = self.value_head
        np.matmul(x[-1], weight, out=values)
        values += bias
        return x[0]

    def act(self, obs: np.ndarray, actions: np.ndarray, log_probs: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Sample an action per row of ``obs`` ``(rows, *obs_shape)``, writing it, its log-prob and
        V(s) into ``actions``, ``log_probs`` and ``values`` (rows of the collector's buffers);
        returns the actions as the environment takes them."""
        raise NotImplementedError


class NumpyCategoricalActor(NumpyActor):
    """Categorical actions (int64 indices) by inverse CDF, for a ``Discrete`` space."""

    def __init__(self, network: ActorCritic, rows: int, generator: np.random.Generator) -> None:
        super().__init__(network, rows, generator)
        n = self.n_outputs
        head = _head_of(network, CategoricalHead)  # numpy_actor_class picks this actor only for it
        self.start = head.start  # a Discrete space may start at non-zero
        # The sampling arrays are action-major, (n, rows): a reduction over the actions is then a
        # few vectorised operations on whole rows rather than a loop over every batch row
        self.logits = np.empty((n, rows), np.float32)
        self.max_logit = np.empty((rows,), np.float32)
        self.shifted = np.empty((n, rows), np.float32)  # logits - max: the log-softmax before its log-sum
        self.cdf = np.empty((n, rows), np.float32)  # cumulative sums of exp(shifted), not normalised
        self.below = np.empty((n - 1, rows), bool)
        self.u = np.empty((rows,), np.float32)
        self.log_total = np.empty((rows,), np.float32)
        self.flat_index = np.empty((rows,), np.int64)
        self.columns = np.arange(rows, dtype=np.int64)
        self.logit_bias = self.policy_head[1][:, None]

    def act(self, obs: np.ndarray, actions: np.ndarray, log_probs: np.ndarray, values: np.ndarray) -> np.ndarray:
        n, rows = self.n_outputs, self.rows
        features = self.features(obs, values)
        logits = np.matmul(self.policy_head[0], features.T, out=self.logits)
        logits += self.logit_bias
        # log pi(a|s) = shifted_a - log sum exp(shifted), the max subtracted first (as torch's
        # log_softmax does) so that exp cannot overflow. (The ufuncs' own reduce and accumulate
        # skip the Python wrappers of np.max, np.cumsum and np.sum: microseconds a call.)
        np.maximum.reduce(logits, axis=0, out=self.max_logit)
        np.subtract(logits, self.max_logit, out=self.shifted)
        np.exp(self.shifted, out=self.cdf)
        np.add.accumulate(self.cdf, axis=0, out=self.cdf)
        total = self.cdf[n - 1]
        # Inverse CDF on the unnormalised sums: action a when cdf[a-1] <= u * total < cdf[a], i.e. the
        # count of the first n - 1 sums at or below u * total. Leaving out the last sum keeps the
        # action below n should u * total round up to the total.
        self.generator.random(out=self.u, dtype=np.float32)
        self.u *= total
        np.less_equal(self.cdf[:n - 1], self.u, out=self.below)
        np.add.reduce(self.below, axis=0, dtype=np.int64, out=actions)
        np.log(total, out=self.log_total)
        np.multiply(actions, rows, out=self.flat_index)  # shifted[a, j] at a * rows + j
        self.flat_index += self.columns
        np.take(self.shifted, self.flat_index, out=log_probs)
        log_probs -= self.log_total
        return actions + self.start if self.start else actions


class NumpyGaussianActor(NumpyActor):
    """Diagonal Gaussian actions ``(rows, D)`` around the network's mean, with the head's free log
    std (the ``gaussian`` Box head); the environment gets them clipped to the bounds, the buffers
    unclipped (as ``BoxHead.to_env`` does)."""

    def __init__(self, network: ActorCritic, rows: int, generator: np.random.Generator) -> None:
        super().__init__(network, rows, generator)
        head, dim = _head_of(network, BoxHead), self.n_outputs  # picked only for the gaussian head
        self._read_std()
        self.low, self.high = head.low.numpy(), head.high.numpy()
        self.noise = np.empty((rows, dim), np.float32)
        self.scaled = np.empty((rows, dim), np.float32)
        self.env_actions = np.empty((rows, dim), np.float32)
        # what the environment takes: the same numbers as (rows, *shape) for a Box of rank > 1 (a view)
        self.env_view = self.env_actions.reshape(rows, *head.env_shape)

    def _read_std(self) -> None:
        # The std is a parameter, constant over a snapshot: its log and the Gaussian's normaliser
        # are computed once per snapshot (torch's Normal computes them per call)
        log_std = _head_of(self.network, BoxHead).log_std  # the gaussian head's free parameter
        if log_std is None:
            raise RuntimeError("the NumPy Gaussian actor needs a state-independent log std")
        std = log_std.detach().clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        self.std = std.numpy()
        self.log_norm = np.float32(-(std.log().sum().item() + self.n_outputs * 0.5 * math.log(2 * math.pi)))

    def refresh(self) -> bool:
        if not super().refresh():
            return False
        self._read_std()
        return True

    def act(self, obs: np.ndarray, actions: np.ndarray, log_probs: np.ndarray, values: np.ndarray) -> np.ndarray:
        features = self.features(obs, values)
        weight, bias = self.policy_head
        np.matmul(features, weight.T, out=actions)  # the mean, then the noise added in place
        actions += bias
        self.generator.standard_normal(out=self.noise, dtype=np.float32)
        np.multiply(self.noise, self.std, out=self.scaled)
        actions += self.scaled
        # log N(a; mean, std) = -(sum of noise^2) / 2 - sum log std - D/2 log(2 pi), as (a - mean) / std is the noise
        np.square(self.noise, out=self.noise)
        np.add.reduce(self.noise, axis=1, out=log_probs)
        log_probs *= -0.5
        log_probs += self.log_norm
        np.minimum(actions, self.high, out=self.env_actions)
        np.maximum(self.env_actions, self.low, out=self.env_actions)
        return self.env_view
