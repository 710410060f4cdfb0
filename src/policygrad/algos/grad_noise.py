"""The gradient noise scale of the policy's gradient during training (McCandlish et al. 2018), the
opt-in ``grad_noise_scale`` of PPO and A2C, logged as ``diag/grad_noise_scale``.

It is an :class:`~policygrad.algos.on_policy.UpdateHook`: the algorithm tells it about each gradient
step and it measures on the side, changing nothing (training is the same, bit for bit, with it on or
off). Algorithms without it hold the plain hook, which does nothing, so their updates read the same
either way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from policygrad.algos.base import GradientCheck, checked_generator, checked_int
from policygrad.algos.on_policy import FlatBatch, PolicyLoss, UpdateHook
from policygrad.core.errors import UserInputError
from policygrad.core.networks import PolicyNetwork
from policygrad.core.structured import obs_map


def noise_scale_terms(small_sq_norm: float, big_sq_norm: float, small: int, big: int) -> tuple[float, float]:
    """Unbiased estimates of tr(Sigma) and |G|^2 from the squared norms of two gradients of one loss at
    one point, averaged over ``small`` and ``big`` samples (McCandlish et al. 2018, "An Empirical Model
    of Large-Batch Training", appendix A.1): E|G_B|^2 = |G|^2 + tr(Sigma) / B for a mean over B
    samples, so two batch sizes give two equations in the two unknowns:

        tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/small - 1/big)
        |G|^2     ~ (big |G_big|^2 - small |G_small|^2) / (big - small)

    Sigma is the covariance of one sample's gradient. Either estimate may come out negative on one
    pair; only their averages over many pairs are meaningful (:class:`GradientNoiseScale`)."""
    if not 0 < small < big:
        raise ValueError(f"noise_scale_terms needs 0 < small < big, got small={small}, big={big}")
    trace = (small_sq_norm - big_sq_norm) / (1.0 / small - 1.0 / big)
    sq_norm = (big * big_sq_norm - small * small_sq_norm) / (big - small)
    return trace, sq_norm


def noise_generator(seed: int) -> np.random.Generator:
    """The Generator the half batches are drawn from: a stream of its own, apart from everything the
    run draws (drawing from torch's would change the run's minibatch shuffles)."""
    return np.random.default_rng([seed, 0x6E5])


def random_half(rows: int, rng: np.random.Generator) -> torch.Tensor:
    """The indices of ``rows // 2`` of ``rows`` rows, drawn without replacement from ``rng``."""
    return torch.from_numpy(rng.permutation(rows)[: rows // 2])


class GradientNoiseScale(UpdateHook):
    """The simple gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018) of the
    policy's gradient, in transitions.

    B_simple is the batch size at which a gradient step's noise is as large as its signal: the paper's
    estimate of the critical batch size, beyond which larger batches buy little per sample. Each
    measured gradient step also takes the gradient of the same loss, at the same parameters, on a
    random half of the step's rows (:func:`random_half`), with the advantages as the whole step
    normalised them, so that both are means of one set of per-transition terms. Its squared norm and
    that of the step's own gradient give tr(Sigma) and |G|^2 by :func:`noise_scale_terms`. One pair
    is very noisy, so the logged value is the ratio of exponential moving averages (``decay`` per
    update) of the two, as the paper does.

    Which steps are measured: those of an update's first pass over its batch (A2C's one step, PPO's
    first epoch), at most ``max_pairs`` of them, in one update of every ``every``.

    Both norms are over the policy's own parameters, those the value loss does not reach (the whole
    actor with separate networks; the policy head with a shared trunk): the critic's regression
    gradient is large and consistent early in training and would otherwise make the noise scale
    that of the critic. Sigma is the spread of the per-transition gradients within the rollout, the
    noise PPO's and A2C's minibatches see. The extra half-batch pass draws only on its own NumPy
    Generator (:func:`noise_generator`).
    """

    def __init__(self, seed: int, network: PolicyNetwork, max_grad_norm: float, every: int = 1,
                 max_pairs: float = math.inf, decay: float = 0.9) -> None:
        self.rng = noise_generator(seed)
        self.network, self.params = network, list(network.parameters())
        self.max_grad_norm, self.every, self.max_pairs, self.decay = max_grad_norm, every, max_pairs, decay
        self.calls = 0  # updates seen: one in ``every`` is measured (A2C's are too cheap to measure all)
        self.trace = 0.0  # EMAs of the two estimates; their ratio needs no start-up correction
        self.sq_norm = 0.0
        self.pending: list[tuple[float, float]] = []  # this update's (tr(Sigma), |G|^2) pairs
        self.actor: list[torch.nn.Parameter] | None = None
        self.measuring = False  # this update is one to measure
        self.in_update = False
        self.half: tuple[float, int] | None = None  # the step about to be taken: its half's |gradient|^2, rows

    # -- the hook ------------------------------------------------------------------------------------
    def before_step(self, rows: FlatBatch, policy_loss: PolicyLoss, epoch: int) -> None:
        if not self.in_update:  # the update's first step
            self.in_update, self.calls = True, self.calls + 1
            self.measuring = (self.calls - 1) % self.every == 0
        due = self.measuring and epoch == 1 and len(self.pending) < self.max_pairs
        self.half = self.half_batch_sq_norm(rows, policy_loss) if due else None

    def after_step(self, step: GradientCheck, rows: int) -> None:
        if self.half is not None and step.finite:
            self.add_pair(*self.half, self.step_sq_norm(step.norm), rows)
        self.half = None

    def after_update(self, metrics: dict[str, float]) -> None:
        self.in_update = False
        metrics["diag/grad_noise_scale"] = self.update()

    # -- the measurements ------------------------------------------------------------------------------
    def actor_parameters(self, obs: torch.Tensor) -> list[torch.nn.Parameter]:
        """The network's parameters that V(s) does not depend on (found once, by differentiating V of
        one observation of ``obs``); all of them if every one does."""
        if self.actor is None:
            first = obs_map(lambda v: v[:1], obs)
            reached = torch.autograd.grad(self.network.value(first).sum(), self.params, allow_unused=True)
            self.actor = [p for p, g in zip(self.params, reached) if g is None] or list(self.params)
        return self.actor

    def actor_sq_norm(self, loss: torch.Tensor) -> float:
        """|gradient of ``loss``|^2 over the actor's parameters, without touching ``.grad`` (the step's
        own gradient is computed afterwards, as usual)."""
        if self.actor is None:
            raise RuntimeError("actor_sq_norm needs the actor's parameters: call actor_parameters first")
        grads = torch.autograd.grad(loss, self.actor, allow_unused=True)
        return float(sum(g.pow(2).sum() for g in grads if g is not None))

    def half_batch_sq_norm(self, rows: FlatBatch, policy_loss: PolicyLoss) -> tuple[float, int]:
        """|gradient|^2 over the actor's parameters of the policy's loss on a random half of ``rows`` at
        the current parameters, and the half's size."""
        index = random_half(len(rows), self.rng)
        self.actor_parameters(rows.obs)
        return self.actor_sq_norm(policy_loss(rows, index)), len(index)

    def step_sq_norm(self, step_norm: float) -> float:
        """|the step's gradient|^2 over the actor's parameters, before clipping: their ``.grad`` after
        :func:`policygrad.algos.base.gradient_step`, with its clipping factor (computed from the
        global pre-clip norm ``step_norm`` exactly as it did) divided out."""
        if self.actor is None:
            raise RuntimeError("step_sq_norm needs the actor's parameters: call actor_parameters first")
        max_norm = self.max_grad_norm
        scale = min(1.0, max_norm / (step_norm + 1e-6)) if max_norm > 0 else 1.0
        grads = [p.grad for p in self.actor if p.grad is not None]
        return float(sum(g.pow(2).sum() for g in grads)) / scale ** 2 if grads else math.nan

    def add_pair(self, half_sq_norm: float, half_rows: int, step_sq_norm: float, rows: int) -> None:
        """One measured step: the squared norms of the half-batch gradient and of the step's gradient."""
        if math.isfinite(half_sq_norm) and math.isfinite(step_sq_norm) and 0 < half_rows < rows:
            self.pending.append(noise_scale_terms(half_sq_norm, step_sq_norm, half_rows, rows))

    def update(self) -> float:
        """Fold this update's pairs into the moving averages; the current B_simple (nan until the
        averaged |G|^2 is positive)."""
        if self.pending:
            trace, sq_norm = (float(np.mean(x)) for x in zip(*self.pending))
            self.pending.clear()
            self.trace = self.decay * self.trace + (1 - self.decay) * trace
            self.sq_norm = self.decay * self.sq_norm + (1 - self.decay) * sq_norm
        return self.trace / self.sq_norm if self.sq_norm > 0 else math.nan

    # -- checkpoints -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"noise_scale_trace": self.trace, "noise_scale_sq_norm": self.sq_norm, "noise_scale_rng": self.rng,
                "noise_scale_calls": self.calls}

    def load_state(self, data: dict[str, Any]) -> None:
        """Put back :meth:`state`; a checkpoint from a run without the diagnostic starts it afresh."""
        if "noise_scale_rng" not in data:
            return
        for key in ("noise_scale_trace", "noise_scale_sq_norm"):
            if not isinstance(data.get(key), (int, float)) or isinstance(data.get(key), bool):
                raise UserInputError(f"the checkpoint's {key}={data.get(key)!r} is not a number")
        self.trace, self.sq_norm = float(data["noise_scale_trace"]), float(data["noise_scale_sq_norm"])
        self.rng = checked_generator(data, "noise_scale_rng")
        self.calls = checked_int(data, "noise_scale_calls", 0)
