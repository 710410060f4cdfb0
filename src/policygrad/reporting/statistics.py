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
  and the Mann-Whitney U test, each Holm-corrected across the comparisons, one of them the declared
  primary test (:mod:`policygrad.reporting.choices`: Mann-Whitney by default) and the other a
  sensitivity check; no verdict below ``MIN_SEEDS`` finished seeds per value; Hedges' g (none where a
  value's seeds all scored the same); the probability of improvement P(X > Y) + 0.5 P(X = Y) over all
  pairs of seeds; and the power, and seeds per value needed for 80% power, to detect the declared
  smallest difference of interest (``min_effect`` standard deviations, not the observed difference)
  at alpha divided by the number of tests (what Holm asks of the smallest p), by the noncentral t
  distribution (``scipy.stats.nct``, ``scipy.optimize.brentq``), for Mann-Whitney through its
  efficiency 3/pi and its smallest attainable p. :func:`letters`: the compact letter display of a
  comparison of many methods (two methods share a letter exactly when the test does not separate them).

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
from policygrad.reporting.choices import (
    DEFAULT_MIN_EFFECT,
    DEFAULT_TEST,
    MIN_SEEDS,
    OTHER_TEST,
    TEST_NAMES,
    check_test,
)
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
MANNWHITNEY_EFFICIENCY = 3 / math.pi  # its asymptotic relative efficiency against the t-test (normal data)


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
    (df < 1, or no spread at all) and when either group's seeds all scored the same: its spread is then
    no estimate of the noise, and the pooled deviation of the other group alone gives effects such
    as g = 246 that mean nothing."""
    a, b = _scores(x), _scores(y)
    df = len(a) + len(b) - 2
    if len(a) == 0 or len(b) == 0 or df < 1:
        return math.nan
    if (len(a) > 1 and np.ptp(a) == 0) or (len(b) > 1 and np.ptp(b) == 0):
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


def rank_correlation(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Spearman's rho between ``x`` and ``y`` and its two-sided permutation p-value: exact (every
    pairing) up to 7 pairs, else from 9999 random pairings (seed 0). scipy's default p comes from a t
    approximation that says p = 0 for three pairs in the same order, where the exact p is 1/3."""
    x, y = _scores(x), _scores(y)
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"rank_correlation needs two samples of the same size >= 3, got {len(x)} and {len(y)}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # a constant sample: no order to correlate
        return math.nan, math.nan
    rho = float(stats.spearmanr(x, y).statistic)
    result = stats.permutation_test((x, y), lambda a, b: stats.spearmanr(a, b).statistic, vectorized=False,
                                    permutation_type="pairings", n_resamples=9999, alternative="two-sided",
                                    random_state=0)
    return rho, float(result.pvalue)


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


def smallest_mannwhitney_p(n: int, m: int) -> float:
    """The smallest two-sided p-value the exact Mann-Whitney test can give ``n`` against ``m`` seeds (no
    ties): 2 / C(n + m, n). 3 against 3: 0.1, so no difference can be significant at 0.05."""
    if n < 1 or m < 1:
        return 1.0
    return min(1.0, 2 / math.comb(n + m, n))


def power(effect_size: float, n: int, alpha: float = ALPHA, test: str = "welch", comparisons: int = 1) -> float:
    """The power of ``test`` with ``n`` seeds per group to detect a true standardized difference
    ``effect_size``, at the level a single comparison must reach under Holm's correction across
    ``comparisons`` tests (alpha / comparisons: what the smallest p of the family has to beat).
    Welch: the noncentral t (:func:`t_test_power`). Mann-Whitney: the t-test's power at n times the
    test's asymptotic relative efficiency 3/pi (normal scores), and 0 where its smallest possible p
    (:func:`smallest_mannwhitney_p`) cannot reach that level."""
    level = alpha / max(1, comparisons)
    if n < 2 or not math.isfinite(effect_size):
        return math.nan
    if test == "welch":
        return t_test_power(effect_size, n, level)
    if smallest_mannwhitney_p(n, n) >= level:
        return 0.0
    return t_test_power(effect_size, max(2.0, n * MANNWHITNEY_EFFICIENCY), level)


