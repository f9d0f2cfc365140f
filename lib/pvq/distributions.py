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


class _TruncatedStudentT(stats.rv_continuous):
    """Student-t(df) restricted to [-limit, limit]; ``limit`` may be ``inf`` when df > 4."""

    def _argcheck(self, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return (df > 0) & (limit > 0)

    def _get_support(self, df: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return -limit, limit

    def _mass(self, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return 1.0 - 2.0 * stats.t.sf(limit, df)

    def _pdf(self, x: np.ndarray, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return stats.t.pdf(x, df) / self._mass(df, limit)

    def _cdf(self, x: np.ndarray, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return (stats.t.cdf(x, df) - stats.t.sf(limit, df)) / self._mass(df, limit)

    def _sf(self, x: np.ndarray, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return (stats.t.sf(x, df) - stats.t.sf(limit, df)) / self._mass(df, limit)

    def _ppf(self, q: np.ndarray, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        # symmetric: solve on the upper half with the survival function, accurate in the tails
        upper = np.asarray(q) >= 0.5
        tail = np.where(upper, 1.0 - q, q) * self._mass(df, limit) + stats.t.sf(limit, df)
        magnitude = stats.t.isf(tail, df)
        return np.where(upper, magnitude, -magnitude)

    def _munp(self, n: int, df: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return np.vectorize(_raw_moment, otypes=[float])(n, df, limit)


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
    mass = 1.0 - 2.0 * stats.t.sf(limit, df)
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
    """Pearson kurtosis ``E[X^4] / E[X^2]^2`` of a distribution symmetric about zero."""
    if not callable(getattr(dist, "moment", None)):
        raise TypeError(f"dist must be a frozen scipy.stats distribution, got {type(dist).__name__}")
    second, fourth = float(dist.moment(2)), float(dist.moment(4))
    return fourth / second**2


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
        high += 2.0
    return math.exp(optimize.brentq(excess_over_target, -6.0, high, xtol=1e-12))
