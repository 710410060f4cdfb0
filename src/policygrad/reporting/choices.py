"""The statistical choices a study declares (its spec's ``test`` and ``min_effect``), kept apart from
:mod:`policygrad.reporting.statistics` so that checking a spec does not import scipy.

The primary test is Mann-Whitney by default: RL scores over a few seeds pile up at a ceiling
(CartPole's 500), and a value whose seeds all score the same leaves Welch's t-test undefined or, with
two or three seeds, far from its nominal level; the rank test assumes no shape, handles ties and gives
exact p-values for small samples, whose smallest possible value says honestly what so few seeds can
establish. Welch's t-test is the sensitivity column (or the primary test, ``test="welch"``).
"""

from __future__ import annotations

from policygrad.core.errors import UserInputError

TESTS = ("mannwhitney", "welch")
DEFAULT_TEST = "mannwhitney"
OTHER_TEST = {"mannwhitney": "welch", "welch": "mannwhitney"}
TEST_NAMES = {"mannwhitney": "Mann-Whitney", "welch": "Welch"}
MIN_SEEDS = 3  # below this many finished seeds per value, no verdict is issued
DEFAULT_MIN_EFFECT = 1.0  # the smallest difference of interest, in standard deviations of the seeds' scores


def check_test(test: str) -> str:
    """``test`` if it is one of :data:`TESTS` (case, ``-`` and ``_`` ignored: ``Mann-Whitney``);
    UserInputError naming the allowed ones otherwise."""
    name = str(test).lower().replace("-", "").replace("_", "")
    if name not in TESTS:
        raise UserInputError(f"test={test!r} is not a test: expected one of {', '.join(TESTS)}")
    return name
