"""Statistics of the estimators' gradients: signal, noise, agreement with a reference, bias, and the
episodes each needs, from per-episode gradients ``x`` of shape ``(E, B, M, P)`` (E estimators, B
batches of M episodes, P parameters). A batch's gradient is g_b = mean over its M episodes.

For one estimator, with mean gradient mu and batch covariance C (both estimated over the B batches):

- ``mean_norm``: |mean of the g_b|;
- ``trace_cov``: tr(C), the expected squared distance of one batch's gradient from the mean;
- ``noise_to_signal``: tr(C) / |mu|^2, with |mu|^2 estimated without the upward bias of the noise
  (|mean|^2 - tr(C)/B); infinite where no signal is measurable;
- ``noise_scale``: M tr(C) / |mu|^2, the same in episodes: the per-episode noise over the signal, the
  batch size (in episodes) at which noise and signal are equal (McCandlish et al. 2018's B_simple);
- ``cosine``: the mean over batches of cos(g_b, reference), the reference being the lowest-variance
  unbiased estimator's mean over the *other* B - 1 batches (so that it is independent of g_b);
- ``mean_cosine``: cos(mu, mu_reference), bias-corrected (1 for an unbiased estimator);
- ``relative_bias``: |mu - mu_reference| / |mu_reference|, from the paired differences g_b - g_ref,b
  (same episodes: the noise they share cancels), corrected for their own noise; ``bias_p``: the
  p-value of a sign-flip test of "mean difference zero" (:func:`sign_flip_p`), and ``bias_p_holm``
  the same Holm-corrected (:func:`policygrad.reporting.statistics.holm`) across the estimators tested
  (each one but the reference): with eight estimators, one unbiased estimator in four would show a
  raw p below 0.05 by chance;
- ``episodes_to_cosine``: the episodes a batch needs for its expected cosine with the true gradient
  to reach ``cosine_target``: cos(m) ~ rho / sqrt(1 + noise_scale / m) (rho = mean_cosine, 1 for the
  unbiased ones), solved for m; infinite when rho itself is below the target;
- ``curve``: the measured cosine with the reference at batch sizes 1, 2, 4, ... episodes (episodes
  grouped into disjoint batches; the reference from all the other episodes), divided by the
  reference's own expected cosine with the truth, so that it is comparable to the model curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from policygrad.reporting.statistics import holm

FLIPS = 4000  # random sign vectors of the sign-flip test
FLIP_SEED = 20180614  # fixed: the same gradients give the same p-values


@dataclass
class EstimatorStats:
    name: str
    unbiased: bool
    mean_norm: float
    trace_cov: float
    noise_to_signal: float
    noise_scale: float
    cosine: float
    cosine_sd: float
    mean_cosine: float
    relative_bias: float
    bias_p: float
    episodes_to_cosine: float
    reference: bool = False
    noise_to_signal_floor: float = math.nan  # tr(C) / |mean|^2: a lower bound where no signal is measurable
    bias_p_holm: float = 1.0
    curve: list[tuple[int, float]] = field(default_factory=list)  # (episodes, corrected measured cosine)

    def model_cosine(self, episodes: float) -> float:
        """The expected cosine with the true gradient of a batch of ``episodes`` episodes."""
        rho = 1.0 if self.unbiased else self.mean_cosine
        if not math.isfinite(self.noise_scale) or not math.isfinite(rho):
            return math.nan
        return rho / math.sqrt(1.0 + self.noise_scale / episodes)


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosines of ``(K, P)`` and ``(K, P)`` (0 where either is zero)."""
    na, nb = a.norm(dim=-1), b.norm(dim=-1)
    return torch.where((na > 0) & (nb > 0), (a * b).sum(-1) / (na * nb).clamp_min(1e-300), torch.zeros_like(na))


def sign_flip_p(differences: torch.Tensor, flips: int = FLIPS, seed: int = FLIP_SEED) -> float:
    """p-value of H0 "E[d_b] = 0" for B independent ``(B, P)`` differences, symmetric under H0: the
    share of random sign flips s whose |sum_b s_b d_b|^2 reaches the observed |sum_b d_b|^2 (plus one,
    the observed itself). Computed on the B x B Gram matrix, so P may be large."""
    d = differences.double()
    gram = d @ d.T
    observed = float(gram.sum())
    if observed <= 0:
        return 1.0
    rng = np.random.default_rng(seed)
    signs = torch.from_numpy(rng.choice([-1.0, 1.0], size=(flips, d.shape[0])))
    null = ((signs @ gram) * signs).sum(1)
    return float((1 + int((null >= observed * (1 - 1e-12)).sum())) / (flips + 1))


