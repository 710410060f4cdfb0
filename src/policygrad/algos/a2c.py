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

from policygrad.algos.on_policy import (
    FixedHorizonLoop,
    FlatBatch,
    actor_critic_loss,
    check_fixed_horizon,
    estimate_advantages,
)
from policygrad.algos.base import Iteration, gradient_step
from policygrad.core.config import Config, option
from policygrad.core.envs import VecEnv
from policygrad.core.networks import ActorCritic


@dataclass(frozen=True)
class A2CConfig(Config):
    num_envs: int = option(8, "parallel copies of the environment, stepped as one vector env")
    num_steps: int = option(5, "steps per environment between gradient steps (n of the n-step returns)")
    learning_rate: float = option(7e-4, "optimizer step size")
    optimizer: str = option("rmsprop", "adam | rmsprop (RMSprop alpha 0.99, eps 1e-5, as in SB3's A2C)")
    anneal_lr: bool = option(True, "decay the learning rate linearly to 0 over total_steps")
    advantage_estimator: str = option("nstep", "nstep (bootstrap at the horizon, as A3C) | gae (uses gae_lambda)")
    gae_lambda: float = option(1.0, "GAE lambda when advantage_estimator=gae (1.0: n-step returns)")
    norm_adv: bool = option(False, "standardise the advantages of each batch")
    ent_coef: float = option(0.0, "weight of the entropy bonus")
    vf_coef: float = option(0.5, "weight of the value loss")
    max_grad_norm: float = option(0.5, "clip the global gradient norm to this (0: no clipping)")
    algo: str = field(default="a2c", init=False, metadata={"help": "algorithm", "internal": True})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fixed_horizon(self)

    @property
    def batch_size(self) -> int:
        """Transitions per gradient step: num_envs * num_steps."""
        return self.num_envs * self.num_steps


class A2C:
    """Synchronous advantage actor-critic: one gradient step per ``num_envs`` x ``num_steps`` rollout."""

    Config = A2CConfig

    @staticmethod
    def needs_value(cfg: A2CConfig) -> bool:
        return True

    def __init__(self, cfg: A2CConfig, envs: VecEnv, agent: ActorCritic) -> None:
        self.cfg, self.agent = cfg, agent
        self.loop = FixedHorizonLoop(cfg, envs, agent)
        self.optimizer = self.loop.optimizer
        self.params = list(agent.parameters())  # listed once, not per gradient step

    def iterate(self) -> Iteration:
        cfg = self.cfg
        return self.loop.iterate(lambda batch: estimate_advantages(
            batch, self.agent, cfg.gamma, cfg.advantage_estimator, cfg.gae_lambda), self.update)

    def update(self, data: FlatBatch) -> dict[str, float]:
        cfg = self.cfg
        loss, metrics = actor_critic_loss(self.agent, data, cfg.norm_adv, cfg.vf_coef, cfg.ent_coef)
        metrics["diag/grad_norm"] = gradient_step(self.optimizer, loss, self.params, cfg.max_grad_norm)
        return metrics
