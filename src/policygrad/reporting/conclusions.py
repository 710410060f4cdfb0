"""The "Conclusion" paragraph at the top of a report, in plain words and generated from its statistics
(:class:`policygrad.reporting.statistics.Comparison` rows, already Holm-corrected): what to use, what
is established and what is not, how many seeds would settle the rest. It states nothing the report's
own tables do not: a value is "better" only where the primary test says so after Holm, and where
the sensitivity test disagrees it says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from policygrad.reporting.choices import MIN_SEEDS, OTHER_TEST, TEST_NAMES
from policygrad.reporting.statistics import Comparison


def _names(labels: Sequence[str], conjunction: str = "and") -> str:
    labels = list(labels)
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + f" {conjunction} " + labels[-1]


def _seeds_sentence(rows: Sequence[Comparison], have: int) -> str:
    """How many seeds the declared minimum effect needs under this family's Holm correction."""
    first = rows[0]
    d = f"{first.min_effect:g} standard deviation{'s' if first.min_effect != 1 else ''}"
    if first.seeds_needed is None:
        return f"No practical number of seeds would detect a difference of {d}."
    if have >= first.seeds_needed:
        return (f"With {have} seeds per value this study had {first.power:.0%} power or more to detect a difference "
                f"of {d} (its declared minimum effect).")
    return (f"To detect a difference of {d} (the declared minimum effect) with {first.power:.0%} power under this "
            f"Holm correction takes {first.seeds_needed} seeds per value; this study has {have}, so about "
            f"{first.seeds_needed - have} more per value would settle what is open.")


def _disagreements(rows: Sequence[Comparison], name: Callable[[Comparison], str]) -> str:
    split = [name(c) for c in rows if c.tests_disagree]
    if not split:
        return ""
    other = TEST_NAMES[OTHER_TEST[rows[0].test]]
    return f" {other}'s test, the sensitivity check, disagrees on {_names(split)}: treat those as not settled."


def against_baseline(rows: Sequence[Comparison], means: dict[str, float], named: Callable[[str], str],
                     baseline: str, current: bool, score: str = "final evaluation") -> str:
    """A study's conclusion from its comparisons against the baseline (``rows``, one score; ``named``
    spells a value: ``learning_rate = 0.001``). ``current``: the baseline is the value a run uses today
    (a named study's preset value)."""
    what = f"the current value, {named(baseline)}" if current else f"the baseline, {named(baseline)}"
    if not rows:
        return f"Only one value has runs: there is nothing to compare. {named(baseline)} is all that ran."
    test = TEST_NAMES[rows[0].test]
    judged = [c for c in rows if c.verdict_possible]
    no_verdict = [named(c.value) for c in rows if not c.verdict_possible]
    better = sorted((c for c in judged if c.significant and c.difference > 0), key=lambda c: -means[c.value])
    worse = [named(c.value) for c in judged if c.significant and c.difference < 0]
    open_ = [named(c.value) for c in judged if not c.significant]
    parts = []
    if better:
        best = better[0].value
        others = [named(c.value) for c in better[1:]]
        parts.append(f"Use {named(best)}: its {score} is higher than that of {what} "
                     f"(mean {means[best]:.4g} against {means[baseline]:.4g}; {test}'s test, Holm-corrected)."
                     + (f" {_names(others)} also beat{'s' if len(others) == 1 else ''} it; this study does not "
                        f"test them against each other." if others else ""))
    elif judged:
        parts.append(f"Keep {what}: no value's {score} is higher by {test}'s test after Holm correction.")
    if worse:
        parts.append(f"Established: {_names(worse)} {'is' if len(worse) == 1 else 'are'} worse than "
                     f"{named(baseline)}.")
    if open_:
        parts.append(f"Not established: {_names(open_)} cannot be told apart from {named(baseline)} at these "
                     f"seeds, which is not evidence that they are equal.")
    if no_verdict:
        parts.append(f"No verdict is possible for {_names(no_verdict)}: fewer than {MIN_SEEDS} finished seeds.")
    text = " ".join(parts) + _disagreements(rows, lambda c: named(c.value))
    if open_ or not judged:
        have = min((min(c.n, c.n_baseline) for c in rows), default=0)
        text += " " + _seeds_sentence(rows, have)
    return text


