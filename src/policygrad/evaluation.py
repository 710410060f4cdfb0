"""Evaluating a policy: whole episodes in parallel copies, deterministic by default (Q22)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from policygrad.agent import Agent, load
from policygrad.algos.rollout import evaluation_episodes
from policygrad.core.config import check_bool, check_int, reject_type
from policygrad.core.envs import check_env_id, env_kwargs_for, env_spaces
from policygrad.core.errors import UserInputError
from policygrad.core.masks import masking_for


@dataclass(frozen=True)
class EvalResult:
    mean: float
    std: float
    returns: list[float]
    lengths: list[int]
    deterministic: bool
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        kind = "deterministic" if self.deterministic else "stochastic"
        return f"eval ({kind}, {len(self.returns)} episodes): {self.mean:.2f} +- {self.std:.2f}"


def evaluate(
    agent: Agent | str | Path,
    episodes: int = 20,
    deterministic: bool = True,
    seed: int = 10_000,
    num_envs: int | None = None,
    env_id: str | None = None,
) -> EvalResult:
    """Play ``episodes`` episodes and report mean, std and every return.

    ``deterministic`` acts with the distribution's mode (argmax for discrete actions); the default
    seed differs from training seeds so that evaluation starts from states training did not reset to.
    ``seed`` seeds the environments' resets and, when ``deterministic=False``, the action sampling
    too (its own generators: the caller's random state is left as it was), so the same seed gives
    the same returns.

    ``agent``: an :class:`Agent`, or a run directory (or checkpoint folder), loaded with
    ``pg.load(path)``'s defaults. ``env_id`` (default: the agent's) must have the same observation and
    action spaces as the agent's environment. Wrong types are TypeErrors, bad values ValueErrors.
    """
    if isinstance(agent, (str, Path)):
        agent = load(agent)
    elif not isinstance(agent, Agent):
        reject_type("agent", agent, "policygrad.Agent or a run directory (str or pathlib.Path)")
    episodes = check_int("episodes", episodes)
    deterministic = check_bool("deterministic", deterministic)
    seed = check_int("seed", seed)
    if seed < 0:
        raise UserInputError(f"seed={seed!r} is invalid: expected an integer >= 0")
    if num_envs is not None and check_int("num_envs", num_envs) <= 0:
        raise UserInputError(f"num_envs={num_envs!r} is invalid: expected an integer > 0 (or None: up to 8)")
    own = env_id is None or env_id == agent.env_id  # the agent's environment, with the run's env_kwargs
    with env_kwargs_for(agent.env_id, agent.config.env_kwargs if own else {}), masking_for(agent.config.action_masking):
        return _evaluate(agent, episodes, deterministic, seed, num_envs, env_id)


def _evaluate(agent: Agent, episodes: int, deterministic: bool, seed: int, num_envs: int | None,
              env_id: str | None) -> EvalResult:
    if env_id is not None:
        if not isinstance(env_id, str):
            reject_type("env_id", env_id, "str (a Gymnasium id) or None (the agent's)")
        check_env_id(env_id)
        observation_space, action_space = env_spaces(env_id)
        network = agent.network
        if observation_space != network.observation_space or action_space != network.action_space:
            raise UserInputError(
                f"env_id={env_id!r} does not fit this agent: its observations {observation_space} and actions "
                f"{action_space}, the agent's (trained on {agent.env_id}) {network.observation_space} and "
                f"{network.action_space}")
    finished = evaluation_episodes(agent.network, env_id or agent.env_id, episodes, deterministic, seed, num_envs,
                                   agent.device)
    rets = [e.ret for e in finished]
    return EvalResult(float(np.mean(rets)), float(np.std(rets)), rets, [e.length for e in finished],
                      deterministic, seed)
