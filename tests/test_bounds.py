"""Per-chunk bounds: heuristics, the certified SDP bound and the exact branch and bound, checked
against exhaustive search, SCIP (PySCIPOpt), scipy's bounded least squares and cvxpy."""

import itertools

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import lsq_linear

from pvq import _prune_bnb, _quant_sdp
from pvq.bounds import (
    best_method,
    chunk_error,
    equal_compression_k,
    layer_chunks,
    prune_branch_and_bound,
    prune_brute_force,
    prune_candidates,
    prune_exact,
    prune_heuristic,
    prune_scip,
    pruning_box,
    quant_candidates,
    quant_heuristic,
    quant_sdp_bound,
    quant_sdp_relaxation,
    sdp_samples,
    synthetic_chunk,
)
from pvq.layer_bounds import layer_problem, sample_chunks
from pvq.quantize import grid_limits, mse_scale, quantize


def grid_optimum(G, w, bits, scale) -> float:
    """min over every grid point (tiny n only)."""
    lowest, highest = grid_limits(bits)
    points = np.array(list(itertools.product(range(lowest, highest + 1), repeat=w.size)), float)
    residuals = scale * points - w
    return float(np.einsum("ij,jk,ik->i", residuals, G, residuals).min())


def mask_optimum(G, w, k, lower, upper) -> float:
    """min over every mask with k kept weights, each refitted by scipy's bounded least squares."""
    root = np.linalg.cholesky(G + 1e-12 * np.trace(G) * np.eye(w.size)).T
    best = float(w @ G @ w)
    for support in itertools.combinations(range(w.size), k):
        support = list(support)
        fit = lsq_linear(root[:, support], root @ w, bounds=(lower, upper), method="bvls")
        v = np.zeros(w.size)
        v[support] = fit.x
        best = min(best, float((v - w) @ G @ (v - w)))
    return best


# ---------------------------------------------------------------- chunks and definitions


def test_layer_chunks_cut_inputs_into_blocks_of_at_most_32_per_output():
    rng = np.random.default_rng(0)
    W, X = rng.standard_normal((3, 70)), rng.standard_normal((50, 70))
    chunks = layer_chunks(W, X)
    assert len(chunks) == 3 * 3
    assert [c.w.size for c in chunks if c.output == 1] == [32, 32, 6]
    last = chunks[-1]
    np.testing.assert_array_equal(last.w, W[2, 64:])
    np.testing.assert_allclose(last.G, X[:, 64:].T @ X[:, 64:])
    w_hat = last.w + rng.standard_normal(6)
    expected = np.sum((X[:, 64:] @ (w_hat - last.w)) ** 2)
    assert chunk_error(last.G, last.w, w_hat) == pytest.approx(expected, rel=1e-10)


def test_equal_compression_and_the_papers_box():
    assert [equal_compression_k(32, b) for b in (2, 3, 4, 8)] == [4, 6, 8, 16]
    assert pruning_box(np.array([[-0.5, 0.2], [0.1, 0.3]])) == (-1.0, 0.6)
    assert pruning_box(np.array([0.1, 0.3])) == (0.0, 0.6)


# ---------------------------------------------------------------- quantization


@pytest.mark.parametrize("seed", range(3))
def test_sdp_bound_is_below_the_exhaustive_grid_optimum(seed):
    n, bits = 3 + seed % 2, 2
    G, w = synthetic_chunk(n, seed)
    scale = mse_scale(w, bits)
    optimum = grid_optimum(G, w, bits, scale)
    boxed = quant_sdp_bound(G, w, bits, scale)
    paper = quant_sdp_bound(G, w, bits, scale, box=False)
    assert 0.0 <= paper <= boxed * (1 + 1e-6) + 1e-9
    assert boxed <= optimum


def test_certificate_is_the_solvers_value_up_to_its_tolerance():
    G, w = synthetic_chunk(8, 3)
    relaxation = quant_sdp_relaxation(G, w, 3, mse_scale(w, 3))
    assert relaxation.bound <= relaxation.solver_value * (1 + 1e-9) + 1e-12
    # Clarabel stops at 1e-6 without iterative refinement (pvq._quant_sdp.SOLVER_OPTIONS): its
    # duals certify a bound within 0.1 % of its value (under 0.005 dB)
    assert relaxation.bound == pytest.approx(relaxation.solver_value, rel=1e-3)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 2.0), st.floats(-3.0, 3.0))
