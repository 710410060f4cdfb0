"""What the fixed-horizon actor-critics (actor_critic, a2c, ppo) share.

Each of them collects ``num_envs`` x ``num_steps`` steps with :class:`FixedHorizonCollector`, turns
the batch into advantages and value targets, and takes gradient steps on flat views of it. This
module holds those shared steps, so that each algorithm file only says which loss it minimises and
how many gradient steps it takes:

- :func:`estimate_advantages`: GAE(lambda) or n-step advantages and value targets from a batch;
- :class:`FlatBatch`: the batch as ``(B,)`` rows, B = T * N, indexable by minibatch;
- :func:`annealed_learning_rate`: linear learning-rate decay over ``total_steps``;
- :func:`check_fixed_horizon`: validation of the fields these configs share;
- :func:`actor_critic_loss`: the policy-gradient + critic + entropy loss of A2C, A3C and TD(0) AC;
- :class:`FixedHorizonLoop`: schedule, collection, advantages and bookkeeping around an update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from policygrad.core import losses, returns
from policygrad.algos.base import Iteration, make_optimizer
from policygrad.core.config import Config, _fail
from policygrad.core.envs import VecEnv
from policygrad.core.networks import ActorCritic
from policygrad.algos.rollout import Batch, FixedHorizonCollector

ESTIMATORS = ("gae", "nstep")
OPTIMIZERS = ("adam", "rmsprop")


def check_fixed_horizon(cfg: Config) -> None:
    """Validate the fields every fixed-horizon config has: ``num_steps``, ``optimizer``,
    ``advantage_estimator`` and ``gae_lambda`` (ValueError naming field, value and what is allowed)."""
    cfg._positive_int("num_steps")
    cfg._choice("optimizer", OPTIMIZERS)
    cfg._choice("advantage_estimator", ESTIMATORS)
    cfg._in_unit_interval("gae_lambda")
    check_standardize_once(cfg)


def check_standardize_once(cfg: Config) -> None:
    """``reward_norm=standardize`` and ``norm_adv`` both standardise advantages: refuse the pair."""
    if cfg.reward_norm == "standardize" and getattr(cfg, "norm_adv", False):
        # Standardising the whole batch and then each minibatch again changes nothing worth a switch:
        # say so rather than let a comparison of the two look like a difference.
        _fail("reward_norm", cfg.reward_norm, "none | scale | popart while norm_adv is on (norm_adv already "
              "standardises the advantages; pass --norm-adv false to standardise per batch instead)")


def bootstrap_values(batch: Batch, agent: ActorCritic) -> torch.Tensor:
    """V(s_{t+1}) for every step: the stored values shifted by one, then V(next_obs) at the horizon.

    ======== ========== ====================================================================
    returns  (T, N)     V of the observation step t returned
    ======== ========== ====================================================================

    Under NEXT_STEP autoreset the observation stored after an episode's last step is that episode's
    final observation, so the shifted values bootstrap a truncated episode correctly too.
    """
    with torch.no_grad():
        last = agent.value(batch.next_obs).unsqueeze(0)
    return torch.cat([batch.values[1:], last])


@torch.no_grad()
def estimate_advantages(
    batch: Batch, agent: ActorCritic, gamma: float, estimator: str = "gae", gae_lambda: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets of a fixed-horizon batch (no gradient).

    ============ ========== ===========================================================
    advantages   (T, N)     A_t, the signal of the policy loss
    targets      (T, N)     what V(s_t) is regressed on: A_t + V_old(s_t)
    ============ ========== ===========================================================

    ``gae``: generalised advantage estimation (Schulman et al. 2016) with ``gae_lambda``.
    ``nstep``: the A3C paper's targets (Mnih et al. 2016, algorithm S3): every step sums the rewards
    up to the horizon (or its episode's end) and bootstraps from V there, so step t looks T - t steps
    ahead; the advantage is that target minus V(s_t). It equals GAE with lambda = 1.
    Rows of autoreset steps (``batch.valid`` False) hold numbers that no loss may use.
    """
    next_values = bootstrap_values(batch, agent)
    if estimator == "gae":
        advantages = returns.gae(batch.rewards, batch.values, next_values, batch.terminated, batch.truncated,
                                 gamma, gae_lambda)
        return advantages, advantages + batch.values
    if estimator == "nstep":
        targets = returns.nstep_returns(batch.rewards, batch.terminated, batch.truncated, next_values, gamma,
                                        n=batch.num_steps)
        return targets - batch.values, targets
    raise ValueError(f"advantage_estimator={estimator!r} is invalid: expected " + " | ".join(ESTIMATORS))


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
        fields = (batch.obs, batch.actions, batch.log_probs, batch.values, advantages, targets)
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


