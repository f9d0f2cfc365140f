"""The expected error of quantizing or pruning a *distribution* of weights, computed exactly.

For a weight ``W`` with density ``p``, the b-bit grid at scale ``s`` has levels ``q s``
(``pvq.quantize.quantization_grid``) and rounding cells ``[(q - 1/2) s, (q + 1/2) s)``; the two end
cells reach to -inf and +inf (the clipped tails). The expected squared error is a sum over cells

    MSE_Q(s) = sum_q  int_cell (x - q s)^2 p(x) dx.

Pruning a fraction c by magnitude zeroes ``|W| < tau = F^-1(1/2 + c/2)``, so
``MSE_P = E[W^2; |W| < tau]``: all the signal inside the threshold is lost. Both become an SNR,
``10 log10(E[W^2] / MSE)``.

For the normal every cell has a closed form through the partial moments of ``phi``:

    int_a^b (z - t)^2 phi(z) dz = (1 + t^2) (Phi(b) - Phi(a)) + (a - 2t) phi(a) - (b - 2t) phi(b),

evaluated for all cells (and many scales) at once. A distribution whose class provides its own
closed form, ``cell_second_moments(lows, highs, centres, *shapes)`` for the standard member
(``pvq.distributions``' truncated Student-t does), is used through it. Any other frozen continuous
``scipy.stats`` distribution (heavy tails and finite support included) is integrated cell by cell
within its support by vectorised adaptive Gauss-Legendre (``pvq._quadrature``), to about 1e-11
relative.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from pvq._quadrature import second_moments
from pvq._validation import check_bits, check_real
from pvq.prune import magnitude_threshold
from pvq.quantize import quantization_grid

#: candidate clipping ranges scanned by ``optimal_scale`` before the local polish
SCAN_CANDIDATES = 256
#: how many of the best local minima of the scan are polished (the error is not convex in s)
POLISHED_MINIMA = 3
#: cells x scales evaluated together (bounds the memory of a scan)
_CHUNK_ELEMENTS = 2**17
#: standard-normal abscissae beyond this carry no float64 mass (phi(50) underflows to 0)
_Z_LIMIT = 50.0
_MAX_BITS = 16


def signal_power(dist: object) -> float:
    """``E[W^2]``, the signal of the SNR (``var + mean^2``)."""
    _check_dist(dist)
    _check_finite_variance(dist)
    if _is_normal(dist):
        return float(dist.std()) ** 2 + float(dist.mean()) ** 2
    low, high = dist.support()
    return float(_cell_integral(dist)(np.array([low]), np.array([high]), np.zeros(1))[0])


def cell_error(dist: object, low: float, high: float, centre: float) -> float:
    """``int_low^high (x - c)^2 p(x) dx``: one rounding cell's share of the squared error.

    ``low`` may be ``-inf`` and ``high`` ``+inf`` (a clipped end cell). For the normal the closed
    form ``sigma^2 [(1 + t^2)(Phi(b) - Phi(a)) + (a - 2t) phi(a) - (b - 2t) phi(b)]`` (standard
    units), otherwise the partial moments ``M_2 - 2c M_1 + c^2 M_0`` of ``pvq.distributions`` or
    quadrature.
    """
    _check_dist(dist)
    _check_finite_variance(dist)
    for name, edge in (("low", low), ("high", high)):
        if isinstance(edge, (bool, np.bool_)) or not isinstance(edge, numbers.Real):
            raise TypeError(f"{name} must be a real number (or +-inf), got {edge!r}")
    low, high, centre = float(low), float(high), check_real(centre, "centre")
    if not low <= high:
        raise ValueError(f"low must be <= high (and not NaN), got low={low}, high={high}")
    support_low, support_high = dist.support()
    low, high = max(low, float(support_low)), min(high, float(support_high))
    if low >= high:
        return 0.0
    return float(_cell_integral(dist)(np.array([low]), np.array([high]), np.array([centre]))[0])


def quantization_mse(
    dist: object, bits: int, scale: float | ArrayLike, *, symmetric: bool = False
) -> float | np.ndarray:
    """``E[(W - Q_s(W))^2]``: sum over the grid's cells of ``int (x - q s)^2 p(x) dx``.

    ``scale`` may be an array (one MSE per scale). ``symmetric=True`` uses the grid
    ``-(2^(b-1)-1) .. 2^(b-1)-1`` instead of the signed ``-2^(b-1) .. 2^(b-1)-1``.
    """
    _check_dist(dist)
    _check_finite_variance(dist)
    levels = _levels(bits, symmetric)
    scales = _check_scales(scale)
    errors = _mse(_cell_integral(dist), levels, scales.ravel()).reshape(scales.shape)
    return float(errors) if errors.ndim == 0 else errors


def quantization_mse_parts(
    dist: object, bits: int, scale: float | ArrayLike, *, symmetric: bool = False
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """``(granular, clipping)``: the two parts of ``quantization_mse``.

    Clipping error comes from weights beyond the outermost levels ``q_min s`` and ``q_max s``:
    ``E[(W - q_max s)^2; W > q_max s] + E[(W - q_min s)^2; W < q_min s]``. Granular error is the
    rest, rounding inside the grid's range (at most ``s/2`` per weight, about ``s^2/12`` on
    average). A larger scale trades clipping error for granular error.
    """
    _check_dist(dist)
    _check_finite_variance(dist)
    levels = _levels(bits, symmetric)
    scales = _check_scales(scale)
    cell_integral = _cell_integral(dist)
    parts = (_mse(cell_integral, levels, scales.ravel(), part).reshape(scales.shape)
             for part in ("granular", "clipping"))
    return tuple(float(p) if p.ndim == 0 else p for p in parts)


def optimal_scale(dist: object, bits: int, *, symmetric: bool = False) -> float:
    """The scale that minimises ``quantization_mse(dist, bits, s)``.

    The error is not convex in ``s`` (at low bit-widths it can have several local minima), so a
    local search alone may stop in the wrong valley. The search scans 256 log-spaced clipping
    ranges ``2^(b-1) s`` from 5 % of the upper quartile of ``|W|`` to twice the end of the support
    (or of the ``1 - 1e-15`` quantile), then refines the best few local minima of the scan with
    bounded Brent steps between their neighbours and keeps the best.
    """
    _check_dist(dist)
    _check_finite_variance(dist)
    levels = _levels(bits, symmetric)
    top = float(np.abs(levels).max())
    quartile = max(abs(float(dist.ppf(0.25))), abs(float(dist.ppf(0.75))))
    if not quartile > 0:
        raise ValueError("dist has half its mass at zero: no scale is optimal")
    low, high = (float(end) for end in dist.support())
    if not math.isfinite(low):
        low = float(dist.ppf(1e-15))
    if not math.isfinite(high):
        high = float(dist.isf(1e-15))
    scales = np.geomspace(0.05 * quartile, 2.0 * max(abs(low), abs(high)), SCAN_CANDIDATES) / top
    cell_integral = _cell_integral(dist)
    errors = _mse(cell_integral, levels, scales)
    if np.argmin(errors) in (0, scales.size - 1):
        raise ValueError("the smallest error lies at the edge of the scanned scales; check dist")
    inner = np.arange(1, scales.size - 1)
    minima = inner[(errors[inner] <= errors[inner - 1]) & (errors[inner] <= errors[inner + 1])]
    found = []
    for index in minima[np.argsort(errors[minima])[:POLISHED_MINIMA]]:
        result = optimize.minimize_scalar(
            lambda s: float(_mse(cell_integral, levels, np.array([s]))[0]),
            bounds=(scales[index - 1], scales[index + 1]),
            method="bounded",
            options={"xatol": 1e-10 * scales[index]},
        )
        found += [(float(result.fun), float(result.x)), (errors[index], scales[index])]
    return float(min(found)[1])


def quantization_snr_db(
    dist: object, bits: int, *, symmetric: bool = False, scale: float | None = None
) -> float:
    """``10 log10(E[W^2] / MSE_Q)`` at ``scale`` (default: the MSE-optimal scale)."""
    if scale is None:
        scale = optimal_scale(dist, bits, symmetric=symmetric)
    return _snr_db(signal_power(dist), quantization_mse(dist, bits, scale, symmetric=symmetric))


def pruning_mse(dist: object, sparsity: float) -> float:
    """``E[W^2; |W| < tau]`` with ``tau = F^-1(1/2 + c/2)``: the pruned mass loses all its signal.

    For ``N(0, sigma^2)``: ``sigma^2 (2 Phi(u) - 1 - 2 u phi(u))`` with ``u = tau / sigma``.
    """
    _check_dist(dist)
    tau = magnitude_threshold(dist, sparsity)
    lows, highs = np.array([-tau, 0.0]), np.array([0.0, tau])
    return float(_cell_integral(dist)(lows, highs, np.zeros(2)).sum())


def pruning_snr_db(dist: object, sparsity: float) -> float:
    """``10 log10(E[W^2] / E[W^2; |W| < tau])``; +inf at sparsity 0."""
    return _snr_db(signal_power(dist), pruning_mse(dist, sparsity))


CellIntegral = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _mse(
    cell_integral: CellIntegral, levels: np.ndarray, scales: np.ndarray, part: str = "all"
) -> np.ndarray:
    """Expected squared error for each scale, cell by cell, in chunks of bounded memory.

    ``part``: "all" cells; "granular" (end cells cut at the outermost levels); "clipping" (only
    the two tails beyond the outermost levels).
    """
    edges = np.concatenate([[-np.inf], levels[:-1] + 0.5, [np.inf]])
    lows, highs, centres = edges[:-1], edges[1:], levels
    if part == "granular":
        lows, highs = np.r_[levels[0], lows[1:]], np.r_[highs[:-1], levels[-1]]
    elif part == "clipping":
        lows, highs = np.array([-np.inf, levels[-1]]), np.array([levels[0], np.inf])
        centres = levels[[0, -1]]
    chunk = max(1, _CHUNK_ELEMENTS // levels.size)
    out = np.empty(scales.size)
    for begin in range(0, scales.size, chunk):
        s = scales[begin : begin + chunk, None]
        out[begin : begin + chunk] = cell_integral(lows * s, highs * s, centres * s).sum(axis=-1)
    return out


def _cell_integral(dist: object) -> CellIntegral:
    """``(lows, highs, centres) -> int_low^high (x - c)^2 p(x) dx`` per cell, for this ``dist``:
    the closed form for the normal, else quadrature within the support."""
    if _is_normal(dist):
        return functools.partial(_normal_cell_errors, float(dist.mean()), float(dist.std()))
    if callable(getattr(dist.dist, "cell_second_moments", None)):
        # the standard member's closed form; x = loc + scale * y rescales every cell
        shapes, loc, scale = dist.dist._parse_args(*dist.args, **dist.kwds)
        return lambda lows, highs, centres: scale**2 * dist.dist.cell_second_moments(
            (lows - loc) / scale, (highs - loc) / scale, (centres - loc) / scale, *shapes)
    return functools.partial(_quadrature_cell_errors, dist.pdf, *map(float, dist.support()),
                             _spread(dist))


def _quadrature_cell_errors(
    pdf: Callable[[np.ndarray], np.ndarray], low: float, high: float, spread: float,
    lows: np.ndarray, highs: np.ndarray, centres: np.ndarray,
) -> np.ndarray:
    return second_moments(pdf, np.clip(lows, low, high), np.clip(highs, low, high), centres,
                          spread)


def _normal_cell_errors(
    mean: float, std: float, lows: np.ndarray, highs: np.ndarray, centres: np.ndarray
) -> np.ndarray:
    """``sigma^2 [(1 + t^2) P + (a - 2t) phi(a) - (b - 2t) phi(b)]`` in standard units."""
    a = np.clip((lows - mean) / std, -_Z_LIMIT, _Z_LIMIT)
    b = np.clip((highs - mean) / std, -_Z_LIMIT, _Z_LIMIT)
    t = (centres - mean) / std
    phi_a, phi_b = np.exp(-0.5 * a * a), np.exp(-0.5 * b * b)
    density = (a - 2.0 * t) * phi_a - (b - 2.0 * t) * phi_b
    cell = (1.0 + t * t) * _normal_mass(a, b) + density / math.sqrt(2.0 * math.pi)
    return std**2 * np.maximum(cell, 0.0)


def _normal_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Phi(b) - Phi(a)`` to full relative precision: a difference of upper tails (``erfc``) for a
    cell on one side of 0 (mirrored to the right), of ``erf`` for the cell across 0."""
    root = math.sqrt(2.0)
    left = b <= 0.0
    near, far = np.where(left, -b, a), np.where(left, -a, b)
    mass = 0.5 * (special.erfc(near / root) - special.erfc(far / root))
    across = near < 0.0
    mass[across] = 0.5 * (special.erf(b[across] / root) - special.erf(a[across] / root))
    return mass


