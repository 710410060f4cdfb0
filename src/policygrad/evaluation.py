"""Evaluating a policy: whole episodes in parallel copies, deterministic by default (Q22)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from policygrad.agent import Agent
from policygrad.algos.rollout import evaluation_episodes


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
    agent: Agent,
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
    """
    finished = evaluation_episodes(agent.network, env_id or agent.env_id, episodes, deterministic, seed, num_envs,
                                   agent.device)
    rets = [e.ret for e in finished]
    return EvalResult(float(np.mean(rets)), float(np.std(rets)), rets, [e.length for e in finished],
                      deterministic, seed)
