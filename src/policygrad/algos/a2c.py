"""A2C: synchronous advantage actor-critic (Mnih et al. 2016; the synchronous variant of OpenAI
Baselines, 2017).

Every iteration steps ``num_envs`` environments ``num_steps`` times with the current policy, computes
n-step (or GAE) advantages with the critic bootstrapping at the horizon and on truncation, and takes
exactly one gradient step on

    loss = -E[log pi(a|s) * A] + vf_coef * 0.5 * E[(V(s) - target)^2] - ent_coef * E[H(pi(.|s))]

The N environments decorrelate the batch the way A3C's asynchronous workers do, without their stale
gradients. Defaults follow Stable-Baselines3 / CleanRL's A2C (5 steps, RMSprop, lr 7e-4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from policygrad.algos.base import Algorithm, AlgorithmState, Iteration, Update, gradient_step
from policygrad.algos.on_policy import (
    FixedHorizonConfig,
    FixedHorizonLoop,
    FlatBatch,
    actor_critic_loss,
    estimator_option,
)
from policygrad.core.config import option
from policygrad.core.envs import VecEnv
from policygrad.core.networks import PolicyNetwork


@dataclass(frozen=True)
class A2CConfig(FixedHorizonConfig):
    num_envs: int = option(8, "parallel copies of the environment, stepped as one vector env")
    num_steps: int = option(5, "steps per environment between gradient steps (n of the n-step returns)")
    learning_rate: float = option(7e-4, "optimizer step size")
    optimizer: str = option("rmsprop", "adam | rmsprop (RMSprop alpha 0.99, eps 1e-5, as in SB3's A2C)")
    advantage_estimator: str = estimator_option("nstep")
    gae_lambda: float = option(1.0, "GAE lambda when advantage_estimator=gae (1.0: n-step returns)")
    algo: str = field(default="a2c", init=False, metadata={"help": "algorithm", "internal": True})


class A2C(Algorithm):
    """Synchronous advantage actor-critic: one gradient step per ``num_envs`` x ``num_steps`` rollout."""

    Config: ClassVar[type[FixedHorizonConfig]] = A2CConfig  # OneStepActorCritic swaps in its own

    @staticmethod
    def needs_value(cfg: FixedHorizonConfig) -> bool:
        return True

    def __init__(self, cfg: FixedHorizonConfig, envs: VecEnv, agent: PolicyNetwork) -> None:
        self.cfg, self.agent = cfg, agent
        self.loop = FixedHorizonLoop(cfg, envs, agent)
        self.optimizer = self.loop.optimizer
        self.params = list(agent.parameters())  # listed once, not per gradient step

    def iterate(self) -> Iteration:
        return self.loop.iterate(self.update)

    def update(self, data: FlatBatch) -> Update:
        cfg = self.cfg
        loss, metrics = actor_critic_loss(self.agent, data, cfg.norm_adv, cfg.vf_coef, cfg.ent_coef)
        step = gradient_step(self.optimizer, loss, self.params, cfg.max_grad_norm)
        metrics["diag/grad_norm"] = step.norm
        return Update(metrics, skipped_steps=int(not step.finite))

    def state(self) -> AlgorithmState:
        return self.loop.state()

    def load_state(self, data: dict[str, Any], tensors: dict[str, torch.Tensor], exact: bool,
                   fresh_seed: int) -> None:
        self.loop.load_state(data, tensors, exact, fresh_seed)
