"""Per-layer post-training bounds: how well *any* quantizer or pruner could do on a layer chunk.

Kuzmin et al. (NeurIPS 2023, section 4) bracket each method's best possible post-training error
on real layers: a heuristic gives an achievable error, a relaxation or an exact search a lower
bound. A layer ``Y = X W^T`` is cut into chunks (``layer_chunks``): one output channel, at most
32 consecutive inputs, with ``G = X_c^T X_c`` for the chunk's input columns ``X_c``. Replacing
the chunk's weights ``w`` by ``w_hat`` costs the output error (``chunk_error``)

    E(w_hat) = (w_hat - w)^T G (w_hat - w) = ||X_c (w_hat - w)||^2,

and a layer's SNR is ``10 log10(sum w^T G w / sum E)`` over its chunks
(``pvq.layer_bounds.layer_snr_db``).

- Quantization: ``w_hat = s x``, ``x`` integers in ``-2^(b-1) .. 2^(b-1)-1`` (the grid of
  ``pvq.quantize``), ``s`` given. ``quant_heuristic`` (achievable; ``quant_candidates`` lists
  every method, ``best_method`` names the winner) and ``quant_sdp_bound`` (certified lower
  bound from a semidefinite relaxation, ``pvq._quant_sdp``).
- Pruning at equal compression: at most ``k = round(n b / 16)`` non-zeros
  (``equal_compression_k``), each kept weight free in a box ``lower <= w_hat <= upper``; the
  paper's box is twice the layer's weight range (``pruning_box``). ``prune_heuristic``
  (achievable; ``prune_candidates``) and ``prune_exact`` (the global optimum, certified by the
  branch and bound of ``pvq._prune_bnb``); ``prune_scip`` and ``prune_brute_force`` solve the
  same problem independently, to check it and to time it against.
"""

from __future__ import annotations

import itertools
import math
import numbers
import time
from typing import NamedTuple

import numpy as np
from scipy import linalg

from pvq import _prune_bnb, _quant_sdp
from pvq._prune_bnb import ChunkProblem, PruneSolution
from pvq._quant_sdp import QuantRelaxation
from pvq._validation import (
    check_bits,
    check_int,
    check_positive,
    check_real,
    check_weights,
    to_numpy,
)
from pvq.compression import BASE_BITS
from pvq.prune import magnitude_mask
from pvq.quantize import grid_limits, integer_codes

#: chunk width of the paper's code (``opt_dim``)
CHUNK_SIZE = 32
#: the paper's box factor ``c``: a kept weight may move within c times the layer's range
BOX_FACTOR = 2.0
#: ``G`` may have eigenvalues down to ``-PSD_TOLERANCE * lambda_max`` (rounding in ``X^T X``)
PSD_TOLERANCE = 1e-8
#: damping of the Hessian in OBS / GPTQ, as a fraction of its mean diagonal (GPTQ's percdamp)
DAMPING = 0.01
EPS = float(np.finfo(float).eps)
#: seed of the randomized rounding, so every call gives the same answer
ROUNDING_SEED = 0

__all__ = [
    "CHUNK_SIZE", "LayerChunk", "PruneSolution", "QuantRelaxation", "best_method",
    "check_integer", "chunk_error", "equal_compression_k", "layer_chunks",
    "prune_branch_and_bound", "prune_brute_force", "prune_candidates", "prune_exact",
    "prune_heuristic", "prune_scip", "prune_search", "pruning_box", "quant_candidates",
    "quant_heuristic", "quant_sdp_bound", "quant_sdp_relaxation", "sdp_samples",
    "synthetic_chunk",
]


# ---------------------------------------------------------------- chunks and problem data


class LayerChunk(NamedTuple):
    """One output channel's weights on a block of consecutive inputs, with ``G`` of the block."""

    output: int
    inputs: slice
    w: np.ndarray
    G: np.ndarray


