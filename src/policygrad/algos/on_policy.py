"""The shared on-policy loop of the fixed-horizon algorithms (actor_critic, a2c, a3c's workers, ppo).

Each of them collects ``num_envs`` x ``num_steps`` steps with :class:`FixedHorizonCollector`, turns
the batch into advantages and value targets with a registered estimator
(:data:`policygrad.core.returns.ESTIMATORS`), and takes gradient steps on flat views of it. This
module holds those shared steps, so that each algorithm file only says which loss it minimises and
how many gradient steps it takes:

- :class:`FixedHorizonConfig`: the fields these algorithms share, validated in one place;
- :func:`estimate_advantages`: the configured estimator on a batch, bootstrapping from the critic;
- :class:`FlatBatch`: the batch as ``(B,)`` rows, B = T * N, indexable by minibatch;
- :func:`annealed_learning_rate`: linear learning-rate decay over ``total_steps``;
- :func:`actor_critic_loss`: the policy-gradient + critic + entropy loss of A2C, A3C and TD(0) AC;
- :class:`FixedHorizonLoop`: schedule, collection, advantages and bookkeeping around an update, and
  the state it carries between iterations (checkpoints save it);
- :class:`GradientNoiseScale`: the opt-in ``diag/grad_noise_scale`` of PPO and A2C (McCandlish et al. 2018).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from policygrad.algos.base import (
    Algorithm,
    AlgorithmState,
    Iteration,
    Update,
    checked_generator,
    checked_int,
    checked_tensor,
    make_optimizer,
)
from policygrad.algos.rollout import Batch, FixedHorizonCollector
from policygrad.core import losses, returns
from policygrad.core.config import Config, option, reject_value
from policygrad.core.envs import VecEnv
from policygrad.core.errors import UserInputError
from policygrad.core.networks import PolicyNetwork

OPTIMIZERS = ("adam", "rmsprop")
# Which speed paths a run computes with, saved in its checkpoints: a run resumed from a checkpoint of an
# earlier policygrad goes on as it began, so that it ends with the weights it would have ended with.
# 1: networks with observation normalization act through torch; PPO's loss is the plain one.
# 2: they act in NumPy (fast/numpy_acting.py); PPO's Gaussian loss is fused (fast/fused_loss.py).
SPEED_PATHS = 2


def estimator_option(default: str) -> Any:
    """The ``advantage_estimator`` field, its help listing the registry (gae | nstep | td, and any
    estimator registered before the config class is defined)."""
    names = " | ".join(f"{name} ({e.help.rstrip('.')})" for name, e in returns.ESTIMATORS.items())
    return option(default, "advantage estimator, one of policygrad.core.returns.ESTIMATORS: " + names)


@dataclass(frozen=True)
class FixedHorizonConfig(Config):
    """Fields shared by the fixed-horizon algorithms; each algorithm's config sets its own defaults."""

    num_steps: int = option(5, "steps per environment in each rollout (batch = num_envs * num_steps)")
    optimizer: str = option("adam", "adam | rmsprop")
    anneal_lr: bool = option(True, "decay the learning rate linearly to 0 over total_steps")
    advantage_estimator: str = estimator_option("gae")
    gae_lambda: float = option(0.95, "GAE lambda when advantage_estimator=gae: 0 is the TD error, 1 the "
                               "Monte-Carlo advantage")
    norm_adv: bool = option(False, "standardise the advantages of each batch (PPO: of each minibatch)")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive_int("num_steps")
        self._choice("optimizer", OPTIMIZERS)
        # The registry as it is now: an estimator registered after import is accepted too.
        self._choice("advantage_estimator", tuple(returns.ESTIMATORS))
        self._in_unit_interval("gae_lambda")
        if self.reward_norm == "standardize" and self.norm_adv:
            # Standardising the whole batch and then each minibatch again changes nothing worth a
            # switch: say so rather than let a comparison of the two look like a difference.
            reject_value("reward_norm", self.reward_norm, "none | scale | popart while norm_adv is on (norm_adv "
                         "already standardises the advantages; pass --norm-adv false to standardise per batch "
                         "instead)")

    @property
    def batch_size(self) -> int:
        """Transitions per rollout: num_envs * num_steps."""
        return self.num_envs * self.num_steps


