"""Hostile input to the public API: a right answer, or a ValueError/TypeError naming the argument.

Random shapes (0-d and empty included), dtypes (float16/32/64, integers, bool, complex, strings,
objects, torch tensors), every float magnitude from subnormal to 1.8e308, NaN and inf, NumPy
integer scalars and bools where integers belong. Any other exception, a NaN, an inf where none
belongs or a RuntimeWarning (overflow, invalid value) fails. Where magnitudes matter, the
results are checked to be exactly scale-equivariant (or invariant) under powers of two.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from pvq.combine import compress, pareto_optimal
from pvq.compression import (
    decode,
    encode,
    encoded_bytes,
    index_bits,
    pack_bits,
    storage_bytes,
    unpack_bits,
)
from pvq.distributions import kurtosis_of, limit_for_kurtosis, truncated_student_t
from pvq.heavy_tails import crossover_kurtosis, snr_gap_map, tensor_snr_table
from pvq.metrics import kurtosis, snr_db, snr_db_standard_error
from pvq.models import build_model
from pvq.prune import (
    channel_mask,
    magnitude_mask,
    magnitude_prune,
    pruned_count,
    semi_structured_mask,
)
from pvq.qat import gradient_scale
from pvq.quantize import integer_codes, max_abs_scale, mse_scale, paper_search_scale, quantize
from pvq.representations import linear_cka
from pvq.theory import pruning_mse, pruning_snr_db, quantization_mse, quantization_snr_db

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

FAST = settings(max_examples=40, deadline=None)

REAL_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8]
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
#: real arrays of any shape and dtype, elements anywhere in the dtype's range (NaN, inf too)
REAL_ARRAYS = hnp.arrays(st.sampled_from(REAL_DTYPES), SHAPES)
NOT_WEIGHTS = st.sampled_from([
    [1.0, 2.0], None, 3.5, "ab", np.array([True, False]), np.array([1 + 1j, 2.0]),
    np.array(["a", "b"]), np.array([1.0, None], dtype=object), torch.tensor([1 + 1j]),
    torch.tensor([True]),
])
#: what a weight argument may be handed: real arrays, torch tensors of them, and other things
ANY_WEIGHTS = st.one_of(
    REAL_ARRAYS, REAL_ARRAYS.map(lambda a: torch.from_numpy(a.copy())), NOT_WEIGHTS)
ANY_INTEGER = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([np.int64(8), np.int32(4), np.uint8(3), True, np.bool_(True), 2.5,
                     np.float64(4.0), "4", None, 2**70]))
#: bit-widths for the scale searches: valid ones up to 10 (wider grids are slow, not hostile)
ANY_BITS = st.one_of(
    st.integers(-3, 10),
    st.sampled_from([17, 24, 33, np.int64(8), np.uint8(3), True, 2.5, "4", None, 2**70]))
ANY_REAL = st.one_of(
    st.floats(), st.integers(-3, 3),
    st.sampled_from([np.float32(0.5), np.int64(1), True, "0.5", None, 1 + 1j, 10**400]))
#: finite float64 weights of one magnitude (1e-300 .. 1e300), not all zero
MAGNITUDES = st.sampled_from([1e-300, 1e-170, 1e-20, 1.0, 1e20, 1e160, 1e300])


def outcome(call: Callable[[], object], *names: str) -> object:
    """``call()``'s result, or None if it raised a ValueError/TypeError naming one of ``names``."""
    try:
        return call()
    except (ValueError, TypeError) as error:
        assert any(name in str(error) for name in names), (
            f"{type(error).__name__}({str(error)!r}) names none of {names}")
        return None


