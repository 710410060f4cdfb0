"""The shared on-policy loop of the fixed-horizon algorithms (actor_critic, a2c, a3c's workers, ppo).

Each of them collects ``num_envs`` x ``num_steps`` steps with :class:`FixedHorizonCollector`, turns
the batch into advantages and value targets with a registered estimator
(:data:`policygrad.core.returns.ESTIMATORS`), and takes gradient steps on flat views of it. This
module holds those shared steps, so that each algorithm file only says which loss it minimises and
how many gradient steps it takes:

- :class:`FixedHorizonConfig`: the fields these algorithms share, validated in one place;
- :func:`estimate_advantages`: the configured estimator on a batch, bootstrapping from the critic;
- :class:`FlatBatch`: the batch as ``(B,)`` rows, B = T * N, indexable by minibatch;
- :func:`linear_schedule`: a value decayed linearly to 0 over ``anneal_steps`` (the learning rate, PPO's clip);
- :func:`actor_critic_loss`: the policy-gradient + critic + entropy loss of A2C, A3C and TD(0) AC;
- :class:`FixedHorizonLoop`: schedule, collection, advantages and bookkeeping around an update, and
  the state it carries between iterations (checkpoints save it);
- :class:`UpdateHook`: what an update tells an observer of its gradient steps (the opt-in gradient noise
  scale, :mod:`policygrad.algos.grad_noise`), and :class:`FixedHorizonAlgorithm`, which holds one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from policygrad.algos.base import (
    Algorithm,
    AlgorithmState,
    GradientCheck,
    Iteration,
    Update,
    checked_generator,
    checked_int,
    checked_tensor,
    make_optimizer,
)
from policygrad.algos.rollout import Batch
from policygrad.algos.sequences import (
    RecurrentBatch,
    RecurrentCollector,
    SequenceBatch,
    check_sequence_fields,
    make_collector,
)
from policygrad.core import losses, returns
from policygrad.core.config import Config, option, reject_value
from policygrad.core.distributions import ActionDistribution
from policygrad.core.envs import VecEnv
from policygrad.core.networks import PolicyNetwork
from policygrad.core.structured import Observation, from_named, named_tensors, obs_map

OPTIMIZERS = ("adam", "rmsprop")
# Which speed paths a run computes with, saved in its checkpoints ("speed_paths"): the version of the
# arithmetic, as the fast paths round differently from the plain ones. A run resumed from a checkpoint of
# an earlier policygrad goes on as it began, so that it ends with the weights it would have ended with.
# 1 (or absent): networks with observation normalization act through torch; PPO's loss is the plain one.
# 2: they act in NumPy (fast/numpy_acting.py); PPO's Gaussian loss is fused (fast/fused_loss.py).
# FixedHorizonLoop.fast_paths says which of the two a run is on.
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
    anneal_lr: bool = option(True, "decay the learning rate linearly to 0 over total_steps (or schedule_steps)")
    schedule_steps: int = option(0, "the steps over which anneal_lr (and PPO's anneal_clip) decay to 0; 0: "
                                 "total_steps. Longer than total_steps stops a longer schedule part-way, e.g. the "
                                 "zoo's 10M-step Atari schedule at 2M")
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
        if self.schedule_steps < 0 or 0 < self.schedule_steps < self.total_steps:
            # A shorter schedule would sit at a learning rate of 0 for the rest of the run: no update at all.
            reject_value("schedule_steps", self.schedule_steps, f"0 (total_steps) or an integer >= total_steps "
                         f"({self.total_steps})")
        check_sequence_fields(self)  # recurrent: sequences and minibatches fit together (algos/sequences.py)
        if self.reward_norm == "standardize" and self.norm_adv:
            # Standardising the whole batch and then each minibatch again changes nothing worth a
            # switch: say so rather than let a comparison of the two look like a difference.
            reject_value("reward_norm", self.reward_norm, "none | scale | popart while norm_adv is on (norm_adv "
                         "already standardises the advantages; pass --norm-adv false to standardise per batch "
                         "instead)")

    @property
    def anneal_steps(self) -> int:
        """The steps the annealed learning rate (and clip) reach 0 at: schedule_steps, or total_steps."""
        return self.schedule_steps or self.total_steps

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
    return torch.cat([values[1:], batch.next_value(network).unsqueeze(0)])


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
    obs         (B, *obs)    observations the actions were taken on (or a dict of parts and the
                             action mask, core/structured.py)
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

    obs: Observation
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
        return cls(*(obs_map(lambda v: v.index_select(0, real), batch.flat(x)) for x in fields))

    def __len__(self) -> int:
        return self.log_probs.shape[0]

    def obs_at(self, index: torch.Tensor | slice) -> Observation:
        """The observations of rows ``index`` (part by part for observation dicts)."""
        return obs_map(lambda v: v[index], self.obs)

    def dist_and_value(self, network: PolicyNetwork) -> tuple[ActionDistribution, torch.Tensor]:
        """The distribution and V(s) of these rows with gradient (a recurrent network's rows replay their
        sequences instead: algos/sequences.SequenceBatch)."""
        return network.dist_and_value(self.obs)

    def rows(self, index: torch.Tensor | slice) -> FlatBatch:
        """The minibatch of rows ``index``. A slice gives views; a random subset of rows cannot be a
        view, so an index tensor gathers each field once (PPO shuffles once per epoch and then takes
        slices: the least copying a shuffle allows)."""
        return FlatBatch(*(obs_map(lambda v: v[index], getattr(self, name)) for name in self.__dataclass_fields__))

    @torch.no_grad()
    def explained_variance(self) -> float:
        """How much of the targets' variance V_old explains."""
        return losses.explained_variance(self.values, self.targets)