def test_any_multipliers_give_a_valid_grid_bound(seed, size, shift):
    """The certificate needs no accurate solver: random multipliers and a random t still give a
    lower bound on every grid point (here checked against all of them)."""
    n, bits = 3, 2
    G, w = synthetic_chunk(n, seed)
    scale = mse_scale(w, bits)
    lowest, highest = grid_limits(bits)
    center = np.floor(w / scale)
    offset = scale * center - w
    C = np.block([[scale**2 * G, (scale * G @ offset)[:, None]],
                  [(scale * G @ offset)[None, :], np.array([[offset @ G @ offset]])]])
    a, b = lowest - center, highest - center
    table = _quant_sdp.cut_table(a, b, box=True)
    lam = size * np.random.default_rng(seed).random(table[0].size)
    trace_bound = 1.0 + float(np.maximum(a**2, b**2).sum())
    bound = _quant_sdp.certified_bound(C, table, lam, trace_bound, guess=shift * C[n, n])
    assert bound <= grid_optimum(G, w, bits, scale)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_bound_below_heuristic_below_round_to_nearest(bits):
    G, w = synthetic_chunk(16, bits)
    scale = mse_scale(w, bits)
    x, error = quant_heuristic(G, w, bits, scale)
    nearest = quantize(w, bits, scale)
    assert chunk_error(G, w, scale * x) == pytest.approx(error, rel=1e-12)
    assert error <= chunk_error(G, w, nearest) * (1 + 1e-12)
    lowest, highest = grid_limits(bits)
    assert x.dtype == np.int64 and x.min() >= lowest and x.max() <= highest
    assert quant_sdp_bound(G, w, bits, scale) <= error


def test_candidates_name_their_method_and_sdp_rounding_joins_them():
    G, w = synthetic_chunk(10, 5)
    scale = mse_scale(w, 3)
    relaxation = quant_sdp_relaxation(G, w, 3, scale)
    candidates = quant_candidates(G, w, 3, scale, relaxation=relaxation)
    starts = ("nearest", "gptq", "gptq act-order", "sdp rounding", "sdp one-opt (authors)")
    assert set(starts) <= set(candidates)
    for name in starts:
        assert candidates[name + " + greedy"][1] <= candidates[name][1] * (1 + 1e-12)
    winner = best_method(candidates)
    assert candidates[winner][1] == min(error for _, error in candidates.values())
    assert relaxation.bound <= candidates[winner][1]


def test_with_uncorrelated_inputs_rounding_to_nearest_is_optimal_and_the_bound_exact():
    """Diagonal G makes the error separable: the heuristic must find round-to-nearest, and the
    boxed relaxation is exact (its secants are the convex hull of the points (m, m^2))."""
    rng = np.random.default_rng(4)
    G, w = np.diag(rng.uniform(0.5, 2.0, 4)), 1.5 * rng.standard_normal(4)
    scale = mse_scale(w, 2)
    optimum = grid_optimum(G, w, 2, scale)
    x, error = quant_heuristic(G, w, 2, scale)
    assert error == pytest.approx(optimum, rel=1e-12)
    np.testing.assert_array_equal(scale * x, quantize(w, 2, scale))
    assert quant_sdp_bound(G, w, 2, scale) == pytest.approx(optimum, rel=1e-5)


# ---------------------------------------------------------------- pruning


@pytest.mark.parametrize("n, k, box", [(6, 2, 0.8), (8, 3, 1.5), (9, 4, 0.6), (10, 3, 2.0)])
def test_exact_pruning_equals_every_mask_tried(n, k, box):
    """Brute force with scipy's lsq_linear over all C(n, k) masks; the search must agree both
    when it enumerates and when it branches down to the leaves (enumeration_limit=0)."""
    G, w = synthetic_chunk(n, 10 * n + k)
    lower, upper = -box * np.abs(w).max(), box * np.abs(w).max()
    expected = mask_optimum(G, w, k, lower, upper)
    for limit in (0, 300):
        solution = prune_branch_and_bound(G, w, k, lower, upper, enumeration_limit=limit)
        assert solution.error == pytest.approx(expected, rel=1e-7)
        assert solution.lower_bound <= expected * (1 + 1e-9)
        assert np.count_nonzero(solution.w_hat) <= k
        assert np.all(solution.w_hat >= lower - 1e-12) and np.all(solution.w_hat <= upper + 1e-12)
    assert prune_brute_force(G, w, k, lower, upper)[1] == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("seed", [1, 2])
def test_exact_pruning_equals_scip(seed):
    G, w = synthetic_chunk(12, seed)
    lower, upper = pruning_box(w)
    _, scip_error = prune_scip(G, w, 3, lower, upper)
    w_hat, error = prune_exact(G, w, 3, lower, upper)
    assert error <= scip_error * (1 + 1e-9)
    assert error == pytest.approx(scip_error, rel=1e-6)
    assert chunk_error(G, w, w_hat) == pytest.approx(error, rel=1e-12)


