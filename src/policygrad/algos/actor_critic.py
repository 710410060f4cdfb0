"""One-step actor-critic (Sutton & Barto 2018, section 13.5): the critic's TD error is the advantage.

After every step of ``num_envs`` environments (``num_steps`` = 1), the critic's TD error

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)

is both the actor's signal and the critic's error: one gradient step on

    loss = -E[log pi(a|s) * delta] + vf_coef * 0.5 * E[(V(s) - (r + gamma V(s')))^2] - ent_coef * E[H]

The TD error estimates the advantage Q(s,a) - V(s) with one reward and the critic's guess for the
rest: far less variance than REINFORCE's whole return, at the price of the critic's bias. The book's
extra factor gamma^t (the discount of the start-state objective) is left out, as in practice almost
everywhere (Thomas 2014, "Bias in natural actor-critic algorithms"). ``num_steps`` > 1 batches several
TD(0) transitions per step without changing the estimator (A2C is the n-step version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from policygrad.core import returns
from policygrad.algos.on_policy import (
    OPTIMIZERS,
    FixedHorizonLoop,
    FlatBatch,
    actor_critic_loss,
    bootstrap_values,
    check_standardize_once,
)
from policygrad.algos.base import Iteration, gradient_step
from policygrad.core.config import Config, option
from policygrad.core.envs import VecEnv
from policygrad.core.networks import ActorCritic
from policygrad.algos.rollout import Batch


@dataclass(frozen=True)
class ActorCriticConfig(Config):
    num_envs: int = option(16, "parallel copies; each gradient step uses one transition of each")
    num_steps: int = option(1, "steps per environment between gradient steps (1: the textbook algorithm)")
    learning_rate: float = option(7e-4, "optimizer step size")
    optimizer: str = option("adam", "adam | rmsprop")
    anneal_lr: bool = option(True, "decay the learning rate linearly to 0 over total_steps")
    norm_adv: bool = option(False, "standardise the TD errors of each batch (needs several transitions)")
    ent_coef: float = option(0.01, "weight of the entropy bonus (keeps TD(0) from collapsing to one action)")
    vf_coef: float = option(0.5, "weight of the value loss")
    max_grad_norm: float = option(0.5, "clip the global gradient norm to this (0: no clipping)")
    algo: str = field(default="actor_critic", init=False, metadata={"help": "algorithm", "internal": True})

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive_int("num_steps")
        self._choice("optimizer", OPTIMIZERS)
        check_standardize_once(self)


class OneStepActorCritic:
    """TD(0) actor-critic: one gradient step per environment step of every copy."""

    Config = ActorCriticConfig

    @staticmethod
    def needs_value(cfg: ActorCriticConfig) -> bool:
        return True

    def __init__(self, cfg: ActorCriticConfig, envs: VecEnv, agent: ActorCritic) -> None:
        self.cfg, self.agent = cfg, agent
        self.loop = FixedHorizonLoop(cfg, envs, agent)
        self.optimizer = self.loop.optimizer

    def td_advantages(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """delta_t with V(s_{t+1}) from before the update: a semi-gradient method, the target is a constant."""
        delta = returns.td_errors(batch.rewards, batch.values, bootstrap_values(batch, self.agent),
                                  batch.terminated, self.cfg.gamma)
        return delta, delta + batch.values

    def iterate(self) -> Iteration:
        return self.loop.iterate(self.td_advantages, self.update)

    def update(self, data: FlatBatch) -> dict[str, float]:
        cfg = self.cfg
        loss, metrics = actor_critic_loss(self.agent, data, cfg.norm_adv, cfg.vf_coef, cfg.ent_coef)
        metrics["diag/grad_norm"] = gradient_step(self.optimizer, loss, self.agent.parameters(), cfg.max_grad_norm)
        return metrics