def seeds_needed(effect_size: float, power: float = POWER, alpha: float = ALPHA,
                 max_seeds: int = MAX_SEEDS, test: str = "welch", comparisons: int = 1) -> int | None:
    """Seeds per value for ``test`` (two-sided, two samples) to reach ``power`` when the true
    standardized difference is ``effect_size``, at alpha / ``comparisons`` (Holm's correction across
    that many tests: the level the smallest p must beat): the smallest whole n >= 2 with enough power.
    Mann-Whitney: the t-test's n divided by the asymptotic relative efficiency 3/pi, and at least the n
    whose exact test can reach that level at all. None when no number will do (a zero or undefined
    effect) or it exceeds ``max_seeds``."""
    d = abs(effect_size)
    if not math.isfinite(d) or d == 0:
        return None
    level = alpha / max(1, comparisons)

    def shortfall(n: float) -> float:
        return t_test_power(d, n, level) - power

    if shortfall(2) >= 0:
        n = 2
    else:
        low, high = 2, 4  # the bracket grows by doubling: nct is inaccurate far beyond the root (huge nc)
        while shortfall(high) < 0:
            if high >= max_seeds:
                return None
            low, high = high, min(2 * high, max_seeds)
        n = math.ceil(optimize.brentq(shortfall, low, high, xtol=1e-6))
        while shortfall(n) < 0:  # guards the root's rounding
            n += 1
    if test == "mannwhitney":
        n = max(2, math.ceil(n / MANNWHITNEY_EFFICIENCY))
        while smallest_mannwhitney_p(n, n) >= level or shortfall(n * MANNWHITNEY_EFFICIENCY) < 0:
            n += 1
    return n if n <= max_seeds else None


