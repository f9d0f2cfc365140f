"""Exact pruning of one layer chunk by branch and bound (the engine behind ``pvq.bounds``).

The problem: ``min (v - w)^T G (v - w)`` over ``v`` with at most ``k`` non-zeros and
``lower <= v <= upper`` (the box holds 0, so a pruned weight is simply 0).

Every node fixes some coordinates in (set ``I``, always kept), some out (``v_i = 0``) and leaves
the rest free (set ``F``); at most ``k' = k - |I|`` free ones may be kept. Its lower bound comes
from a convex relaxation, certified by a closed-form dual bound (below) so that solver
inaccuracy can only make a bound weaker, never wrong.

Dual bound. Split ``G = Q + D`` with ``D = diag(d)`` and ``Q_TT`` positive semidefinite on the
coordinates ``T = I + F`` that may be non-zero. For any vector ``delta`` with ``delta_O = w_O``
and any feasible ``v``, ``(w - v - delta)^T Q (w - v - delta) >= 0`` gives, with ``mu = Q delta``,

    E(v) >= 2 delta^T Q w - delta^T Q delta + sum_i d_i w_i^2 - sum_{i kept} rho_i(mu_i),
    rho_i = d_i w_i^2 - min_{lower_i <= t <= upper_i} [d_i (t - w_i)^2 - 2 mu_i t]  (>= 0).

The worst case keeps all of ``I`` and the ``k'`` free coordinates of largest ``rho``, so
subtracting those gives a lower bound for the whole node, for *any* ``delta`` and ``d``. With
``delta = w - v*`` from the node's perspective relaxation (``d_i v_i^2 / z_i``, box
``lower_i z_i <= v_i <= upper_i z_i``, ``sum z <= k'``) the bound equals the relaxation's value.
``d`` comes from the conditional variances of the free weights (``node_diagonal``), shifted down
by a certified eigenvalue margin so that ``Q_TT`` is PSD despite rounding.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from itertools import combinations

import clarabel
import numpy as np
from scipy import linalg, sparse
from scipy.optimize import lsq_linear

EPS = float(np.finfo(float).eps)
#: a node whose free part has at most this many completions is solved by enumerating them
ENUMERATION_LIMIT = 300
#: relative optimality tolerance of the search (the certificate states the gap it reached)
RELATIVE_GAP = 1e-9

_SETTINGS = clarabel.DefaultSettings()
_SETTINGS.verbose = False


@dataclass(frozen=True)
class PruneSolution:
    """The result of the exact search: the best ``w_hat``, its error, a certified lower bound on
    the optimum (``lower_bound <= optimum <= error``) and the work it took."""

    w_hat: np.ndarray
    error: float
    lower_bound: float
    nodes: int
    relaxations: int
    enumerated: int
    seconds: float

    @property
    def gap(self) -> float:
        """Relative gap ``(error - lower_bound) / error`` (0 when the error is 0)."""
        return 0.0 if self.error <= 0.0 else max(self.error - self.lower_bound, 0.0) / self.error


class ChunkProblem:
    """The data every node shares: ``G``, ``w``, the box, ``G w`` and a square root ``R`` of
    ``G`` (``R^T R = G``) for the box-constrained least-squares refits."""

    def __init__(self, G: np.ndarray, w: np.ndarray, lower: np.ndarray, upper: np.ndarray):
        self.G, self.w, self.lower, self.upper = G, w, lower, upper
        self.n = w.size
        self.Gw = G @ w
        values, vectors = linalg.eigh(G)  # LAPACK evr: numpy's evd stalls on busy cores
        self.R = (vectors * np.sqrt(np.clip(values, 0.0, None))).T

    def error(self, v: np.ndarray) -> float:
        """``E(v) = (v - w)^T G (v - w)`` (never negative)."""
        r = v - self.w
        return max(float(r @ self.G @ r), 0.0)

    def refit(self, support: np.ndarray) -> tuple[np.ndarray, float]:
        """The best ``v`` on ``support`` within the box (bounded-variable least squares on
        ``||R (v - w)||``), and its error."""
        v = np.zeros(self.n)
        support = support[self.lower[support] < self.upper[support]]  # [0, 0] pins v_i = 0
        if support.size:
            result = lsq_linear(self.R[:, support], self.R @ self.w,
                                bounds=(self.lower[support], self.upper[support]),
                                method="bvls", tol=1e-12)
            v[support] = np.clip(result.x, self.lower[support], self.upper[support])
        return v, self.error(v)


def _rounding_slack(problem: ChunkProblem, delta: np.ndarray, d: np.ndarray) -> np.ndarray:
    """A bound on the floating-point error of a dual bound (rows of ``delta``): every term is a
    dot product of vectors no larger than ``a = |delta| + |w| + max(|lower|, |upper|)`` through
    ``|G| + |D|``, so ``8 (n + 2) eps a^T (|G| + |D|) a`` bounds their rounding (Higham's
    ``gamma_n``) with room to spare."""
    reach = np.maximum(np.abs(problem.lower), np.abs(problem.upper))
    a = np.abs(delta) + np.abs(problem.w) + reach
    weight = np.abs(problem.G) + np.diag(np.abs(d))
    return 8.0 * (problem.n + 2) * EPS * np.einsum("...i,ij,...j->...", a, weight, a)


def _rho(problem: ChunkProblem, mu: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``rho_i = d_i w_i^2 - min_{t in box} [d_i (t - w_i)^2 - 2 mu_i t]`` for every i (>= 0)."""
    w, lower, upper = problem.w, problem.lower, problem.upper
    positive = d > 0
    stationary = np.where(positive, np.clip((mu + d * w) / np.where(positive, d, 1.0),
                                            lower, upper), 0.0)
    points = np.stack([lower, upper, stationary])
    inner = (d * (points - w) ** 2 - 2.0 * mu * points).min(axis=0)
    return np.maximum(d * w**2 - inner, 0.0)