def test_branch_and_bound_certifies_a_32_input_chunk_at_4_bit_compression():
    G, w = synthetic_chunk(32, 7, rows=256)
    lower, upper = pruning_box(w)
    solution = prune_branch_and_bound(G, w, 8, lower, upper)
    heuristic = prune_heuristic(G, w, 8, lower, upper)[1]
    assert solution.gap <= 1e-9
    assert solution.error <= heuristic * (1 + 1e-12)
    assert solution.relaxations > 0


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 3))
def test_node_dual_bound_holds_for_any_delta(seed, fixed):
    """The closed-form node bound is valid for every ``delta``: checked against brute force
    over the node's completions, with a random ``delta`` and the node's certified diagonal."""
    n, k = 7, 3
    G, w = synthetic_chunk(n, seed)
    rng = np.random.default_rng(seed)
    problem = _prune_bnb.ChunkProblem(G, w, np.full(n, -2.0), np.full(n, 2.5))
    fixed_in, free = np.arange(min(fixed, k)), np.arange(min(fixed, k), n - 1)
    d = _prune_bnb.node_diagonal(problem, fixed_in, free)
    delta = w - rng.standard_normal(n) * rng.uniform(0, 2)
    budget = k - fixed_in.size
    bound = _prune_bnb.dual_bound(problem, fixed_in, free, budget, delta, d)
    completions = [list(fixed_in) + list(c) for c in itertools.combinations(free, budget)]
    best = min(problem.refit(np.array(s, dtype=np.intp))[1] for s in completions)
    assert bound <= best * (1 + 1e-12) + 1e-12


def test_node_relaxation_matches_cvxpy():
    """The hand-built Clarabel relaxation has the value cvxpy finds for the same model."""
    n, k = 8, 3
    G, w = synthetic_chunk(n, 11)
    lower, upper = np.full(n, -3.0), np.full(n, 3.0)
    problem = _prune_bnb.ChunkProblem(G, w, lower, upper)
    fixed_in, free = np.array([2]), np.array([0, 1, 3, 4, 5, 6])
    d = np.maximum(_prune_bnb.node_diagonal(problem, fixed_in, free), 0.0)
    v_ours, _ = _prune_bnb.solve_relaxation(problem, fixed_in, free, k - 1, d)
    v, z, s = cp.Variable(n), cp.Variable(n), cp.Variable(n)
    constraints = [v[7] == 0, cp.sum(z[free]) <= k - 1, z >= 0, z <= 1,
                   v[free] >= cp.multiply(lower[free], z[free]),
                   v[free] <= cp.multiply(upper[free], z[free]),
                   v[2] >= lower[2], v[2] <= upper[2]]
    constraints += [cp.quad_over_lin(v[i], z[i]) <= s[i] for i in free if d[i] > 0]
    Q = G - np.diag(d)
    objective = cp.quad_form(v - w, cp.psd_wrap(Q)) + sum(
        d[i] * (s[i] - 2 * v[i] * w[i] + w[i] ** 2) for i in free if d[i] > 0)
    value = cp.Problem(cp.Minimize(objective), constraints).solve(solver="CLARABEL")
    ours = _prune_bnb.dual_bound(problem, fixed_in, free, k - 1, w - v_ours, d)
    assert ours == pytest.approx(value, rel=1e-5)


def test_diagonal_inputs_keep_the_k_largest_contributions():
    rng = np.random.default_rng(2)
    g, w = rng.uniform(0.5, 2.0, 12), rng.standard_normal(12)
    keep = np.argsort(-g * w**2)[:4]
    w_hat, error = prune_exact(np.diag(g), w, 4, -3.0, 3.0)
    np.testing.assert_allclose(w_hat[keep], w[keep], atol=1e-9)
    assert error == pytest.approx(np.sum(np.delete(g * w**2, keep)), rel=1e-9)


def test_inputs_that_never_fire_are_pruned_for_free():
    G, w = synthetic_chunk(9, 3)
    G[[1, 5], :] = 0.0
    G[:, [1, 5]] = 0.0
    w_hat, error = prune_exact(G, w, 3, -4.0, 4.0)
    assert w_hat[1] == 0.0 and w_hat[5] == 0.0
    assert error == pytest.approx(mask_optimum(np.delete(np.delete(G, [1, 5], 0), [1, 5], 1),
                                               np.delete(w, [1, 5]), 3, -4.0, 4.0), rel=1e-7)