def _snr_db(power: float, error: float) -> float:
    return math.inf if error == 0.0 else 10.0 * math.log10(power / error)


def _is_normal(dist: object) -> bool:
    return getattr(getattr(dist, "dist", None), "name", None) == "norm"


def _spread(dist: object) -> float:
    """The interquartile range: the length scale of the half-line maps of the quadrature."""
    spread = float(dist.ppf(0.75)) - float(dist.ppf(0.25))
    return spread if math.isfinite(spread) and spread > 0 else 1.0


def _levels(bits: int, symmetric: bool) -> np.ndarray:
    bits = check_bits(bits, maximum=_MAX_BITS)
    return quantization_grid(bits, symmetric=symmetric).astype(np.float64)


def _check_dist(dist: object) -> None:
    if isinstance(dist, stats.rv_continuous):
        raise TypeError("dist must be a *frozen* distribution: call it first, "
                        f"e.g. stats.{dist.name}() instead of stats.{dist.name}")
    if not all(callable(getattr(dist, name, None)) for name in ("pdf", "cdf", "ppf", "support")):
        raise TypeError("dist must be a frozen continuous scipy.stats distribution, "
                        f"got {type(dist).__name__}")
    if np.isnan(np.asarray(dist.support(), dtype=float)).any():
        raise ValueError("dist has invalid parameters (its support is NaN)")


def _check_finite_variance(dist: object) -> None:
    """``E[W^2]`` and the clipping error are infinite without a finite variance."""
    if not math.isfinite(float(dist.var())):
        raise ValueError("dist has an infinite variance (e.g. Cauchy, Student t with df <= 2): "
                         "E[W^2], the clipping error and the SNR are not finite")


def _check_scales(scale: float | ArrayLike) -> np.ndarray:
    if isinstance(scale, bool):
        raise TypeError(f"scale must be a positive number or array, got {scale!r}")
    try:
        scales = np.asarray(scale, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"scale must be a positive number or array, got {scale!r}") from error
    if scales.size == 0 or not np.all(np.isfinite(scales)) or not np.all(scales > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")
    return scales
