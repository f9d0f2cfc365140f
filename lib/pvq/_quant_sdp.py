"""The semidefinite lower bound on the best grid error of one chunk (engine of ``pvq.bounds``).

With ``x = c + z``, ``c = floor(w / s)``, the error ``(s x - w)^T G (s x - w)`` is the quadratic
``z^T P z + 2 q^T z + r`` (``P = s^2 G``, ``q = s G (s c - w)``, ``r = (s c - w)^T G (s c - w)``),
i.e. ``<C, Y>`` for ``C = [[P, q], [q^T, r]]`` and the rank-one ``Y = [z; 1][z; 1]^T``. The
relaxation (after Park & Boyd) keeps of ``Y`` only what every integer point satisfies: ``Y`` PSD,
``Y_nn = 1`` and linear inequalities in ``Z_ii = Y_ii`` and ``z_i = Y_in``, each
``alpha Z_ii + beta z_i + e >= 0``:

- ``Z_ii >= z_i`` (``z (z - 1) >= 0`` for integers; Park & Boyd's cut);
- with ``box=True``, the grid ``a_i <= z_i <= b_i`` (``a = lowest - c``, ``b = highest - c``),
  ``(z_i - a_i)(b_i - z_i) >= 0`` (which the paper left out), and the secants
  ``Z_ii >= (2m + 1) z_i - m (m + 1)`` (``(z - m)(z - m - 1) >= 0``) for the integers
  ``m = -2 .. 2`` clipped into ``a_i .. b_i - 1``: near the relaxed point, where they bind.

Certificate. For any multipliers ``lambda >= 0`` and any ``t``, every integer point in the grid
has ``<C, Y> >= <C, Y> - sum_j lambda_j g_j(Y) = <M - t E, Y> + t - lambda^T e`` with
``M = C - sum_j lambda_j A_j`` and ``E`` the corner unit matrix, and ``<M - t E, Y> >=
min(0, lambda_min(M - t E)) (1 + sum_i max(a_i^2, b_i^2))`` because ``Y = [z; 1][z; 1]^T``.
So the solver's duals give a bound that holds however inaccurate they are; a negative
eigenvalue (solver tolerance) only costs its size times the trace bound.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar

EPS = float(np.finfo(float).eps)
#: solver options: Clarabel stops at 1e-6 instead of 1e-8 and skips iterative refinement (on
#: course chunks about 10 % fewer iterations and a third less time per iteration, bounds lower
#: by under 0.1 %): the bound is certified from the duals, so accuracy only weakens it
SOLVER_OPTIONS = {"CLARABEL": {"tol_gap_abs": 1e-6, "tol_gap_rel": 1e-6, "tol_feas": 1e-6,
                               "tol_ktratio": 1e-5, "iterative_refinement_enable": False},
                  "SCS": {}}


@dataclass(frozen=True)
class QuantRelaxation:
    """A solved relaxation: the certified ``bound`` (<= every grid point's error), the solver's
    own optimum ``solver_value`` (not certified), the relaxed point ``x`` (on the integer scale,
    ``x = c + z``) with covariance ``covariance = Z - z z^T``, and how it was solved."""

    bound: float
    solver_value: float
    x: np.ndarray
    covariance: np.ndarray
    solver: str
    status: str
    seconds: float


def cut_table(a: np.ndarray, b: np.ndarray, box: bool) -> tuple[np.ndarray, ...]:
    """The inequalities ``alpha Z_ii + beta z_i + e >= 0`` as arrays ``(index, alpha, beta, e)``."""
    n = a.size
    index = np.arange(n)
    parts = [(index, np.ones(n), -np.ones(n), np.zeros(n))]
    if box:
        parts += [
            (index, np.zeros(n), np.ones(n), -a),
            (index, np.zeros(n), -np.ones(n), b),
            (index, -np.ones(n), a + b, -a * b),
        ]
        for i in range(n):
            m = np.unique(np.clip(np.arange(-2.0, 3.0), a[i], b[i] - 1))
            m = m[m != 0]
            parts.append((np.full(m.size, i), np.ones(m.size), -(2 * m + 1), m * (m + 1)))
    return tuple(np.concatenate(column) for column in zip(*parts))


def lagrangian_matrix(C: np.ndarray, table: tuple[np.ndarray, ...], lam: np.ndarray) -> np.ndarray:
    """``M = C - sum_j lambda_j A_j`` for the cuts in ``table`` (``A_j`` symmetric)."""
    index, alpha, beta, _ = table
    n = C.shape[0] - 1
    M = C.copy()
    diagonal = np.arange(n)
    M[diagonal, diagonal] -= np.bincount(index, weights=lam * alpha, minlength=n)
    half = np.bincount(index, weights=lam * beta / 2.0, minlength=n)
    M[:n, n] -= half
    M[n, :n] -= half
    return M


def certified_bound(C: np.ndarray, table: tuple[np.ndarray, ...], lam: np.ndarray,
                    trace_bound: float, guess: float) -> float:
    """The largest certified value ``t - lambda^T e + trace_bound * min(0, lambda_min(M - tE))``
    over ``t`` near ``guess``, minus an allowance for rounding in its evaluation."""
    lam = np.maximum(lam, 0.0)
    M = lagrangian_matrix(C, table, lam)
    n = M.shape[0] - 1
    constant = float(lam @ table[3])
    size = float(np.linalg.norm(M))
    eigen_error = 10.0 * (n + 1) * EPS * size

    def value(t: float) -> float:
        shifted = M.copy()
        shifted[n, n] -= t
        smallest = float(np.linalg.eigvalsh(shifted)[0]) - eigen_error
        return t - constant + trace_bound * min(0.0, smallest)

    width = 1e-3 * (abs(guess) + size)
    result = minimize_scalar(lambda t: -value(t), bounds=(guess - width, guess + width),
                             method="bounded", options={"xatol": 1e-12 * (abs(guess) + size)})
    best = max(value(guess), value(float(result.x)))
    # rounding in forming M = C - sum lambda_j A_j costs at most this times ||Y||_F <= trace_bound
    forming = 4.0 * EPS * (float(np.linalg.norm(C)) + float(np.linalg.norm(C - M)))
    slack = 8.0 * (n + 2) * EPS * (float(np.abs(lam) @ np.abs(table[3])) + abs(guess))
    return best - slack - trace_bound * forming


def _solve(C: np.ndarray, table: tuple[np.ndarray, ...]) -> tuple:
    """Solve the SDP with cvxpy (Clarabel, then SCS): ``(Y, lambda, value, solver, status)``."""
    n = C.shape[0] - 1
    index, alpha, beta, e = table
    rows = np.arange(index.size)
    diagonal_part = sparse.csr_matrix((alpha, (rows, index)), shape=(index.size, n))
    linear_part = sparse.csr_matrix((beta, (rows, index)), shape=(index.size, n))
    Y = cp.Variable((n + 1, n + 1), PSD=True)
    cuts = diagonal_part @ cp.diag(Y)[:n] + linear_part @ Y[:n, n] + e >= 0
    problem = cp.Problem(cp.Minimize(cp.trace(C @ Y)), [Y[n, n] == 1, cuts])
    for solver, options in SOLVER_OPTIONS.items():
        try:
            # an inaccurate solution only weakens the bound (certified_bound checks the duals
            # rigorously); its status is returned, so cvxpy's warning would only add noise
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                problem.solve(solver=solver, **options)
        except cp.error.SolverError:
            continue
        if problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and cuts.dual_value is not None:
            duals = np.asarray(cuts.dual_value)
            return Y.value, duals, float(problem.value), solver, problem.status
    return None, np.zeros(index.size), np.nan, "none", str(problem.status)


def relax(G: np.ndarray, w: np.ndarray, scale: float, lowest: int, highest: int,
          box: bool) -> QuantRelaxation:
    """Solve the relaxation of ``min_x (s x - w)^T G (s x - w)`` over the integer grid and
    certify its bound (see the module docstring)."""
    start = time.perf_counter()
    n = w.size
    center = np.floor(w / scale)
    offset = scale * center - w
    C = np.empty((n + 1, n + 1))
    C[:n, :n] = scale**2 * G
    C[:n, n] = C[n, :n] = scale * (G @ offset)
    C[n, n] = float(offset @ G @ offset)
    normalizer = float(np.abs(C).max()) or 1.0
    C_unit = C / normalizer
    a, b = lowest - center, highest - center
    table = cut_table(a, b, box)
    trace_bound = 1.0 + float(np.maximum(a**2, b**2).sum())
    Y, lam, value, solver, status = _solve(C_unit, table)
    guess = value + float(np.maximum(lam, 0.0) @ table[3]) if np.isfinite(value) else 0.0
    bound = normalizer * certified_bound(C_unit, table, lam, trace_bound, guess)
    if Y is None:
        z, covariance = np.zeros(n), np.zeros((n, n))
    else:
        Y = (Y + Y.T) / 2.0
        z = Y[:n, n]
        covariance = Y[:n, :n] - np.outer(z, z)
    return QuantRelaxation(bound, normalizer * value, center + z, covariance, solver, status,
                           time.perf_counter() - start)