def layer_chunks(W: np.ndarray, X: np.ndarray, size: int = CHUNK_SIZE) -> list[LayerChunk]:
    """Cut a layer ``(W, X)`` (W: outputs x inputs, X: samples x inputs) into chunks of at most
    ``size`` consecutive inputs per output channel, each with ``G = X_c^T X_c``.

    Ordered by input block, then output channel; chunks of one block share one ``G`` array.
    """
    check_weights(W, "W")
    check_weights(X, "X")
    W, X = to_numpy(W), to_numpy(X)
    if W.ndim != 2 or X.ndim != 2:
        raise ValueError(f"W and X must be 2-D, got shapes {W.shape} and {X.shape}")
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"W and X must have the same number of inputs (columns), got "
                         f"{W.shape[1]} and {X.shape[1]}")
    size = check_integer(size, "size")
    chunks = []
    for start in range(0, W.shape[1], size):
        block = slice(start, min(start + size, W.shape[1]))
        G = X[:, block].T @ X[:, block]
        chunks += [LayerChunk(out, block, W[out, block].copy(), G) for out in range(W.shape[0])]
    return chunks


def check_integer(value: object, name: str, minimum: int = 1) -> int:
    """Require an integer (Python or NumPy, not a bool) of at least ``minimum``."""
    return check_int(value, name, minimum)


def equal_compression_k(n: int, bits: int) -> int:
    """Non-zeros that pruning keeps at the storage of b-bit weights: ``round(n b / 16)``
    (Python's round, half to even; the paper's model ``sum(m) <= n b / 16`` rounds down)."""
    n = check_integer(n, "n")
    return round(n * check_bits(bits, maximum=BASE_BITS) / BASE_BITS)


def pruning_box(W: np.ndarray, factor: float = BOX_FACTOR) -> tuple[float, float]:
    """The paper's box for kept weights: ``factor`` times the layer's range, widened to hold 0:
    ``(factor * min(W.min(), 0), factor * max(W.max(), 0))``."""
    check_weights(W, "W")
    factor = check_positive(factor, "factor")
    values = to_numpy(W)
    return factor * min(float(values.min()), 0.0), factor * max(float(values.max()), 0.0)