def speed(rows: Sequence[Comparison], named: Callable[[str], str], baseline: str) -> str:
    """One sentence on the area under the curve against the baseline (``rows``: that score's
    comparisons): which values learn faster or more slowly, by the primary test after Holm."""
    judged = [c for c in rows if c.verdict_possible]
    if not judged:
        return ""
    test = TEST_NAMES[rows[0].test]
    faster = [named(c.value) for c in judged if c.significant and c.difference > 0]
    slower = [named(c.value) for c in judged if c.significant and c.difference < 0]
    parts = [f"{_names(group)} learn{'s' if len(group) == 1 else ''} {how} than {named(baseline)}"
             for group, how in ((faster, "faster"), (slower, "more slowly")) if group]
    if not parts:
        text = (f"By the area under the curve (how fast each learns), no value differs from {named(baseline)} after "
                f"Holm correction.")
    else:
        text = (f"By the area under the curve (how fast each learns): {'; '.join(parts)} ({test}'s test, "
                f"Holm-corrected).")
    return text + _disagreements(rows, lambda c: named(c.value))


def fastest(rows: Sequence[Comparison], iqms: dict[str, float]) -> str:
    """One sentence on a comparison's area under the curve (``rows``: that score's pairs): the method
    with the highest IQM and the methods the primary test does not separate from it."""
    counts = {}
    for c in rows:
        counts[c.value], counts[c.baseline] = c.n, c.n_baseline
    judged = sorted((m for m, n in counts.items() if n >= MIN_SEEDS), key=lambda m: -iqms[m])
    if len(judged) < 2:
        return ""
    best, test = judged[0], TEST_NAMES[rows[0].test]
    pair = {frozenset((c.value, c.baseline)): c for c in rows}
    tied = [m for m in judged[1:] if not pair[frozenset((best, m))].significant]
    if not tied:
        return (f"By the area under the curve (how fast each learns), {best} is first, above every other method "
                f"({test}'s test, Holm-corrected).")
    return (f"By the area under the curve (how fast each learns), {best} has the highest IQM, not separated from "
            f"{_names(tied)} by {test}'s test after Holm correction.")


def among_methods(rows: Sequence[Comparison], iqms: dict[str, float], score: str = "final evaluation",
                  what: str = "method") -> str:
    """A comparison's conclusion from every pair (``rows``, from ``pairwise``), best by IQM first."""
    if not rows:
        return f"Only one {what} has runs: there is nothing to compare."
    test = TEST_NAMES[rows[0].test]
    counts = {}
    for c in rows:
        counts[c.value], counts[c.baseline] = c.n, c.n_baseline
    judged = sorted((m for m, n in counts.items() if n >= MIN_SEEDS), key=lambda m: -iqms[m])
    no_verdict = [m for m, n in counts.items() if n < MIN_SEEDS]
    parts = []
    if judged:
        best = judged[0]
        pair = {frozenset((c.value, c.baseline)): c for c in rows}
        tied = [m for m in judged[1:] if not pair[frozenset((best, m))].significant]
        beaten = [m for m in judged[1:] if pair[frozenset((best, m))].significant]
        if tied:
            them = "it from them" if len(tied) > 1 else "the two"
            parts.append(f"Use {_names([best, *tied], 'or')}: {best} has the highest IQM of the {score}, but {test}'s "
                         f"test after Holm correction does not separate {them} (they share a letter in the "
                         f"grouping); which of them is best is not established.")
        else:
            parts.append(f"Use {best}: its {score} is higher than every other {what}'s ({test}'s test, "
                         f"Holm-corrected).")
        if beaten:
            parts.append(f"Established: {_names(beaten)} {'is' if len(beaten) == 1 else 'are'} worse than {best}.")
    if no_verdict:
        parts.append(f"No verdict is possible for {_names(no_verdict)}: fewer than {MIN_SEEDS} finished seeds.")
    text = " ".join(parts) + _disagreements(rows, lambda c: f"{c.value} vs {c.baseline}")
    if not judged or any(not c.significant for c in rows if c.verdict_possible):
        have = min((n for n in counts.values() if n >= MIN_SEEDS), default=min(counts.values(), default=0))
        text += " " + _seeds_sentence(rows, have)
    return text


def finite_means(means: dict[str, float]) -> dict[str, float]:
    """NaN means (no finished run) as minus infinity, so they sort last."""
    return {k: v if math.isfinite(v) else -math.inf for k, v in means.items()}