# (rows, index) -> the loss terms of a step on ``rows`` that reach the policy's own parameters, on
# ``rows[index]``, with the advantages normalised over all of ``rows`` as the step's loss has them.
PolicyLoss = Callable[[FlatBatch, torch.Tensor], torch.Tensor]


def batch_rows(batch: Batch, advantages: torch.Tensor, targets: torch.Tensor,
               cfg: FixedHorizonConfig) -> FlatBatch | SequenceBatch:
    """What an update learns from: the real transitions as flat rows, or, for a batch collected with a
    recurrent state, as sequences to replay (cut every ``bptt_length`` steps where the config has it)."""
    if isinstance(batch, RecurrentBatch):
        return SequenceBatch.from_batch(batch, advantages, targets, getattr(cfg, "bptt_length", 0))
    return FlatBatch.from_batch(batch, advantages, targets)


def has_transitions(batch: Batch) -> bool:
    """Whether a rollout holds any real transition. It holds none when every copy spent it between
    episodes: fixed-length episodes (Pendulum's 200 steps) end together in all copies, and with
    ``num_steps=1`` the next rollout is all autoreset steps. A loss averaged over no rows is NaN, so
    such a rollout is counted in the steps and otherwise skipped."""
    return bool(batch.valid.any())


def apply_reward_norm(data: FlatBatch | SequenceBatch, network: PolicyNetwork,
                      reward_norm: str) -> FlatBatch | SequenceBatch:
    """What ``reward_norm`` does once a batch's advantages exist (``scale`` already acted on the rewards
    during collection): ``standardize`` standardises the advantages over the whole batch; ``popart``
    merges the value targets into PopArt's statistics (the critic's outputs are preserved)."""
    if reward_norm == "standardize":
        data.advantages = losses.normalize(data.advantages)
    elif reward_norm == "popart":
        network.update_value_stats(data.targets)
    return data


def critic_loss(network: PolicyNetwork, values: torch.Tensor, data: FlatBatch | SequenceBatch,
                clip_coef: float | None = None) -> torch.Tensor:
    """The value loss in the units the critic learns in (PopArt-normalized when on, else raw);
    ``clip_coef`` clips the update around the collection-time values (PPO2's value clipping)."""
    scale = network.normalize_values
    old = scale(data.values) if clip_coef is not None else None
    return losses.value_loss(scale(values), scale(data.targets), old_values=old, clip_coef=clip_coef)


