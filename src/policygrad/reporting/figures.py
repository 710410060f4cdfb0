"""Figures: matplotlib set up once (the Agg backend: no display needed) and figures saved so that the
same data gives the same file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: matplotlib is slow to load)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: str | Path) -> Path:
    """Save ``fig`` to ``out`` (PNG, or SVG / PDF by its suffix) and close it. SVGs come out the same for
    the same data (no date; element ids salted by the file name, so several SVGs inlined in one page
    never share an id)."""
    import matplotlib

    plt = pyplot()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    vector = out.suffix.lower() in (".svg", ".pdf")
    with matplotlib.rc_context({"svg.hashsalt": out.stem}):
        fig.savefig(out, dpi=120, metadata={"Date": None} if vector else None)
    plt.close(fig)
    return out


def no_data(ax: Any, text: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
