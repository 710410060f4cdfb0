"""Running statistics for observation and reward normalization (Q29).

The statistics are buffers of small ``nn.Module``s that the agent owns, so they are saved and loaded
with its weights. They change only when a training collector calls ``update``; evaluation and a
reloaded agent use them frozen, and so see observations scaled exactly as in training.
"""

from __future__ import annotations

import torch
from torch import nn

REWARD_NORMS = ("none", "scale", "standardize", "popart")


class RunningMeanStd(nn.Module):
    """Mean and (population) variance of every sample seen so far, per feature.

    Batches are merged with the parallel algorithm of Chan et al. (1979), in float64 so that long
    runs do not drift: the result equals NumPy's ``mean`` and ``var`` over the whole stream.
    """

    mean: torch.Tensor  # buffers, registered in __init__
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Merge ``batch`` ``(B, *shape)`` into the statistics."""
        batch = batch.detach().to(torch.float64).reshape(-1, *self.mean.shape)
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean, batch_var = batch.mean(0), batch.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.mean.add_(delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    @property
    def std(self) -> torch.Tensor:
        return (self.var + 1e-8).sqrt()


class ObservationNormalizer(nn.Module):
    """(obs - mean) / std, clipped to [-clip, clip] (clipping bounds the damage of a rare outlier)."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0) -> None:
        super().__init__()
        self.stats = RunningMeanStd(shape)
        self.clip = clip

    def update(self, obs: torch.Tensor) -> None:
        self.stats.update(obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        normalized = (obs - self.stats.mean.float()) / self.stats.std.float()
        return normalized.clamp(-self.clip, self.clip)


class RewardScaler(nn.Module):
    """Divides rewards by the running std of the discounted return (Engstrom et al. 2020, "reward
    scaling"): the scale of the value targets stays near 1 whatever the environment's reward units.
    The mean is not subtracted: shifting rewards would change which policy is optimal when episodes
    have different lengths."""

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0) -> None:
        super().__init__()
        self.stats = RunningMeanStd(())
        self.gamma, self.clip = gamma, clip
        self.running_return = torch.zeros(num_envs, dtype=torch.float64)  # not saved: per-episode state

    def scale(self, rewards: torch.Tensor, done: torch.Tensor, valid: torch.Tensor,
              update: bool = True) -> torch.Tensor:
        """Scaled rewards ``(N,)``; with ``update``, the discounted returns (real steps only) feed the stats."""
        if update:
            running = self.running_return.to(rewards.device)
            running = torch.where(valid, running * self.gamma + rewards.double(), running)
            self.stats.update(running[valid])
            self.running_return = torch.where(done, torch.zeros_like(running), running).cpu()
        return (rewards / self.stats.std.float()).clamp(-self.clip, self.clip)


class PopArt(nn.Module):
    """Preserving outputs precisely, while adaptively rescaling targets (van Hasselt et al. 2016).

    The value head learns a normalized value n(s); the agent reports V(s) = std * n(s) + mean, where
    mean and std are running statistics of the value targets. Each time they change, the head's last
    layer is rescaled so that V(s) stays exactly what it was ("preserving outputs"); the value loss is
    computed on normalized targets, so its scale stays near 1 whatever the rewards.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stats = RunningMeanStd(())

    def denormalize(self, normalized: torch.Tensor) -> torch.Tensor:
        return normalized * self.stats.std.float() + self.stats.mean.float()

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.stats.mean.float()) / self.stats.std.float()

    @torch.no_grad()
    def update(self, targets: torch.Tensor, head: nn.Linear) -> None:
        """Merge ``targets`` into the statistics and rescale ``head`` (the value's last layer) so that
        V(s) is unchanged."""
        old_mean, old_std = self.stats.mean.clone(), self.stats.std.clone()
        self.stats.update(targets)
        new_mean, new_std = self.stats.mean, self.stats.std
        head.weight.mul_((old_std / new_std).float())
        head.bias.copy_(((old_std * head.bias.double() + old_mean - new_mean) / new_std).float())
