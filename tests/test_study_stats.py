"""policygrad.reporting.statistics against values computed by hand or directly by scipy on fixed data, and its
degenerate cases (one seed, zero variance, failed runs, no difference)."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from policygrad.reporting import statistics as st

X = [1.0, 2.0, 3.0, 4.0, 5.0]
Y = [3.0, 4.0, 5.0, 6.0, 7.0]


def test_summary_is_scipys_bootstrap_of_the_mean_and_the_iqm():
    scores = [10.0, 12.0, 9.0, 30.0, 11.0, 14.0]
    s = st.summarize(scores, failed=2)
    assert s.n == 6 and s.failed == 2 and "2 failed run(s) left out" in s.notes
    assert s.mean == pytest.approx(np.mean(scores))
    assert s.std == pytest.approx(np.std(scores, ddof=1))
    # IQM of 6 values: a quarter (int(1.5) = 1) cut from each end: mean of 10, 11, 12, 14
    assert s.iqm == pytest.approx(11.75) == stats.trim_mean(scores, 0.25)
    for statistic, interval in ((np.mean, s.mean_ci), (lambda x, axis: stats.trim_mean(x, 0.25, axis=axis), s.iqm_ci)):
        direct = stats.bootstrap((np.array(scores),), statistic, n_resamples=st.N_RESAMPLES, vectorized=True,
                                 confidence_level=0.95, method="BCa", random_state=np.random.default_rng(0))
        assert interval == pytest.approx((direct.confidence_interval.low, direct.confidence_interval.high))
    assert s.mean_ci[0] < s.mean < s.mean_ci[1]
    assert st.summarize(scores, failed=2) == s  # a fixed seed: the same report every time


def test_summary_degenerate_cases():
    one = st.summarize([7.0])
    assert one.n == 1 and one.mean == 7.0 and one.iqm == 7.0
    assert all(math.isnan(v) for v in (*one.mean_ci, *one.iqm_ci, one.std))
    assert "one seed: no confidence interval" in one.notes

    flat = st.summarize([500.0] * 4)  # CartPole's ceiling on every seed: the interval is the point
    assert flat.mean_ci == (500.0, 500.0) and flat.iqm_ci == (500.0, 500.0) and flat.std == 0.0
    assert any("same" in n for n in flat.notes)

    none = st.summarize([], failed=3)
    assert none.n == 0 and none.failed == 3 and math.isnan(none.mean) and "no finished run" in none.notes

    with pytest.raises(ValueError, match="finite"):
        st.summarize([1.0, float("nan")])


def test_holm_step_down_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept monotone: 0.06
    assert st.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert st.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = st.holm([0.02, float("nan"), 0.01])  # a test that could not run is not in the family
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    assert st.holm([]) == []


def test_hedges_g_by_hand():
    # means 3 and 5, variances 2.5 and 2.5: pooled sd sqrt(2.5); d = -2 / sqrt(2.5); df = 8
    d = -2 / math.sqrt(2.5)
    correction = math.gamma(4) / (math.sqrt(4) * math.gamma(3.5))
    assert st.hedges_g(X, Y) == pytest.approx(d * correction)
    assert st.hedges_g(X, Y) == pytest.approx(d * (1 - 3 / (4 * 8 - 1)), rel=1e-3)  # the usual approximation
    assert math.isnan(st.hedges_g([1.0, 1.0], [1.0, 1.0]))  # no spread
    assert math.isnan(st.hedges_g([1.0], [2.0]))  # df = 0


def test_probability_of_improvement():
    # pairs: 1 vs 2, 2: 0 + 0; 2 vs 2, 2: 0.5 + 0.5; 3 vs 2, 2: 1 + 1 -> 3 / 6
    assert st.probability_of_improvement([1.0, 2.0, 3.0], [2.0, 2.0]) == pytest.approx(0.5)
    assert st.probability_of_improvement(Y, X) == pytest.approx(
        stats.mannwhitneyu(Y, X).statistic / (len(X) * len(Y)))
    assert st.probability_of_improvement([10.0], [1.0, 2.0]) == 1.0


def test_power_and_seeds_needed_match_the_noncentral_t():
    def direct_power(d, n):
        df, nc = 2 * n - 2, d * math.sqrt(n / 2)
        c = stats.t.ppf(0.975, df)
        return stats.nct.sf(c, df, nc) + stats.nct.cdf(-c, df, nc)

    assert st.t_test_power(0.5, 20) == pytest.approx(direct_power(0.5, 20))
    assert st.t_test_power(0.0, 10) == pytest.approx(0.05)  # no effect: the test rejects at its alpha
    # Cohen's table (two-sided, alpha 0.05, 80% power): 26 per group for d = 0.8, 64 for 0.5, 394 for 0.2
    for d, n in ((0.8, 26), (0.5, 64), (0.2, 394), (-0.5, 64)):
        assert st.seeds_needed(d) == n
        assert direct_power(abs(d), n) >= 0.8 > direct_power(abs(d), n - 1)
    assert st.seeds_needed(5.0) == 3 and st.seeds_needed(40.0) == 2  # huge effects: no NaN from nct's tail
    assert st.seeds_needed(0.0) is None and st.seeds_needed(float("nan")) is None
    assert st.seeds_needed(1e-4) is None  # beyond MAX_SEEDS


def test_compare_against_scipy_with_holm():
    groups = {"a": X, "b": Y, "c": [1.5, 2.5, 3.0, 4.5, 6.0]}
    rows = st.compare(groups)
    assert [r.value for r in rows] == ["b", "c"] and all(r.baseline == "a" for r in rows)
    welch = [stats.ttest_ind(groups[v], X, equal_var=False) for v in ("b", "c")]
    mw = [stats.mannwhitneyu(groups[v], X, alternative="two-sided") for v in ("b", "c")]
    for r, w, m in zip(rows, welch, mw):
        assert r.welch_t == pytest.approx(w.statistic) and r.welch_p == pytest.approx(w.pvalue)
        assert r.mannwhitney_u == pytest.approx(m.statistic) and r.mannwhitney_p == pytest.approx(m.pvalue)
        assert r.hedges_g == pytest.approx(st.hedges_g(groups[r.value], X))
        # power is for the declared minimum effect (1 SD by default) under Holm across the 2 comparisons,
        # not for the observed g
        assert r.seeds_needed == st.seeds_needed(1.0, test="mannwhitney", comparisons=2)
    assert [r.welch_p_holm for r in rows] == pytest.approx(st.holm([w.pvalue for w in welch]))
    assert [r.mannwhitney_p_holm for r in rows] == pytest.approx(st.holm([m.pvalue for m in mw]))
    # y = 3: 2 wins + 1 tie; 4: 3 + 1; 5: 4 + 1; 6: 5; 7: 5 -> (19 + 3 * 0.5) / 25
    assert rows[0].difference == pytest.approx(2.0) and rows[0].prob_improvement == pytest.approx(0.82)

    # not separated by the primary test (Mann-Whitney) after Holm, and how many seeds 1 SD needs
    b = rows[0]
    assert not b.significant and b.test == "mannwhitney" and b.p_holm == b.mannwhitney_p_holm
    verdict = b.verdict()
    assert verdict.startswith("not distinguishable from the baseline at 0.05 after Holm correction")
    assert (f"detecting a difference of 1 standard deviation with 80% power needs {b.seeds_needed} seeds per value "
            f"under this Holm correction; with 5 seeds the power is") in verdict

    other_base = st.compare(groups, baseline="b")
    assert [r.value for r in other_base] == ["a", "c"]
    with pytest.raises(ValueError, match="baseline 'z'"):
        st.compare(groups, baseline="z")


def test_a_clear_difference_is_significant():
    rows = st.compare({"low": [10.0, 11.0, 9.0, 10.5, 9.5], "high": [50.0, 52.0, 49.0, 51.0, 48.0]})
    assert rows[0].significant and rows[0].prob_improvement == 1.0
    assert rows[0].verdict().startswith("significantly higher than the baseline at 0.05 after Holm correction")
    # 3 seeds each: Mann-Whitney's smallest possible p is 0.1: never significant, and the power says so
    three = st.compare({"low": [10.0, 11.0, 9.0], "high": [50.0, 52.0, 49.0]})[0]
    assert not three.significant and three.power_now == 0.0 and st.smallest_mannwhitney_p(3, 3) == pytest.approx(0.1)
    assert st.compare({"low": [10.0, 11.0, 9.0], "high": [50.0, 52.0, 49.0]}, test="welch")[0].significant


def test_compare_degenerate_cases():
    rows = {r.value: r for r in st.compare({
        "base": [100.0, 120.0, 110.0],
        "one_seed": [200.0],  # no t-test; Mann-Whitney still runs
        "same": [100.0, 120.0, 110.0],  # no difference: no number of seeds would detect it
        "none": [],  # every run failed
    })}
    one = rows["one_seed"]
    assert math.isnan(one.welch_p) and math.isnan(one.welch_p_holm) and math.isfinite(one.mannwhitney_p)
    assert one.verdict().startswith("no verdict possible: 1 and 3 finished seeds, fewer than the 3 per value")
    same = rows["same"]
    assert same.difference == 0 and same.hedges_g == 0 and not same.significant
    assert same.verdict().startswith("not distinguishable from the baseline")
    assert rows["none"].n == 0 and rows["none"].verdict().startswith("no test")
    # Holm's family holds only the tests that ran: "same" alone for Welch
    assert same.welch_p_holm == pytest.approx(same.welch_p)

    flat = st.compare({"a": [500.0] * 3, "b": [200.0] * 3})[0]  # zero variance in both: no t-test
    assert math.isnan(flat.welch_p) and math.isnan(flat.hedges_g)
    assert math.isfinite(flat.mannwhitney_p) and flat.prob_improvement == 0.0  # the rank test still runs
    flat_welch = st.compare({"a": [500.0] * 3, "b": [200.0] * 3}, test="welch")[0]
    assert "zero variance" in flat_welch.verdict() and flat_welch.verdict().startswith("no verdict")

    half_flat = st.compare({"a": [500.0] * 3, "b": [200.0, 250.0, 300.0]})[0]  # one constant group: fine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's note on the constant group's moments
        direct = stats.ttest_ind([200.0, 250.0, 300.0], [500.0] * 3, equal_var=False)
    assert half_flat.welch_p == pytest.approx(direct.pvalue) and half_flat.welch_p < 0.05


def test_hedges_g_is_not_reported_when_a_value_has_no_spread():
    # 500 on every seed against three seeds a hair apart: the pooled deviation is the hair, g would be ~200
    half_flat = st.compare({"a": [500.0] * 3, "b": [499.0, 499.01, 499.02]}, test="welch")[0]
    assert math.isnan(half_flat.hedges_g) and math.isnan(st.hedges_g([499.0, 499.01, 499.02], [500.0] * 3))
    assert "no standardized effect size" in "; ".join(half_flat.notes)
    assert math.isfinite(st.hedges_g([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]))


def test_power_and_seeds_needed_are_for_the_declared_effect_under_holm():
    # Holm's family of m tests: the smallest p must beat alpha / m, so the seeds grow with m
    one, four = st.seeds_needed(1.0), st.seeds_needed(1.0, comparisons=4)
    assert one == 17 and four > one
    assert st.t_test_power(1.0, four, 0.05 / 4) >= 0.8 > st.t_test_power(1.0, four - 1, 0.05 / 4)
    # Mann-Whitney: more seeds (efficiency 3/pi), and never fewer than its exact test can use at that level
    mw = st.seeds_needed(1.0, test="mannwhitney", comparisons=4)
    assert mw >= four and st.smallest_mannwhitney_p(mw, mw) < 0.05 / 4
    assert st.seeds_needed(10.0, test="mannwhitney", comparisons=10) == 6  # 5 vs 5: smallest p 0.0079 > 0.005
    # the same number whatever was observed: two comparisons, different observed effects, one answer
    rows = st.compare({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.5, 2.0, 3.0, 4.0], "c": [10.0, 20.0, 30.0, 41.0]},
                      min_effect=0.5)
    assert rows[0].seeds_needed == rows[1].seeds_needed == st.seeds_needed(0.5, test="mannwhitney", comparisons=2)
    assert rows[0].power_now == pytest.approx(st.power(0.5, 4, test="mannwhitney", comparisons=2))
    with pytest.raises(ValueError, match="test='t' is not a test: expected one of mannwhitney, welch"):
        st.compare({"a": [1.0], "b": [2.0]}, test="t")


def _old_ranks(groups, pairs):
    """The rule the letters replace: 1 + the number of methods significantly better."""
    better = {label: 0 for label in groups}
    for c in pairs:
        if c.significant:
            better[c.baseline if c.difference > 0 else c.value] += 1
    return {label: 1 + n for label, n in better.items()}


def test_letters_never_split_methods_the_test_does_not():
    # top clearly beats low; mid overlaps both: the old rank gave top 1, mid 1, low 2, splitting mid and low
    # (or mid and top) although no test separates them
    groups = {"top": [20.0, 21.0, 22.0, 23.0, 24.0, 25.0], "mid": [5.0, 9.0, 14.0, 18.0, 22.0, 25.0],
              "low": [4.0, 5.0, 6.0, 7.0, 9.0, 10.0]}
    pairs = st.pairwise(groups)
    sig = {frozenset((c.value, c.baseline)): c.significant for c in pairs}
    assert sig[frozenset(("top", "low"))] and not sig[frozenset(("top", "mid"))] and not sig[frozenset(("mid", "low"))]
    old = _old_ranks(groups, pairs)
    assert old["mid"] != old["low"]  # the old rule: a rank difference no test supports
    marks = dict((label, m) for m, label in st.letters(groups, pairs))
    assert marks == {"top": "a", "mid": "ab", "low": "b"}
    for c in pairs:  # share a letter exactly when not significant
        assert bool(set(marks[c.value]) & set(marks[c.baseline])) == (not c.significant)


def test_letters_below_the_minimum_seeds_give_no_verdict():
    groups = {"a": [10.0, 11.0, 12.0, 13.0, 14.0], "b": [1.0, 2.0, 3.0, 4.0, 5.0], "two": [100.0, 101.0]}
    pairs = st.pairwise(groups)
    marks = st.letters(groups, pairs)
    assert marks[-1] == ("", "two")  # the best IQM, but two seeds: no letter, listed last
    assert [c for c in pairs if "two" in (c.value, c.baseline) and c.significant] == []
    assert all(c.verdict().startswith("no verdict possible") for c in pairs if "two" in (c.value, c.baseline))
    # a random grid of groups: the letters agree with the tests, whatever the pattern
    rng = np.random.default_rng(3)
    for _ in range(20):
        groups = {f"m{i}": rng.normal(rng.uniform(0, 3), 1.0, 8).tolist() for i in range(5)}
        pairs = st.pairwise(groups, test="welch")
        marks = dict((label, m) for m, label in st.letters(groups, pairs))
        for c in pairs:
            assert bool(set(marks[c.value]) & set(marks[c.baseline])) == (not c.significant)
