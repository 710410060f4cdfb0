"""policygrad: policy-gradient reinforcement learning in PyTorch, from REINFORCE to PPO.

    import policygrad as pg
    result = pg.train(pg.ReinforceConfig(env_id="CartPole-v1", total_steps=100_000))
    print(pg.evaluate(result.agent, episodes=20))
"""

__version__ = "0.1.0"

from policygrad.agent import Agent, load  # noqa: E402
from policygrad.algos import ALGORITHMS, make_config  # noqa: E402
from policygrad.algos.a2c import A2CConfig  # noqa: E402
from policygrad.algos.a3c import A3CConfig  # noqa: E402
from policygrad.algos.actor_critic import ActorCriticConfig  # noqa: E402
from policygrad.algos.ppo import PPOConfig  # noqa: E402
from policygrad.algos.reinforce import ReinforceConfig  # noqa: E402
from policygrad.core.config import Config  # noqa: E402
from policygrad.evaluation import EvalResult, evaluate  # noqa: E402
from policygrad.plots import plot_runs  # noqa: E402
from policygrad.run.trainer import TrainResult, train  # noqa: E402

__all__ = ["ALGORITHMS", "A2CConfig", "A3CConfig", "ActorCriticConfig", "Agent", "Config", "EvalResult", "PPOConfig",
           "ReinforceConfig", "TrainResult", "evaluate", "load", "make_config", "plot_runs", "train"]
