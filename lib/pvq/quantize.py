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
    check_int,
    check_positive,
    check_weights,
    power_of_two_exponent,
    to_numpy,
)

#: candidate scales evaluated before the local polish (log-spaced; see ``mse_scale``)
_SEARCH_CANDIDATES = 2048
#: the search covers clipping ranges down to this fraction of max|w| (heavy tails clip hard)
_SMALLEST_CLIP_FRACTION = 1e-4
#: the widest grid the scale searches accept, and the most candidates of the paper's search
_MAX_BITS, _MAX_CANDIDATES = 16, 100_000
#: levels x scales evaluated together by ``_SortedValues.mse`` (bounds its memory)
_CELLS_PER_CHUNK = 2**20


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

    Returns the same type and shape as ``w`` (NumPy array or torch tensor; integer input becomes
    float). ``symmetric=True`` clips to ``-(2^(b-1)-1)`` instead of ``-2^(b-1)`` at the bottom.
    Gradients do not flow through the rounding; ``pvq.qat`` provides the straight-through version.
    """
    codes = _codes(w, bits, scale, symmetric)
    scale = float(scale)
    w = as_float(w)
    if isinstance(w, torch.Tensor):
        return (scale * codes).to(w.dtype)
    return np.asarray(scale * codes).astype(w.dtype, copy=False)


def integer_codes(w: Weights, bits: int, scale: float) -> Weights:
    """The grid integers ``clip(round(w / s), -2^(b-1), 2^(b-1)-1)`` that ``quantize`` scales
    (float32 for half-precision input, so every code is an exact integer)."""
    return _codes(w, bits, scale, False)


def _codes(w: Weights, bits: int, scale: float, symmetric: bool) -> Weights:
    """``clip(round(w / s))`` in float32 or wider, after checking that ``s`` and the grid's
    ends ``s * 2^(b-1)`` are normal numbers of that type and of ``w``'s own float type."""
    check_weights(w)
    lowest, highest = grid_limits(bits, symmetric=symmetric)
    scale = check_positive(scale, "scale")
    w = as_float(w)
    if isinstance(w, torch.Tensor):
        wide = w if w.dtype in (torch.float32, torch.float64) else w.float()
        output_max = torch.finfo(w.dtype).max
        tiny = torch.finfo(wide.dtype).tiny
    else:
        wide = w if w.dtype.itemsize >= 4 else w.astype(np.float32)
        output_max, tiny = float(np.finfo(w.dtype).max), float(np.finfo(wide.dtype).tiny)
    if not tiny <= scale <= output_max / -lowest:
        raise ValueError(f"scale must be in [{tiny:.3g}, {output_max / -lowest:.3g}] for "
                         f"{bits}-bit codes of {w.dtype} weights, got {scale}")
    if isinstance(w, torch.Tensor):
        return torch.clamp(torch.round(wide / scale), lowest, highest)
    return np.asarray(np.clip(np.round(wide / scale), lowest, highest))


def max_abs_scale(w: Weights, bits: int) -> float:
    """The no-clipping scale ``max|w| / (2^(b-1) - 1)`` (a common shortcut, far from optimal)."""
    check_weights(w)
    bits = check_bits(bits)
    return float(np.abs(to_numpy(w)).max()) / max(2 ** (bits - 1) - 1, 1)


def paper_search_scale(w: Weights, bits: int, candidates: int = 100) -> float:
    """The authors' published search: clip ranges ``k (max|w| + 0.5) / K`` for k = 1..K
    (K = ``candidates``, 100 in the paper), scale ``clip / (2^(b-1) - 1)``, keep the lowest MSE.
    Coarse for weights much smaller than 1.
    """
    check_weights(w)
    bits = check_bits(bits, maximum=_MAX_BITS)
    candidates = check_int(candidates, "candidates", 1, _MAX_CANDIDATES)
    values = _SortedValues(w)
    clips = np.arange(1, candidates + 1) / candidates * (values.largest + 0.5)
    scales = clips / max(2 ** (bits - 1) - 1, 1)
    # from 4 up (in the values' units) every value rounds to 0: the same error, kept finite
    with np.errstate(over="ignore"):
        unit_scales = np.minimum(np.ldexp(scales, -values.exponent), 4.0)
    return float(scales[np.argmin(values.mse(bits, unit_scales))])