def apply_reward_norm(data: FlatBatch, agent: ActorCritic, reward_norm: str) -> FlatBatch:
    """What ``reward_norm`` does once a batch's advantages exist (``scale`` already acted on the rewards
    during collection): ``standardize`` standardises the advantages over the whole batch; ``popart``
    merges the value targets into PopArt's statistics (the critic's outputs are preserved)."""
    if reward_norm == "standardize":
        data.advantages = losses.normalize(data.advantages)
    elif reward_norm == "popart":
        agent.update_value_stats(data.targets)
    return data


def critic_loss(agent: ActorCritic, values: torch.Tensor, data: FlatBatch,
                clip_coef: float | None = None) -> torch.Tensor:
    """The value loss in the units the critic learns in (PopArt-normalized when on, else raw);
    ``clip_coef`` clips the update around the collection-time values (PPO2's value clipping)."""
    scale = agent.normalize_values
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


def actor_critic_loss(agent: ActorCritic, data: FlatBatch, norm_adv: bool, vf_coef: float,
                      ent_coef: float) -> tuple[torch.Tensor, dict[str, float]]:
    """-E[log pi(a|s) A] + vf_coef * critic loss - ent_coef * E[H], in one batched pass with gradient
    (collection kept no graph); returns the total and its named terms. A2C, A3C's workers and the
    one-step actor-critic differ only in the advantages they feed it."""
    dist, values = agent.dist_and_value(data.obs)
    adv = losses.normalize(data.advantages) if norm_adv else data.advantages
    policy = losses.policy_gradient_loss(dist.log_prob(data.actions), adv)
    value = critic_loss(agent, values, data)
    loss = policy + vf_coef * value
    if ent_coef:
        entropy = losses.entropy_term(dist.entropy())
        loss = loss - ent_coef * entropy
    else:  # only logged: no gradient to take (or pay for)
        with torch.no_grad():
            entropy = losses.entropy_term(dist.entropy())
    with torch.no_grad():  # one read of the device for all four numbers
        ev = losses.explained_variance_tensor(data.values, data.targets)
        numbers = torch.stack([policy, value, entropy, ev]).tolist()
    terms = dict(zip(("losses/policy", "losses/value", "losses/entropy", "diag/explained_variance"), numbers))
    return loss, terms


class FixedHorizonLoop:
    """What every fixed-horizon algorithm does around its own update: the learning-rate schedule,
    collection, advantages, reward normalization, and the bookkeeping of steps and episodes."""

    def __init__(self, cfg: Config, envs: VecEnv, agent: ActorCritic) -> None:
        self.cfg, self.envs, self.agent = cfg, envs, agent
        self.optimizer = make_optimizer(agent.parameters(), cfg.learning_rate, cfg.optimizer)
        self.collector = FixedHorizonCollector(envs, agent, cfg.num_steps, seed=cfg.seed)
        self.steps_done = 0
        self.learning_rate = cfg.learning_rate

    def iterate(self, advantages_of: Callable[[Batch], tuple[torch.Tensor, torch.Tensor]],
                update: Callable[[FlatBatch], dict[str, float]]) -> Iteration:
        """One iteration of a fixed-horizon algorithm: set the learning rate, collect, build the flat
        batch with the advantages and value targets ``advantages_of(batch)`` gives, normalise, and
        ``update`` on it (which returns its metrics). A rollout without transitions (see
        :func:`has_transitions`) is counted and skips normalisation and update: PopArt's statistics
        and every loss would turn NaN on no rows."""
        cfg = self.cfg
        self.learning_rate = annealed_learning_rate(cfg.learning_rate, self.steps_done, cfg.total_steps,
                                                    cfg.anneal_lr)
        set_learning_rate(self.optimizer, self.learning_rate)
        batch = self.collector.collect()
        self.steps_done += batch.rewards.numel()
        metrics: dict[str, float] = {}
        if has_transitions(batch):
            advantages, targets = advantages_of(batch)
            data = apply_reward_norm(FlatBatch.from_batch(batch, advantages, targets), self.agent, cfg.reward_norm)
            metrics = update(data)
        return self.iteration(metrics)

    def iteration(self, metrics: dict[str, float]) -> Iteration:
        """The Iteration for the batch just collected, with the learning rate it used."""
        metrics["charts/learning_rate"] = self.learning_rate
        steps = self.cfg.num_envs * self.cfg.num_steps
        return Iteration(steps=steps, episodes=self.envs.pop_episodes(), metrics=metrics)
