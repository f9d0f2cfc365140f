"""One plotting style for every notebook: readable sizes, dB on SNR axes, shared colours."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from pvq._validation import (check_bits, check_int, check_positive, check_real, check_weights,
                             to_numpy)

#: the colour of each method in every figure of the course
COLORS = {"quantization": "#1f77b4", "pruning": "#d62728", "both": "#2ca02c", "data": "#7f7f7f"}


def _check_axes(ax: object, name: str) -> None:
    if not isinstance(ax, mpl.axes.Axes):
        raise TypeError(f"{name} must be a matplotlib Axes, got {type(ax).__name__}")


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
    _check_axes(ax, "ax")
    check_weights(w)
    if levels is not None:
        check_weights(levels, "levels")
    if threshold is not None:
        threshold = check_real(threshold, "threshold")
        if threshold < 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}")
    bins = check_int(bins, "bins", 1)
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


def error_density(
    axes: tuple[plt.Axes, plt.Axes],
    dist: object,
    bits: int,
    scale: float,
    sparsity: float,
    *,
    symmetric: bool = False,
    x: np.ndarray | None = None,
) -> None:
    """Where each method loses signal, for a frozen ``scipy.stats`` distribution.

    Top: the density p(x) with the b-bit grid at ``scale`` and the band ``|x| < tau`` that pruning
    to ``sparsity`` zeroes. Bottom: the squared error weighted by the density,
    ``(x - Q(x))^2 p(x)`` and ``x^2 p(x) 1{|x| < tau}``; the area under each curve is that
    method's mean squared error. ``x`` defaults to the central ``1 - 1e-4`` of the mass.
    """
    from pvq.prune import magnitude_threshold
    from pvq.quantize import quantization_grid, quantize

    if isinstance(axes, str) or not hasattr(axes, "__len__") or len(axes) != 2:
        raise TypeError(f"axes must be a pair (top, bottom) of matplotlib Axes, got {axes!r}")
    for axis, name in zip(axes, ("axes[0]", "axes[1]")):
        _check_axes(axis, name)
    if not all(callable(getattr(dist, method, None)) for method in ("pdf", "ppf", "isf")):
        raise TypeError(f"dist must be a frozen scipy.stats distribution, got {type(dist).__name__}")
    bits, scale = check_bits(bits), check_positive(scale, "scale")
    if x is not None:
        check_weights(x, "x")
        x = to_numpy(x)
        if x.ndim != 1 or x.size < 2 or not np.all(np.diff(x) > 0):
            raise ValueError("x must be a 1-D increasing grid of at least 2 points")
    if x is None:
        x = np.linspace(float(dist.ppf(5e-5)), float(dist.isf(5e-5)), 4001)
    density, tau = dist.pdf(x), magnitude_threshold(dist, sparsity)
    top, bottom = axes
    top.plot(x, density, color=COLORS["data"], label="density p(x)")
    levels = quantization_grid(bits, symmetric=symmetric) * scale
    shown = levels[(levels >= x[0]) & (levels <= x[-1])]
    top.vlines(shown, 0.0, float(density.max()) * 1.05, color=COLORS["quantization"], lw=0.7,
               label=f"{bits}-bit grid")
    top.axvspan(-tau, tau, color=COLORS["pruning"], alpha=0.15,
                label=f"pruned {sparsity:.0%}: |x| < {tau:.2f}")
    top.set_ylabel("density")
    top.legend(loc="upper left", fontsize="small")
    pruned = np.where(np.abs(x) < tau, x**2 * density, 0.0)
    bottom.fill_between(x, pruned, color=COLORS["pruning"], alpha=0.4, label="pruning")
    bottom.fill_between(x, (x - quantize(x, bits, scale, symmetric=symmetric)) ** 2 * density,
                        color=COLORS["quantization"], alpha=0.8, label="quantization")
    bottom.set_xlabel("weight value x")
    bottom.set_ylabel("squared error × p(x)")
    bottom.legend(loc="upper right")