class _SortedValues:
    """Sorted values with prefix sums, so the squared error of a whole grid costs O(2^b log n).

    The values are divided by ``2^exponent`` (``power_of_two_exponent``: exact, max|.| in
    [0.5, 1)) so that their squares and sums stay in range for any float64 magnitude; scales
    passed to the methods are in these units.
    """

    def __init__(self, w: Weights) -> None:
        # sort in the input's own float type (faster for float32), then widen: order is kept
        if isinstance(w, torch.Tensor):
            w = w.detach().cpu()
            w = (w if w.dtype in (torch.float32, torch.float64) else w.double()).numpy()
        values = np.sort(w if w.dtype in (np.float32, np.float64) else to_numpy(w), axis=None)
        self.largest = float(max(-values[0], values[-1]))
        self.exponent = power_of_two_exponent(values[[0, -1]])
        self.values = np.ldexp(values.astype(np.float64), -self.exponent)
        self.sum1, self.sum2 = np.zeros(values.size + 1), np.zeros(values.size + 1)
        np.cumsum(self.values, out=self.sum1[1:])
        np.cumsum(np.square(self.values), out=self.sum2[1:])

    def cells(self, bits: int, scales: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per scale (rows) and grid level (columns): the level's value ``q s``, and the count,
        sum and sum of squares of the values in its cell ``[(q - 1/2) s, (q + 1/2) s)``; the
        end cells reach to +-infinity (the clipped tails)."""
        levels = quantization_grid(bits).astype(np.float64)
        inner_edges = (levels[:-1] + 0.5)[None, :] * scales[:, None]
        positions = np.searchsorted(self.values, inner_edges)
        n = self.values.size
        edges = np.concatenate(
            [np.zeros((scales.size, 1), int), positions, np.full((scales.size, 1), n)], axis=1
        )
        count = np.diff(edges, axis=1)
        return (levels[None, :] * scales[:, None], count, np.diff(self.sum1[edges], axis=1),
                np.diff(self.sum2[edges], axis=1))

    def mse(self, bits: int, scales: np.ndarray) -> np.ndarray:
        """Mean of ``(w - Q_s(w))^2`` for every scale in ``scales``, cell by cell.

        A cell with count n, sums S1 and S2 around level value c contributes
        ``S2 - 2 c S1 + c^2 n`` (empty cells nothing). Values on a cell edge are equally far
        from both levels, so where they go does not change the error. Scales are taken in
        chunks, so memory stays bounded at any bit-width.
        """
        scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
        chunk = max(1, _CELLS_PER_CHUNK >> bits)
        errors = np.empty(scales.size)
        for begin in range(0, scales.size, chunk):
            centres, count, first, second = self.cells(bits, scales[begin : begin + chunk])
            with np.errstate(over="ignore", invalid="ignore"):
                error = np.where(count > 0, second - 2.0 * centres * first + centres**2 * count,
                                 0.0)
            errors[begin : begin + chunk] = error.sum(axis=1)
        return np.maximum(errors, 0.0) / self.values.size

    def lloyd_polish(self, bits: int, scale: float, max_steps: int = 100) -> float:
        """Alternate the best codes for the scale and the best scale for the codes.

        With the codes q fixed, the error is quadratic in s with minimum ``<w, q> / <q, q>``,
        here ``sum_q q S1_q / sum_q q^2 n_q`` over the cells; with s fixed, rounding gives the
        best codes. Neither step raises the error.
        """
        for _ in range(max_steps):
            centres, count, first, _ = self.cells(bits, np.array([scale]))
            levels = centres[0] / scale
            energy = float(levels**2 @ count[0])
            if energy == 0.0:
                return scale
            refit = float(levels @ first[0]) / energy
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
    bits = check_bits(bits, maximum=_MAX_BITS)
    values = _SortedValues(w)
    if values.largest == 0.0:
        raise ValueError("w is all zeros: every scale gives zero error, none is optimal")
    largest = float(max(-values.values[0], values.values[-1]))  # in [0.5, 1)
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
    return float(np.ldexp(best_scale, values.exponent))


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
