"""The algorithm contract, and what every algorithm shares: the result of one iteration and the
optimizer step.

A synchronous algorithm (REINFORCE, one-step actor-critic, A2C, PPO) is an :class:`Algorithm`: the
trainer (:mod:`policygrad.run.trainer`) builds its environments and network, calls :meth:`iterate`
until the step budget is spent, logs what each :class:`Iteration` reports, and checkpoints
:meth:`~Algorithm.state`. An asynchronous one (A3C) is an :class:`AsynchronousAlgorithm`: it owns its
loop and reports to a :class:`MetricsSink`. Adding an algorithm means writing one of these two
(docs/architecture.md shows one end to end) and adding it to :data:`policygrad.algos.ALGORITHMS`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from policygrad.core.config import Config
from policygrad.core.envs import Episode, VecEnv
from policygrad.core.errors import UserInputError
from policygrad.core.networks import PolicyNetwork
from policygrad.fast.flat_optim import FlatAdam, FlatOptimizer, FlatRMSprop

# What an algorithm adds to a resumable checkpoint: plain data (numbers, strings, None, NumPy arrays
# and Generators, which the trainer encodes as JSON) and named tensors (saved as safetensors).
AlgorithmState = tuple[dict[str, Any], dict[str, torch.Tensor]]


@dataclass
class Iteration:
    """One collect-and-update cycle: environment steps it cost, episodes it finished, metrics it
    logged, and gradient steps it skipped because the loss or gradient was not finite."""

    steps: int
    episodes: list[Episode]
    metrics: dict[str, float] = field(default_factory=dict)
    skipped_steps: int = 0


@dataclass
class Update:
    """What an update on one batch reports: its metrics and the gradient steps it skipped."""

    metrics: dict[str, float]
    skipped_steps: int = 0


class Algorithm(ABC):
    """A synchronous algorithm on one vector env and one network: the trainer's whole contract.

    ``Config``: its config class. ``optimizer``: the optimizer whose state checkpoints save.
    """

    Config: ClassVar[type[Config]]
    optimizer: torch.optim.Optimizer

    @staticmethod
    @abstractmethod
    def needs_value(cfg: Any) -> bool:
        """Whether the network needs a value head under ``cfg``."""

    @abstractmethod
    def __init__(self, cfg: Any, envs: VecEnv, network: PolicyNetwork) -> None: ...

    @abstractmethod
    def iterate(self) -> Iteration:
        """Collect experience and update once (or several times) on it."""

    def state(self) -> AlgorithmState:
        """What this algorithm carries from one iteration to the next beyond the network, the
        optimizer and the environments (which the trainer saves); see :data:`AlgorithmState`."""
        return {}, {}

    def load_state(self, data: dict[str, Any], tensors: dict[str, torch.Tensor], exact: bool,  # noqa: B027
                   fresh_seed: int) -> None:
        """Put back :meth:`state` (``data`` comes from a file: check it, e.g. with :func:`checked_int`).
        ``exact``: the environments' own state was restored too; when it was not, start the next
        rollout from environments reset with ``fresh_seed``. Nothing to do for an algorithm that
        carries no state of its own."""


class MetricsSink(Protocol):
    """Where an asynchronous algorithm reports (the run's logger, :class:`policygrad.run.logger.RunLogger`)."""

    run_dir: Path

    def episodes(self, episodes: list[Episode]) -> None: ...

    def update(self, global_step: int, metrics: dict[str, float], steps: int) -> None: ...


@dataclass
class AsyncResult:
    """How an asynchronous run ended: global steps, updates applied, and the shared optimizer."""

    global_step: int
    updates: int
    optimizer: torch.optim.Optimizer


class AsynchronousAlgorithm(ABC):
    """An algorithm that owns its training loop (A3C's worker processes). The trainer builds the
    network and the logger, then hands over until ``cfg.total_steps``."""

    Config: ClassVar[type[Config]]

    @staticmethod
    @abstractmethod
    def needs_value(cfg: Any) -> bool:
        """Whether the network needs a value head under ``cfg``."""

    @staticmethod
    @abstractmethod
    def train_loop(cfg: Any, network: PolicyNetwork, sink: MetricsSink, start_step: int = 0,
                   restore_optimizer: Callable[[torch.optim.Optimizer], None] | None = None,
                   on_update: Callable[[torch.optim.Optimizer], None] | None = None) -> AsyncResult:
        """Train ``network`` in place to ``cfg.total_steps``. ``restore_optimizer`` loads a resumed
        run's optimizer state; ``on_update`` is called after each logged update (checkpoints)."""


def make_optimizer(params: Iterable[nn.Parameter], learning_rate: float, name: str = "adam",
                   flat: bool = True) -> torch.optim.Optimizer:
    """Adam (eps 1e-5, as in the PPO/A2C reference code) or RMSprop (the A3C paper's choice).

    ``flat``: step every parameter as one flat buffer (:mod:`policygrad.fast.flat_optim`); it rebinds
    the parameters, so the network must already be on its device. A3C's shared-memory network passes False."""
    # Small networks: per-parameter kernel launches dominate a step, so update every tensor at once
    # (fused Adam: one kernel for all; RMSprop has foreach). The update is the same, up to rounding.
    params = list(params)
    if name == "adam":
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        return (FlatAdam if flat else torch.optim.Adam)(params, lr=learning_rate, eps=1e-5, fused=fused or None)
    if name == "rmsprop":
        return (FlatRMSprop if flat else torch.optim.RMSprop)(params, lr=learning_rate, alpha=0.99, eps=1e-5,
                                                              foreach=True)
    raise UserInputError(f"optimizer={name!r} is invalid: expected adam | rmsprop")


@dataclass(frozen=True)
class GradientCheck:
    """The global gradient norm before clipping (logged as ``diag/grad_norm``) and whether the loss
    and the norm were finite (a step may be taken)."""

    norm: float
    finite: bool


def clip_and_check(loss: torch.Tensor, params: list[nn.Parameter], max_grad_norm: float,
                   optimizer: torch.optim.Optimizer | None = None) -> GradientCheck:
    """Clip the gradients already in ``params`` to a global norm of ``max_grad_norm`` (0: no clipping)
    and check that ``loss`` and the norm are finite: the one guard against NaN and infinity, for the
    synchronous algorithms and A3C's workers alike. A flat ``optimizer`` clips its one gradient buffer."""
    if isinstance(optimizer, FlatOptimizer):  # one tensor: clip_grad_norm_'s own arithmetic, without its loops
        grad = optimizer.flat_grad
        norm = torch.linalg.vector_norm(grad)
        if max_grad_norm > 0:
            grad.mul_(torch.clamp(max_grad_norm / (norm + 1e-6), max=1.0))
    else:
        with_grad = [p for p in params if p.grad is not None]
        limit = max_grad_norm if max_grad_norm > 0 else float("inf")
        norm = nn.utils.clip_grad_norm_(with_grad, limit, foreach=True)
    norm_value, loss_value = torch.stack([norm.detach().float(), loss.detach().float()]).tolist()  # one sync
    return GradientCheck(norm_value, math.isfinite(norm_value) and math.isfinite(loss_value))


def gradient_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter],
                  max_grad_norm: float) -> GradientCheck:
    """Backpropagate ``loss``, clip and check (:func:`clip_and_check`), and step unless the loss or
    the gradient was not finite: then the step is skipped (gradients dropped, parameters and
    optimizer state untouched) and the result says so; the algorithm counts it in its
    :class:`Iteration`, and the trainer stops the run after ``max_nonfinite_updates`` such updates in
    a row."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    check = clip_and_check(loss, params, max_grad_norm, optimizer)
    if check.finite:
        optimizer.step()
    else:
        optimizer.zero_grad(set_to_none=True)
    return check


def nonfinite_term(metrics: dict[str, float]) -> str:
    """The loss term that went non-finite (the first ``losses/`` metric that is NaN or inf)."""
    for key, value in metrics.items():
        if key.startswith("losses/") and isinstance(value, float) and not math.isfinite(value):
            return f"{key} ({value})"
    return "the gradient (every loss term was finite)"


# -- checking what a checkpoint handed back (it comes from a file: never trust its types) -------------
def checked_int(data: dict[str, Any], key: str, default: int | None = None) -> int:
    """``data[key]`` as an integer >= 0; UserInputError naming the key otherwise."""
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UserInputError(f"the checkpoint's {key}={value!r} is not an integer >= 0")
    return value


def checked_generator(data: dict[str, Any], key: str) -> np.random.Generator:
    """``data[key]`` as a NumPy Generator; UserInputError otherwise."""
    value = data.get(key)
    if not isinstance(value, np.random.Generator):
        raise UserInputError(f"the checkpoint's {key} is not a NumPy random generator")
    return value


def checked_tensor(tensors: dict[str, torch.Tensor], key: str, like: torch.Tensor) -> torch.Tensor:
    """``tensors[key]`` on ``like``'s device; UserInputError unless it has ``like``'s shape and dtype."""
    value = tensors.get(key)
    if value is None or value.shape != like.shape or value.dtype != like.dtype:
        raise UserInputError(f"the checkpoint's {key} is missing or does not fit (expected {like.dtype} "
                             f"{tuple(like.shape)})")
    return value.to(like.device)
