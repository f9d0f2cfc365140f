"""Second moments of a density over many intervals at once: vectorised adaptive Gauss-Legendre.

``pvq.theory`` needs ``int_a^b (x - c)^2 p(x) dx`` for every rounding cell of a grid, for hundreds
of candidate scales, for any density (kinks, finite support, power-law tails). Calling
``scipy.integrate.quad`` per cell would be too slow; here every interval is mapped to
``t in [0, 1]`` and integrated with one vectorised density call per refinement round:

- a finite interval: ``x = a (1 - t) + b t`` (exact near both ends once split at 0);
- a half-line ``[a, inf)``: ``x = a + d ((1 - t)^-4 - 1)`` (and its mirror for ``(-inf, b]``).
  With a power-law tail ``p ~ x^-(nu+1)`` the mapped integrand behaves like
  ``(1 - t)^(4 nu - 9)``: smooth enough for full accuracy when ``nu >= 2.5``, and still
  integrable (with a warning) down to ``nu = 2.25``; lighter tails are harmless.

Every interval is first split at 0. A piece is accepted when Gauss-Legendre on it and on its two
halves agree to ``rtol`` (relative to the piece, or to its share of its row's total); otherwise it
is halved. Kinks and steep tails are thus found by bisection.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.integrate import IntegrationWarning

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(8)
#: nodes and weights on [0, 1]
_NODES, _WEIGHTS = (_NODES + 1.0) / 2.0, _WEIGHTS / 2.0
#: the power m of the half-line map x = a + d ((1 - t)^-m - 1)
_TAIL_POWER = 4
_MAX_ROUNDS = 80
_SMALLEST_PIECE = 1e-12


def second_moments(
    pdf: Callable[[np.ndarray], np.ndarray],
    lows: np.ndarray,
    highs: np.ndarray,
    centres: np.ndarray,
    spread: float,
    rtol: float = 1e-11,
) -> np.ndarray:
    """``int_low^high (x - c)^2 pdf(x) dx`` for every entry of the broadcast arrays.

    ``lows <= highs`` elementwise, ends may be infinite. ``spread`` (> 0) is the length scale of
    the half-line maps. Intervals are split at 0, so that ``x`` near 0 keeps its
    relative precision in a wide cell. The absolute tolerance of a row (last axis) is ``rtol``
    times the row's running total, shared out by width, so tiny pieces next to large ones are not
    refined needlessly.
    """
    lows, highs, centres = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (lows, highs, centres))
    )
    shape, row_length = lows.shape, lows.shape[-1]
    lows, highs, centres = lows.ravel(), highs.ravel(), centres.ravel()
    nonempty = np.flatnonzero(highs > lows)
    straddling = nonempty[(lows[nonempty] < 0) & (highs[nonempty] > 0)]
    # the pieces: each interval up to 0 where it straddles 0, then the straddlers from 0 on
    owner = np.concatenate([nonempty, straddling])
    low = np.concatenate([lows[nonempty], np.zeros(straddling.size)])
    high = np.concatenate([np.where(lows < 0, np.minimum(highs, 0.0), highs)[nonempty],
                           highs[straddling]])
    start, stop = np.zeros(owner.size), np.ones(owner.size)
    result = np.zeros(lows.size)
    rows = np.arange(lows.size) // row_length
    row_tolerance = np.zeros(lows.size // row_length)
    for round_ in range(_MAX_ROUNDS):
        middle = (start + stop) / 2.0
        ends = low, high, centres[owner], spread
        whole = _gauss(pdf, *ends, start, stop)
        halves = _gauss(pdf, *ends, start, middle) + _gauss(pdf, *ends, middle, stop)
        estimate = np.bincount(rows[owner], halves, minlength=row_tolerance.size) + np.bincount(
            rows, result, minlength=row_tolerance.size)
        row_tolerance = np.maximum(row_tolerance, rtol * estimate)
        share = row_tolerance[rows[owner]] * (stop - start) / row_length
        done = np.abs(whole - halves) <= np.maximum(rtol * np.abs(halves), share)
        # give up on pieces at the resolution of t (or after the last round), and say so
        stuck = ~done & ((stop - start < _SMALLEST_PIECE) | (round_ == _MAX_ROUNDS - 1))
        if stuck.any():
            warnings.warn(f"{np.count_nonzero(stuck)} pieces did not reach rtol={rtol} (a "
                          "singular density or a tail heavier than x^-3.5?)", IntegrationWarning,
                          stacklevel=2)
            done |= stuck
        np.add.at(result, owner[done], halves[done])
        owner, low, high, start, middle, stop = (
            np.concatenate([v[~done], v[~done]]) for v in (owner, low, high, start, middle, stop)
        )
        if owner.size == 0:
            break
        half = owner.size // 2
        start[half:], stop[:half] = middle[half:], middle[:half]
    return result.reshape(shape)


def _gauss(
    pdf: Callable[[np.ndarray], np.ndarray],
    lows: np.ndarray,
    highs: np.ndarray,
    centres: np.ndarray,
    spread: float,
    start: np.ndarray,
    stop: np.ndarray,
) -> np.ndarray:
    """8-point Gauss-Legendre of the mapped integrand on ``[start, stop]`` for each piece."""
    width = (stop - start)[:, None]
    t = start[:, None] + width * _NODES[None, :]
    # 1 - t from the distance to 1 directly, exact near t = 1 where the half-line map is steep
    x, jacobian = _map(lows[:, None], highs[:, None], spread, t, (1.0 - start)[:, None] - width
                       * _NODES[None, :])
    integrand = (x - centres[:, None]) ** 2 * np.asarray(pdf(x)) * jacobian
    return (stop - start) * (integrand @ _WEIGHTS)


def _map(
    lows: np.ndarray, highs: np.ndarray, spread: float, t: np.ndarray, one_minus_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``x(t)`` and ``dx/dt`` for ``t in (0, 1)``: linear on finite intervals, algebraic on
    half-lines."""
    stretch = one_minus_t**-_TAIL_POWER - 1.0
    slope = _TAIL_POWER * spread * one_minus_t ** -(_TAIL_POWER + 1)
    finite = np.isfinite(lows) & np.isfinite(highs)
    upward = np.isfinite(lows) & ~finite
    safe_low = np.where(np.isfinite(lows), lows, 0.0)
    safe_high = np.where(np.isfinite(highs), highs, 0.0)
    x = np.where(
        finite,
        safe_low * one_minus_t + safe_high * t,
        np.where(upward, safe_low + spread * stretch, safe_high - spread * stretch),
    )
    jacobian = np.where(finite, safe_high - safe_low, slope)
    return x, jacobian