def collected(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch.log_probs`` and ``batch.values``, which a fixed-horizon collection sets; a whole-episode
    batch (neither) is a ValueError here rather than a confusing failure further down."""
    if batch.values is None or batch.log_probs is None:
        raise ValueError("a fixed-horizon batch is needed (values and log-probs of collection): this one "
                         "comes from a whole-episode collection")
    return batch.log_probs, batch.values


def bootstrap_values(batch: Batch, network: PolicyNetwork) -> torch.Tensor:
    """V(s_{t+1}) for every step: the stored values shifted by one, then V(next_obs) at the horizon.

    ======== ========== ====================================================================
    returns  (T, N)     V of the observation step t returned
    ======== ========== ====================================================================

    Under NEXT_STEP autoreset the observation stored after an episode's last step is that episode's
    final observation, so the shifted values bootstrap a truncated episode correctly too.
    """
    _, values = collected(batch)
    with torch.no_grad():
        last = network.value(batch.next_obs).unsqueeze(0)
    return torch.cat([values[1:], last])


@torch.no_grad()
def estimate_advantages(batch: Batch, network: PolicyNetwork, cfg: FixedHorizonConfig) -> returns.Estimate:
    """Advantages and value targets of a fixed-horizon batch by ``cfg.advantage_estimator`` (no
    gradient); the estimator's own parameters come from ``cfg``. Rows of autoreset steps
    (``batch.valid`` False) hold numbers that no loss may use."""
    return returns.estimate(cfg.advantage_estimator, rewards=batch.rewards, values=collected(batch)[1],
                            next_values=bootstrap_values(batch, network), terminated=batch.terminated,
                            truncated=batch.truncated, gamma=cfg.gamma, params=vars(cfg))


@dataclass
class FlatBatch:
    """The real transitions of a fixed-horizon batch with their advantages, as B <= T * N rows.

    =========== ============ =====================================================
    obs         (B, *obs)    observations the actions were taken on
    actions     (B, *act)    actions taken
    log_probs   (B,)         log pi_old(a|s) at collection
    values      (B,)         V_old(s) at collection
    advantages  (B,)         A_t (not normalised: that happens per minibatch)
    targets     (B,)         value targets
    =========== ============ =====================================================

    Autoreset steps (``batch.valid`` False) are dropped once, here, so that every loss is a plain
    mean over its rows instead of a weighted one, and PPO's minibatches hold equal numbers of real
    transitions.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def from_batch(cls, batch: Batch, advantages: torch.Tensor, targets: torch.Tensor) -> FlatBatch:
        """The rows of ``batch`` that are real transitions (one gather per field; views when every
        row is one, as in most short rollouts)."""
        log_probs, values = collected(batch)
        fields = (batch.obs, batch.actions, log_probs, values, advantages, targets)
        valid = batch.flat(batch.valid)
        if bool(valid.all()):
            return cls(*(batch.flat(x) for x in fields))
        real = valid.nonzero().squeeze(1)
        return cls(*(batch.flat(x).index_select(0, real) for x in fields))

    def __len__(self) -> int:
        return self.log_probs.shape[0]

    def rows(self, index: torch.Tensor | slice) -> FlatBatch:
        """The minibatch of rows ``index``. A slice gives views; a random subset of rows cannot be a
        view, so an index tensor gathers each field once (PPO shuffles once per epoch and then takes
        slices: the least copying a shuffle allows)."""
        return FlatBatch(*(getattr(self, name)[index] for name in self.__dataclass_fields__))

    @torch.no_grad()
    def explained_variance(self) -> float:
        """How much of the targets' variance V_old explains."""
        return losses.explained_variance(self.values, self.targets)


def has_transitions(batch: Batch) -> bool:
    """Whether a rollout holds any real transition. It holds none when every copy spent it between
    episodes: fixed-length episodes (Pendulum's 200 steps) end together in all copies, and with
    ``num_steps=1`` the next rollout is all autoreset steps. A loss averaged over no rows is NaN, so
    such a rollout is counted in the steps and otherwise skipped."""
    return bool(batch.valid.any())


def apply_reward_norm(data: FlatBatch, network: PolicyNetwork, reward_norm: str) -> FlatBatch:
    """What ``reward_norm`` does once a batch's advantages exist (``scale`` already acted on the rewards
    during collection): ``standardize`` standardises the advantages over the whole batch; ``popart``
    merges the value targets into PopArt's statistics (the critic's outputs are preserved)."""
    if reward_norm == "standardize":
        data.advantages = losses.normalize(data.advantages)
    elif reward_norm == "popart":
        network.update_value_stats(data.targets)
    return data


def critic_loss(network: PolicyNetwork, values: torch.Tensor, data: FlatBatch,
                clip_coef: float | None = None) -> torch.Tensor:
    """The value loss in the units the critic learns in (PopArt-normalized when on, else raw);
    ``clip_coef`` clips the update around the collection-time values (PPO2's value clipping)."""
    scale = network.normalize_values
    old = scale(data.values) if clip_coef is not None else None
    return losses.value_loss(scale(values), scale(data.targets), old_values=old, clip_coef=clip_coef)


def annealed_learning_rate(learning_rate: float, steps_done: int, total_steps: int, anneal: bool) -> float:
    """The step size for an update after ``steps_done`` environment steps: decays linearly from
    ``learning_rate`` at the start to 0 at ``total_steps`` when ``anneal`` (Huang et al. 2022, "The 37
    implementation details of PPO", detail 4), constant otherwise."""
    if not anneal:
        return learning_rate
    return learning_rate * max(0.0, 1.0 - steps_done / total_steps)


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def actor_critic_loss(network: PolicyNetwork, data: FlatBatch, norm_adv: bool, vf_coef: float,
                      ent_coef: float) -> tuple[torch.Tensor, dict[str, float]]:
    """-E[log pi(a|s) A] + vf_coef * critic loss - ent_coef * E[H], in one batched pass with gradient
    (collection kept no graph); returns the total and its named terms. A2C, A3C's workers and the
    one-step actor-critic differ only in the advantages they feed it."""
    dist, values = network.dist_and_value(data.obs)
    adv = losses.normalize(data.advantages) if norm_adv else data.advantages
    policy = losses.policy_gradient_loss(dist.log_prob(data.actions), adv)
    value = critic_loss(network, values, data)
    loss, entropy = losses.with_entropy_bonus(policy + vf_coef * value, dist.entropy, ent_coef)
    with torch.no_grad():  # one read of the device for all four numbers
        ev = losses.explained_variance_tensor(data.values, data.targets)
        numbers = torch.stack([policy, value, entropy, ev]).tolist()
    terms = dict(zip(("losses/policy", "losses/value", "losses/entropy", "diag/explained_variance"), numbers))
    return loss, terms


class FixedHorizonLoop:
    """What every fixed-horizon algorithm does around its own update: the learning-rate schedule,
    collection, advantages, reward normalization, and the bookkeeping of steps and episodes.

    Between iterations it carries the steps done (the schedules are functions of them), the
    observation the next rollout starts from and the Generator its collector samples actions with:
    :meth:`state` and :meth:`load_state` save and restore them, and the algorithms built on the loop
    answer the contract's ``state``/``load_state`` with them.
    """

    def __init__(self, cfg: FixedHorizonConfig, envs: VecEnv, network: PolicyNetwork) -> None:
        self.cfg, self.envs, self.network = cfg, envs, network
        self.optimizer = make_optimizer(network.parameters(), cfg.learning_rate, cfg.optimizer)
        self.collector = FixedHorizonCollector(envs, network, cfg.num_steps, seed=cfg.seed)
        self.steps_done = 0
        self.learning_rate = cfg.learning_rate
        self.speed_paths = SPEED_PATHS

    def iterate(self, update: Callable[[FlatBatch], Update]) -> Iteration:
        """One iteration of a fixed-horizon algorithm: set the learning rate, collect, estimate the
        advantages and value targets (``cfg.advantage_estimator``), normalise, and ``update`` on the
        flat batch. A rollout without transitions (see :func:`has_transitions`) is counted and skips
        normalisation and update: PopArt's statistics and every loss would turn NaN on no rows."""
        cfg = self.cfg
        self.learning_rate = annealed_learning_rate(cfg.learning_rate, self.steps_done, cfg.total_steps,
                                                    cfg.anneal_lr)
        set_learning_rate(self.optimizer, self.learning_rate)
        batch = self.collector.collect()
        self.steps_done += batch.rewards.numel()
        result = Update(metrics={})
        if has_transitions(batch):
            estimate = estimate_advantages(batch, self.network, cfg)
            data = FlatBatch.from_batch(batch, estimate.advantages, estimate.targets)
            result = update(apply_reward_norm(data, self.network, cfg.reward_norm))
        result.metrics["charts/learning_rate"] = self.learning_rate
        return Iteration(steps=cfg.num_envs * cfg.num_steps, episodes=self.envs.pop_episodes(),
                         metrics=result.metrics, skipped_steps=result.skipped_steps)

    def state(self) -> AlgorithmState:
        """Steps done, the collector's sampling Generator and the observation it starts from next."""
        data = {"steps_done": self.steps_done, "sampling_rng": self.collector.sampling_rng,
                "speed_paths": self.speed_paths}
        return data, {"collector.next_obs": self.collector.next_obs}

    def load_state(self, data: dict[str, Any], tensors: dict[str, torch.Tensor], exact: bool,
                   fresh_seed: int) -> None:
        self.steps_done = checked_int(data, "steps_done")
        self.speed_paths = min(checked_int(data, "speed_paths", 1), SPEED_PATHS)  # (absent: saved before them)
        self.collector.normalized_in_numpy = self.speed_paths >= 2
        if "sampling_rng" in data:  # checkpoints from before NumPy acting sampled with torch only
            self.collector.sampling_rng = checked_generator(data, "sampling_rng")
        if exact:
            self.collector.next_obs = checked_tensor(tensors, "collector.next_obs", self.collector.next_obs)
        else:
            self.collector.next_obs = self.envs.reset(seed=fresh_seed)


# -- the gradient noise scale (opt-in: grad_noise_scale) ------------------------------------------------
class FixedHorizonAlgorithm(Algorithm):
    """An algorithm built on a :class:`FixedHorizonLoop` (``self.loop``) with the optional gradient noise
    scale diagnostic (``self.noise``, None when off): its state is theirs."""

    loop: FixedHorizonLoop
    noise: GradientNoiseScale | None

    def state(self) -> AlgorithmState:
        data, tensors = self.loop.state()
        if self.noise is not None:  # only then: checkpoints without the diagnostic stay as they were
            data.update(self.noise.state())
        return data, tensors

    def load_state(self, data: dict[str, Any], tensors: dict[str, torch.Tensor], exact: bool,
                   fresh_seed: int) -> None:
        self.loop.load_state(data, tensors, exact, fresh_seed)
        if self.noise is not None:
            self.noise.load_state(data)


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


def random_half(rows: int, rng: np.random.Generator) -> torch.Tensor:
    """The indices of ``rows // 2`` of ``rows`` rows, drawn without replacement from ``rng`` (a NumPy
    Generator of the algorithm's own: drawing from torch's would change the run's minibatch shuffles)."""
    return torch.from_numpy(rng.permutation(rows)[: rows // 2])


class GradientNoiseScale:
    """The simple gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018) of the
    policy's gradient, in transitions, logged as ``diag/grad_noise_scale`` when a config sets
    ``grad_noise_scale``.

    B_simple is the batch size at which a gradient step's noise is as large as its signal: the paper's
    estimate of the critical batch size, beyond which larger batches buy little per sample. Each
    measured gradient step (PPO: those of each iteration's first epoch; A2C: one iteration's step in
    ``every``) also takes the gradient
    of the same loss, at the same parameters, on a random half of the step's rows
    (:func:`random_half`), with the advantages as the whole step normalised them, so that both are
    means of one set of per-transition terms. Its squared norm and that of the step's own gradient
    give tr(Sigma) and |G|^2 by :func:`noise_scale_terms`. One pair is very noisy, so the logged value
    is the ratio of exponential moving averages (``decay`` per iteration) of the two, as the paper does.

    Both norms are over the policy's own parameters, those the value loss does not reach (the whole
    actor with separate networks; the policy head with a shared trunk): the critic's regression
    gradient is large and consistent early in training and would otherwise make the noise scale
    that of the critic. Sigma is the spread of the per-transition gradients within the rollout, the
    noise PPO's and A2C's minibatches see. The extra half-batch pass draws only on its own NumPy
    Generator: the training itself is the same, bit for bit, with the diagnostic on or off.
    """

    def __init__(self, seed: int, decay: float = 0.9, every: int = 1) -> None:
        self.rng = np.random.default_rng([seed, 0x6E5])  # its own stream, apart from everything the run draws
        self.decay = decay
        self.every, self.calls = every, 0  # measure one update in ``every`` (A2C's are too cheap to measure all)
        self.trace = 0.0  # EMAs of the two estimates; their ratio needs no start-up correction
        self.sq_norm = 0.0
        self.pending: list[tuple[float, float]] = []
        self.actor: list[torch.nn.Parameter] | None = None

    def due(self) -> bool:
        """Whether this update is one to measure (the first, then one in ``every``)."""
        self.calls += 1
        return (self.calls - 1) % self.every == 0

    def actor_parameters(self, network: PolicyNetwork, obs: torch.Tensor,
                         params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
        """The parameters of ``params`` that V(s) does not depend on (found once, by differentiating
        V of one observation); all of them if every one does."""
        if self.actor is None:
            reached = torch.autograd.grad(network.value(obs[:1]).sum(), params, allow_unused=True)
            self.actor = [p for p, g in zip(params, reached) if g is None] or list(params)
        return self.actor

    def half_sq_norm(self, loss: torch.Tensor, actor: list[torch.nn.Parameter]) -> float:
        """|gradient of ``loss``|^2 over ``actor``, without touching ``.grad`` (the step's own
        gradient is computed afterwards, as usual)."""
        grads = torch.autograd.grad(loss, actor, allow_unused=True)
        return float(sum(g.pow(2).sum() for g in grads if g is not None))

    def step_sq_norm(self, step_norm: float, max_grad_norm: float) -> float:
        """|the step's gradient|^2 over the actor's parameters, before clipping: their ``.grad`` after
        :func:`policygrad.algos.base.gradient_step`, with its clipping factor (computed from the
        global pre-clip norm ``step_norm`` exactly as it did) divided out."""
        if self.actor is None:  # half_sq_norm's caller finds the actor's parameters first
            raise RuntimeError("step_sq_norm needs the actor's parameters: call half_sq_norm first")
        scale = min(1.0, max_grad_norm / (step_norm + 1e-6)) if max_grad_norm > 0 else 1.0
        grads = [p.grad for p in self.actor if p.grad is not None]
        return float(sum(g.pow(2).sum() for g in grads)) / scale ** 2 if grads else math.nan

    def add_pair(self, half_sq_norm: float, half_rows: int, step_sq_norm: float, rows: int) -> None:
        """One measured step: the squared norms of the half-batch gradient and of the step's gradient."""
        if math.isfinite(half_sq_norm) and math.isfinite(step_sq_norm) and 0 < half_rows < rows:
            self.pending.append(noise_scale_terms(half_sq_norm, step_sq_norm, half_rows, rows))

    def update(self) -> float:
        """Fold this iteration's pairs into the moving averages; the current B_simple (nan until the
        averaged |G|^2 is positive)."""
        if self.pending:
            trace, sq_norm = (float(np.mean(x)) for x in zip(*self.pending))
            self.pending.clear()
            self.trace = self.decay * self.trace + (1 - self.decay) * trace
            self.sq_norm = self.decay * self.sq_norm + (1 - self.decay) * sq_norm
        return self.trace / self.sq_norm if self.sq_norm > 0 else math.nan

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