def synthetic_chunk(n: int, seed: int = 0, rows: int | None = None, correlation: float = 0.8
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in chunk ``(G, w)`` with inputs like neighbouring pixels: ``X`` (``rows`` x n,
    default 3n) has AR(1) columns ``x_i = r x_(i-1) + sqrt(1 - r^2) e_i`` plus a shared offset
    per row (as after a ReLU), ``G = X^T X``; the weights are standard normal (seeded)."""
    n = check_integer(n, "n")
    rows = 3 * n if rows is None else check_integer(rows, "rows")
    seed = check_integer(seed, "seed", minimum=0)
    correlation = check_real(correlation, "correlation")
    if not 0.0 <= correlation < 1.0:
        raise ValueError(f"correlation must be in [0, 1), got {correlation}")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((rows, n))
    X = np.empty_like(noise)
    X[:, 0] = noise[:, 0]
    for i in range(1, n):
        X[:, i] = correlation * X[:, i - 1] + math.sqrt(1.0 - correlation**2) * noise[:, i]
    X += 0.5 * rng.standard_normal((X.shape[0], 1))
    return X.T @ X, rng.standard_normal(n)


def _check_chunk(G: object, w: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(G, w)``: w a vector of n values, G a symmetric PSD n x n matrix."""
    check_weights(w, "w")
    check_weights(G, "G")
    w, G = to_numpy(w), to_numpy(G)
    if w.ndim != 1:
        raise ValueError(f"w must be a 1-D vector, got shape {w.shape}")
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ValueError(f"G must be a square matrix, got shape {G.shape}")
    if G.shape[0] != w.size:
        raise ValueError(f"G must be {w.size} x {w.size} to match w, got {G.shape}")
    largest = float(np.abs(G).max())
    if not np.allclose(G, G.T, rtol=0.0, atol=1e-10 * max(largest, 1e-300)):
        raise ValueError("G must be symmetric")
    G = (G + G.T) / 2.0
    eigenvalues = np.linalg.eigvalsh(G)
    if eigenvalues[0] < -PSD_TOLERANCE * max(eigenvalues[-1], 0.0) or (
            eigenvalues[-1] <= 0.0 and eigenvalues[0] < 0.0):
        raise ValueError(f"G must be positive semidefinite, got smallest eigenvalue "
                         f"{eigenvalues[0]:.3g} (largest {eigenvalues[-1]:.3g})")
    return G, w


def _check_box(lower: object, upper: object, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast ``lower``/``upper`` (numbers or n-vectors) and check lower <= 0 <= upper."""
    bounds = []
    for name, value in (("lower", lower), ("upper", upper)):
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = np.array(float(value))
        check_weights(value, name)
        array = to_numpy(value)
        if array.ndim > 1 or (array.ndim == 1 and array.size != n):
            raise ValueError(f"{name} must be a number or a vector of {n} values, "
                             f"got shape {array.shape}")
        bounds.append(np.broadcast_to(array, (n,)).astype(np.float64))
    lower_, upper_ = bounds
    if np.any(lower_ > upper_):
        raise ValueError("lower must be <= upper")
    if np.any(lower_ > 0.0) or np.any(upper_ < 0.0):
        raise ValueError("the box must contain 0 (lower <= 0 <= upper): a pruned weight is 0")
    return lower_, upper_


def _check_k(k: object, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer, got {type(k).__name__} {k!r}")
    if not 0 <= int(k) <= n:
        raise ValueError(f"k must be between 0 and n = {n}, got {k}")
    return int(k)


def chunk_error(G: np.ndarray, w: np.ndarray, w_hat: np.ndarray) -> float:
    """``E(w_hat) = (w_hat - w)^T G (w_hat - w)``: the chunk's output error."""
    G, w = _check_chunk(G, w)
    check_weights(w_hat, "w_hat")
    w_hat = to_numpy(w_hat)
    if w_hat.shape != w.shape:
        raise ValueError(f"w_hat must have the shape of w {w.shape}, got {w_hat.shape}")
    residual = w_hat - w
    return max(float(residual @ G @ residual), 0.0)


def best_method(candidates: dict[str, tuple[np.ndarray, float]]) -> str:
    """The name of the candidate with the smallest error (the first one on ties)."""
    return min(candidates, key=lambda name: candidates[name][1])


# ---------------------------------------------------------------- quantization


def _damping(G: np.ndarray) -> float:
    """GPTQ's Hessian damping ``0.01 mean(G_ii)`` (1 if G is zero), so the inverse exists."""
    mean = float(np.mean(np.diag(G)))
    return DAMPING * mean if mean > 0 else 1.0


def _quant_error(G: np.ndarray, w: np.ndarray, scale: float, x: np.ndarray) -> float:
    residual = scale * x - w
    return max(float(residual @ G @ residual), 0.0)


def _greedy_polish(G: np.ndarray, w: np.ndarray, scale: float, x: np.ndarray,
                   lowest: int, highest: int) -> np.ndarray:
    """One-coordinate descent on the grid: move ``x_i`` to the best integer given the others,
    ``x_i + clip(round(-g_i / (s G_ii)))`` with ``g = G (s x - w)``, until no move helps."""
    x = x.copy()
    gradient = G @ (scale * x - w)
    negligible = 1e-14 * abs(float(w @ G @ w))  # below rounding noise: stop, do not cycle
    improved = True
    while improved:
        improved = False
        for i in np.flatnonzero(np.diag(G) > 0):
            step = np.clip(np.round(-gradient[i] / (scale * G[i, i])), lowest - x[i],
                           highest - x[i])
            change = 2.0 * scale * step * gradient[i] + (scale * step) ** 2 * G[i, i]
            if step != 0 and change < -negligible:
                x[i] += step
                gradient += scale * step * G[:, i]
                improved = True
    return x


def _sequential_rounding(G: np.ndarray, w: np.ndarray, scale: float, lowest: int, highest: int,
                         order: np.ndarray) -> np.ndarray:
    """GPTQ / OBQ: round one weight at a time (in ``order``) and move the not-yet-rounded ones
    to absorb its error, ``w_F -= (w_i - q_i) / U_ii * U_i,F`` with ``U`` the upper Cholesky
    factor of the damped inverse Hessian ``(G + lambda I)^-1`` in that order."""
    n = w.size
    H = G[np.ix_(order, order)] + _damping(G) * np.eye(n)
    U = np.linalg.cholesky(np.linalg.inv(H)).T
    values = w[order].copy()
    codes = np.empty(n)
    for i in range(n):
        codes[i] = np.clip(np.round(values[i] / scale), lowest, highest)
        values[i + 1:] -= (values[i] - scale * codes[i]) / U[i, i] * U[i, i + 1:]
    x = np.empty(n)
    x[order] = codes
    return x


def sdp_samples(relaxation: QuantRelaxation) -> np.ndarray:
    """The paper's 3n Gaussian samples of the relaxed solution, ``N(x*, X* - x* x*^T)`` on the
    integer scale (seeded with ``ROUNDING_SEED``): one row per sample, not yet rounded."""
    if not isinstance(relaxation, QuantRelaxation):
        raise TypeError(f"relaxation must be a QuantRelaxation, got {type(relaxation).__name__}")
    n = relaxation.x.size
    rng = np.random.default_rng(ROUNDING_SEED)
    values, vectors = linalg.eigh((relaxation.covariance + relaxation.covariance.T) / 2.0)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return relaxation.x + rng.standard_normal((3 * n, n)) @ root.T


def _sdp_rounding(G: np.ndarray, w: np.ndarray, scale: float, lowest: int, highest: int,
                  samples: np.ndarray, relaxed: np.ndarray) -> np.ndarray:
    """Randomized rounding: the relaxed point and every sample rounded and clipped to the grid;
    the best of them."""
    codes = np.clip(np.round(np.vstack([relaxed, samples])), lowest, highest)
    residuals = scale * codes - w
    errors = np.einsum("ij,jk,ik->i", residuals, G, residuals)
    return codes[int(np.argmin(errors))]


def _one_opt_descent(G: np.ndarray, w: np.ndarray, scale: float, lowest: int, highest: int,
                     samples: np.ndarray) -> np.ndarray:
    """The authors' achievable point (their ``icqm`` / ``oneopt_clipped``): every sample
    rounded, then descended without the grid's limits, each step making the single-coordinate
    move ``c_i = round(-g_i / (2 P_ii))`` that lowers ``x^T P x + 2 q^T x`` most
    (``P = s^2 G``, ``q = -s G w``, ``g = 2 (P x + q)``) until no move helps
    (``P_ii >= |g_i|`` for all i), then clipped to the grid; the best sample. All samples
    descend at once (one row each); a sample's path is the one it would take alone."""
    P, q = scale**2 * G, -scale * (G @ w)
    v = np.diag(P)
    live = v > 0  # an input G never sees has a zero row: its code cannot change the error
    x = np.round(samples)
    gradient = 2.0 * (x @ P + q)
    moving = np.ones(len(x), bool)
    rows = np.arange(len(x))
    for _ in range(100 * w.size):  # each move lowers the error: a cap only against rounding
        moving &= ~np.all(v >= np.abs(gradient), axis=1)
        if not moving.any():
            break
        step = np.where(live, np.round(-gradient / (2.0 * np.where(live, v, 1.0))), 0.0)
        gains = step**2 * v + step * gradient
        best = np.argmin(gains, axis=1)
        r, i = rows[moving], best[moving]
        x[r, i] += step[r, i]
        gradient[r] += 2.0 * step[r, i][:, None] * P[i]
    codes = np.clip(x, lowest, highest)
    residuals = scale * codes - w
    return codes[int(np.argmin(np.einsum("ij,jk,ik->i", residuals, G, residuals)))]


def _check_quant(G, w, bits, scale) -> tuple[np.ndarray, np.ndarray, int, int, float]:
    G, w = _check_chunk(G, w)
    lowest, highest = grid_limits(check_bits(bits, maximum=16))
    return G, w, lowest, highest, check_positive(scale, "scale")


def quant_candidates(G: np.ndarray, w: np.ndarray, bits: int, scale: float,
                     relaxation: QuantRelaxation | None = None
                     ) -> dict[str, tuple[np.ndarray, float]]:
    """Every quantization heuristic's integer codes ``x`` and error ``E(s x)``, by name.

    ``nearest``: round to nearest (``pvq.quantize``). ``gptq`` / ``gptq act-order``: sequential
    rounding with error feedback in input order / by decreasing ``G_ii`` (GPTQ's "act-order").
    ``sdp rounding``: the relaxed point and its 3n samples (``sdp_samples``) rounded, the best.
    ``sdp one-opt (authors)``: the authors' procedure, a one-coordinate descent from every
    sample (``_one_opt_descent``). The relaxation is solved here (``quant_sdp_relaxation``)
    unless one is passed. Each one then gets ``+ greedy``: polished by one-coordinate moves
    that stay on the grid.
    """
    G, w, lowest, highest, scale = _check_quant(G, w, bits, scale)
    if relaxation is None:
        relaxation = _quant_sdp.relax(G, w, scale, lowest, highest, True)
    elif not isinstance(relaxation, QuantRelaxation) or relaxation.x.shape != w.shape:
        raise TypeError("relaxation must be a QuantRelaxation of this chunk")
    samples = sdp_samples(relaxation)
    starts = {
        "nearest": np.round(to_numpy(integer_codes(w, bits, scale))),
        "gptq": _sequential_rounding(G, w, scale, lowest, highest, np.arange(w.size)),
        "gptq act-order": _sequential_rounding(G, w, scale, lowest, highest,
                                               np.argsort(-np.diag(G), kind="stable")),
        "sdp rounding": _sdp_rounding(G, w, scale, lowest, highest, samples, relaxation.x),
        "sdp one-opt (authors)": _one_opt_descent(G, w, scale, lowest, highest, samples),
    }
    candidates = {}
    for name, x in starts.items():
        polished = _greedy_polish(G, w, scale, x, lowest, highest)
        candidates[name] = (x.astype(np.int64), _quant_error(G, w, scale, x))
        candidates[name + " + greedy"] = (polished.astype(np.int64),
                                          _quant_error(G, w, scale, polished))
    return candidates


def quant_heuristic(G: np.ndarray, w: np.ndarray, bits: int, scale: float, *,
                    relaxation: QuantRelaxation | None = None) -> tuple[np.ndarray, float]:
    """The best achievable grid point found: ``(x, E(s x))`` with ``x`` integer codes (int64).

    The smallest error among ``quant_candidates``: never worse than round to nearest, nor than
    the authors' procedure (one-coordinate descent from every SDP sample) on the same samples.
    Solves the SDP relaxation unless one is passed; ``best_method(quant_candidates(...))``
    names the heuristic that won.
    """
    candidates = quant_candidates(G, w, bits, scale, relaxation)
    return candidates[best_method(candidates)]


def quant_sdp_relaxation(G: np.ndarray, w: np.ndarray, bits: int, scale: float, *,
                         box: bool = True) -> QuantRelaxation:
    """Solve the semidefinite relaxation of ``min_x E(s x)`` over the grid (cvxpy, Clarabel
    with SCS as fallback) and certify its bound from the duals (see ``pvq._quant_sdp``).

    ``box=False`` is the paper's relaxation (Park & Boyd's ``diag(X) >= x`` only); the default
    adds the grid's box constraints and secant cuts, which give a tighter bound.
    """
    G, w, lowest, highest, scale = _check_quant(G, w, bits, scale)
    if not isinstance(box, bool):
        raise TypeError(f"box must be True or False, got {box!r}")
    return _quant_sdp.relax(G, w, scale, lowest, highest, box)


def quant_sdp_bound(G: np.ndarray, w: np.ndarray, bits: int, scale: float, *,
                    box: bool = True) -> float:
    """A certified lower bound on ``min_x E(s x)`` over the b-bit grid (never above any grid
    point's error, solver inaccuracy included), raised to the trivial bound
    ``min(0, lambda_min(G)) max_x ||s x - w||^2`` (0 for a PSD G) when it is below it."""
    relaxation = quant_sdp_relaxation(G, w, bits, scale, box=box)
    G, w, lowest, highest, scale = _check_quant(G, w, bits, scale)
    farthest = np.maximum((scale * lowest - w) ** 2, (scale * highest - w) ** 2).sum()
    smallest = float(np.linalg.eigvalsh(G)[0]) - 10.0 * w.size * EPS * float(np.linalg.norm(G))
    trivial = min(smallest, 0.0) * float(farthest)
    return max(relaxation.bound, trivial)


# ---------------------------------------------------------------- pruning


def _obs_support(G: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """OBS / SparseGPT greedy: drop, one at a time, the weight whose removal (with the others
    re-fitted) costs least, ``w_i^2 / [H^-1]_ii``, on the damped Hessian ``G + lambda I``."""
    n = w.size
    inverse = np.linalg.inv(G + _damping(G) * np.eye(n))
    values = w.copy()
    alive = np.ones(n, bool)
    for _ in range(n - k):
        candidates = np.flatnonzero(alive)
        costs = values[candidates] ** 2 / np.diag(inverse)[candidates]
        i = int(candidates[np.argmin(costs)])
        column = inverse[:, i] / inverse[i, i]
        values -= values[i] * column
        inverse -= np.outer(column, inverse[i, :])
        alive[i] = False
        values[i] = 0.0
    return np.flatnonzero(alive)


def _swap_search(problem: ChunkProblem, support: np.ndarray, error: float
                 ) -> tuple[np.ndarray, float]:
    """Local search: swap one kept and one pruned weight while the box-constrained refit
    improves (candidates ranked by their unconstrained least-squares error)."""
    n = problem.n
    v, _ = problem.refit(support)
    while support.size and support.size < n:
        outside = np.setdiff1d(np.arange(n), support)
        swaps = np.array([np.sort(np.r_[np.delete(support, a), b])
                          for a in range(support.size) for b in outside])
        values = _prune_bnb.least_squares_on_supports(problem, swaps)
        bounds = _prune_bnb.support_bounds(problem, swaps, values)
        improved = False
        for row in np.argsort(bounds):
            if bounds[row] >= error * (1.0 - 1e-12):
                break
            candidate, candidate_error = problem.refit(swaps[row])
            if candidate_error < error * (1.0 - 1e-12):
                support, v, error, improved = swaps[row], candidate, candidate_error, True
                break
        if not improved:
            break
    return v, error


def _check_prune(G, w, k, lower, upper) -> tuple[ChunkProblem, int]:
    G, w = _check_chunk(G, w)
    k = _check_k(k, w.size)
    lower_, upper_ = _check_box(lower, upper, w.size)
    return ChunkProblem(G, w, lower_, upper_), k


def _prune_candidates(problem: ChunkProblem, k: int) -> dict[str, tuple[np.ndarray, float]]:
    n, w = problem.n, problem.w
    if k in (0, n):
        support = np.arange(k)
        return {"keep all" if k else "prune all": problem.refit(support)}
    supports = {
        "magnitude + refit": np.flatnonzero(magnitude_mask(w, (n - k) / n)),
        "obs greedy": _obs_support(problem.G, w, k),
    }
    candidates = {name: problem.refit(support) for name, support in supports.items()}
    start = best_method(candidates)
    candidates["swap search"] = _swap_search(problem, supports[start], candidates[start][1])
    return candidates


def prune_candidates(G: np.ndarray, w: np.ndarray, k: int, lower, upper
                     ) -> dict[str, tuple[np.ndarray, float]]:
    """Every pruning heuristic's ``(w_hat, error)`` with at most k non-zeros in the box, by name.

    ``magnitude + refit``: the k largest |w| kept and re-fitted (bounded least squares, scipy's
    ``lsq_linear``). ``obs greedy``: OBS/SparseGPT-style removal one weight at a time, then the
    same refit. ``swap search``: from the better of the two, swap a kept and a pruned weight
    while the error drops.
    """
    problem, k = _check_prune(G, w, k, lower, upper)
    return _prune_candidates(problem, k)


def prune_heuristic(G: np.ndarray, w: np.ndarray, k: int, lower, upper
                    ) -> tuple[np.ndarray, float]:
    """The best achievable pruned chunk found, ``(w_hat, E(w_hat))``; ``best_method`` on
    ``prune_candidates`` names the winner."""
    candidates = prune_candidates(G, w, k, lower, upper)
    return candidates[best_method(candidates)]


def _branch_and_bound(problem: ChunkProblem, k: int, enumeration_limit: int,
                      candidates: dict[str, tuple[np.ndarray, float]] | None = None
                      ) -> PruneSolution:
    """``prune_branch_and_bound`` on checked data; ``candidates``, the heuristics' results on
    the whole chunk, start the search when ``G`` sees every input (else they are recomputed on
    the inputs it sees)."""
    start = time.perf_counter()
    live = np.flatnonzero(np.diag(problem.G) > 0)
    w_hat = np.zeros(problem.n)
    if live.size <= k:
        w_hat, error = problem.refit(live)
        bound = float(_prune_bnb.support_bounds(problem, live[None], w_hat[None])[0])
        return PruneSolution(w_hat, error, min(bound, error), 1, 0, 1,
                             time.perf_counter() - start)
    if live.size == problem.n and candidates is not None:
        sub = problem
    else:
        sub = ChunkProblem(problem.G[np.ix_(live, live)], problem.w[live], problem.lower[live],
                           problem.upper[live])
        candidates = _prune_candidates(sub, k)
    solution = _prune_bnb.branch_and_bound(sub, k, candidates[best_method(candidates)][0],
                                           enumeration_limit)
    w_hat[live] = solution.w_hat
    error = problem.error(w_hat)
    return PruneSolution(w_hat, error, min(solution.lower_bound, error), solution.nodes,
                         solution.relaxations, solution.enumerated, time.perf_counter() - start)


def prune_branch_and_bound(G: np.ndarray, w: np.ndarray, k: int, lower, upper, *,
                           enumeration_limit: int = _prune_bnb.ENUMERATION_LIMIT
                           ) -> PruneSolution:
    """The exact optimum by branch and bound, with its certificate and search statistics.

    Inputs that ``G`` ignores (``G_ii = 0``, so the whole row is 0) are pruned for free; the
    rest is searched from the heuristic's incumbent (see ``pvq._prune_bnb``). A node with at
    most ``enumeration_limit`` ways to complete its support is solved by trying them all
    (0: relaxations down to the leaves).
    """
    problem, k = _check_prune(G, w, k, lower, upper)
    enumeration_limit = check_integer(enumeration_limit, "enumeration_limit", minimum=0)
    return _branch_and_bound(problem, k, enumeration_limit)


def prune_search(G: np.ndarray, w: np.ndarray, k: int, lower, upper
                 ) -> tuple[dict[str, tuple[np.ndarray, float]], PruneSolution]:
    """``(prune_candidates(...), prune_branch_and_bound(...))`` with the heuristics run once:
    their best result is the search's first incumbent."""
    problem, k = _check_prune(G, w, k, lower, upper)
    candidates = _prune_candidates(problem, k)
    return candidates, _branch_and_bound(problem, k, _prune_bnb.ENUMERATION_LIMIT, candidates)


def prune_exact(G: np.ndarray, w: np.ndarray, k: int, lower, upper) -> tuple[np.ndarray, float]:
    """The globally optimal pruned chunk ``(w_hat, E(w_hat))``: at most k non-zeros in the box,
    certified by branch and bound to within a relative gap of 1e-9."""
    solution = prune_branch_and_bound(G, w, k, lower, upper)
    return solution.w_hat, solution.error


def prune_brute_force(G: np.ndarray, w: np.ndarray, k: int, lower, upper
                      ) -> tuple[np.ndarray, float]:
    """The same optimum by trying every support of size k (``C(n, k)`` of them; small n only)."""
    problem, k = _check_prune(G, w, k, lower, upper)
    best_v, best_error = np.zeros(problem.n), problem.error(np.zeros(problem.n))
    batch = 20_000
    supports = itertools.combinations(range(problem.n), k)
    while chunk := list(itertools.islice(supports, batch)):
        v, error, _ = _prune_bnb.best_of_supports(problem, np.array(chunk, dtype=np.intp),
                                                  best_error)
        if v is not None:
            best_v, best_error = v, error
    return best_v, best_error


def prune_scip(G: np.ndarray, w: np.ndarray, k: int, lower, upper,
               time_limit: float | None = None) -> tuple[np.ndarray, float]:
    """The same problem as a mixed-integer QP solved by SCIP (PySCIPOpt), as in the paper's
    MOSEK model: binary mask m, ``lower m <= v <= upper m``, ``sum m <= k``, objective
    ``||R (v - w)||^2`` with ``R^T R = G`` (an epigraph variable and one convex quadratic row).
    """
    from pyscipopt import Model, quicksum

    problem, k = _check_prune(G, w, k, lower, upper)
    n = problem.n
    model = Model()
    model.hideOutput()
    if time_limit is not None:
        model.setParam("limits/time", check_positive(time_limit, "time_limit"))
    model.setParam("limits/gap", 1e-9)
    v = [model.addVar(lb=float(problem.lower[i]), ub=float(problem.upper[i])) for i in range(n)]
    m = [model.addVar(vtype="B") for _ in range(n)]
    for i in range(n):
        model.addCons(v[i] <= float(problem.upper[i]) * m[i])
        model.addCons(v[i] >= float(problem.lower[i]) * m[i])
    model.addCons(quicksum(m) <= k)
    residual = [model.addVar(lb=None) for _ in range(n)]
    for j in range(n):
        model.addCons(residual[j] == quicksum(float(problem.R[j, i]) * (v[i] - float(w_i))
                                              for i, w_i in enumerate(problem.w)))
    epigraph = model.addVar(lb=0.0)
    model.addCons(quicksum(r * r for r in residual) <= epigraph)
    model.setObjective(epigraph, "minimize")
    model.optimize()
    if model.getNSols() == 0:
        raise RuntimeError(f"SCIP found no solution (status {model.getStatus()})")
    solution = model.getBestSol()
    w_hat = np.array([solution[var] for var in v])
    w_hat[np.array([solution[var] for var in m]) < 0.5] = 0.0
    w_hat = np.clip(w_hat, problem.lower, problem.upper)
    return w_hat, problem.error(w_hat)
