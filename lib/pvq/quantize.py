"""Symmetric uniform quantization: the integer grid, round-to-nearest, and the MSE-optimal scale.

The grid of a b-bit signed integer is ``-2^(b-1) .. 2^(b-1)-1`` (two's complement, as in
hardware): one more level on the negative side. A weight ``w`` becomes
``Q(w) = s * clip(round(w / s), -2^(b-1), 2^(b-1)-1)`` with round-half-to-even, the rounding of
NumPy, torch and ``torch.fake_quantize_per_tensor_affine``. ``symmetric=True`` selects the
restricted grid ``-(2^(b-1)-1) .. 2^(b-1)-1`` (one level fewer, e.g. -7..7 at 4 bits).
"""

from __future__ import annotations

import numpy as np
import torch

from pvq._validation import (
    Weights,
    as_float,
    check_bits,
    check_positive,
    check_weights,
    to_numpy,
)

#: candidate scales evaluated before the local polish (log-spaced; see ``mse_scale``)
_SEARCH_CANDIDATES = 2048
#: the search covers clipping ranges down to this fraction of max|w| (heavy tails clip hard)
_SMALLEST_CLIP_FRACTION = 1e-4


def grid_limits(bits: int, *, symmetric: bool = False) -> tuple[int, int]:
    """The smallest and largest integer of the b-bit grid: ``(-2^(b-1), 2^(b-1)-1)``.

    ``symmetric=True`` drops the extra negative level: ``(-(2^(b-1)-1), 2^(b-1)-1)``, b >= 2.
    """
    bits = check_bits(bits)
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be True or False, got {symmetric!r}")
    if symmetric and bits < 2:
        raise ValueError(f"the symmetric grid needs bits >= 2 (1 bit leaves only 0), got {bits}")
    highest = 2 ** (bits - 1) - 1
    return (-highest if symmetric else -(highest + 1)), highest


def quantization_grid(bits: int, *, symmetric: bool = False) -> np.ndarray:
    """The integers ``-2^(b-1) .. 2^(b-1)-1`` of a b-bit grid (``2^b`` values; one fewer if
    ``symmetric``)."""
    lowest, highest = grid_limits(check_bits(bits, maximum=24), symmetric=symmetric)
    return np.arange(lowest, highest + 1, dtype=np.int64)


def quantize(w: Weights, bits: int, scale: float, *, symmetric: bool = False) -> Weights:
    """Round-to-nearest on the scaled grid: ``s * clip(round(w / s), -2^(b-1), 2^(b-1)-1)``.

    Returns the same type as ``w`` (NumPy array or torch tensor; integer input becomes float).
    ``symmetric=True`` clips to ``-(2^(b-1)-1)`` instead of ``-2^(b-1)`` at the bottom.
    Gradients do not flow through the rounding; ``pvq.qat`` provides the straight-through version.
    """
    check_weights(w)
    lowest, highest = grid_limits(bits, symmetric=symmetric)
    scale = check_positive(scale, "scale")
    w = as_float(w)
    if isinstance(w, torch.Tensor):
        return scale * torch.clamp(torch.round(w / scale), lowest, highest)
    return scale * np.clip(np.round(w / scale), lowest, highest)


def integer_codes(w: Weights, bits: int, scale: float) -> Weights:
    """The grid integers ``clip(round(w / s), -2^(b-1), 2^(b-1)-1)`` that ``quantize`` scales."""
    return quantize(w, bits, scale) / scale


def max_abs_scale(w: Weights, bits: int) -> float:
    """The no-clipping scale ``max|w| / (2^(b-1) - 1)`` (a common shortcut, far from optimal)."""
    check_weights(w)
    bits = check_bits(bits)
    return float(np.abs(to_numpy(w)).max()) / max(2 ** (bits - 1) - 1, 1)


def paper_search_scale(w: Weights, bits: int, candidates: int = 100) -> float:
    """The authors' published search: clip ranges ``k (max|w| + 0.5) / 100`` for k = 1..100,
    scale ``clip / (2^(b-1) - 1)``, keep the lowest MSE. Coarse for weights much smaller than 1.
    """
    check_weights(w)
    bits = check_bits(bits)
    values = _SortedValues(to_numpy(w))
    largest = float(np.abs(values.values[[0, -1]]).max())
    clips = np.arange(1, candidates + 1) * (largest + 0.5) / candidates
    scales = clips / max(2 ** (bits - 1) - 1, 1)
    return float(scales[np.argmin(values.mse(bits, scales))])


