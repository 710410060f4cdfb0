"""The statistics of every report (a study's, a comparison's across environments, a diagnosis's, the
learning-curve bands of ``policygrad plot``), every quantile and test from scipy.

- :func:`bootstrap_ci`: THE bootstrap, ``scipy.stats.bootstrap`` with a fixed seed (a report is the same
  every time it is written). BCa by default, the percentile method where BCa is undefined or asked
  for; one sample (leading axes a batch: one interval per point of a curve, the seeds resampled
  together) or strata (``stratified=True``: the seeds resampled within each environment, never across).
- :func:`holm`: Holm's step-down correction; NaN p-values (tests that could not run) stay NaN.
- Per value of a study (one point of its grid), :func:`summarize`: the mean and the interquartile mean
  (IQM, the mean of the middle half, ``scipy.stats.trim_mean(x, 0.25)``) of the seeds' scores, each
  with a 95% bootstrap confidence interval. :func:`mean_ci_band`: a curve's mean over seeds and its
  band.
- Against the baseline value (:func:`compare`) or between every pair (:func:`pairwise`): Welch's t-test
  and the Mann-Whitney U test, each Holm-corrected across the comparisons; Hedges' g; the probability
  of improvement P(X > Y) + 0.5 P(X = Y) over all pairs of seeds; and how many seeds per value a
  two-sided two-sample t-test needs to detect a difference of the observed size with 80% power at
  alpha 0.05 (solved with the noncentral t distribution, ``scipy.stats.nct``, and
  ``scipy.optimize.brentq``).

Scores are higher-is-better (returns). A failed run has no score: callers leave it out and pass the
count as ``failed``, which every summary carries. Degenerate cases are explicit, never a silent NaN
from deep inside scipy: one seed (no interval, no t-test), zero variance (a point interval; no t-test
when both groups are constant), no difference at all (no number of seeds detects it). Each result
says why in its ``notes``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from policygrad.core.errors import UserInputError
from policygrad.reporting.formatting import format_p

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.8
N_RESAMPLES = 9_999
# The learning-curve bands (``policygrad plot``, a study's curves): 2,000 percentile resamples per point,
# as before the one bootstrap, so that committed figures are made again the same.
CURVE_RESAMPLES = 2_000
RANDOM_SEED = 0  # the bootstrap's: the same scores give the same intervals, report after report
MAX_SEEDS = 1_000_000  # beyond this, "seeds needed" is reported as not estimable


def _scores(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError(f"scores must be finite (leave failed runs out and count them): got {x.tolist()}")
    return x


def iqm(values: Sequence[float] | np.ndarray, axis: int = -1) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50% (a quarter cut from each end, by ``trim_mean``)."""
    return stats.trim_mean(values, 0.25, axis=axis)


def _mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def _point(value: Any) -> Any:
    array = np.asarray(value, dtype=float)
    return float(array) if array.ndim == 0 else array


def bootstrap_ci(values: Any, statistic: Callable[..., Any] = _mean, *, stratified: bool = False,
                 method: str = "BCa", confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                 seed: int = RANDOM_SEED) -> tuple[Any, Any]:
    """The ``confidence`` bootstrap interval of ``statistic`` (called as ``statistic(x, axis=-1)``) by
    ``scipy.stats.bootstrap``, its random draws from ``seed``: the same values, the same interval.

    ``values``: one sample, along the last axis (leading axes are a batch: curves ``(points, seeds)``
    give one interval per point, whole seeds resampled); or, ``stratified``, a sequence of samples
    (strata: an environment's seeds), each resampled within itself and ``statistic`` taken over their
    concatenation (a stratum of one value is kept as it is in every resample). ``method``: ``BCa``
    (the percentile method where BCa is undefined) or ``percentile``.

    Floats for a scalar statistic, arrays for a vector one or a batch. No sample of two values: NaN,
    there is no spread to resample. All values equal: the point, every resample gives it."""
    strata = [np.asarray(s, dtype=float) for s in values] if stratified else [np.asarray(values, dtype=float)]
    pooled = np.concatenate(strata, axis=-1)
    if pooled.shape[-1] == 0:
        return math.nan, math.nan
    samples = [s for s in strata if s.shape[-1] >= 2]
    fixed = [s for s in strata if s.shape[-1] < 2]
    if not samples:
        nan = np.full(np.shape(statistic(pooled, axis=-1)), math.nan)
        return _point(nan), _point(nan)
    if np.ptp(pooled) == 0:  # every resample is the sample: the statistic of one of its values
        point = _point(statistic(pooled[..., :1], axis=-1))
        return point, point

    def pooled_statistic(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
        parts = list(xs)
        if fixed:
            shape = parts[0].shape[:-1]
            parts += [np.broadcast_to(f, (*shape, f.shape[-1])) for f in fixed]
        return np.asarray(statistic(np.concatenate(parts, axis=-1), axis=-1))

    # one sample: the statistic itself, on exactly the arrays scipy resamples
    resampled = statistic if len(strata) == 1 else pooled_statistic
    for attempt in ("BCa", "percentile") if method == "BCa" else (method,):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate BCa: its NaN is caught below, and percentile used
            result = stats.bootstrap(tuple(samples), resampled, n_resamples=n_resamples, vectorized=True,
                                     paired=False, axis=-1, confidence_level=confidence, method=attempt,
                                     random_state=np.random.default_rng(seed))
        low, high = np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)
        if np.all(np.isfinite(low)) and np.all(np.isfinite(high)):
            return _point(low), _point(high)
    nan = np.full(low.shape, math.nan)
    return _point(nan), _point(nan)