def normal_weights(size: int, magnitude: float, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal(size) * magnitude
    assume(np.abs(w).max() > 0)
    return w


def is_weights(w: object) -> bool:
    """What the library calls weights: a non-empty real array or tensor, all finite."""
    if isinstance(w, torch.Tensor):
        w = w.numpy() if w.dtype not in (torch.complex64, torch.bool) else np.array(["x"])
    return (isinstance(w, np.ndarray) and w.dtype.kind in "fiu" and w.size > 0
            and bool(np.isfinite(w.astype(np.float64)).all()))


@FAST
@given(ANY_WEIGHTS, ANY_INTEGER, ANY_REAL)
def test_quantize_and_codes(w, bits, scale):
    result = outcome(lambda: quantize(w, bits, scale), "w", "bits", "scale")
    codes = outcome(lambda: integer_codes(w, bits, scale), "w", "bits", "scale")
    if result is None:
        return
    assert type(result) is type(w) and tuple(result.shape) == tuple(w.shape)
    values = np.asarray(result, dtype=np.float64)
    assert np.isfinite(values).all()
    assert np.abs(values).max(initial=0) <= float(scale) * 2.0 ** (int(bits) - 1) * (1 + 1e-3)
    codes = np.asarray(codes, dtype=np.float64)
    np.testing.assert_array_equal(codes, np.round(codes))
    assert np.abs(codes).max(initial=0) <= 2 ** (int(bits) - 1)


def test_quantize_examples_from_the_issue():
    assert quantize(np.array(1.3), 4, 0.5).shape == ()
    assert isinstance(quantize(np.array(1.3), 4, 0.5), np.ndarray)
    with pytest.raises(ValueError, match="scale"):
        quantize(np.array([-1.7e308]), 2, 1e308)
    codes = integer_codes(np.linspace(-3, 3, 97).astype(np.float16), 8, 0.05)
    np.testing.assert_array_equal(codes, np.round(codes))
    assert quantize(np.array([1.0, 2.0], dtype=np.float16), np.int64(4), 0.5).dtype == np.float16


@FAST
@given(ANY_WEIGHTS, ANY_BITS)
def test_scale_searches(w, bits):
    for search in (mse_scale, paper_search_scale, max_abs_scale):
        scale = outcome(lambda: search(w, bits), "w", "bits")
        if scale is not None:
            assert isinstance(scale, float) and math.isfinite(scale) and scale >= 0
            assert scale > 0 or search is max_abs_scale


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 200), MAGNITUDES, st.integers(0, 2**32), st.integers(2, 6))
def test_scale_searches_are_scale_equivariant(size, magnitude, seed, bits):
    """At any magnitude the scale is the one at magnitude ~1 times the power of two between."""
    w = normal_weights(size, magnitude, seed)
    exponent = int(np.frexp(np.abs(w).max())[1])
    unit = np.ldexp(w, -exponent)
    assert mse_scale(w, bits) == math.ldexp(mse_scale(unit, bits), exponent)
    scale = paper_search_scale(w, bits)
    assert math.isfinite(scale) and scale > 0


def test_paper_search_scale_arguments():
    w = np.random.default_rng(0).standard_normal(100)
    with pytest.raises(ValueError, match="bits must be an integer between 1 and 16"):
        paper_search_scale(w, bits=20)
    for candidates, error in ((2.5, TypeError), (0, ValueError), (10**9, ValueError)):
        with pytest.raises(error, match="candidates"):
            paper_search_scale(w, 4, candidates=candidates)
    assert paper_search_scale(w, np.int64(4), candidates=np.int64(100)) == paper_search_scale(w, 4)


@FAST
@given(ANY_WEIGHTS, ANY_WEIGHTS)
def test_snr_and_kurtosis_of_anything(w, w_hat):
    for metric in (snr_db, snr_db_standard_error):
        value = outcome(lambda: metric(w, w_hat), "w", "w_hat")
        assert value is None or (isinstance(value, float) and not math.isnan(value))
    value = outcome(lambda: kurtosis(w), "w")
    assert value is None or (math.isfinite(value) and value >= 1 - 1e-9)


@FAST
@given(st.integers(2, 200), st.sampled_from([1e-280, 1e-170, 1.0, 1e160, 1e280]),
       st.integers(0, 2**32), st.integers(-60, 60))
def test_snr_kurtosis_and_cka_are_scale_free(size, magnitude, seed, shift):
    """Exactly invariant under a power of two (2^-60 .. 2^60), at any magnitude of the weights."""
    w = normal_weights(size, magnitude, seed)
    w_hat = w * (1 + 1e-3 * np.random.default_rng(seed + 1).standard_normal(size))
    shifted, shifted_hat = np.ldexp(w, shift), np.ldexp(w_hat, shift)
    normal = np.finfo(np.float64).tiny
    assume(np.isfinite(shifted).all() and np.abs(shifted).min() >= normal
           and np.abs(w).min() >= normal)
    assert snr_db(shifted, shifted_hat) == snr_db(w, w_hat)
    # at any magnitude, the same value as for the same weights at magnitude 1
    unit = w / magnitude
    expected = 10 * math.log10(np.sum(unit**2) / np.sum((unit - w_hat / magnitude) ** 2))
    assert snr_db(w, w_hat) == pytest.approx(expected, rel=1e-9)
    assert kurtosis(shifted) == kurtosis(w)
    x, y = w.reshape(-1, 1) * [1.0, -2.0], w_hat.reshape(-1, 1) * [3.0, 1.0]
    assert linear_cka(np.ldexp(x, shift), y) == pytest.approx(linear_cka(x, y), rel=1e-12)
    assert 0.999 < linear_cka(x, y) <= 1 + 1e-12