def test_heuristics_improve_on_magnitude_and_the_exact_search_on_them():
    G, w = synthetic_chunk(20, 9)
    lower, upper = pruning_box(w)
    candidates = prune_candidates(G, w, 5, lower, upper)
    assert set(candidates) == {"magnitude + refit", "obs greedy", "swap search"}
    heuristic = prune_heuristic(G, w, 5, lower, upper)[1]
    assert heuristic <= candidates["magnitude + refit"][1]
    assert prune_exact(G, w, 5, lower, upper)[1] <= heuristic * (1 + 1e-12)


def authors_one_opt(G, w, bits, scale, samples) -> float:
    """The authors' achievable error, written from their ``icqm`` / ``oneopt_clipped``
    (quantization/optimizers_sdp.py), one sample at a time: round the sample, repeat the
    single-coordinate move that lowers ``x^T P x + 2 q^T x`` most until ``P_ii >= |g_i|``
    for all i, clip to the grid; the best sample's error. Zero rows of P are left alone, as
    their code removes them."""
    lowest, highest = grid_limits(bits)
    P, q = scale**2 * G, -scale * (G @ w)
    live = np.diag(P) > 0
    best = np.inf
    for sample in samples:
        x = np.round(sample)
        g = 2.0 * (P @ x + q)
        while not np.all(np.diag(P)[live] >= np.abs(g[live])):
            c = np.zeros(w.size)
            c[live] = np.round(-g[live] / (2.0 * np.diag(P)[live]))
            i = int(np.argmin(c**2 * np.diag(P) + c * g))
            x[i] += c[i]
            g += 2.0 * c[i] * P[:, i]
        x = np.clip(x, lowest, highest)
        best = min(best, float((scale * x - w) @ G @ (scale * x - w)))
    return best


REAL_CHUNKS = [(model, layer, chunk) for model, layer in
               [("digits_cnn", "conv2"), ("digits_mlp", "fc2"), ("minilm", "blocks.1.mlp.fc2")]
               for chunk in sample_chunks(*layer_problem(model, layer), 2, seed=7)]


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("model, layer, chunk", REAL_CHUNKS,
                         ids=[f"{m}-{layer}-{c.output}" for m, layer, c in REAL_CHUNKS])
def test_plain_heuristic_is_never_worse_than_the_authors_procedure(model, layer, chunk, bits):
    """18 chunk problems of three course layers: ``quant_heuristic(G, w, bits, scale)`` with no
    further argument is at most the authors' one-coordinate descent from every SDP sample
    (the same samples: the library solves the same relaxation deterministically)."""
    W = layer_problem(model, layer).w
    scale = mse_scale(W[:, chunk.inputs], bits)  # the paper's scale for the input slice
    relaxation = quant_sdp_relaxation(chunk.G, chunk.w, bits, scale)
    theirs = authors_one_opt(chunk.G, chunk.w, bits, scale, sdp_samples(relaxation))
    candidates = quant_candidates(chunk.G, chunk.w, bits, scale, relaxation)
    assert candidates["sdp one-opt (authors)"][1] == pytest.approx(theirs, rel=1e-9)
    _, ours = quant_heuristic(chunk.G, chunk.w, bits, scale)
    assert ours <= theirs * (1 + 1e-12)
    assert relaxation.bound <= ours


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 12), st.integers(0, 10_000), st.integers(2, 4))
def test_authors_descent_matches_their_loop_on_synthetic_chunks(n, seed, bits):
    G, w = synthetic_chunk(n, seed)
    G[:, 0] = G[0, :] = 0.0  # an input that never fires: their code drops its zero row
    scale = mse_scale(w, bits)
    relaxation = quant_sdp_relaxation(G, w, bits, scale)
    theirs = authors_one_opt(G, w, bits, scale, sdp_samples(relaxation))
    candidates = quant_candidates(G, w, bits, scale, relaxation)
    assert candidates["sdp one-opt (authors)"][1] == pytest.approx(theirs, rel=1e-9, abs=1e-12)
    assert quant_heuristic(G, w, bits, scale, relaxation=relaxation)[1] <= theirs + 1e-12


def test_sdp_samples_are_3n_seeded_draws_around_the_relaxed_point():
    G, w = synthetic_chunk(6, 1)
    relaxation = quant_sdp_relaxation(G, w, 3, mse_scale(w, 3))
    samples = sdp_samples(relaxation)
    assert samples.shape == (18, 6)
    np.testing.assert_array_equal(samples, sdp_samples(relaxation))
    with pytest.raises(TypeError, match="relaxation"):
        sdp_samples("not a relaxation")


