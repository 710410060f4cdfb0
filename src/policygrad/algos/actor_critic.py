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

from policygrad import losses, returns
from policygrad.algos.advantage import (
    OPTIMIZERS,
    FlatBatch,
    annealed_learning_rate,
    apply_reward_norm,
    bootstrap_values,
    critic_loss,
    set_learning_rate,
)
from policygrad.algos.base import Iteration, gradient_step, make_optimizer
from policygrad.config import Config, option
from policygrad.envs import VecEnv
from policygrad.networks import ActorCritic
from policygrad.rollout import FixedHorizonCollector


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


class OneStepActorCritic:
    """TD(0) actor-critic: one gradient step per environment step of every copy."""

    Config = ActorCriticConfig

    @staticmethod
    def needs_value(cfg: ActorCriticConfig) -> bool:
        return True

    def __init__(self, cfg: ActorCriticConfig, envs: VecEnv, agent: ActorCritic) -> None:
        self.cfg, self.envs, self.agent = cfg, envs, agent
        self.optimizer = make_optimizer(agent.parameters(), cfg.learning_rate, cfg.optimizer)
        self.collector = FixedHorizonCollector(envs, agent, cfg.num_steps, seed=cfg.seed)
        self.steps_done = 0

    def iterate(self) -> Iteration:
        cfg = self.cfg
        lr = annealed_learning_rate(cfg.learning_rate, self.steps_done, cfg.total_steps, cfg.anneal_lr)
        set_learning_rate(self.optimizer, lr)

        batch = self.collector.collect()
        # delta_t with V(s_{t+1}) from before the update: a semi-gradient method, the target is a constant.
        delta = returns.td_errors(batch.rewards, batch.values, bootstrap_values(batch, self.agent),
                                  batch.terminated, cfg.gamma)
        data = FlatBatch.from_batch(batch, advantages=delta, targets=delta + batch.values)
        data = apply_reward_norm(data, self.agent, cfg.reward_norm)

        dist, values = self.agent.dist_and_value(data.obs)
        adv = losses.normalize(data.advantages, data.weights) if cfg.norm_adv else data.advantages
        policy = losses.policy_gradient_loss(dist.log_prob(data.actions), adv, data.weights)
        value = critic_loss(self.agent, values, data)
        entropy = losses.entropy_term(dist.entropy(), data.weights)
        loss = policy + cfg.vf_coef * value - cfg.ent_coef * entropy
        grad_norm = gradient_step(self.optimizer, loss, self.agent.parameters(), cfg.max_grad_norm)

        steps = batch.rewards.numel()
        self.steps_done += steps
        metrics = {
            "losses/policy": policy.item(), "losses/value": value.item(), "losses/entropy": entropy.item(),
            "diag/explained_variance": data.explained_variance(), "diag/grad_norm": grad_norm,
            "charts/learning_rate": lr,
        }
        return Iteration(steps=steps, episodes=self.envs.pop_episodes(), metrics=metrics)