def test_tiny_weights_are_not_zero():
    w = np.array([1e-320, -3e-321, 2e-322])
    assert math.isfinite(kurtosis(w)) and mse_scale(w, 4) > 0
    assert 0 < paper_search_scale(w, 4) < 1 and paper_search_scale(w * 1e-300, 4) > 0
    assert snr_db(w, np.zeros(3)) == 0.0
    huge_error = snr_db(np.array([1e-300, 2e-300]), np.array([1e300, 0.0]))
    assert huge_error == pytest.approx(10 * (math.log10(2.5 / 5) - 1199))  # 2.5e-600 / 5e599


@FAST
@given(ANY_WEIGHTS, ANY_REAL, ANY_INTEGER)
def test_pruning(w, sparsity, size):
    n = math.prod(tuple(getattr(w, "shape", ())))
    for prune in (magnitude_mask, magnitude_prune):
        result = outcome(lambda: prune(w, sparsity), "w", "sparsity")
        if result is not None:
            assert type(result) is type(w) and tuple(result.shape) == tuple(w.shape)
            if prune is magnitude_mask:
                assert int(result.sum()) == n - round(sparsity * n)
    count = outcome(lambda: pruned_count(size, sparsity), "size", "sparsity")
    assert count is None or 0 <= count <= size
    mask = outcome(lambda: channel_mask(w, sparsity), "w", "sparsity")
    assert mask is None or tuple(mask.shape) == tuple(w.shape)
    mask = outcome(lambda: semi_structured_mask(w, size, 4), "w", "kept")
    assert mask is None or int(mask.sum()) == n * size // 4


def test_pruning_ranks_huge_and_tiny_rows_correctly():
    w = np.array([[1e160, 1e160], [3e160, 0.0], [2e160, 1e159]])
    np.testing.assert_array_equal(channel_mask(w, 1 / 3)[:, 0], [False, True, True])
    tiny = np.array([[1e-170, 1e-170], [3e-170, 0.0], [2e-170, 1e-171]])
    np.testing.assert_array_equal(channel_mask(tiny, 1 / 3), channel_mask(w, 1 / 3))
    with pytest.raises(ValueError, match="size"):
        pruned_count(-5, 0.5)
    assert pruned_count(np.int64(10), 0.5) == 5


@FAST
@given(hnp.arrays(st.sampled_from([np.int64, np.uint8, np.bool_]), hnp.array_shapes(max_dims=2),
                  elements=st.integers(0, 1)),
       st.integers(1, 32))
def test_pack_round_trip(values, bits):
    values = values.astype(np.int64)
    packed = pack_bits(values, bits)
    assert packed.size == math.ceil(values.size * bits / 8)
    np.testing.assert_array_equal(unpack_bits(packed, bits, np.int64(values.size)), values.ravel())


@FAST
@given(st.one_of(ANY_WEIGHTS, st.sampled_from([[1.7], [np.nan], [1 + 1j], ["a"], [-1], [2**40]])),
       ANY_INTEGER, ANY_INTEGER)
def test_pack_and_unpack_refuse_what_is_not_theirs(values, bits, count):
    packed = outcome(lambda: pack_bits(values, bits), "values", "bits")
    if packed is not None:
        ints = np.asarray(values, dtype=np.float64).ravel()
        np.testing.assert_array_equal(unpack_bits(packed, bits, ints.size), ints)
    unpacked = outcome(lambda: unpack_bits(values, bits, count), "packed", "bits", "count")
    assert unpacked is None or unpacked.shape == (count,)


def test_unpack_examples_from_the_issue():
    with pytest.raises(ValueError, match="packed must have"):
        unpack_bits(np.array([7], dtype=np.uint8), 4, 5)
    with pytest.raises(ValueError, match="count"):
        unpack_bits(np.array([7], dtype=np.uint8), 4, -1)
    for values in ([1.7], [np.nan], [1 + 1j], ["a"]):
        with pytest.raises(TypeError, match="values must hold integers"):
            pack_bits(values, 4)


@FAST
@given(st.one_of(st.integers(-2, 2**66), st.sampled_from([np.uint64(2**64 - 1), np.int8(3),
                                                          True, 1.0, "7"])))
def test_index_bits(largest):
    width = outcome(lambda: index_bits(largest), "largest")
    assert width is None or int(largest) < 2**width
    size = outcome(lambda: storage_bytes(largest, 4), "size")
    assert size is None or size == math.ceil(int(largest) / 2)


@FAST
@given(st.lists(ANY_INTEGER, max_size=3), st.sampled_from([None, 4, 8.0]),
       st.one_of(st.floats(), st.just(0.5)), st.sampled_from(["dense", "bitmask", "csr", "2:4", 1]))
def test_encoded_bytes(shape, bits, sparsity, encoding):
    size = outcome(lambda: encoded_bytes(shape, bits=bits, sparsity=sparsity, encoding=encoding),
                   "shape", "bits", "sparsity", "encoding", "2:4")
    assert size is None or (isinstance(size, int) and size > 0)


