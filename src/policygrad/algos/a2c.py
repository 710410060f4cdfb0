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
from typing import ClassVar

import torch

from policygrad.algos.base import Iteration, Update, gradient_step
from policygrad.algos.grad_noise import GradientNoiseScale
from policygrad.algos.on_policy import (
    FixedHorizonAlgorithm,
    FixedHorizonConfig,
    FixedHorizonLoop,
    FlatBatch,
    UpdateHook,
    actor_critic_loss,
    estimator_option,
)
from policygrad.core import losses
from policygrad.core.config import option
from policygrad.core.envs import VecEnv
from policygrad.core.networks import PolicyNetwork

NOISE_EVERY = 4  # grad_noise_scale measures one update in this many


@dataclass(frozen=True)
class A2CConfig(FixedHorizonConfig):
    num_envs: int = option(8, "parallel copies of the environment, stepped as one vector env")
    num_steps: int = option(5, "steps per environment between gradient steps (n of the n-step returns)")
    learning_rate: float = option(7e-4, "optimizer step size")
    optimizer: str = option("rmsprop", "adam | rmsprop (RMSprop alpha 0.99, eps 1e-5, as in SB3's A2C)")
    advantage_estimator: str = estimator_option("nstep")
    gae_lambda: float = option(1.0, "GAE lambda when advantage_estimator=gae (1.0: n-step returns)")
    grad_noise_scale: bool = option(False, "log diag/grad_noise_scale, the gradient noise scale B_simple = "
                                    "tr(Sigma)/|G|^2 of the policy's gradient in transitions (McCandlish et al. "
                                    "2018), from a step's gradient and one more on half of its batch; training "
                                    "is unchanged. "
                                    "Cost (benchmarks/grad_noise_scale_cost.py): about 6-8% more time per "
                                    "iteration with the CartPole-v1 preset (one update in four is measured)")
    algo: str = field(default="a2c", init=False, metadata={"help": "algorithm", "internal": True})


class A2C(FixedHorizonAlgorithm):
    """Synchronous advantage actor-critic: one gradient step per ``num_envs`` x ``num_steps`` rollout."""

    Config: ClassVar[type[FixedHorizonConfig]] = A2CConfig  # OneStepActorCritic swaps in its own

    @staticmethod
    def needs_value(cfg: FixedHorizonConfig) -> bool:
        return True

    def __init__(self, cfg: FixedHorizonConfig, envs: VecEnv, network: PolicyNetwork) -> None:
        self.cfg, self.network = cfg, network
        self.loop = FixedHorizonLoop(cfg, envs, network)
        self.optimizer = self.loop.optimizer
        self.params = list(network.parameters())  # listed once, not per gradient step
        # OneStepActorCritic runs this class with its own config, which has no grad_noise_scale field.
        # One step in four measured: A2C's steps are so small that measuring each would add a third to them.
        self.hook = (GradientNoiseScale(cfg.seed, network, cfg.max_grad_norm, every=NOISE_EVERY)
                     if getattr(cfg, "grad_noise_scale", False) else UpdateHook())

    def iterate(self) -> Iteration:
        return self.loop.iterate(self.update)

    def update(self, data: FlatBatch) -> Update:
        cfg = self.cfg
        loss, metrics = actor_critic_loss(self.network, data, cfg.norm_adv, cfg.vf_coef, cfg.ent_coef)
        self.hook.before_step(data, self.policy_loss, epoch=1)
        step = gradient_step(self.optimizer, loss, self.params, cfg.max_grad_norm)
        self.hook.after_step(step, len(data))
        metrics["diag/grad_norm"] = step.norm
        self.hook.after_update(metrics)
        return Update(metrics, skipped_steps=int(not step.finite))

    def policy_loss(self, rows: FlatBatch, index: torch.Tensor) -> torch.Tensor:
        """The terms of the step's loss on ``rows`` that reach the policy's own parameters (the policy
        gradient and the entropy bonus), on ``rows[index]``, with the advantages normalised over all
        of ``rows`` as that loss has them (for the hook: :class:`UpdateHook`)."""
        cfg = self.cfg
        advantages = losses.normalize(rows.advantages) if cfg.norm_adv else rows.advantages
        dist = self.network.dist(rows.obs_at(index))
        policy = losses.policy_gradient_loss(dist.log_prob(rows.actions[index]), advantages[index])
        return losses.with_entropy_bonus(policy, dist.entropy, cfg.ent_coef)[0]
