"""Per-layer SNR ranges: chunk sampling, the paper's layer SNR, the bracket of every chunk and
the per-layer table, checked against exhaustive search and the weight SNR of pvq.metrics."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvq import obs
from pvq.bounds import (
    LayerChunk,
    chunk_error,
    layer_chunks,
    prune_branch_and_bound,
    prune_brute_force,
    prune_candidates,
    prune_search,
    pruning_box,
    quant_candidates,
    synthetic_chunk,
)
from pvq.layer_bounds import (
    COURSE_LAYERS,
    ERROR_COLUMNS,
    GAP_METHODS,
    bootstrap_snr_intervals,
    bracket_chunk,
    chunk_scales,
    layer_problem,
    layer_snr_db,
    optimality_gaps,
    output_fit_allowed,
    sample_chunks,
    snr_ranges,
    sweep_layer,
    sweep_layers,
    verdict,
)
from pvq.metadata import (
    binary_entropy,
    pruning_bits_per_weight,
    pruning_k,
    scale_bits_per_weight,
)
from pvq.metrics import snr_db
from pvq.quantize import grid_limits, mse_scale, quantize


def tiny_layer(outputs=3, inputs=12, samples=40, seed=0):
    """A layer with correlated, offset inputs (like neighbouring pixels after a ReLU)."""
    rng = np.random.default_rng(seed)
    X = np.cumsum(rng.standard_normal((samples, inputs)), axis=1) / 3 + rng.random((samples, 1))
    return rng.standard_normal((outputs, inputs)), X


@pytest.fixture(scope="module")
def tiny_sweep():
    W, X = tiny_layer(inputs=16)
    return sweep_layer(W, X, bit_widths=(2, 3), count=4, seed=1, size=8)


def grid_optimum(G, w, bits, scale) -> float:
    """min over every grid point (tiny n only)."""
    lowest, highest = grid_limits(bits)
    points = np.array(list(itertools.product(range(lowest, highest + 1), repeat=w.size)), float)
    residuals = scale * points - w
    return float(np.einsum("ij,jk,ik->i", residuals, G, residuals).min())


# ---------------------------------------------------------------- sampling


def test_sampled_chunks_are_the_layers_chunks_and_the_same_for_a_seed():
    W, X = tiny_layer(outputs=5, inputs=20)
    everything = {(c.output, c.inputs.start): c for c in layer_chunks(W, X, size=8)}
    sample = sample_chunks(W, X, 6, seed=3, size=8)
    assert len(sample) == 6 and len({(c.output, c.inputs.start) for c in sample}) == 6
    for chunk in sample:
        same = everything[(chunk.output, chunk.inputs.start)]
        assert chunk.inputs == same.inputs
        np.testing.assert_array_equal(chunk.w, same.w)
        np.testing.assert_array_equal(chunk.G, same.G)
    again = sample_chunks(W, X, 6, seed=3, size=8)
    assert [(c.output, c.inputs) for c in again] == [(c.output, c.inputs) for c in sample]
    other = sample_chunks(W, X, 6, seed=4, size=8)
    assert [(c.output, c.inputs) for c in other] != [(c.output, c.inputs) for c in sample]
    assert len(sample_chunks(W, X, 15, size=8)) == len(everything) == 15  # the whole layer


@pytest.mark.parametrize("count, size, word", [(16, 8, "count"), (0, 8, "count"),
                                               (2, 0, "size"), (True, 8, "count")])
def test_sampling_rejects_bad_counts(count, size, word):
    W, X = tiny_layer(outputs=5, inputs=20)
    with pytest.raises(ValueError, match=word):
        sample_chunks(W, X, count, size=size)


def test_sampling_rejects_mismatched_layers():
    W, X = tiny_layer()
    with pytest.raises(ValueError, match="same number of columns"):
        sample_chunks(W, X[:, :-1], 2)


# ---------------------------------------------------------------- the layer SNR


def test_layer_snr_is_the_papers_ratio_of_sums():
    assert layer_snr_db([1.0, 3.0], [100.0, 300.0]) == pytest.approx(20.0)
    assert layer_snr_db([0.5, 0.5], [10.0, 0.0]) == pytest.approx(10.0)
    assert layer_snr_db([0.0, 0.0], [1.0, 2.0]) == math.inf


def test_with_identity_inputs_the_layer_snr_is_the_weight_snr():
    """X = I makes G = I per chunk: output error = weight error, so the paper's layer SNR is
    pvq.metrics.snr_db of the whole weight matrix."""
    W = np.random.default_rng(2).standard_normal((4, 10))
    W_hat = quantize(W, 3, mse_scale(W, 3))
    chunks = layer_chunks(W, np.eye(10), size=4)
    errors = [float((W_hat[c.output, c.inputs] - c.w) @ c.G @ (W_hat[c.output, c.inputs] - c.w))
              for c in chunks]
    energies = [float(c.w @ c.G @ c.w) for c in chunks]
    assert layer_snr_db(errors, energies) == pytest.approx(snr_db(W, W_hat), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1e3), st.floats(1e-3, 1e3)), min_size=1, max_size=8),
       st.floats(1e-3, 1e3))
def test_layer_snr_ignores_units_and_drops_with_more_error(pairs, factor):
    errors, energies = map(np.array, zip(*pairs))
    errors = errors + 1e-6
    snr = layer_snr_db(errors, energies)
    assert layer_snr_db(factor * errors, factor * energies) == pytest.approx(snr, abs=1e-9)
    assert layer_snr_db(errors + 1.0, energies) < snr


@pytest.mark.parametrize("errors, energies, word", [
    ([1.0], [1.0, 2.0], "same"), ([], [], "same"), ([-1.0], [1.0], "non-negative"),
    ([1.0], [0.0], "sum to 0"), ([np.inf], [1.0], "finite"), ([1.0], [np.nan], "finite")])
def test_layer_snr_rejects_bad_input(errors, energies, word):
    with pytest.raises(ValueError, match=word):
        layer_snr_db(errors, energies)


# ---------------------------------------------------------------- brackets of chunks


def test_every_bracket_is_ordered(tiny_sweep):
    rows = tiny_sweep
    slack = 1e-9 * rows.energy
    assert (rows.quant_bound <= rows.quant_heuristic + slack).all()
    assert (rows.quant_heuristic <= rows.quant_nearest + slack).all()
    assert (rows.prune_bound <= rows.prune_exact + slack).all()
    assert (rows.prune_exact <= rows.prune_heuristic + slack).all()
    assert (rows.prune_heuristic <= rows.prune_magnitude + slack).all()
    # 3 outputs x 16 inputs in slices of 8: 16 bits of scale per slice add 2/3 bit per weight;
    # pruning keeps the most values that fit: 16 k / n <= b + 2/3, one of 8 at 2 and 3 bits
    assert np.allclose(rows.scale_bits, 16 * 2 / 48) and (rows.granularity == "input slice").all()
    assert list(rows.k) == [1] * 8 and list(rows.n) == [8] * 8
    assert (rows.prune_bits <= rows.quant_bits + 1e-12).all() and (rows["mask"] == "none").all()
    assert len(rows) == 8 and set(rows.bits) == {2, 3}


def test_a_bracket_holds_the_exhaustive_optima():
    W, X = tiny_layer()
    chunk = sample_chunks(W, X, 1, size=6)[0]
    lower, upper = pruning_box(W)
    row = bracket_chunk(chunk, 2, lower, upper)
    optimum = grid_optimum(chunk.G, chunk.w, 2, mse_scale(chunk.w, 2))
    assert row["quant_bound"] <= optimum * (1 + 1e-9) <= row["quant_heuristic"] * (1 + 2e-9)
    _, best = prune_brute_force(chunk.G, chunk.w, row["k"], lower, upper)
    assert row["prune_exact"] == pytest.approx(best, rel=1e-7)
    assert row["prune_gap"] < 1e-6


def test_the_sweep_is_the_same_twice(tiny_sweep):
    W, X = tiny_layer(inputs=16)
    again = sweep_layer(W, X, bit_widths=(2, 3), count=4, seed=1, size=8)
    pd.testing.assert_frame_equal(again, tiny_sweep, check_exact=False, rtol=1e-9)


# ---------------------------------------------------------------- per-layer table


def test_snr_ranges_are_ordered_and_certified(tiny_sweep):
    table = snr_ranges(tiny_sweep.assign(model="tiny", layer="dense"))
    assert list(table.bits) == [2, 3] and list(table.chunks) == [4, 4]
    assert list(table.sparsity) == [0.875, 0.875]
    columns = list(ERROR_COLUMNS.values())
    nearest, heuristic, bound, magnitude, prune_heuristic, exact, prune_bound = (
        table[c] for c in columns)
    assert (nearest <= heuristic + 1e-9).all() and (heuristic <= bound + 1e-9).all()
    assert (magnitude <= prune_heuristic + 1e-9).all() and (prune_heuristic <= exact + 1e-9).all()
    assert np.allclose(exact, prune_bound, atol=1e-6) and table.certified.all()
    rows = tiny_sweep[tiny_sweep.bits == 2]
    assert table.loc[0, "quant bound (dB)"] == pytest.approx(
        -10 * np.log10(rows.quant_bound.sum() / rows.energy.sum()))


@pytest.mark.parametrize("ranges, expected", [
    ((20, 25, 10, 10), "quantization"), ((5, 8, 10, 10), "pruning"),
    ((9, 12, 10, 10), "not decided"), ((10, 12, 10, 10), "not decided"),
    ((20, 25, 18, 21), "not decided"), ((np.float32(20), math.inf, 10, 10), "quantization"),
    ((np.int64(5), 8, 10, math.inf), "pruning")])
def test_verdict_needs_ranges_that_do_not_overlap(ranges, expected):
    assert verdict(*ranges) == expected


@pytest.mark.parametrize("ranges, error, word", [
    ((math.nan, 25, 10, 10), ValueError, "quant_low"), ((20, 25, 10, math.nan), ValueError,
                                                        "prune_high"),
    (("20", 25, 10, 10), TypeError, "quant_low"), ((20, 25, True, 10), TypeError, "prune_low"),
    ((26, 25, 10, 10), ValueError, "quant_low must be <= quant_high"),
    ((20, 25, 11, 10), ValueError, "prune_low must be <= prune_high")])
def test_verdict_rejects_bad_ranges(ranges, error, word):
    with pytest.raises(error, match=word):
        verdict(*ranges)


def test_snr_ranges_put_bootstrap_intervals_around_each_end(tiny_sweep):
    table = snr_ranges(tiny_sweep.assign(model="tiny", layer="dense"))
    for end in ("quant heuristic", "quant bound", "prune exact", "prune bound"):
        low, point, high = (table[f"{end} low (dB)"], table[f"{end} (dB)"],
                            table[f"{end} high (dB)"])
        assert (low <= point + 1e-9).all() and (point <= high + 1e-9).all()
        assert (low < high).all()
    # the verdict uses the outer ends of the intervals, so it is never bolder than the points
    for _, row in table.iterrows():
        assert row.verdict == verdict(row["quant heuristic low (dB)"],
                                      row["quant bound high (dB)"], row["prune exact low (dB)"],
                                      row["prune bound high (dB)"])


def test_bootstrap_interval_is_exact_for_identical_chunks_and_covers_the_ratio():
    same = pd.DataFrame({"a": [2.0] * 5, "b": [1.0, 2.0, 3.0, 4.0, 50.0]})
    intervals = bootstrap_snr_intervals(same, [10.0] * 5)
    assert intervals["a"] == pytest.approx((10 * math.log10(5), 10 * math.log10(5)))
    low, high = intervals["b"]
    assert low < -10 * math.log10(60 / 50) < high
    with pytest.raises(ValueError, match="level"):
        bootstrap_snr_intervals(same, [10.0] * 5, level=1.5)
    with pytest.raises(ValueError, match="one row per chunk"):
        bootstrap_snr_intervals(same, [10.0] * 4)


def test_snr_ranges_names_missing_columns(tiny_sweep):
    with pytest.raises(ValueError, match="layer"):
        snr_ranges(tiny_sweep)


def test_sweep_layers_labels_real_layers():
    table = sweep_layers([("digits_cnn", "conv1")], bit_widths=(2,), count=2)
    assert list(table.model) == ["digits_cnn"] * 2 and list(table.layer) == ["conv1"] * 2
    assert list(table["chunks in layer"]) == [16, 16] and list(table.n) == [9, 9]


def test_layer_problem_reads_both_sources():
    W, X = layer_problem("minilm", "blocks.1.attn.query")
    assert W.shape == (384, 384) and X.shape[1] == 384
    W, X = layer_problem("digits_mlp", "fc3")
    assert W.shape == (10, 256) and X.shape == (256, 256)
    with pytest.raises(ValueError, match="model"):
        layer_problem("resnet", "fc")


@pytest.mark.parametrize("model, layer", COURSE_LAYERS)
def test_every_course_layer_is_a_least_squares_problem(model, layer):
    W, X = layer_problem(model, layer)
    assert W.ndim == X.ndim == 2 and W.shape[1] == X.shape[1]
    assert np.isfinite(W).all() and np.isfinite(X).all() and np.abs(X @ W.T).max() > 0


# ---------------------------------------------------------------- scale granularity and metadata


def test_chunk_scales_follow_the_granularity():
    W, X = tiny_layer(outputs=4, inputs=16)
    chunk = sample_chunks(W, X, 1, seed=2, size=8)[0]
    o, inputs = chunk.output, chunk.inputs
    expected = {"tensor": mse_scale(W, 2), "input slice": mse_scale(W[:, inputs], 2),
                "output channel": mse_scale(W[o], 2)}
    for granularity, scale in expected.items():
        np.testing.assert_array_equal(chunk_scales(W, chunk, 2, granularity), np.full(8, scale))
    groups = chunk_scales(W, chunk, 2, 4)
    for start in (0, 4):
        first = inputs.start + start
        assert (groups[start:start + 4] == mse_scale(W[o, first:first + 4], 2)).all()
    with pytest.raises(ValueError, match="granularity"):
        chunk_scales(W, chunk, 2, "per row")
    with pytest.raises(TypeError, match="granularity"):
        chunk_scales(W, chunk, 2, 2.5)


def rtn_output_error(chunk, bits, scales):
    return chunk_error(chunk.G, chunk.w, scales * quantize(chunk.w / scales, bits, 1.0))


@pytest.mark.parametrize("seed", range(6))
def test_output_fitted_scales_never_lose_to_the_mse_scales_on_the_output(seed):
    W, X = tiny_layer(outputs=4, inputs=16, seed=seed)
    for chunk in sample_chunks(W, X, 3, seed=seed, size=8):
        for granularity in (8, 4):
            mse = chunk_scales(W, chunk, 2, granularity)
            fitted = chunk_scales(W, chunk, 2, granularity, fit="output")
            ratio = fitted / mse
            assert np.allclose(ratio, ratio[0]) and 0.5 <= ratio[0] <= 1.5
            assert rtn_output_error(chunk, 2, fitted) <= rtn_output_error(chunk, 2, mse)


def test_the_output_fit_can_beat_the_mse_scale_and_needs_scales_inside_the_chunk():
    # an input the layer barely sees holds the largest weight: the weights' MSE scale spends
    # the grid on it, while the output error wants the others rounded finely
    G = np.diag([1.0, 1.0, 1.0, 1e-6])
    w = np.array([0.6, -0.5, 0.55, 1.2])
    W = w[None, :]
    chunk = LayerChunk(0, slice(0, 4), w, G)
    mse = chunk_scales(W, chunk, 2, "output channel")
    fitted = chunk_scales(W, chunk, 2, "output channel", fit="output")
    assert rtn_output_error(chunk, 2, fitted) < rtn_output_error(chunk, 2, mse)
    assert output_fit_allowed(W, chunk, 4) and not output_fit_allowed(W, chunk, "tensor")
    W_wide, X_wide = tiny_layer(outputs=2, inputs=16)
    wide = sample_chunks(W_wide, X_wide, 1, size=8)[0]
    for granularity in ("tensor", "input slice", "output channel", 16, 3):
        assert not output_fit_allowed(W_wide, wide, granularity)
        with pytest.raises(ValueError, match="fit"):
            chunk_scales(W_wide, wide, 2, granularity, fit="output")
    with pytest.raises(ValueError, match="fit"):
        chunk_scales(W_wide, wide, 2, 8, fit="loss")


def test_sweep_fits_scales_to_the_output_only_where_allowed():
    W, X = tiny_layer(outputs=3, inputs=16)
    table = sweep_layer(W, X, bit_widths=(2,), count=2, size=8, granularity=["tensor", 8],
                        scale_fit=["weights", "output"], count_scales=False)
    settings_ = set(zip(table.granularity, table.scale_fit))
    assert settings_ == {("tensor", "weights"), ("group of 8", "weights"),
                         ("group of 8", "output")}
    ranges = snr_ranges(table.assign(model="tiny", layer="dense"))
    assert len(ranges) == 3 and (ranges.verdict != "").all()


def test_prune_search_is_the_candidates_and_the_exact_search():
    W, X = tiny_layer(outputs=2, inputs=10)
    chunk = sample_chunks(W, X, 1, size=10)[0]
    lower, upper = pruning_box(W)
    candidates, exact = prune_search(chunk.G, chunk.w, 3, lower, upper)
    alone = prune_branch_and_bound(chunk.G, chunk.w, 3, lower, upper)
    assert {name: error for name, (_, error) in candidates.items()} == {
        name: error for name, (_, error) in prune_candidates(chunk.G, chunk.w, 3, lower,
                                                              upper).items()}
    assert exact.error == pytest.approx(alone.error, rel=1e-12)
    assert exact.error == pytest.approx(prune_brute_force(chunk.G, chunk.w, 3, lower, upper)[1],
                                        rel=1e-9)


def test_granularities_with_equal_scales_share_the_quantizer():
    W, X = tiny_layer(outputs=3, inputs=8)  # one input slice: tensor and slice scales agree
    table = sweep_layer(W, X, bit_widths=(2,), count=2, size=8,
                        granularity=["tensor", "input slice"], count_scales=False)
    tensor, slice_ = table[table.granularity == "tensor"], table[table.granularity != "tensor"]
    np.testing.assert_array_equal(tensor.quant_heuristic.to_numpy(),
                                  slice_.quant_heuristic.to_numpy())


def test_per_weight_scales_bracket_the_exhaustive_grid_optimum():
    W, X = tiny_layer(outputs=2, inputs=6)
    chunk = sample_chunks(W, X, 1, size=6)[0]
    scales = chunk_scales(W, chunk, 2, 3)  # two groups of 3: two different scales
    assert scales[0] != scales[3]
    lower, upper = pruning_box(W)
    row = bracket_chunk(chunk, 2, lower, upper, scales=scales)
    lowest, highest = grid_limits(2)
    points = np.array(list(itertools.product(range(lowest, highest + 1), repeat=6)), float)
    residuals = points * scales - chunk.w
    optimum = float(np.einsum("ij,jk,ik->i", residuals, chunk.G, residuals).min())
    assert row["quant_bound"] <= optimum * (1 + 1e-9) <= row["quant_heuristic"] * (1 + 2e-9)


def test_sweep_defaults_to_the_papers_granularity_and_16_chunks():
    W, X = layer_problem("digits_cnn", "fc")
    table = sweep_layer(W, X, bit_widths=(np.int64(2),), seed=3)
    assert len(table) == 16 and (table.granularity == "input slice").all()
    chunks = sample_chunks(W, X, 16, seed=3)
    lower, upper = pruning_box(W)
    first = bracket_chunk(chunks[0], 2, lower, upper, scales=mse_scale(W[:, chunks[0].inputs], 2))
    for column in ("quant_heuristic", "quant_bound", "prune_exact", "k"):
        assert table.loc[0, column] == pytest.approx(first[column], rel=1e-9)


def test_finer_scales_are_charged_and_pruning_gets_the_same_bits():
    W, X = tiny_layer(outputs=3, inputs=32)
    table = sweep_layer(W, X, bit_widths=(2,), count=2, size=32,
                        granularity=["input slice", 32, 8], mask=["none", "bitmask"])
    assert len(table) == 2 * 3 * 2
    rows = table.set_index(["output", "granularity", "mask"]).sort_index()
    first = rows.index[0][0]
    charged = rows.loc[first]
    assert charged.loc[("group of 32", "none"), "quant_bits"] == 2.5
    assert charged.loc[("group of 8", "none"), "quant_bits"] == 4.0
    # the most k with 16 k / 32 (+ 1 for the bitmask) <= b + scale bits
    assert list(charged.k) == [3, 5, 6, 8, 2, 4]  # sorted: group of 32, of 8, input slice
    assert (table.prune_bits <= table.quant_bits + 1e-12).all()
    # the same k is pruned once: equal k, equal errors
    same_k = table.groupby(["output", "k"]).prune_exact.nunique()
    assert (same_k == 1).all()
    free = sweep_layer(W, X, bit_widths=(2,), count=2, size=32, granularity=8,
                       count_scales=False)
    assert (free.k == 4).all() and (free.quant_bits == 2).all()


@pytest.mark.parametrize("model, layer", COURSE_LAYERS)
def test_the_papers_scales_move_no_k_on_the_course_layers(model, layer):
    W = layer_problem(model, layer).w
    outputs, inputs = W.shape
    for bits in (2, 3, 4):
        budget = bits + scale_bits_per_weight(outputs, inputs, "input slice")
        for n in {min(32, inputs), inputs % 32 or 32}:
            assert pruning_k(n, budget) == n * bits // 16


def test_metadata_costs():
    assert scale_bits_per_weight(4, 64, "tensor") == 16 / 256
    assert scale_bits_per_weight(4, 64, "input slice") == 16 * 2 / 256
    assert scale_bits_per_weight(4, 64, "output channel") == 16 / 64
    assert scale_bits_per_weight(4, 64, 8) == 2.0
    assert binary_entropy(0.5) == 1.0 and binary_entropy(0.0) == 0.0
    assert pruning_bits_per_weight(4, 32, "bitmask") == 3.0
    assert pruning_bits_per_weight(4, 32, "entropy") == pytest.approx(2 + binary_entropy(1 / 8))
    assert pruning_bits_per_weight(4, 32, "csr", columns=256) == 2 + 8 / 8
    assert [pruning_k(32, b) for b in (2, 3, 4)] == [4, 6, 8]
    assert [pruning_k(9, b) for b in (2, 3, 4)] == [1, 1, 2]
    assert pruning_k(6, 2) == 0
    with pytest.raises(ValueError, match="mask"):
        pruning_k(32, 2, "zip")
    with pytest.raises(ValueError, match="budget_bits"):
        pruning_k(32, float("nan"))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.floats(0.1, 20.0), st.sampled_from(["none", "bitmask", "entropy"]))
def test_pruning_k_is_the_most_that_fits(n, budget, mask):
    k = pruning_k(n, budget, mask)
    assert 0 <= k <= n
    if k:
        assert pruning_bits_per_weight(k, n, mask) <= budget + 1e-9
    if k < n:
        assert pruning_bits_per_weight(k + 1, n, mask) > budget


@pytest.mark.parametrize("errors, energies", [("ab", "cd"), (["a"], [1.0]), ([1j], [1.0]),
                                              ([True], [1.0])])
def test_layer_snr_rejects_what_is_not_numbers(errors, energies):
    with pytest.raises(TypeError, match="errors|energies"):
        layer_snr_db(errors, energies)


def test_the_papers_rule_and_charged_scales_share_the_quantizer():
    W, X = tiny_layer(outputs=3, inputs=32)
    table = sweep_layer(W, X, bit_widths=(2,), count=2, size=32, granularity=32,
                        count_scales=[False, True])
    free, charged = table[~table.scales_charged], table[table.scales_charged]
    assert list(free.k) == [4, 4] and list(charged.k) == [5, 5]
    np.testing.assert_array_equal(free.quant_heuristic.to_numpy(),
                                  charged.quant_heuristic.to_numpy())
    ranges = snr_ranges(table.assign(model="tiny", layer="dense"))
    assert list(ranges.scales_charged) == [False, True]
    with pytest.raises(TypeError, match="count_scales"):
        sweep_layer(W, X, bit_widths=(2,), count=1, size=32, count_scales="yes")


# ---------------------------------------------------------------- the field's algorithms


def test_one_shot_algorithms_match_direct_calls_and_brute_force():
    W, X = tiny_layer(outputs=2, inputs=6)
    chunk = sample_chunks(W, X, 1, size=6)[0]
    lower, upper = pruning_box(W)
    scale = mse_scale(chunk.w, 2)
    row = bracket_chunk(chunk, 2, lower, upper, k=2)
    # GPTQ of pvq.obs on the bracket's grid is pvq.bounds' sequential rounding in input order
    gptq = quant_candidates(chunk.G, chunk.w, 2, scale)["gptq"][1]
    assert row["quant_gptq"] == pytest.approx(gptq, rel=1e-9)
    optimum = grid_optimum(chunk.G, chunk.w, 2, scale)
    assert row["quant_bound"] <= optimum * (1 + 1e-9) <= row["quant_gptq"] * (1 + 1e-9)
    # SparseGPT and magnitude at the same k, each against the brute-force optimum
    sparse = obs.sparsegpt(chunk.w[None], 2 * chunk.G, 4 / 6).numpy()[0]
    kept = np.where(np.abs(chunk.w) >= np.sort(np.abs(chunk.w))[-2], chunk.w, 0.0)
    assert np.count_nonzero(sparse) == np.count_nonzero(kept) == 2
    assert row["prune_sparsegpt"] == pytest.approx(chunk_error(chunk.G, chunk.w, sparse))
    assert row["prune_magnitude_only"] == pytest.approx(chunk_error(chunk.G, chunk.w, kept))
    _, best = prune_brute_force(chunk.G, chunk.w, 2, lower, upper)
    assert row["sparsegpt_in_box"] and row["prune_sparsegpt_bound"] == row["prune_bound"]
    assert row["prune_bound"] <= best * (1 + 1e-9)
    assert best <= min(row["prune_sparsegpt"], row["prune_magnitude_only"]) * (1 + 1e-9)
    gaps = optimality_gaps(pd.DataFrame([row]))
    assert gaps.loc[0, "GPTQ"] == pytest.approx(10 * np.log10(gptq / row["quant_bound"]))
    assert gaps.loc[0, "SparseGPT"] == pytest.approx(
        10 * np.log10(row["prune_sparsegpt"] / row["prune_bound"]))


def test_sparsegpt_outside_the_box_is_bounded_in_the_box_that_holds_it():
    G, w = synthetic_chunk(10, seed=2)
    chunk = LayerChunk(0, slice(0, 10), w, G)
    limit = float(np.abs(w).max())  # the weights' own range: the feedback leaves it
    row = bracket_chunk(chunk, 4, -limit, limit, k=3)
    sparse = obs.sparsegpt(w[None], 2 * G, 7 / 10).numpy()[0]
    assert not row["sparsegpt_in_box"] and np.abs(sparse).max() > limit
    _, best = prune_brute_force(G, w, 3, min(-limit, sparse.min()), max(limit, sparse.max()))
    assert row["prune_sparsegpt_bound"] <= best * (1 + 1e-9) <= row["prune_sparsegpt"] * (1 + 1e-9)
    assert row["prune_sparsegpt_bound"] <= row["prune_bound"] * (1 + 1e-9)


@pytest.mark.parametrize("model, layer", [("minilm", "blocks.1.mlp.fc2"), ("digits_cnn", "fc")])
def test_real_chunks_never_beat_their_bounds(model, layer):
    W, X = layer_problem(model, layer)
    table = sweep_layer(W, X, bit_widths=(2, 3), count=1, seed=5, count_scales=False)
    for error, bound in GAP_METHODS.values():
        assert (table[error] >= table[bound] * (1 - 1e-6) - 1e-12).all(), error
    gaps = optimality_gaps(table)
    assert np.isfinite(gaps.to_numpy()).all() and (gaps.to_numpy() > -1e-5).all()
    by_bits = optimality_gaps(table, by="bits")
    assert list(by_bits.index) == [2, 3]
    rows = table[table.bits == 3]
    assert by_bits.loc[3, "GPTQ"] == pytest.approx(
        layer_snr_db(rows.quant_bound, rows.energy) - layer_snr_db(rows.quant_gptq, rows.energy))


def test_gaps_of_zero_bounds():
    table = pd.DataFrame({column: [0.0, 1.0] for pair in GAP_METHODS.values() for column in pair})
    for _, bound in GAP_METHODS.values():
        table[bound] = 0.0
    gaps = optimality_gaps(table)
    assert (gaps.loc[0] == 0.0).all() and np.isposinf(gaps.loc[1]).all()


def gap_table(**changes):
    table = pd.DataFrame({column: [1.0, 2.0] for pair in GAP_METHODS.values() for column in pair})
    return table.assign(**changes)


@pytest.mark.parametrize("chunks, by, error, word", [
    ([1.0, 2.0], None, TypeError, "chunks"),
    (gap_table().drop(columns="quant_gptq"), None, ValueError, "quant_gptq"),
    (gap_table(), ["layer"], ValueError, "layer"),
    (gap_table().iloc[:0], None, ValueError, "at least one row"),
    (gap_table(quant_gptq=[-1.0, 1.0]), None, ValueError, "non-negative"),
    (gap_table(prune_bound=[np.nan, 1.0]), None, ValueError, "finite"),
    (gap_table(prune_sparsegpt=["a", "b"]), None, TypeError, "prune_sparsegpt"),
])
def test_optimality_gaps_rejects_bad_input(chunks, by, error, word):
    with pytest.raises(error, match=word):
        optimality_gaps(chunks, by)