def dual_bound(problem: ChunkProblem, fixed_in: np.ndarray, free: np.ndarray, budget: int,
               delta: np.ndarray, d: np.ndarray) -> float:
    """The certified lower bound of a node from any ``delta`` (see the module docstring).

    ``d`` must make ``G - diag(d)`` PSD on ``fixed_in + free``; entries outside do not matter.
    """
    n = problem.n
    delta = delta.copy()
    kept = np.zeros(n, bool)
    kept[fixed_in] = kept[free] = True
    delta[~kept] = problem.w[~kept]
    d = np.where(kept, d, 0.0)
    Q_delta = problem.G @ delta - d * delta
    cross = 2.0 * float(delta @ (problem.Gw - d * problem.w))
    square = float(delta @ Q_delta)
    diagonal = float(d @ problem.w**2)
    rho = _rho(problem, Q_delta, d)
    chosen = float(rho[fixed_in].sum())
    if budget > 0 and free.size:
        chosen += float(np.sort(rho[free])[::-1][:budget].sum())
    return cross - square + diagonal - chosen - float(_rounding_slack(problem, delta, d))


def _inverse(A: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric PSD matrix (its pseudo-inverse if singular). Accuracy only
    affects how tight ``node_diagonal`` is, never its certificate."""
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        values, vectors = linalg.eigh(A)
        keep = values > A.shape[0] * EPS * max(float(values[-1]), 0.0)
        return (vectors[:, keep] / values[keep]) @ vectors[:, keep].T


def node_diagonal(problem: ChunkProblem, fixed_in: np.ndarray, free: np.ndarray) -> np.ndarray:
    """A diagonal ``d`` (non-zero on ``free`` only) with ``G_TT - diag(d_T)`` certified PSD.

    With ``S = G_FF - G_FI G_II^+ G_IF`` (what the free weights cost once the kept ones refit),
    ``d_F = alpha c`` for the conditional variances ``c_i = 1 / [S^+]_ii`` (OBS's denominators)
    and the largest ``alpha`` that keeps ``S - diag(d_F)`` PSD, the smallest eigenvalue of
    ``C^-1/2 S C^-1/2``. Then ``d`` is shifted down by the eigenvalue error bound of
    ``eigvalsh`` (entries may turn negative; the dual bound allows it). Recomputed per node,
    it grows as coordinates get fixed, which is what makes deep bounds tight.
    """
    d = np.zeros(problem.n)
    if free.size == 0:
        return d
    G = problem.G
    schur = G[np.ix_(free, free)]
    if fixed_in.size:
        coupling = G[np.ix_(fixed_in, free)]
        schur = schur - coupling.T @ _inverse(G[np.ix_(fixed_in, fixed_in)]) @ coupling
    live = np.diag(schur) > 0
    if live.any():
        S = schur[np.ix_(live, live)]
        conditional = 1.0 / np.maximum(np.diag(_inverse(S)), np.finfo(float).tiny)
        root = np.sqrt(conditional)
        alpha = max(float(np.linalg.eigvalsh(S / np.outer(root, root))[0]), 0.0)
        d[free[live]] = alpha * conditional
    kept = np.concatenate([fixed_in, free])
    Q = G[np.ix_(kept, kept)] - np.diag(d[kept])
    margin = 10.0 * (kept.size + 1) * EPS * float(np.linalg.norm(G[np.ix_(kept, kept)]))
    smallest = float(np.linalg.eigvalsh(Q)[0])
    if smallest < margin:
        d[free] -= margin - smallest
    return d


@functools.cache
def _upper_triangle_pattern(t: int, size: int) -> tuple[np.ndarray, ...]:
    """The CSC layout of a dense symmetric t x t upper triangle padded with empty columns to
    ``size``: where to read each stored entry (``rows, cols``: the lower triangle row by row is
    the upper one column by column), the row indices and the column pointers."""
    rows, cols = np.tril_indices(t)
    counts = np.r_[np.arange(1, t + 1), np.zeros(size - t, int)]
    return rows, cols, cols.astype(np.int64), np.r_[0, np.cumsum(counts)].astype(np.int64)


def _constraint_matrix(lower: np.ndarray, upper: np.ndarray, fixed_in: np.ndarray,
                       free: np.ndarray, perspective: np.ndarray, budget: int
                       ) -> tuple[sparse.csc_matrix, np.ndarray, int]:
    """``A x <= b`` rows of the relaxation (columns ``[v_I, v_F, z_F, s_P]``), then three rows
    per perspective cone ``(s + z, 2 v, s - z)`` in the second-order cone (Clarabel's
    ``b - A x`` in the cone); returns ``(A, b, number of linear rows)``."""
    a, f, p = fixed_in.size, free.size, perspective.size
    t = a + f
    j, m = np.arange(f), np.arange(p)
    v_in, v_free, z = np.arange(a), a + j, t + j
    box_rows = 2 * a + 4 * j
    budget_row = 2 * a + 4 * f
    cone_rows = budget_row + 1 + 3 * m
    s_cols, z_cone, v_cone = t + f + m, t + perspective, a + perspective
    rows = np.concatenate([v_in, a + v_in, box_rows, box_rows, box_rows + 1, box_rows + 1,
                           box_rows + 2, box_rows + 3, np.full(f, budget_row),
                           cone_rows, cone_rows, cone_rows + 1, cone_rows + 2, cone_rows + 2])
    cols = np.concatenate([v_in, v_in, v_free, z, v_free, z, z, z, z,
                           s_cols, z_cone, v_cone, s_cols, z_cone])
    vals = np.concatenate([np.ones(a), -np.ones(a), np.ones(f), -upper[free], -np.ones(f),
                           lower[free], np.ones(f), -np.ones(f), np.ones(f),
                           -np.ones(p), -np.ones(p), -2.0 * np.ones(p), -np.ones(p), np.ones(p)])
    rhs = np.zeros(budget_row + 1 + 3 * p)
    rhs[:a], rhs[a:2 * a] = upper[fixed_in], -lower[fixed_in]
    rhs[box_rows + 2] = 1.0
    rhs[budget_row] = float(budget)
    order = np.lexsort((rows, cols))
    indptr = np.r_[0, np.cumsum(np.bincount(cols, minlength=t + f + p))]
    A = sparse.csc_matrix((vals[order], rows[order], indptr), shape=(rhs.size, t + f + p))
    return A, rhs, budget_row + 1


def solve_relaxation(problem: ChunkProblem, fixed_in: np.ndarray, free: np.ndarray, budget: int,
                     d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The node's perspective relaxation, solved by Clarabel: returns ``(v, z)`` (``z_I = 1``).

    Variables ``[v_I, v_F, z_F, s_P]`` (``P``: free coordinates with ``d > 0``); objective
    ``(v - w)^T (G - D) (v - w) + sum_P d_i (s_i - 2 v_i w_i)``; constraints: ``v_I`` in the box,
    ``lower z <= v_F <= upper z``, ``0 <= z <= 1``, ``sum z <= k'``, ``s_i z_i >= v_i^2``.
    """
    G, w, lower, upper = problem.G, problem.w, problem.lower, problem.upper
    d = np.maximum(d, 0.0)
    kept = np.concatenate([fixed_in, free])
    a, f = fixed_in.size, free.size
    perspective = np.flatnonzero(d[free] > 0)
    p = perspective.size
    t = a + f
    size = t + f + p
    Q = G[np.ix_(kept, kept)] - np.diag(d[kept])
    rows, cols, indices, indptr = _upper_triangle_pattern(t, size)
    P = sparse.csc_matrix((2.0 * Q[rows, cols], indices, indptr), shape=(size, size))
    q = np.zeros(size)
    q[:t] = -2.0 * problem.Gw[kept]  # -2 (Q w)_T - 2 d_T w_T
    q[t + f:] = d[free[perspective]]
    A, rhs, nonnegative = _constraint_matrix(lower, upper, fixed_in, free, perspective, budget)
    cones = [clarabel.NonnegativeConeT(nonnegative)] + [clarabel.SecondOrderConeT(3)] * p
    solver = clarabel.DefaultSolver(P, q, A, rhs, cones, _SETTINGS)
    x = np.asarray(solver.solve().x)
    v = np.zeros(problem.n)
    v[kept] = x[:t]
    z = np.zeros(problem.n)
    z[fixed_in] = 1.0
    z[free] = np.clip(x[t:t + f], 0.0, 1.0)
    return v, z


def support_bounds(problem: ChunkProblem, supports: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Certified lower bounds on the best error of each support (row of ``supports``), from
    the candidate values ``values`` (rows of length n, zero off the support): the dual bound
    with ``d = 0``, ``delta = w - v``: ``2 delta^T G w - delta^T G delta - 2 sum_S h_i``,
    ``h_i = max(lower_i mu_i, upper_i mu_i)``, ``mu = G delta``."""
    delta = problem.w - values
    mu = delta @ problem.G
    cross = 2.0 * (delta @ problem.Gw)
    square = np.einsum("ij,ij->i", delta, mu)
    h = np.maximum(problem.lower * mu, problem.upper * mu)
    chosen = 2.0 * np.take_along_axis(h, supports, axis=1).sum(axis=1)
    return cross - square - chosen - _rounding_slack(problem, delta, np.zeros(problem.n))


def least_squares_on_supports(problem: ChunkProblem, supports: np.ndarray) -> np.ndarray:
    """Unconstrained least squares on each support (rows): values, zero off the support."""
    m, size = supports.shape
    values = np.zeros((m, problem.n))
    if size == 0:
        return values
    G_ss = problem.G[supports[:, :, None], supports[:, None, :]]
    rhs = problem.Gw[supports]
    try:
        solved = np.linalg.solve(G_ss, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        solved = np.stack([np.linalg.lstsq(g, r, rcond=None)[0] for g, r in zip(G_ss, rhs)])
    np.put_along_axis(values, supports, solved, axis=1)
    return values


def best_of_supports(problem: ChunkProblem, supports: np.ndarray, cutoff: float
                     ) -> tuple[np.ndarray | None, float, float]:
    """Exact minimum over the given supports of the box-constrained error, searched only below
    ``cutoff``: returns ``(v, error, certified lower bound over all these supports)``; ``v`` is
    None when nothing beats ``cutoff`` (the bound then is the smallest certified one, or cutoff).
    """
    values = least_squares_on_supports(problem, supports)
    bounds = support_bounds(problem, supports, values)
    best_v, best_error = None, cutoff
    lowest = math.inf
    for row in np.argsort(bounds):
        if bounds[row] >= best_error:
            lowest = min(lowest, float(bounds[row]))
            break
        v = values[row]
        inside = np.all((v >= problem.lower) & (v <= problem.upper))
        if not inside:
            v, _ = problem.refit(supports[row])
        error = problem.error(v)
        bound = float(support_bounds(problem, supports[row][None], v[None])[0])
        lowest = min(lowest, bound)
        if error < best_error:
            best_v, best_error = v, error
    return best_v, best_error, min(lowest, best_error)


def branch_and_bound(problem: ChunkProblem, k: int, incumbent: np.ndarray,
                     enumeration_limit: int = ENUMERATION_LIMIT) -> PruneSolution:
    """Depth-first branch and bound from a feasible ``incumbent`` (at most k non-zeros, in box).

    Node bound: the certified dual bound of the perspective relaxation. Branching: the free
    coordinate with the largest relaxed ``z`` (kept branch explored first). Nodes with at most
    ``enumeration_limit`` completions are enumerated exactly.
    """
    start = time.perf_counter()
    n = problem.n
    best_v, best_error = incumbent.copy(), problem.error(incumbent)
    lower_bound = math.inf
    nodes = relaxations = enumerated = 0
    stack: list[tuple[tuple[int, ...], tuple[int, ...]]] = [((), ())]
    while stack:
        fixed_in_t, fixed_out_t = stack.pop()
        nodes += 1
        fixed_in = np.array(fixed_in_t, dtype=np.intp)
        taken = np.zeros(n, bool)
        taken[list(fixed_in_t) + list(fixed_out_t)] = True
        free = np.flatnonzero(~taken)
        budget = k - fixed_in.size
        cutoff = best_error * (1.0 - RELATIVE_GAP)
        budget = min(budget, free.size)
        if math.comb(free.size, budget) <= max(enumeration_limit, 1):
            chosen = [fixed_in_t + c for c in combinations(free.tolist(), budget)]
            enumerated += len(chosen)
            v, error, bound = best_of_supports(problem, np.array(chosen, dtype=np.intp), cutoff)
            if v is not None:
                best_v, best_error = v, error
            lower_bound = min(lower_bound, bound)
            continue
        d = node_diagonal(problem, fixed_in, free)
        v, z = solve_relaxation(problem, fixed_in, free, budget, d)
        relaxations += 1
        bound = dual_bound(problem, fixed_in, free, budget, problem.w - v, d)
        if bound >= cutoff:
            lower_bound = min(lower_bound, bound)
            continue
        branch = int(free[np.argmax(z[free])])
        stack.append((fixed_in_t, fixed_out_t + (branch,)))
        stack.append((fixed_in_t + (branch,), fixed_out_t))
    return PruneSolution(best_v, best_error, min(lower_bound, best_error), nodes, relaxations,
                         enumerated, time.perf_counter() - start)