@dataclass(frozen=True)
class Comparison:
    """One value's scores against the baseline's. ``*_holm`` p-values are adjusted across all the
    comparisons made together (``comparisons`` of them). NaN where a test cannot run; ``notes`` says
    why. ``test`` is the declared primary test (its Holm p decides); the other is a sensitivity check.
    ``seeds_needed`` and ``power_now`` are for the declared ``min_effect`` (a standardized difference,
    in standard deviations of the seeds' scores), not for the observed one."""

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
    test: str = DEFAULT_TEST
    min_effect: float = DEFAULT_MIN_EFFECT
    min_seeds: int = MIN_SEEDS
    comparisons: int = 1
    power_now: float = math.nan  # the power of the test at these seeds for min_effect

    @property
    def p(self) -> float:
        return self.mannwhitney_p if self.test == "mannwhitney" else self.welch_p

    @property
    def p_holm(self) -> float:
        """The primary test's Holm-corrected p-value."""
        return self.mannwhitney_p_holm if self.test == "mannwhitney" else self.welch_p_holm

    @property
    def other_p_holm(self) -> float:
        """The sensitivity test's Holm-corrected p-value."""
        return self.welch_p_holm if self.test == "mannwhitney" else self.mannwhitney_p_holm

    @property
    def verdict_possible(self) -> bool:
        """At least ``min_seeds`` finished seeds on both sides: below that, no verdict is issued."""
        return min(self.n, self.n_baseline) >= self.min_seeds

    @property
    def significant(self) -> bool:
        """The primary test, Holm-corrected, below ``alpha`` (and enough seeds for a verdict)."""
        return self.verdict_possible and math.isfinite(self.p_holm) and self.p_holm < self.alpha

    @property
    def tests_disagree(self) -> bool:
        """The sensitivity test, Holm-corrected, on the other side of ``alpha`` from the primary one."""
        other = self.other_p_holm
        return (self.verdict_possible and math.isfinite(other) and math.isfinite(self.p_holm)
                and (other < self.alpha) != (self.p_holm < self.alpha))

    def verdict(self) -> str:
        """The comparison in one plain sentence or two."""
        if self.n == 0 or self.n_baseline == 0:
            return "no test: one of the two values has no finished run."
        a = f"{self.alpha:g}"
        primary, other = TEST_NAMES[self.test], TEST_NAMES[OTHER_TEST[self.test]]
        p_text = {"welch": (self.welch_p, self.welch_p_holm), "mannwhitney": (self.mannwhitney_p,
                                                                              self.mannwhitney_p_holm)}
        shown = "; ".join(f"{TEST_NAMES[t]} {_p(p_text[t][0])}, {_p(p_text[t][1])} after Holm"
                          for t in (self.test, OTHER_TEST[self.test]) if math.isfinite(p_text[t][1]))
        shown = f" ({shown})" if shown else ""
        if not self.verdict_possible:
            return (f"no verdict possible: {self.n} and {self.n_baseline} finished seeds, fewer than the "
                    f"{self.min_seeds} per value a verdict needs{shown}.")
        if not math.isfinite(self.p_holm):
            reason = "; ".join(self.notes) or f"the {primary} test could not run"
            return f"no verdict: the {primary} test could not run ({reason}){shown}."
        direction = "higher" if self.difference > 0 else "lower"
        disagree = (f" The {other} test disagrees: treat this as not settled." if self.tests_disagree else "")
        if self.significant:
            return (f"significantly {direction} than the baseline at {a} after Holm correction "
                    f"(difference {self.difference:+.4g}){shown}.{disagree}")
        return (f"not distinguishable from the baseline at {a} after Holm correction (difference "
                f"{self.difference:+.4g}){shown}; {self.power_text()}.{disagree}")

    def power_text(self) -> str:
        """How many seeds a difference of ``min_effect`` standard deviations needs, in words."""
        d = f"{self.min_effect:g} standard deviation{'s' if self.min_effect != 1 else ''}"
        if self.seeds_needed is None:
            return f"no practical number of seeds would detect a difference of {d}"
        now = (f"; with {min(self.n, self.n_baseline)} seeds the power is {self.power_now:.0%}"
               if math.isfinite(self.power_now) else "")
        return (f"detecting a difference of {d} with {self.power:.0%} power needs {self.seeds_needed} seeds per value "
                f"under this Holm correction{now}")


def _p(p: float) -> str:
    """``p = 0.042``, ``p < 0.001``, ``p n/a``: a p-value inside a sentence."""
    text = format_p(p)
    return f"p {text}" if text.startswith(("<", "n/a")) else f"p = {text}"


def compare(groups: Mapping[str, Sequence[float] | np.ndarray], baseline: str | None = None,
            alpha: float = ALPHA, power: float = POWER, *, test: str = DEFAULT_TEST,
            min_effect: float = DEFAULT_MIN_EFFECT, min_seeds: int = MIN_SEEDS) -> list[Comparison]:
    """Every value of ``groups`` (label -> finished seeds' scores, in grid order) against ``baseline``
    (default: the first), Holm-corrected across these comparisons, one family per test; ``test`` the
    primary one, ``min_effect`` the standardized difference the power and seeds needed are for."""
    if not groups:
        return []
    labels = list(groups)
    baseline = labels[0] if baseline is None else baseline
    if baseline not in groups:
        raise UserInputError(f"baseline {baseline!r} is not one of the values: {', '.join(labels)}")
    rows = [_one(label, groups[label], baseline, groups[baseline], alpha, power, check_test(test), min_effect,
                 min_seeds) for label in labels if label != baseline]
    return _corrected(rows)


