"""What a diagnosis measured (:class:`GradientDiagnosis`), apart from how it is measured and written."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from policygrad.diagnostics.statistics import EstimatorStats


@dataclass
class GradientDiagnosis:
    """What :func:`diagnose_gradients` measured. ``stats``: one :class:`EstimatorStats` per estimator,
    in the order given; ``mean_gradients``: each estimator's mean gradient over all episodes,
    flattened over ``parameter_names`` (the actor's parameters, in the network's order)."""

    env_id: str
    source: str
    global_step: int | None
    batches: int
    batch_episodes: int
    seed: int
    gamma: float
    cosine_target: float
    critic: str
    critic_explained_variance: float
    return_mean: float
    return_sd: float
    length_mean: float
    parameter_names: list[str]
    stats: list[EstimatorStats]
    mean_gradients: dict[str, torch.Tensor] = field(repr=False)
    notes: list[str] = field(default_factory=list)
    env_kwargs: dict = field(default_factory=dict)  # the environment's keyword arguments ({}: none)

    @property
    def environment(self) -> str:
        """The environment as the report names it: its id, and its arguments where there are some."""
        return f"{self.env_id} (env_kwargs {json.dumps(self.env_kwargs)})" if self.env_kwargs else self.env_id

    def by_name(self, name: str) -> EstimatorStats:
        for s in self.stats:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def reference(self) -> EstimatorStats:
        return next(s for s in self.stats if s.reference)

    def settings(self) -> dict:
        """The settings and context, as plain data (``diagnosis.json``)."""
        return {"env_id": self.env_id, "env_kwargs": self.env_kwargs, "policy": self.source,
                "global_step": self.global_step,
                "batches": self.batches, "batch_episodes": self.batch_episodes, "seed": self.seed,
                "gamma": self.gamma, "cosine_target": self.cosine_target, "critic": self.critic,
                "critic_explained_variance": self.critic_explained_variance, "return_mean": self.return_mean,
                "return_sd": self.return_sd, "length_mean": self.length_mean,
                "parameters": int(next(iter(self.mean_gradients.values())).numel())}
