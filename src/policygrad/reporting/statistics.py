"""Statistics over seeds for a study (issue 13, item 4), every quantile and test from scipy.

Per value of a study (one point of its grid): the mean and the interquartile mean (IQM, the mean of
the middle half, ``scipy.stats.trim_mean(x, 0.25)``) of the seeds' scores, each with a 95% bootstrap
confidence interval (``scipy.stats.bootstrap``, BCa, a fixed seed so that a report is the same every
time it is written). Against the baseline value: Welch's t-test and the Mann-Whitney U test, each
Holm-corrected across the comparisons; Hedges' g; the probability of improvement
P(X > Y) + 0.5 P(X = Y) over all pairs of seeds; and how many seeds per value a two-sided two-sample
t-test needs to detect a difference of the observed size with 80% power at alpha 0.05 (solved with
the noncentral t distribution, ``scipy.stats.nct``, and ``scipy.optimize.brentq``).

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

import numpy as np
from scipy import optimize, special, stats

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.8
N_RESAMPLES = 9_999
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


def bootstrap_ci(values: Sequence[float] | np.ndarray, statistic: Callable[..., object] = _mean,
                 confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                 seed: int = RANDOM_SEED) -> tuple[float, float]:
    """The ``confidence`` bootstrap interval of ``statistic`` (called as ``statistic(x, axis=...)``) over
    ``values``, by ``scipy.stats.bootstrap`` (BCa; the percentile method where BCa is undefined).

    Fewer than two values: ``(nan, nan)``, there is no spread to resample. All values equal: the point
    ``(v, v)``, every resample gives ``v``."""
    x = _scores(values)
    if len(x) < 2:
        return math.nan, math.nan
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate BCa: the NaN is caught below, and percentile used
            result = stats.bootstrap((x,), statistic, n_resamples=n_resamples, vectorized=True,
                                     confidence_level=confidence, method=method,
                                     random_state=np.random.default_rng(seed))
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return math.nan, math.nan


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
        mean_ci=bootstrap_ci(x, _mean, confidence, n_resamples, seed),
        iqm=float(iqm(x)), iqm_ci=bootstrap_ci(x, iqm, confidence, n_resamples, seed),
        std=float(np.std(x, ddof=1)) if len(x) > 1 else math.nan, notes=tuple(notes))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the i-th smallest of m p-values becomes
    max over j <= i of min(1, (m - j + 1) p_(j)). NaN p-values (tests that could not run) stay NaN
    and do not count in m."""
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
    return "p n/a" if not math.isfinite(p) else ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")


def compare(groups: Mapping[str, Sequence[float] | np.ndarray], baseline: str | None = None,
            alpha: float = ALPHA, power: float = POWER) -> list[Comparison]:
    """Every value of ``groups`` (label -> finished seeds' scores, in grid order) against ``baseline``
    (default: the first), Holm-corrected across these comparisons, one family per test."""
    if not groups:
        return []
    labels = list(groups)
    baseline = labels[0] if baseline is None else baseline
    if baseline not in groups:
        raise ValueError(f"baseline {baseline!r} is not one of the values: {', '.join(labels)}")
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
