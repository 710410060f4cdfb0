"""policygrad: policy-gradient reinforcement learning in PyTorch, from REINFORCE to PPO.

    import policygrad as pg
    result = pg.train(pg.ReinforceConfig(env_id="CartPole-v1", total_steps=100_000))
    print(pg.evaluate(result.agent, episodes=20))
"""

from typing import TYPE_CHECKING, Any

from policygrad.agent import Agent, load
from policygrad.algos import ALGORITHMS
from policygrad.algos.a2c import A2CConfig
from policygrad.algos.a3c import A3CConfig
from policygrad.algos.actor_critic import ActorCriticConfig
from policygrad.algos.ppo import PPOConfig
from policygrad.algos.reinforce import ReinforceConfig
from policygrad.comparison.methods import compare
from policygrad.core import losses, returns  # modules: pg.returns.gae, pg.losses.ppo_clip_loss, ...
from policygrad.core.config import Config
from policygrad.core.version import __version__
from policygrad.evaluation import EvalResult, evaluate
from policygrad.plots import plot_runs
from policygrad.run.configure import make_config
from policygrad.studies.named import study
from policygrad.studies.runner import StudyResult, sweep
from policygrad.training import TrainResult, train
from policygrad.tuning.search import TuneResult, tune

if TYPE_CHECKING:
    from policygrad.diagnostics.diagnose import diagnose_gradients


def __getattr__(name: str) -> Any:
    # The diagnostics load scipy.stats (0.7 s): imported when first used, not by every process that
    # imports policygrad (each study worker, each A3C worker).
    if name == "diagnose_gradients":
        from policygrad.diagnostics.diagnose import diagnose_gradients

        return diagnose_gradients
    raise AttributeError(f"module 'policygrad' has no attribute {name!r}")

__all__ = ["ALGORITHMS", "A2CConfig", "A3CConfig", "ActorCriticConfig", "Agent", "Config", "EvalResult", "PPOConfig",
           "compare", "diagnose_gradients", "ReinforceConfig", "TrainResult", "evaluate", "load", "losses",
           "make_config", "plot_runs", "returns", "study", "StudyResult", "sweep", "train", "tune", "TuneResult",
           "__version__"]