def batch_sizes(episodes: int) -> list[int]:
    """1, 2, 4, ... up to a quarter of the episodes (at least four batches of each size, and the other
    three quarters, at least, make the reference)."""
    sizes, m = [], 1
    while m <= episodes // 4:
        sizes.append(m)
        m *= 2
    return sizes


def analyse(x: torch.Tensor, names: Sequence[str], unbiased: Sequence[bool], cosine_target: float = 0.9,
            reference: int | None = None) -> list[EstimatorStats]:
    """The statistics of the module docstring for per-episode gradients ``x`` ``(E, B, M, P)``.
    ``reference``: the estimator whose mean is the reference (default: the unbiased one with the
    smallest tr(C))."""
    E, B, M, _ = x.shape
    if B < 2 or M < 1:
        raise ValueError(f"statistics need at least 2 batches of 1 episode, got {B} of {M}")
    g = x.mean(2, dtype=torch.float64)  # (E, B, P) batch gradients (x itself stays float32: it may be large)
    mean = g.mean(1)  # (E, P)
    centred = g - mean[:, None]
    trace = centred.pow(2).sum((1, 2)) / (B - 1)  # (E,)
    signal = mean.pow(2).sum(1) - trace / B  # unbiased |mu|^2
    if reference is None:
        candidates = [i for i in range(E) if unbiased[i]]
        if not candidates:
            raise ValueError("no unbiased estimator to take the reference from")
        reference = min(candidates, key=lambda i: float(trace[i]))
    r = reference
    ref_total = g[r].sum(0)
    loo = (ref_total[None] - g[r]) / (B - 1)  # (B, P): the reference without batch b
    # episodes flattened for the cosine-vs-batch-size curve
    flat = x.reshape(E, B * M, -1)
    n = B * M
    ref_flat = flat[r].double()
    ref_sum = ref_flat.sum(0)
    noise_scale_r = float(M * trace[r] / signal[r]) if signal[r] > 0 else math.inf
    out = []
    for e in range(E):
        cos = _cos(g[e], loo)
        sig = float(signal[e])
        nsr = float(trace[e] / signal[e]) if sig > 0 else math.inf
        noise_scale = M * nsr
        diff = g[e] - g[r]
        d_mean = diff.mean(0)
        d_trace = float((diff - d_mean).pow(2).sum() / (B - 1))
        bias_sq = float(d_mean.pow(2).sum()) - d_trace / B
        ref_signal = float(signal[r])
        relative_bias = math.sqrt(max(bias_sq, 0.0) / ref_signal) if ref_signal > 0 else math.nan
        bias_p = 1.0 if e == r else sign_flip_p(diff)
        cross = float(((g[e] - mean[e]) * (g[r] - mean[r])).sum() / (B - 1))
        dot = float((mean[e] * mean[r]).sum()) - cross / B
        rho = dot / math.sqrt(sig * ref_signal) if sig > 0 and ref_signal > 0 else math.nan
        rho = max(-1.0, min(1.0, rho)) if math.isfinite(rho) else rho
        rho_model = 1.0 if unbiased[e] else rho
        c2 = cosine_target ** 2
        if not math.isfinite(noise_scale) or not math.isfinite(rho_model) or rho_model <= cosine_target:
            needed = math.inf
        else:
            needed = noise_scale * c2 / (rho_model ** 2 - c2)
        curve = []
        own = flat[e].double()
        for m in batch_sizes(n):
            groups = n // m
            sums = own[: groups * m].reshape(groups, m, -1).sum(1)
            ref_groups = ref_flat[: groups * m].reshape(groups, m, -1).sum(1)
            others = (ref_sum[None] - ref_groups) / (n - m)
            measured = float(_cos(sums, others).mean())
            ref_cos = 1.0 / math.sqrt(1.0 + noise_scale_r / (n - m)) if math.isfinite(noise_scale_r) else math.nan
            curve.append((m, measured / ref_cos if ref_cos > 0 else math.nan))
        out.append(EstimatorStats(
            name=names[e], unbiased=bool(unbiased[e]), mean_norm=float(mean[e].norm()), trace_cov=float(trace[e]),
            noise_to_signal=nsr, noise_scale=noise_scale, cosine=float(cos.mean()),
            cosine_sd=float(cos.std()) if B > 1 else math.nan, mean_cosine=1.0 if e == r else rho,
            relative_bias=0.0 if e == r else relative_bias, bias_p=bias_p, episodes_to_cosine=needed,
            reference=e == r, curve=curve, noise_to_signal_floor=float(trace[e] / mean[e].pow(2).sum())))
    tested = [s for s in out if not s.reference]
    for s, adjusted in zip(tested, holm([s.bias_p for s in tested])):
        s.bias_p_holm = adjusted
    return out