def _one(label: str, values: Any, baseline: str, base_values: Any, alpha: float, power: float, test: str,
         min_effect: float, min_seeds: int) -> Comparison:
    x, base = _scores(values), _scores(base_values)
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
    if not math.isfinite(g) and min(len(x), len(base)) >= 2 and (np.ptp(x) == 0 or np.ptp(base) == 0):
        notes.append("a value whose seeds all scored the same: no standardized effect size")
    difference = float(x.mean() - base.mean()) if len(x) and len(base) else math.nan
    if difference == 0:
        notes.append("the means are equal")
    return Comparison(
        value=label, baseline=baseline, n=len(x), n_baseline=len(base), difference=difference, welch_t=welch_t,
        welch_p=welch_p, welch_p_holm=math.nan, mannwhitney_u=mw_u, mannwhitney_p=mw_p, mannwhitney_p_holm=math.nan,
        hedges_g=g, prob_improvement=probability_of_improvement(x, base), seeds_needed=None, alpha=alpha,
        power=power, notes=tuple(notes), test=test, min_effect=min_effect, min_seeds=min_seeds)


def _corrected(rows: list[Comparison]) -> list[Comparison]:
    """Holm across ``rows`` (one family per test), and the power and seeds needed for that family."""
    welch_holm = holm([r.welch_p for r in rows])
    mw_holm = holm([r.mannwhitney_p for r in rows])
    m = len(rows)
    out = []
    for r, w, u in zip(rows, welch_holm, mw_holm):
        out.append(dataclasses.replace(
            r, welch_p_holm=w, mannwhitney_p_holm=u, comparisons=m,
            seeds_needed=seeds_needed(r.min_effect, r.power, r.alpha, test=r.test, comparisons=m),
            power_now=power(r.min_effect, min(r.n, r.n_baseline), r.alpha, test=r.test, comparisons=m)))
    return out


def pairwise(groups: Mapping[str, Sequence[float] | np.ndarray], alpha: float = ALPHA,
             power: float = POWER, *, test: str = DEFAULT_TEST, min_effect: float = DEFAULT_MIN_EFFECT,
             min_seeds: int = MIN_SEEDS) -> list[Comparison]:
    """Every pair of ``groups`` (label -> finished seeds' scores), the first of the pair in the order
    given against the later one, the p-values Holm-corrected across all the pairs (one family per
    test): the comparison of a comparison, where no method is the baseline."""
    labels = list(groups)
    test = check_test(test)
    rows = [_one(a, groups[a], b, groups[b], alpha, power, test, min_effect, min_seeds)
            for i, a in enumerate(labels) for b in labels[i + 1:]]
    return _corrected(rows)


def letters(groups: Mapping[str, Sequence[float] | np.ndarray], pairs: Sequence[Comparison],
            min_seeds: int = MIN_SEEDS) -> list[tuple[str, str]]:
    """A compact letter display: ``(letters, label)`` best first by IQM; two methods share a letter
    exactly when the primary test (``pairs``, from :func:`pairwise`, Holm-corrected) does not separate
    them, so the grouping never splits what the test does not (Piepho's insert-absorb algorithm).
    Methods with fewer than ``min_seeds`` finished seeds get no letter (``""``): no verdict, last."""
    score = {label: float(iqm(_scores(x))) if len(x) else -math.inf for label, x in groups.items()}
    ranked = [label for label in sorted(groups, key=lambda label: -score[label])
              if len(_scores(groups[label])) >= min_seeds]
    columns: list[set[str]] = [set(ranked)] if ranked else []
    for c in pairs:
        if not c.significant or c.value not in ranked or c.baseline not in ranked:
            continue
        split: list[set[str]] = []
        for column in columns:
            if c.value in column and c.baseline in column:
                split += [column - {c.value}, column - {c.baseline}]
            else:
                split.append(column)
        columns = [col for i, col in enumerate(split)  # absorb: drop a column inside another one
                   if col and not any((col < other) or (col == other and j < i) for j, other in enumerate(split)
                                      if j != i)]
    columns.sort(key=lambda col: min(ranked.index(label) for label in col))
    names = "abcdefghijklmnopqrstuvwxyz"
    mark = {label: "".join(names[i % 26] for i, col in enumerate(columns) if label in col) for label in ranked}
    unranked = [label for label in sorted(groups, key=lambda label: -score[label]) if label not in mark]
    return [(mark[label], label) for label in ranked] + [("", label) for label in unranked]
