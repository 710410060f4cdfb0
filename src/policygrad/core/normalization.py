"""Running statistics for observation and reward normalization (Q29).

The statistics are buffers of small ``nn.Module``s that the agent owns, so they are saved and loaded
with its weights. They change only when a training collector calls ``update``; evaluation and a
reloaded agent use them frozen, and so see observations scaled exactly as in training.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

REWARD_NORMS = ("none", "scale", "standardize", "popart")
PRIOR_COUNT = 1e-4  # the weight of RunningMeanStd's starting point (mean 0, variance 1), in samples


class RunningMeanStd(nn.Module):
    """Mean and (population) variance of every sample seen so far, per feature.

    Batches are merged with the parallel algorithm of Chan et al. (1979), in float64 so that long
    runs do not drift: the result equals NumPy's ``mean`` and ``var`` over the whole stream, plus a
    prior of mean 0 and variance 1 with the weight of ``PRIOR_COUNT`` samples. The prior is the
    convention of Gymnasium's normalization wrappers, SB3's VecNormalize and CleanRL, and it matters
    at the first sample: from nothing, one sample has variance 0, so a run's first reward was divided
    by sqrt(1e-8) and clipped to 10 whatever its size (HalfCheetah's first value target came out nine
    times SB3's). After 100 samples the prior weighs 1e-6 of the whole.

    A single sample on the CPU (one environment's observation or discounted return, every step of a
    one-env collection) is merged by :meth:`update_numpy` in NumPy, on views of the buffers: the same
    float64 operations in the same order, so the same bits, for a few microseconds instead of the
    ~10 torch calls (~60 us) of :meth:`update`.
    """

    mean: torch.Tensor  # buffers, registered in __init__
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.full((), PRIOR_COUNT, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Merge ``batch`` ``(B, *shape)`` into the statistics."""
        if (batch.numel() == self.mean.numel() and batch.device.type == "cpu" and self.mean.device.type == "cpu"
                and batch.dtype in (torch.float32, torch.float64)):
            self._update_one(batch.detach().numpy())  # one sample: the same bits in NumPy, far fewer calls
            return
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

    def update_numpy(self, batch: np.ndarray) -> None:
        """:meth:`update` for a NumPy ``batch`` ``(B, *shape)`` on the CPU (one sample: in NumPy)."""
        if batch.size == 0:
            return
        if batch.size == self.mean.numel() and self.mean.device.type == "cpu":
            self._update_one(batch)
        else:
            self.update(torch.from_numpy(np.ascontiguousarray(batch)))

    def _update_one(self, sample: np.ndarray) -> None:
        """:meth:`update` of one sample, written into the CPU buffers through NumPy views. With B = 1
        the batch mean is the sample and its variance 0, and Chan's merge reduces to the operations
        below, in :meth:`update`'s order (``0 * 1`` added and ``* 1`` are exact), hence its bits
        (tests/test_fast_continuous.py compares them)."""
        mean, var, counted = self.mean.numpy(), self.var.numpy(), self.count.numpy()
        count = float(counted)
        total = count + 1.0
        delta = np.asarray(sample, dtype=np.float64).reshape(mean.shape) - mean
        spread = delta * delta  # torch's pow(2) is this product
        spread *= count
        spread /= total
        m2 = var * count
        m2 += spread
        delta /= total
        mean += delta
        np.divide(m2, total, out=var)
        counted[()] = total

    def std_numpy(self) -> float | np.ndarray:
        """:attr:`std` in float32 as NumPy (``std.float()``'s bits), for the CPU paths that scale in NumPy."""
        var = self.var.numpy()
        if var.ndim == 0:
            return np.float32(math.sqrt(float(var) + 1e-8))
        return np.sqrt(var + 1e-8).astype(np.float32)

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

    def scale_numpy(self, rewards: np.ndarray, done: np.ndarray, valid: np.ndarray, out: np.ndarray) -> None:
        """:meth:`scale` (with ``update``) on the CPU in NumPy: ``rewards`` ``(N,)`` as the environment
        gave them, the scaled float32 rewards written into ``out`` ``(N,)``. The same operations as
        :meth:`scale` on ``torch.from_numpy(rewards).float()``, hence the same bits; the running
        returns are updated in place."""
        running = self.running_return
        if running.device.type != "cpu" or running.dtype != torch.float64 or not running.is_contiguous():
            scaled = self.scale(torch.from_numpy(rewards).float(), torch.from_numpy(done), torch.from_numpy(valid))
            out[:] = scaled.numpy()
            return
        returns = running.numpy()
        np.copyto(out, rewards, casting="same_kind")  # the float32 rewards (the torch path's .float())
        discounted = returns * self.gamma
        discounted += out  # (float32 to float64: exact, as .double() is)
        np.copyto(returns, discounted, where=valid)
        self.stats.update_numpy(returns[valid])
        returns[done] = 0.0
        out /= self.stats.std_numpy()
        np.clip(out, -self.clip, self.clip, out=out)


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
