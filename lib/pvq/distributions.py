"""The truncated Student-t family: a dial from light to outlier-heavy tails.

A Student-t with ``df`` degrees of freedom, cut to ``[-limit, limit]`` and renormalised:
``p(x) = t_df(x) / (2 T_df(limit) - 1)`` on ``|x| <= limit``. It is a frozen ``scipy.stats``
distribution, so ``pvq.theory`` and ``pvq.prune.magnitude_threshold`` take it unchanged.

Kurtosis range (Pearson, normal = 3). For a fixed ``df`` the kurtosis grows with ``limit``:
a tight cut is nearly uniform (kurtosis -> 1.8 as limit -> 0), and as limit -> infinity it tends to
``3 + 6 / (df - 4)`` for df > 4 and grows without bound for df <= 4. With ``df = 2`` (the default
dial of the course) one parameter, ``limit``, therefore covers every kurtosis above 1.8:
``limit_for_kurtosis(k)`` inverts it. ``df -> infinity`` with ``limit -> infinity`` is the normal.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import integrate, optimize, special, stats

from pvq._validation import check_positive, check_real

#: the course's default degrees of freedom: heavy enough that the cut alone sets the kurtosis
DEFAULT_DF = 2.0
UNIFORM_KURTOSIS = 1.8
#: the widest truncation ``limit_for_kurtosis`` tries, as log(limit) (x^4 stays finite)
_LARGEST_LOG_LIMIT = 64.0


class _TruncatedStudentT(stats.rv_continuous):
    """Student-t(df) restricted to [-limit, limit]; ``limit`` may be ``inf`` when df > 4."""

    def _argcheck(self, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return (df > 0) & (limit > 0)

    def _get_support(self, df: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return -limit, limit

    def _mass(self, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return 1.0 - 2.0 * _t_sf(limit, df)

    def _pdf(self, x: np.ndarray, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return stats.t.pdf(x, df) / self._mass(df, limit)

    def _cdf(self, x: np.ndarray, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return (stats.t.cdf(x, df) - _t_sf(limit, df)) / self._mass(df, limit)

    def _sf(self, x: np.ndarray, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return (_t_sf(x, df) - _t_sf(limit, df)) / self._mass(df, limit)

    def _ppf(self, q: np.ndarray, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        # symmetric: solve on the upper half with the survival function, accurate in the tails
        upper = np.asarray(q) >= 0.5
        tail = np.where(upper, 1.0 - q, q) * self._mass(df, limit) + _t_sf(limit, df)
        magnitude = stats.t.isf(tail, df)
        return np.where(upper, magnitude, -magnitude)

    def _munp(self, n: int, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return np.vectorize(_raw_moment, otypes=[float])(n, df, limit)

    def cell_second_moments(self, lows: np.ndarray, highs: np.ndarray, centres: np.ndarray,
                            df: float, limit: float) -> np.ndarray:
        """``int_low^high (x - c)^2 p(x) dx`` per cell in closed form (``pvq.theory`` uses it).

        ``G_k(x) = int_0^x t^k t_df(t) dt`` for k = 0, 1, 2 (``_signed_partial_moments``), so a
        cell is ``[G_2 - 2 c G_1 + c^2 G_0]`` from low to high, over the truncation's mass.
        """
        lows, highs = np.clip(lows, -limit, limit), np.clip(highs, -limit, limit)
        g0_low, g1_low, g2_low = _signed_partial_moments(lows, df)
        g0_high, g1_high, g2_high = _signed_partial_moments(highs, df)
        cell = ((g2_high - g2_low) - 2.0 * centres * (g1_high - g1_low)
                + centres**2 * (g0_high - g0_low))
        return np.maximum(cell, 0.0) / (1.0 - 2.0 * _t_sf(limit, df))


def _t_sf(x: np.ndarray | float, df: float) -> np.ndarray:
    """Student-t survival function through ``scipy.special.stdtr`` (the same function as
    ``stats.t.sf`` without the distribution machinery's per-call overhead)."""
    return special.stdtr(df, -np.asarray(x, dtype=np.float64))


def _density_constant(df: float) -> float:
    """``Gamma((df+1)/2) / (Gamma(df/2) sqrt(df pi))``, the Student-t density at zero."""
    return math.exp(special.gammaln((df + 1) / 2) - special.gammaln(df / 2)) / math.sqrt(df * math.pi)


def _second_partial_moment_by_parts(magnitude: np.ndarray, df: float, constant: float) -> np.ndarray:
    """``int_0^x t^2 t_df(t) dt`` for df > 2, stable for any df (2F1 overflows for large df).

    By parts with ``t t_df(t) = -h'(t)``, ``h = c df/(df-1) (1 + t^2/df)^(-(df-1)/2)``:
    ``-x h(x) + int_0^x h``, and ``h`` is a rescaled Student-t density with df - 2 degrees.
    """
    reduced = df - 2.0
    h = constant * df / (df - 1.0) * np.exp(-(df - 1.0) / 2.0 * np.log1p(magnitude**2 / df))
    with np.errstate(invalid="ignore"):  # inf * 0 at an infinite edge, replaced by the limit 0
        boundary = np.where(np.isinf(magnitude), 0.0, magnitude * h)
    weight = constant * df / (df - 1.0) * math.sqrt(df / reduced) / _density_constant(reduced)
    return weight * (0.5 - _t_sf(magnitude * math.sqrt(reduced / df), reduced)) - boundary


def _signed_partial_moments(x: np.ndarray, df: float) -> tuple[np.ndarray, ...]:
    """``G_k(x) = int_0^x t^k t_df(t) dt``, k = 0, 1, 2, for the untruncated Student-t.

    ``G_0 = T(x) - 1/2``; ``G_1 = c df/(df-1) [1 - (1 + x^2/df)^(-(df-1)/2)]`` with c the density's
    constant (``log(1 + x^2) / (2 pi)`` for df = 1); ``G_2`` through ``Beta(1/2, df/2)`` and 2F1 as
    in ``_raw_moment``. ``G_0`` and ``G_2`` are odd in x, ``G_1`` even.
    """
    x = np.asarray(x, dtype=np.float64)
    magnitude = np.abs(x)
    g0 = np.where(x >= 0, 0.5 - _t_sf(magnitude, df), _t_sf(magnitude, df) - 0.5)
    constant = _density_constant(df)
    if df == 1.0:
        g1 = np.log1p(magnitude**2) / (2.0 * math.pi)
    else:
        g1 = constant * df / (df - 1.0) * -np.expm1(-(df - 1.0) / 2.0 * np.log1p(magnitude**2 / df))
    if df > 2.0:
        g2 = _second_partial_moment_by_parts(magnitude, df, constant)
    else:
        with np.errstate(invalid="ignore"):  # inf / inf at an infinite edge, replaced by 1
            u = np.where(np.isinf(magnitude), 1.0, magnitude**2 / (df + magnitude**2))
        g2 = (df * math.exp(-special.betaln(0.5, df / 2)) * u**1.5 / 3.0
              * special.hyp2f1(1.5, 2.0 - df / 2.0, 2.5, u))
    return g0, g1, np.sign(x) * g2


def _raw_moment(n: int, df: float, limit: float) -> float:
    """``E[X^n]`` in closed form (odd moments vanish by symmetry).

    With ``B = T^2 / (df + T^2) ~ Beta(1/2, df/2)`` and ``u = L^2 / (df + L^2)``, for n = 2k:
    ``E[T^2k; |T| < L] = df^k / B(1/2, df/2) * u^(k+1/2) / (k+1/2)
    * 2F1(k+1/2, k+1-df/2; k+3/2; u)``, divided by the mass ``1 - 2 T_df.sf(L)``. Finite for
    any df when L is finite (quadrature loses accuracy for very wide cuts; this does not).
    """
    if n % 2:
        return 0.0
    if not math.isfinite(limit) and df <= n:
        return math.inf
    k = n // 2
    u = 1.0 if not math.isfinite(limit) else limit**2 / (df + limit**2)
    mass = 1.0 - 2.0 * _t_sf(limit, df)
    partial = (math.exp(k * math.log(df) - special.betaln(0.5, df / 2)) * u ** (k + 0.5)
               / (k + 0.5) * special.hyp2f1(k + 0.5, k + 1 - df / 2, k + 1.5, u))
    if not math.isfinite(partial):  # 2F1 overflows for very large df: near-normal, quadrature
        partial, _ = integrate.quad(lambda x: 2 * x**n * stats.t.pdf(x, df), 0.0, limit,
                                    epsabs=0.0, epsrel=1e-12, limit=200)
    return float(partial / mass)


_family = _TruncatedStudentT(name="truncated_student_t", shapes="df, limit")


def truncated_student_t(df: float, limit: float) -> stats.rv_continuous:
    """Frozen Student-t with ``df`` degrees of freedom truncated to ``[-limit, limit]``.

    ``limit = inf`` is allowed for df > 4 (finite kurtosis ``3 + 6 / (df - 4)``).
    """
    df = check_positive(df, "df")
    if isinstance(limit, numbers.Real) and limit == math.inf:
        if df <= 4:
            raise ValueError(f"limit may be infinite only for df > 4 (finite kurtosis), got df={df}")
    else:
        limit = check_positive(limit, "limit")
    return _family(df, limit)


def kurtosis_of(dist: stats.rv_continuous) -> float:
    """Pearson kurtosis ``E[(X - mu)^4] / sigma^4`` (central moments: asymmetry and a shifted
    mean count); ``inf`` when the fourth moment is infinite."""
    if not callable(getattr(dist, "stats", None)) or isinstance(dist, stats.rv_continuous):
        raise TypeError(f"dist must be a frozen scipy.stats distribution, got {type(dist).__name__}")
    variance, excess = (float(value) for value in dist.stats(moments="vk"))
    if not math.isfinite(variance):
        raise ValueError("dist has an infinite variance (e.g. Cauchy, Student t with df <= 2): "
                         "its kurtosis is undefined")
    return excess + 3.0


def limit_for_kurtosis(kurtosis: float, df: float = DEFAULT_DF) -> float:
    """The truncation ``limit`` at which ``truncated_student_t(df, limit)`` has this kurtosis.

    Possible for any kurtosis in ``(1.8, sup)`` where sup is infinite for df <= 4 and
    ``3 + 6 / (df - 4)`` otherwise; the kurtosis grows monotonically with the limit.
    """
    kurtosis = check_real(kurtosis, "kurtosis")
    df = check_positive(df, "df")
    ceiling = math.inf if df <= 4 else 3.0 + 6.0 / (df - 4.0)
    if not UNIFORM_KURTOSIS < kurtosis < ceiling:
        raise ValueError(f"kurtosis must be in ({UNIFORM_KURTOSIS}, {ceiling}) for df={df}, "
                         f"got {kurtosis}")

    def excess_over_target(log_limit: float) -> float:
        return kurtosis_of(truncated_student_t(df, math.exp(log_limit))) - kurtosis

    high = 1.0
    while excess_over_target(high) < 0:
        high = 2.0 * high + 1.0
        if high > _LARGEST_LOG_LIMIT:
            raise ValueError(f"kurtosis={kurtosis} needs a limit beyond exp({_LARGEST_LOG_LIMIT})")
    return math.exp(optimize.brentq(excess_over_target, -6.0, high, xtol=1e-12))
