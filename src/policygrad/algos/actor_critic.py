"""One-step actor-critic (Sutton & Barto 2018, section 13.5): the critic's TD error is the advantage.

After every step of ``num_envs`` environments (``num_steps`` = 1), the critic's TD error

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)

is both the actor's signal and the critic's error: one gradient step on

    loss = -E[log pi(a|s) * delta] + vf_coef * 0.5 * E[(V(s) - (r + gamma V(s')))^2] - ent_coef * E[H]

The TD error estimates the advantage Q(s,a) - V(s) with one reward and the critic's guess for the
rest: far less variance than REINFORCE's whole return, at the price of the critic's bias. The book's
extra factor gamma^t (the discount of the start-state objective) is left out, as in practice almost
everywhere (Thomas 2014, "Bias in natural actor-critic algorithms"). ``num_steps`` > 1 batches several
TD(0) transitions per step without changing the estimator (A2C is the n-step version). V(s_{t+1})
comes from before the update: a semi-gradient method, the target is a constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policygrad.algos.a2c import A2C
from policygrad.algos.on_policy import FixedHorizonConfig, estimator_option
from policygrad.core.config import option, reject_value


@dataclass(frozen=True)
class ActorCriticConfig(FixedHorizonConfig):
    num_envs: int = option(16, "parallel copies; each gradient step uses one transition of each")
    num_steps: int = option(1, "steps per environment between gradient steps (1: the textbook algorithm)")
    learning_rate: float = option(7e-4, "optimizer step size")
    advantage_estimator: str = estimator_option("td")
    norm_adv: bool = option(False, "standardise the TD errors of each batch (needs several transitions)")
    ent_coef: float = option(0.01, "weight of the entropy bonus (keeps TD(0) from collapsing to one action)")
    algo: str = field(default="actor_critic", init=False, metadata={"help": "algorithm", "internal": True})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recurrent != "none":
            # One-step updates would backpropagate through a single step: nothing to learn to remember.
            reject_value("recurrent", self.recurrent, "none for actor_critic (its one-step updates cannot teach "
                         "a memory; recurrent policies: ppo, a2c, a3c)")


class OneStepActorCritic(A2C):
    """TD(0) actor-critic: one gradient step per environment step of every copy. The update is A2C's;
    what makes it the one-step method is its config: the ``td`` estimator and ``num_steps=1``."""

    Config = ActorCriticConfig