def test_a_box_of_zero_width_forces_the_pruned_weights_to_zero():
    G, w = synthetic_chunk(8, 1)
    w_hat, error = prune_exact(G, w, 3, 0.0, 0.0)
    np.testing.assert_array_equal(w_hat, np.zeros(8))
    assert error == pytest.approx(float(w @ G @ w), rel=1e-12)
    lower, upper = np.r_[0.0, 0.0, -np.ones(6)], np.r_[0.0, 0.0, np.ones(6)]
    w_hat, error = prune_exact(G, w, 3, lower, upper)
    assert w_hat[0] == w_hat[1] == 0.0
    assert error == pytest.approx(prune_brute_force(G, w, 3, lower, upper)[1], rel=1e-9)


def test_numpy_integers_are_integers_and_bools_are_not():
    assert equal_compression_k(np.int64(32), np.int64(2)) == 4
    G, w = synthetic_chunk(np.int64(5), np.int64(3), rows=np.int32(7))
    assert G.shape == (5, 5)
    assert prune_branch_and_bound(G, w, np.int64(2), -3, 3, enumeration_limit=np.int64(0)).gap \
        < 1e-6
    assert len(layer_chunks(np.ones((2, 6)), np.ones((4, 6)), size=np.int64(4))) == 4
    with pytest.raises(TypeError, match="n must be an integer"):
        equal_compression_k(True, 2)
    with pytest.raises(TypeError, match="size"):
        layer_chunks(np.ones((2, 6)), np.ones((4, 6)), size=4.0)


# ---------------------------------------------------------------- bad input


G_GOOD, W_GOOD = synthetic_chunk(4, 0)


@pytest.mark.parametrize("call, error, word", [
    (lambda: prune_exact(np.array([[1.0, 2.0], [2.0, 1.0]]), np.ones(2), 1, -1, 1),
     ValueError, "positive semidefinite"),
    (lambda: prune_exact(np.ones((3, 4)), np.ones(3), 1, -1, 1), ValueError, "square"),
    (lambda: prune_exact(np.array([[1.0, 0.5], [0.0, 1.0]]), np.ones(2), 1, -1, 1),
     ValueError, "symmetric"),
    (lambda: prune_exact(G_GOOD, np.ones(5), 1, -1, 1), ValueError, "G must be 5 x 5"),
    (lambda: prune_exact(G_GOOD, np.ones((4, 1)), 1, -1, 1), ValueError, "w must be a 1-D"),
    (lambda: prune_exact(G_GOOD, W_GOOD, 5, -1, 1), ValueError, "k must be between"),
    (lambda: prune_exact(G_GOOD, W_GOOD, 2.0, -1, 1), TypeError, "k must be an integer"),
    (lambda: prune_heuristic(G_GOOD, W_GOOD, 2, 1.0, -1.0), ValueError, "lower must be <="),
    (lambda: prune_heuristic(G_GOOD, W_GOOD, 2, 0.5, 1.0), ValueError, "contain 0"),
    (lambda: prune_heuristic(G_GOOD, W_GOOD, 2, -1.0, np.ones(3)), ValueError, "upper must"),
    (lambda: prune_heuristic(G_GOOD, W_GOOD, 2, "a", 1.0), TypeError, "lower"),
    (lambda: quant_heuristic(G_GOOD, W_GOOD, 0, 0.1), ValueError, "bits"),
    (lambda: quant_heuristic(G_GOOD, W_GOOD, 2.5, 0.1), TypeError, "bits"),
    (lambda: quant_sdp_bound(G_GOOD, W_GOOD, 4, 0.0), ValueError, "scale"),
    (lambda: quant_sdp_bound(G_GOOD, W_GOOD, 4, float("nan")), ValueError, "scale"),
    (lambda: quant_sdp_bound(np.full((4, 4), np.nan), W_GOOD, 4, 0.1), ValueError, "G"),
    (lambda: layer_chunks(np.ones((2, 3)), np.ones((5, 4))), ValueError, "same number"),
    (lambda: synthetic_chunk(4, rows=0), ValueError, "rows"),
    (lambda: synthetic_chunk(4, rows=-3), ValueError, "rows"),
    (lambda: synthetic_chunk(4, rows=2.5), TypeError, "rows"),
    (lambda: synthetic_chunk(0), ValueError, "n must"),
    (lambda: synthetic_chunk(4, seed=-1), ValueError, "seed"),
    (lambda: quant_candidates(G_GOOD, W_GOOD, 2, 0.1, relaxation="x"), TypeError, "relaxation"),
])
def test_bad_input_is_named(call, error, word):
    with pytest.raises(error, match=word):
        call()