def mean_ci_band(curves: np.ndarray, confidence: float = CONFIDENCE, n_resamples: int = CURVE_RESAMPLES,
                 seed: int = RANDOM_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over rows (seeds) of ``curves`` ``(seeds, points)``, and the percentile-bootstrap
    ``confidence`` interval of that mean at each point (:func:`bootstrap_ci`, whole curves resampled).
    One row: the band is NaN (there is no spread to resample)."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    mean = curves.mean(axis=0)
    if curves.shape[0] < 2:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    low, high = bootstrap_ci(curves.T, np.mean, method="percentile", confidence=confidence,
                             n_resamples=n_resamples, seed=seed)
    return mean, np.broadcast_to(low, mean.shape), np.broadcast_to(high, mean.shape)


@dataclass(frozen=True)
class Summary:
    """One value's scores over seeds. ``n`` finished runs were summarised; ``failed`` were left out."""

    n: int
    failed: int
    mean: float
    mean_ci: tuple[float, float]
    iqm: float
    iqm_ci: tuple[float, float]
    std: float  # sample standard deviation (ddof 1); nan with fewer than two seeds
    notes: tuple[str, ...] = ()


def summarize(values: Sequence[float] | np.ndarray, failed: int = 0, confidence: float = CONFIDENCE,
              n_resamples: int = N_RESAMPLES, seed: int = RANDOM_SEED) -> Summary:
    """Mean and IQM of ``values`` (the finished seeds' scores) with bootstrap intervals."""
    x = _scores(values)
    notes = []
    if failed:
        notes.append(f"{failed} failed run(s) left out")
    if len(x) == 0:
        notes.append("no finished run")
        return Summary(0, failed, math.nan, (math.nan, math.nan), math.nan, (math.nan, math.nan), math.nan,
                       tuple(notes))
    if len(x) == 1:
        notes.append("one seed: no confidence interval")
    elif np.ptp(x) == 0:
        notes.append("every seed scored the same: the interval is that point")
    return Summary(
        n=len(x), failed=failed, mean=float(np.mean(x)),
        mean_ci=bootstrap_ci(x, _mean, confidence=confidence, n_resamples=n_resamples, seed=seed),
        iqm=float(iqm(x)), iqm_ci=bootstrap_ci(x, iqm, confidence=confidence, n_resamples=n_resamples, seed=seed),
        std=float(np.std(x, ddof=1)) if len(x) > 1 else math.nan, notes=tuple(notes))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the order given: the i-th smallest of m
    p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)). NaN p-values (tests that could not
    run) stay NaN and do not count in m."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(p), math.nan)
    valid = np.flatnonzero(np.isfinite(p))
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (len(valid) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def hedges_g(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """(mean(x) - mean(y)) / pooled standard deviation, times the exact small-sample correction
    J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2)), df = n_x + n_y - 2. NaN when undefined
    (df < 1, or no spread at all)."""
    a, b = _scores(x), _scores(y)
    df = len(a) + len(b) - 2
    if len(a) == 0 or len(b) == 0 or df < 1:
        return math.nan
    ss = (np.sum((a - a.mean()) ** 2) + np.sum((b - b.mean()) ** 2))
    pooled = math.sqrt(ss / df)
    if pooled == 0:
        return math.nan
    correction = math.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(df / 2)
    return float((a.mean() - b.mean()) / pooled * correction)


def probability_of_improvement(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """P(X > Y) + 0.5 P(X = Y) over every pair of a seed of ``x`` and a seed of ``y``."""
    a, b = _scores(x), _scores(y)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    diff = a[:, None] - b[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def t_test_power(effect_size: float, n: float, alpha: float = ALPHA) -> float:
    """Power of a two-sided two-sample t-test with ``n`` seeds per group against a true standardized
    difference ``effect_size``: P(|T| > t_crit) with T ~ noncentral t(df = 2n - 2, nc = d sqrt(n / 2))."""
    df = 2 * n - 2
    noncentrality = abs(effect_size) * math.sqrt(n / 2)
    critical = stats.t.ppf(1 - alpha / 2, df)
    lower = float(stats.nct.cdf(-critical, df, noncentrality))  # the wrong-sign tail: tiny once d > 0
    if not math.isfinite(lower):  # scipy's nct.cdf gives NaN far out in that tail (e.g. nc > 12 at df 4)
        lower = 0.0
    return float(stats.nct.sf(critical, df, noncentrality)) + lower


def seeds_needed(effect_size: float, power: float = POWER, alpha: float = ALPHA,
                 max_seeds: int = MAX_SEEDS) -> int | None:
    """Seeds per value for a two-sided two-sample t-test to reach ``power`` at ``alpha`` when the true
    standardized difference is ``effect_size``: the smallest whole n >= 2 with enough power. None when
    no number will do (a zero or undefined effect) or it exceeds ``max_seeds``."""
    d = abs(effect_size)
    if not math.isfinite(d) or d == 0:
        return None

    def shortfall(n: float) -> float:
        return t_test_power(d, n, alpha) - power

    if shortfall(2) >= 0:
        return 2
    low, high = 2, 4  # the bracket grows by doubling: nct is inaccurate far beyond the root (huge nc)
    while shortfall(high) < 0:
        if high >= max_seeds:
            return None
        low, high = high, min(2 * high, max_seeds)
    n = math.ceil(optimize.brentq(shortfall, low, high, xtol=1e-6))
    while shortfall(n) < 0:  # guards the root's rounding
        n += 1
    return n


@dataclass(frozen=True)
class Comparison:
    """One value's scores against the baseline's. ``*_holm`` p-values are adjusted across all the
    comparisons made together. NaN where a test cannot run; ``notes`` says why."""

    value: str
    baseline: str
    n: int
    n_baseline: int
    difference: float  # mean(value) - mean(baseline)
    welch_t: float
    welch_p: float
    welch_p_holm: float
    mannwhitney_u: float
    mannwhitney_p: float
    mannwhitney_p_holm: float
    hedges_g: float
    prob_improvement: float
    seeds_needed: int | None
    alpha: float = ALPHA
    power: float = POWER
    notes: tuple[str, ...] = ()

    @property
    def significant(self) -> bool:
        """Welch's t-test, Holm-corrected, below ``alpha``."""
        return math.isfinite(self.welch_p_holm) and self.welch_p_holm < self.alpha

    def verdict(self) -> str:
        """The comparison in one plain sentence or two."""
        if self.n == 0 or self.n_baseline == 0:
            return "no test: one of the two values has no finished run."
        a = f"{self.alpha:g}"
        mw = (f"Mann-Whitney {_p(self.mannwhitney_p)}, {_p(self.mannwhitney_p_holm)} after Holm"
              if math.isfinite(self.mannwhitney_p_holm) else "")
        if not math.isfinite(self.welch_p_holm):
            reason = "; ".join(self.notes) or "the t-test could not run"
            return f"no t-test ({reason})" + (f"; {mw}." if mw else ".")
        direction = "higher" if self.difference > 0 else "lower"
        welch = f"Welch {_p(self.welch_p)}, {_p(self.welch_p_holm)} after Holm; {mw}"
        if self.significant:
            return (f"significantly {direction} than the baseline at {a} after Holm correction "
                    f"(difference {self.difference:+.4g}; {welch}).")
        if self.seeds_needed is None:
            need = ("no number of seeds would detect a difference of this size" if self.difference == 0
                    or not math.isfinite(self.hedges_g) or self.hedges_g == 0
                    else f"more than {MAX_SEEDS:,} seeds per value would be needed to detect a difference "
                         "of this size")
        else:
            need = (f"about {self.seeds_needed} seeds per value would be needed to detect a difference of this "
                    f"size (Hedges' g = {self.hedges_g:.2f}) with {self.power:.0%} power")
        return (f"not significant at {a} after Holm correction (difference {self.difference:+.4g}; {welch}); "
                f"{need}.")


def _p(p: float) -> str:
    """``p = 0.042``, ``p < 0.001``, ``p n/a``: a p-value inside a sentence."""
    text = format_p(p)
    return f"p {text}" if text.startswith(("<", "n/a")) else f"p = {text}"


def compare(groups: Mapping[str, Sequence[float] | np.ndarray], baseline: str | None = None,
            alpha: float = ALPHA, power: float = POWER) -> list[Comparison]:
    """Every value of ``groups`` (label -> finished seeds' scores, in grid order) against ``baseline``
    (default: the first), Holm-corrected across these comparisons, one family per test."""
    if not groups:
        return []
    labels = list(groups)
    baseline = labels[0] if baseline is None else baseline
    if baseline not in groups:
        raise UserInputError(f"baseline {baseline!r} is not one of the values: {', '.join(labels)}")
    base = _scores(groups[baseline])
    rows: list[Comparison] = []
    for label in labels:
        if label == baseline:
            continue
        x = _scores(groups[label])
        notes: list[str] = []
        welch_t = welch_p = mw_u = mw_p = math.nan
        if len(x) and len(base):
            mw = stats.mannwhitneyu(x, base, alternative="two-sided")
            mw_u, mw_p = float(mw.statistic), float(mw.pvalue)
        if min(len(x), len(base)) < 2:
            notes.append(f"the t-test needs two finished seeds per value, here {len(x)} and {len(base)}")
        elif np.ptp(x) == 0 and np.ptp(base) == 0:
            notes.append("every seed scored the same within each value: zero variance, the t-test is undefined")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # near-constant data: scipy's precision note
                welch = stats.ttest_ind(x, base, equal_var=False)
            welch_t, welch_p = float(welch.statistic), float(welch.pvalue)
        g = hedges_g(x, base)
        difference = float(x.mean() - base.mean()) if len(x) and len(base) else math.nan
        if difference == 0:
            notes.append("the means are equal")
        rows.append(Comparison(
            value=label, baseline=baseline, n=len(x), n_baseline=len(base), difference=difference, welch_t=welch_t,
            welch_p=welch_p, welch_p_holm=math.nan, mannwhitney_u=mw_u, mannwhitney_p=mw_p,
            mannwhitney_p_holm=math.nan, hedges_g=g, prob_improvement=probability_of_improvement(x, base),
            seeds_needed=seeds_needed(g, power, alpha) if math.isfinite(g) else None, alpha=alpha, power=power,
            notes=tuple(notes)))
    welch_holm = holm([r.welch_p for r in rows])
    mw_holm = holm([r.mannwhitney_p for r in rows])
    return [dataclasses.replace(r, welch_p_holm=w, mannwhitney_p_holm=m) for r, w, m in zip(rows, welch_holm, mw_holm)]


def pairwise(groups: Mapping[str, Sequence[float] | np.ndarray], alpha: float = ALPHA,
             power: float = POWER) -> list[Comparison]:
    """Every pair of ``groups`` (label -> finished seeds' scores), the first of the pair in the order
    given against the later one, the p-values Holm-corrected across all the pairs (one family per
    test): the comparison of a comparison, where no method is the baseline."""
    labels = list(groups)
    rows: list[Comparison] = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            rows += compare({b: groups[b], a: groups[a]}, baseline=b, alpha=alpha, power=power)
    welch_holm = holm([r.welch_p for r in rows])
    mw_holm = holm([r.mannwhitney_p for r in rows])
    return [dataclasses.replace(r, welch_p_holm=w, mannwhitney_p_holm=m) for r, w, m in zip(rows, welch_holm, mw_holm)]


def ranking(groups: Mapping[str, Sequence[float] | np.ndarray], pairs: Sequence[Comparison]) -> list[tuple[int, str]]:
    """``(rank, label)`` best first, by IQM: a method's rank is 1 + the number of methods significantly
    better than it (``pairs``, from :func:`pairwise`), so methods no test separates share a rank."""
    better = {label: 0 for label in groups}
    for c in pairs:
        if c.significant:
            better[c.baseline if c.difference > 0 else c.value] += 1
    score = {label: float(iqm(_scores(x))) if len(x) else -math.inf for label, x in groups.items()}
    order = sorted(groups, key=lambda label: (better[label], -score[label]))
    return [(1 + better[label], label) for label in order]
