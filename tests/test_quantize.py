"""The quantizer: grid, round-to-nearest, MSE scale; cross-checked against torch's fake-quantize."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pvq.metrics import snr_db
from pvq.quantize import (
    grid_limits,
    max_abs_scale,
    mse_scale,
    paper_search_scale,
    quantization_grid,
    quantize,
)

finite_weights = arrays(
    np.float64,
    st.integers(1, 200),
    elements=st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=64),
)
bit_widths = st.integers(1, 8)
scales = st.floats(1e-3, 10.0)


@pytest.mark.parametrize("bits", range(1, 9))
def test_grid_is_the_signed_integer_range(bits):
    grid = quantization_grid(bits)
    assert grid.size == 2**bits
    assert grid[0] == -(2 ** (bits - 1)) and grid[-1] == 2 ** (bits - 1) - 1
    assert np.all(np.diff(grid) == 1)


def test_quantize_hand_example():
    w = np.array([-1.0, -0.26, 0.1, 0.24, 0.26, 0.9, 5.0])
    np.testing.assert_allclose(quantize(w, 3, 0.25), [-1.0, -0.25, 0.0, 0.25, 0.25, 0.75, 0.75])


@given(finite_weights, bit_widths, scales)
def test_quantize_is_idempotent_and_on_the_grid(w, bits, scale):
    once = quantize(w, bits, scale)
    np.testing.assert_array_equal(quantize(once, bits, scale), once)
    codes = once / scale
    lowest, highest = grid_limits(bits)
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-9)
    assert codes.min() >= lowest - 1e-9 and codes.max() <= highest + 1e-9


@given(finite_weights, bit_widths, scales)
def test_error_is_at_most_half_a_step_inside_the_range(w, bits, scale):
    lowest, highest = grid_limits(bits)
    inside = (w >= (lowest - 0.5) * scale) & (w <= (highest + 0.5) * scale)
    error = np.abs(quantize(w, bits, scale) - w)[inside]
    assert np.all(error <= scale / 2 * (1 + 1e-12))


@given(finite_weights, bit_widths, scales)
def test_quantize_agrees_with_torch_fake_quantize(w, bits, scale):
    lowest, highest = grid_limits(bits)
    tensor = torch.tensor(w, dtype=torch.float32)
    theirs = torch.fake_quantize_per_tensor_affine(tensor, scale, 0, lowest, highest)
    ours = quantize(tensor, bits, scale)
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.float32
    # float32 rounding may send a value within 1e-4 of a cell edge to the other level
    ratio = w / scale
    off_edge = np.abs(ratio - np.floor(ratio) - 0.5) > 1e-4
    np.testing.assert_allclose(ours.numpy()[off_edge], theirs.numpy()[off_edge], rtol=1e-6,
                               atol=1e-6 * scale)


def test_torch_and_numpy_give_the_same_values():
    w = np.random.default_rng(1).standard_normal(1000)
    np.testing.assert_allclose(quantize(torch.tensor(w), 4, 0.3).numpy(), quantize(w, 4, 0.3))


def test_integer_input_becomes_float():
    assert quantize(np.array([1, 2, 7]), 2, 1.0).dtype == np.float64


def brute_force_best_error(w, bits):
    """Exact optimum: for every assignment met along a very fine scale sweep, refit the scale."""
    best = np.inf
    for scale in np.linspace(1e-4, 2 * np.abs(w).max(), 40_000):
        codes = np.clip(np.round(w / scale), *grid_limits(bits))
        if codes @ codes > 0:
            refit = (w @ codes) / (codes @ codes)
            best = min(best, np.mean((w - refit * codes) ** 2), np.mean((w - scale * codes) ** 2))
    return best


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mse_scale_matches_a_brute_force_search(bits, seed):
    w = np.random.default_rng(seed).standard_t(3, size=25)
    ours = np.mean((w - quantize(w, bits, mse_scale(w, bits))) ** 2)
    assert ours <= brute_force_best_error(w, bits) * (1 + 1e-9)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_mse_scale_beats_the_papers_100_point_search(bits):
    w = np.random.default_rng(3).standard_normal(20_000)
    top = 2 ** (bits - 1) - 1
    coarse = min(
        np.mean((w - quantize(w, bits, k * (np.abs(w).max() + 0.5) / 100 / top)) ** 2)
        for k in range(1, 101)
    )
    assert np.mean((w - quantize(w, bits, paper_search_scale(w, bits))) ** 2) == pytest.approx(
        coarse, rel=1e-12)
    assert np.mean((w - quantize(w, bits, mse_scale(w, bits))) ** 2) <= coarse
    assert max_abs_scale(w, bits) == pytest.approx(np.abs(w).max() / top)


@pytest.mark.parametrize("bits, expected_db", [(2, 8.26), (4, 19.26), (8, 40.57)])
def test_snr_of_a_large_normal_sample_is_close_to_the_exact_value(bits, expected_db):
    w = np.random.default_rng(0).standard_normal(1_000_000)
    assert snr_db(w, quantize(w, bits, mse_scale(w, bits))) == pytest.approx(expected_db, abs=0.05)


@given(arrays(np.float64, st.integers(8, 100), elements=st.integers(-1000, 1000).map(lambda i: i / 100)))
@settings(max_examples=30, deadline=None)
def test_snr_grows_with_bits(w):
    if np.abs(w).max() == 0:
        return
    # capped where the error reaches float precision (a constant tensor is exact from 2 bits on)
    snrs = [min(snr_db(w, quantize(w, b, mse_scale(w, b))), 150.0) for b in range(1, 9)]
    assert all(later >= earlier - 1e-9 for earlier, later in zip(snrs, snrs[1:]))


def test_mse_scale_is_scale_equivariant():
    w = np.random.default_rng(4).standard_normal(5000)
    assert mse_scale(7.0 * w, 4) == pytest.approx(7.0 * mse_scale(w, 4), rel=1e-6)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: quantize(np.ones(3), 0, 1.0), ValueError, "bits"),
        (lambda: quantize(np.ones(3), 2.5, 1.0), TypeError, "bits"),
        (lambda: quantize(np.ones(3), True, 1.0), TypeError, "bits"),
        (lambda: quantize(np.ones(3), 4, 0.0), ValueError, "scale"),
        (lambda: quantize(np.ones(3), 4, -1.0), ValueError, "scale"),
        (lambda: quantize(np.ones(3), 4, float("nan")), ValueError, "scale"),
        (lambda: quantize(np.ones(3), 4, "1"), TypeError, "scale"),
        (lambda: quantize(np.array([1.0, np.nan]), 4, 1.0), ValueError, "w"),
        (lambda: quantize(np.array([1.0, np.inf]), 4, 1.0), ValueError, "w"),
        (lambda: quantize(np.array([]), 4, 1.0), ValueError, "w"),
        (lambda: quantize([1.0, 2.0], 4, 1.0), TypeError, "w"),
        (lambda: quantize(np.array(["a"]), 4, 1.0), TypeError, "w"),
        (lambda: quantize(torch.tensor([1.0, float("nan")]), 4, 1.0), ValueError, "w"),
        (lambda: mse_scale(np.zeros(5), 4), ValueError, "w"),
        (lambda: mse_scale(np.ones(5), 0), ValueError, "bits"),
        (lambda: quantization_grid(-1), ValueError, "bits"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


@pytest.mark.parametrize("bits", range(2, 9))
def test_symmetric_grid_drops_the_extra_negative_level(bits):
    grid = quantization_grid(bits, symmetric=True)
    np.testing.assert_array_equal(grid, -grid[::-1])
    np.testing.assert_array_equal(grid, quantization_grid(bits)[1:])
    w = np.linspace(-3.0, 3.0, 101)
    scale = 2.0 / 2 ** (bits - 1)
    symmetric = quantize(w, bits, scale, symmetric=True)
    np.testing.assert_array_equal(symmetric, -quantize(-w, bits, scale, symmetric=True))
    assert symmetric.min() == -(2 ** (bits - 1) - 1) * scale


def test_symmetric_grid_refuses_one_bit_and_non_bool():
    with pytest.raises(ValueError, match="bits"):
        grid_limits(1, symmetric=True)
    with pytest.raises(TypeError, match="symmetric"):
        quantize(np.ones(3), 4, 0.1, symmetric=1)
