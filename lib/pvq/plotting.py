"""One plotting style for every notebook: readable sizes, dB on SNR axes, shared colours."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

#: the colour of each method in every figure of the course
COLORS = {"quantization": "#1f77b4", "pruning": "#d62728", "both": "#2ca02c", "data": "#7f7f7f"}


def use_course_style() -> None:
    """Figure defaults for the notebooks (PNG output, so nbval compares no pixels)."""
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 3.6),
            "figure.dpi": 90,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "font.size": 10,
        }
    )


def weight_histogram(
    ax: plt.Axes,
    w: np.ndarray,
    *,
    levels: np.ndarray | None = None,
    threshold: float | None = None,
    bins: int = 120,
) -> None:
    """Histogram of weights with quantization levels (vertical ticks) and a pruning band."""
    ax.hist(np.ravel(w), bins=bins, density=True, color=COLORS["data"], alpha=0.6,
            label="weights")
    if levels is not None:
        for i, level in enumerate(np.ravel(levels)):
            ax.axvline(level, color=COLORS["quantization"], lw=0.8,
                       label="quantization levels" if i == 0 else None)
    if threshold is not None:
        ax.axvspan(-threshold, threshold, color=COLORS["pruning"], alpha=0.15,
                   label=f"pruned band |w| < {threshold:.3g}")
    ax.set_xlabel("weight value")
    ax.set_ylabel("density")
    ax.legend(loc="upper right")