class _SortedValues:
    """Sorted values with prefix sums, so the squared error of a whole grid costs O(2^b log n)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.sort(values.ravel())
        self.sum1 = np.concatenate([[0.0], np.cumsum(self.values)])
        self.sum2 = np.concatenate([[0.0], np.cumsum(self.values**2)])

    def mse(self, bits: int, scales: np.ndarray) -> np.ndarray:
        """Mean of ``(w - Q_s(w))^2`` for every scale in ``scales``, cell by cell.

        The cell of level q is ``[(q - 1/2) s, (q + 1/2) s)``, the end cells reach to +-infinity
        (the clipped tails). A cell with count n, sums S1 and S2 contributes
        ``S2 - 2 q s S1 + (q s)^2 n``. Values on a cell edge are equally far from both levels,
        so where they go does not change the error.
        """
        levels = quantization_grid(bits).astype(np.float64)
        scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
        inner_edges = (levels[:-1] + 0.5)[None, :] * scales[:, None]
        positions = np.searchsorted(self.values, inner_edges)
        n = self.values.size
        edges = np.concatenate(
            [np.zeros((scales.size, 1), int), positions, np.full((scales.size, 1), n)], axis=1
        )
        count = np.diff(edges, axis=1)
        first = np.diff(self.sum1[edges], axis=1)
        second = np.diff(self.sum2[edges], axis=1)
        centres = levels[None, :] * scales[:, None]
        error = second - 2.0 * centres * first + centres**2 * count
        return np.maximum(error.sum(axis=1), 0.0) / n

    def lloyd_polish(self, bits: int, scale: float, max_steps: int = 100) -> float:
        """Alternate the best codes for the scale and the best scale for the codes.

        With the codes q fixed, the error is quadratic in s with minimum ``<w, q> / <q, q>``;
        with s fixed, rounding gives the best codes. Neither step raises the error.
        """
        lowest, highest = grid_limits(bits)
        for _ in range(max_steps):
            codes = np.clip(np.round(self.values / scale), lowest, highest)
            energy = float(codes @ codes)
            if energy == 0.0:
                return scale
            refit = float(self.values @ codes) / energy
            if refit <= 0.0 or abs(refit - scale) <= 1e-15 * scale:
                return scale
            if self.mse(bits, np.array([refit]))[0] > self.mse(bits, np.array([scale]))[0]:
                return scale
            scale = refit
        return scale


def mse_scale(w: Weights, bits: int) -> float:
    """The scale ``s`` that minimises ``mean((w - Q_s(w))^2)`` over the given values.

    The error is piecewise quadratic and not convex in ``s`` (many local minima at low bit-widths),
    so a gradient step or a coarse grid is not enough. The search evaluates the exact error
    (cell by cell, from sorted values and prefix sums) at 2,048 log-spaced scales whose clipping
    range runs from ``1e-4 max|w|`` to ``2 max|w|``, then polishes the best few with Brent's method
    between their neighbours and with Lloyd steps (optimal scale for fixed codes).
    """
    from scipy.optimize import minimize_scalar

    check_weights(w)
    bits = check_bits(bits, maximum=16)
    values = _SortedValues(to_numpy(w))
    largest = float(np.abs(values.values[[0, -1]]).max())
    if largest == 0.0:
        raise ValueError("w is all zeros: every scale gives zero error, none is optimal")
    top_level = 2 ** (bits - 1)
    candidate_count = max(128, min(_SEARCH_CANDIDATES, 2_000_000 // 2**bits))
    candidates = np.geomspace(
        _SMALLEST_CLIP_FRACTION * largest / top_level, 2.0 * largest, candidate_count
    )
    errors = values.mse(bits, candidates)
    best_scale, best_error = float(candidates[np.argmin(errors)]), float(errors.min())
    for index in np.argsort(errors)[:4]:
        low = candidates[max(index - 1, 0)]
        high = candidates[min(index + 1, candidate_count - 1)]
        result = minimize_scalar(
            lambda s: float(values.mse(bits, np.array([s]))[0]),
            bounds=(low, high),
            method="bounded",
            options={"xatol": 1e-12 * high},
        )
        polished = values.lloyd_polish(bits, float(result.x))
        error = float(values.mse(bits, np.array([polished]))[0])
        if error < best_error:
            best_scale, best_error = polished, error
    return best_scale


# --- Below two bits: binary and ternary codes ----------------------------------------------------
#
# The b-bit grid above has no 1-bit member that keeps both signs (``bits=1`` is {-1, 0}). Binary
# and ternary weights (BinaryConnect, Ternary Weight Networks) use their own grids.


def binary_scale(w: Weights) -> float:
    """The MSE-optimal scale of ``s * sign(w)``: ``s = mean|w|`` (the error ``E(|w| - s)^2`` is
    quadratic in ``s``)."""
    check_weights(w)
    scale = float(np.abs(to_numpy(w)).mean())
    if scale == 0.0:
        raise ValueError("w is all zeros: it has no binary scale")
    return scale


def binarize(w: Weights, scale: float | None = None) -> Weights:
    """1-bit codes: ``+s`` where ``w >= 0``, ``-s`` elsewhere (``scale`` default ``binary_scale``).
    Returns the same type as ``w``."""
    check_weights(w)
    scale = binary_scale(w) if scale is None else check_positive(scale, "scale")
    w = as_float(w)
    if isinstance(w, torch.Tensor):
        return torch.where(w >= 0, scale, -scale).to(w.dtype)
    return np.where(w >= 0, scale, -scale)


def ternary_scale(w: Weights) -> float:
    """The MSE-optimal scale of the ternary grid ``{-s, 0, s}`` (``quantize(w, 2, s,
    symmetric=True)``), exactly.

    Any ternary code keeps some set of weights at ``+-s`` and zeroes the rest; for the k largest
    ``|w|`` kept, the best ``s`` is their mean ``S_k / k`` and the error ``sum w^2 - S_k^2 / k``
    (``S_k`` the sum of the k largest ``|w|``). The best k maximises ``S_k^2 / k``; at that optimum
    the threshold sits at ``s / 2``, so rounding to nearest with this ``s`` gives the same code.
    """
    check_weights(w)
    magnitudes = np.sort(np.abs(to_numpy(w)).ravel())[::-1]
    if magnitudes[0] == 0.0:
        raise ValueError("w is all zeros: it has no ternary scale")
    sums = np.cumsum(magnitudes)
    kept = int(np.argmax(sums**2 / np.arange(1, magnitudes.size + 1))) + 1
    return float(sums[kept - 1] / kept)