def linear_schedule(start: float, steps_done: int, total_steps: int, anneal: bool) -> float:
    """A hyperparameter's value for an update after ``steps_done`` environment steps: ``start`` decayed
    linearly to 0 at ``total_steps`` when ``anneal``, constant otherwise. The learning rate's schedule
    (Huang et al. 2022, "The 37 implementation details of PPO", detail 4), and PPO's clip coefficient's
    with ``anneal_clip``."""
    if not anneal:
        return start
    return start * max(0.0, 1.0 - steps_done / total_steps)


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def actor_critic_loss(network: PolicyNetwork, data: FlatBatch | SequenceBatch, norm_adv: bool, vf_coef: float,
                      ent_coef: float) -> tuple[torch.Tensor, dict[str, float]]:
    """-E[log pi(a|s) A] + vf_coef * critic loss - ent_coef * E[H], in one batched pass with gradient
    (collection kept no graph); returns the total and its named terms. A2C, A3C's workers and the
    one-step actor-critic differ only in the advantages they feed it."""
    dist, values = data.dist_and_value(network)
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
        self.collector = make_collector(envs, network, cfg.num_steps, seed=cfg.seed)
        self.steps_done = 0
        self.learning_rate = cfg.learning_rate
        self.speed_paths = SPEED_PATHS

    @property
    def fast_paths(self) -> bool:
        """Whether this run computes with the fast paths of :data:`SPEED_PATHS` 2 (normalized observations
        acting in NumPy, PPO's fused Gaussian loss): a new run does; a run resumed from a checkpoint
        saved before them does not, and ends as it would have without the interruption."""
        return self.speed_paths >= 2

    def iterate(self, update: Callable[[Any], Update]) -> Iteration:
        """One iteration of a fixed-horizon algorithm: set the learning rate, collect, estimate the
        advantages and value targets (``cfg.advantage_estimator``), normalise, and ``update`` on the
        flat batch. A rollout without transitions (see :func:`has_transitions`) is counted and skips
        normalisation and update: PopArt's statistics and every loss would turn NaN on no rows."""
        cfg = self.cfg
        self.learning_rate = linear_schedule(cfg.learning_rate, self.steps_done, cfg.anneal_steps, cfg.anneal_lr)
        set_learning_rate(self.optimizer, self.learning_rate)
        batch = self.collector.collect()
        self.steps_done += batch.rewards.numel()
        result = Update(metrics={})
        if has_transitions(batch):
            estimate = estimate_advantages(batch, self.network, cfg)
            data = batch_rows(batch, estimate.advantages, estimate.targets, cfg)
            result = update(apply_reward_norm(data, self.network, cfg.reward_norm))
        result.metrics["charts/learning_rate"] = self.learning_rate
        return Iteration(steps=cfg.num_envs * cfg.num_steps, episodes=self.envs.pop_episodes(),
                         metrics=result.metrics, skipped_steps=result.skipped_steps)

    def state(self) -> AlgorithmState:
        """Steps done, the collector's sampling Generator and the observation it starts from next."""
        data = {"steps_done": self.steps_done, "sampling_rng": self.collector.sampling_rng,
                "speed_paths": self.speed_paths}
        tensors = named_tensors("collector.next_obs", self.collector.next_obs)  # (by path for dicts)
        if isinstance(self.collector, RecurrentCollector):  # the state the next rollout goes on with
            tensors.update(self.collector.carried())
        return data, tensors

    def load_state(self, data: dict[str, Any], tensors: dict[str, torch.Tensor], exact: bool,
                   fresh_seed: int) -> None:
        self.steps_done = checked_int(data, "steps_done")
        self.speed_paths = min(checked_int(data, "speed_paths", 1), SPEED_PATHS)  # (absent: saved before them)
        self.collector.normalized_in_numpy = self.fast_paths
        if "sampling_rng" in data:  # checkpoints from before NumPy acting sampled with torch only
            self.collector.sampling_rng = checked_generator(data, "sampling_rng")
        collector = self.collector
        if exact:
            collector.next_obs = from_named("collector.next_obs", tensors, collector.next_obs, checked_tensor)
            if isinstance(collector, RecurrentCollector):
                collector.next_state = checked_tensor(tensors, "collector.next_state", collector.next_state)
                collector.next_start = checked_tensor(tensors, "collector.next_start", collector.next_start)
        else:
            collector.next_obs = self.envs.reset(seed=fresh_seed)
            if isinstance(collector, RecurrentCollector):
                collector.reset_state()


class UpdateHook:
    """What an algorithm tells about each gradient step of an update to an observer that changes none
    of them (a diagnostic: :class:`policygrad.algos.grad_noise.GradientNoiseScale`). The observer adds
    its metrics at the end of the update, and what it carries goes into checkpoints with the
    algorithm's state. This one observes nothing: an algorithm holds it when no diagnostic is on, so
    that its update reads the same either way."""

    def before_step(self, rows: FlatBatch, policy_loss: PolicyLoss, epoch: int) -> None:
        """Before a gradient step on ``rows`` in the update's ``epoch``-th pass over its batch (from 1);
        ``policy_loss(rows, index)``: the step's loss terms that reach the policy's own parameters, on
        ``rows[index]``, with the advantages as the step's loss normalised them over all of ``rows``."""

    def after_step(self, step: GradientCheck, rows: int) -> None:
        """After that step on ``rows`` rows: taken, or skipped as non-finite (``step.finite``)."""

    def after_update(self, metrics: dict[str, float]) -> None:
        """At the end of the update: add this observer's metrics to the update's ``metrics``."""

    def state(self) -> dict[str, Any]:
        """What the observer carries between updates (plain data, as :data:`AlgorithmState`'s)."""
        return {}

    def load_state(self, data: dict[str, Any]) -> None:
        """Put back :meth:`state` (``data`` comes from a file: check it)."""


class FixedHorizonAlgorithm(Algorithm):
    """An algorithm built on a :class:`FixedHorizonLoop` (``self.loop``) that reports its gradient steps
    to ``self.hook`` (an :class:`UpdateHook`): its state is theirs."""

    loop: FixedHorizonLoop
    hook: UpdateHook

    def state(self) -> AlgorithmState:
        data, tensors = self.loop.state()
        data.update(self.hook.state())  # the plain hook adds nothing: checkpoints without a diagnostic are as before
        return data, tensors

    def load_state(self, data: dict[str, Any], tensors: dict[str, torch.Tensor], exact: bool,
                   fresh_seed: int) -> None:
        self.loop.load_state(data, tensors, exact, fresh_seed)
        self.hook.load_state(data)
