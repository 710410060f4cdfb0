"""Values and numbers as files and reports write them, one function per kind of text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def format_value(value: Any, short: bool = False) -> str:
    """A config value as people write it: ``64x64``, ``true``, ``0.001``.

    Exact by default (a float as ``repr`` writes it, which reads back as the same float): the text of
    run ids, ``results.csv`` cells and command lines. ``short``: a float to 6 significant digits
    (``f"{x:g}"``), for labels in figures and reports."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if short else repr(value)
    if isinstance(value, (list, tuple)):
        return "x".join(format_value(v, short) for v in value)
    return str(value)


def format_number(x: float, digits: int = 4) -> str:
    """``x`` to ``digits`` significant digits; ``n/a`` for NaN, ``inf`` / ``-inf`` for infinities."""
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def format_interval(interval: Sequence[float], digits: int = 4, missing: str = "n/a") -> str:
    """``[low, high]`` to ``digits`` significant digits; ``missing`` when either end is not finite."""
    low, high = interval
    if not (math.isfinite(low) and math.isfinite(high)):
        return missing
    return f"[{format_number(low, digits)}, {format_number(high, digits)}]"


def format_p(p: float) -> str:
    """A p-value: ``< 0.001``, ``0.042``, or ``n/a`` when the test could not run (NaN)."""
    if math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