@FAST
@given(st.sampled_from(["dense", "bitmask", "csr", "2:4"]), st.sampled_from([None, 4]),
       st.sampled_from(["values", "mask", "scale", "row_pointers", "column_indices", "metadata"]),
       st.sampled_from([None, torch.zeros(0, dtype=torch.uint8), torch.tensor([300, 1]), "x",
                        torch.tensor([1.5]), torch.ones(64, dtype=torch.uint8)]))
def test_decode_refuses_broken_stored_arrays(encoding, bits, name, replacement):
    w = np.arange(-8.0, 8.0).reshape(4, 4)
    mask = magnitude_mask(w, 0.5) if encoding != "2:4" else semi_structured_mask(w)
    stored = encode(np.where(mask, w, 0.0), mask=None if encoding == "dense" else mask,
                    bits=bits, scale=None if bits is None else 1.0, encoding=encoding)
    if replacement is None:
        stored.pop(name, None)
    else:
        stored[name] = replacement
    decoded = outcome(lambda: decode(stored, w.shape, bits=bits, encoding=encoding), "stored")
    assert decoded is None or decoded.shape == w.shape
    with pytest.raises((TypeError, ValueError), match="stored"):
        decode({}, (4, 4), encoding=encoding, bits=bits) if encoding != "dense" else decode(
            [], (4, 4))


@FAST
@given(ANY_WEIGHTS, st.sampled_from([None, 4, np.int64(2), 0, 2.5]), ANY_REAL,
       st.sampled_from(["prune-then-quantize", "quantize-then-prune", "other"]))
def test_compress(w, bits, sparsity, order):
    result = outcome(lambda: compress(w, bits=bits, sparsity=sparsity, order=order),
                     "w", "bits", "sparsity", "order")
    if result is not None:
        assert np.isfinite(np.asarray(result.w_hat, dtype=np.float64)).all()
        assert result.scale is None or (math.isfinite(result.scale) and result.scale > 0)


def test_compress_names_a_sparsity_that_prunes_everything():
    with pytest.raises(ValueError, match="sparsity=0.75 leaves no non-zero weight"):
        compress(np.array([1.0, 2.0]), bits=4, sparsity=0.75)


@FAST
@given(st.lists(st.one_of(st.floats(), st.text(max_size=1)), max_size=5),
       st.lists(st.floats(), max_size=5))
def test_pareto_optimal(cost, quality):
    optimal = outcome(lambda: pareto_optimal(cost, quality), "cost", "quality")
    assert optimal is None or (optimal.dtype == bool and optimal.shape == (len(cost),))


@pytest.mark.parametrize("dist", [stats.cauchy(), stats.t(2), stats.t(1.5)],
                         ids=["cauchy", "t2", "t1.5"])
def test_infinite_variance_is_refused(dist):
    for call in (lambda: quantization_snr_db(dist, 4), lambda: pruning_snr_db(dist, 0.5),
                 lambda: quantization_mse(dist, 4, 0.5), lambda: kurtosis_of(dist)):
        with pytest.raises(ValueError, match="infinite variance"):
            call()
    assert math.isfinite(pruning_mse(dist, 0.5))


def test_kurtosis_of_uses_central_moments():
    assert kurtosis_of(stats.norm(loc=1)) == pytest.approx(3.0)
    assert kurtosis_of(stats.expon()) == pytest.approx(9.0)
    assert kurtosis_of(stats.t(3)) == math.inf
    assert kurtosis_of(truncated_student_t(2.0, 5.0)) > 3
    with pytest.raises(ValueError, match="kurtosis"):
        limit_for_kurtosis(1e300)


def test_numpy_integers_are_integers_and_bools_are_not():
    assert gradient_scale(np.int64(100), np.int64(4)) == gradient_scale(100, 4)
    assert storage_bytes(np.int64(8), 4) == 4
    assert semi_structured_mask(np.arange(8.0), np.int64(2), np.int64(4)).sum() == 4
    build_model("digits_mlp", seed=np.int64(1))
    for call in (lambda: quantize(np.ones(2), True, 1.0), lambda: storage_bytes(True, 4),
                 lambda: build_model("digits_mlp", seed=np.bool_(True))):
        with pytest.raises(TypeError, match="must be an integer"):
            call()


@pytest.mark.parametrize("call, name", [
    (lambda: snr_gap_map(["a"], [4]), "kurtoses"),
    (lambda: snr_gap_map([[3.0]], [4]), "kurtoses"),
    (lambda: snr_gap_map([3.0], [4.5]), "bit_widths"),
    (lambda: crossover_kurtosis(4, highest=float("nan")), "highest"),
    (lambda: crossover_kurtosis(4, highest=1.0), "highest"),
    (lambda: tensor_snr_table([np.ones(3)]), "tensors"),
])
def test_heavy_tails_arguments(call, name):
    with pytest.raises((TypeError, ValueError), match=name):
        call()
