"""Evaluating a policy: whole episodes in parallel copies, deterministic by default (Q22)."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import numpy as np

from policygrad.agent import Agent
from policygrad.algos.rollout import collect_episodes
from policygrad.core.envs import make_vec_env
from policygrad.core.runtime import seeded_sampling


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
    if not isinstance(episodes, int) or episodes <= 0:
        raise ValueError(f"episodes={episodes!r} is invalid: expected an integer > 0")
    num_envs = min(episodes, num_envs or 8)
    envs = make_vec_env(env_id or agent.env_id, num_envs, device=agent.device)
    was_training = agent.network.training
    agent.network.eval()
    try:
        sampling = contextlib.nullcontext() if deterministic else seeded_sampling(seed, agent.device)
        with sampling:
            _, finished, _ = collect_episodes(envs, agent.network, episodes, deterministic, seed=seed, store=False)
    finally:
        envs.close()
        agent.network.train(was_training)
    rets = [e.ret for e in finished]
    return EvalResult(float(np.mean(rets)), float(np.std(rets)), rets, [e.length for e in finished],
                      deterministic, seed)
