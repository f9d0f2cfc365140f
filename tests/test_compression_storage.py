"""Exact storage of each encoding, checked against the bytes torch.save writes and decoded back."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pvq.compression import (
    SCALE_BITS,
    bitmask_bits_per_weight,
    csr_bits_per_weight,
    decode,
    encode,
    encoded_bits_per_weight,
    encoded_bytes,
    index_bits,
    mask_overhead,
    pack_bits,
    saved_payload_bytes,
    sparsity_at_budget,
    unpack_bits,
)
from pvq.prune import channel_mask, magnitude_mask, semi_structured_mask
from pvq.quantize import integer_codes, mse_scale, quantize

SHAPE = (48, 96)  # 4,608 weights: 16-bit row pointers at low sparsity, 8-bit at high


def compressed(w, bits, sparsity, encoding):
    """(w_hat, mask, scale) as the notebook makes them: prune by magnitude (or 2:4), quantize."""
    if encoding == "dense":
        mask = None
    elif encoding == "2:4":
        mask = semi_structured_mask(w)
    else:
        mask = magnitude_mask(w, sparsity)
    kept = w if mask is None else w[mask]
    scale = None if bits is None else mse_scale(kept, bits)
    w_hat = w if bits is None else quantize(w, bits, scale)
    return (w_hat if mask is None else np.where(mask, w_hat, 0.0)), mask, scale


CASES = [("dense", None, 0.0), ("dense", 4, 0.0), ("dense", 8, 0.0)] + [
    (encoding, bits, sparsity) for encoding in ("bitmask", "csr")
    for bits in (None, 2, 3, 8) for sparsity in (0.0, 0.5, 0.9, 0.999)] + [
    ("2:4", None, 0.5), ("2:4", 4, 0.5), ("2:4", 8, 0.5)]


@pytest.mark.parametrize("encoding, bits, sparsity", CASES)
def test_accounting_equals_the_bytes_torch_saves_and_decoding_restores_the_tensor(
        encoding, bits, sparsity):
    w = np.random.default_rng(1).standard_normal(SHAPE)
    w_hat, mask, scale = compressed(w, bits, sparsity, encoding)
    stored = encode(w_hat, mask=mask, bits=bits, scale=scale, encoding=encoding)
    expected = encoded_bytes(SHAPE, bits=bits, sparsity=sparsity, encoding=encoding)
    assert saved_payload_bytes(stored) == sum(t.nbytes for t in stored.values()) == expected
    restored = decode(stored, SHAPE, bits=bits, encoding=encoding)
    if bits is None:  # FP16 values
        np.testing.assert_array_equal(restored, w_hat.astype(np.float16).astype(np.float64))
    else:  # exact codes, the scale rounded to FP32
        np.testing.assert_allclose(restored, w_hat, rtol=1e-6, atol=0)
        codes = np.round(integer_codes(w_hat, bits, scale))
        np.testing.assert_array_equal(np.round(restored / np.float32(scale)), codes)


def test_hand_counted_bytes_of_a_minilm_sized_layer():
    shape, n = (384, 1536), 384 * 1536
    assert encoded_bytes(shape) == 2 * n  # FP16
    assert encoded_bytes(shape, bits=4) == n // 2 + 4  # packed nibbles + FP32 scale
    assert encoded_bytes(shape, bits=3) == math.ceil(3 * n / 8) + 4
    assert encoded_bytes(shape, sparsity=0.5, encoding="bitmask") == n // 8 + n
    # CSR: 16-bit column indices (1536 columns), 32-bit row pointers (294,912 kept > 65,535)
    assert encoded_bytes(shape, sparsity=0.5, encoding="csr") == n + n + 385 * 4
    assert encoded_bits_per_weight(shape, sparsity=0.5, encoding="2:4") == 9.0
    assert encoded_bits_per_weight(shape, bits=8, sparsity=0.5, encoding="2:4") == pytest.approx(
        5.0 + SCALE_BITS / n)


def test_the_bitmask_costs_one_sixteenth_of_fp16_whatever_the_sparsity():
    shape, n = (256, 256), 65536
    for sparsity in (0.0, 0.5, 0.9):
        values_bytes = 2 * (n - round(sparsity * n))
        mask_bytes = encoded_bytes(shape, sparsity=sparsity, encoding="bitmask") - values_bytes
        assert mask_bytes / encoded_bytes(shape) == mask_overhead() == 0.0625


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_csr_indices_agree_with_torch_sparse_csr():
    w = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    mask = magnitude_mask(w, 0.8)
    stored = encode(w * mask, mask=mask, encoding="csr")
    reference = (w * mask).to_sparse_csr()
    assert stored["column_indices"].dtype == torch.uint8  # 96 columns fit in a byte
    assert stored["row_pointers"].dtype == torch.uint16  # 922 kept values do not
    np.testing.assert_array_equal(stored["column_indices"].to(torch.int64),
                                  reference.col_indices())
    np.testing.assert_array_equal(stored["row_pointers"].to(torch.int64),
                                  reference.crow_indices())
    np.testing.assert_array_equal(stored["values"].float(), reference.values().half().float())
    # torch's own CSR uses 64-bit indices: 8 bytes per index instead of 1 and 2
    kept = int(mask.sum())
    torch_bytes = sum(t.nbytes for t in (reference.values().half(), reference.col_indices(),
                                         reference.crow_indices()))
    assert torch_bytes - encoded_bytes(SHAPE, sparsity=0.8, encoding="csr") == (
        7 * kept + 6 * (SHAPE[0] + 1))


def test_large_matrices_approach_the_per_weight_formulas():
    shape = (4096, 4096)
    assert encoded_bits_per_weight(shape, bits=8, sparsity=0.75, encoding="bitmask") == (
        pytest.approx(bitmask_bits_per_weight(0.75, 8), abs=1e-5))
    assert encoded_bits_per_weight(shape, sparsity=0.9, encoding="csr") == pytest.approx(
        csr_bits_per_weight(0.9), abs=0.01)


def test_index_widths():
    assert [index_bits(n) for n in (0, 255, 256, 1535, 65535, 65536, 2**32)] == [
        8, 8, 16, 16, 16, 32, 64]
    with pytest.raises(ValueError, match="largest"):
        index_bits(-1)


@pytest.mark.parametrize("budget, value_bits, encoding, expected", [
    (4, 8, "bitmask", 0.625), (4, 16, "bitmask", 0.8125), (2, 2, "bitmask", 0.5),
    (4, 16, "csr", 0.875), (3, 8, "csr", 0.875)])
def test_sparsity_at_budget(budget, value_bits, encoding, expected):
    sparsity = sparsity_at_budget(budget, value_bits, encoding=encoding)
    assert sparsity == pytest.approx(expected)
    cost = (bitmask_bits_per_weight(sparsity, value_bits) if encoding == "bitmask"
            else csr_bits_per_weight(sparsity, value_bits))
    assert cost == pytest.approx(budget)


@given(st.integers(1, 12), st.lists(st.integers(0, 2**12 - 1), min_size=0, max_size=200))
@settings(max_examples=60, deadline=None)
def test_packing_round_trips_in_the_fewest_bytes(bits, values):
    values = np.array(values, dtype=np.int64) % 2**bits
    packed = pack_bits(values, bits)
    assert packed.dtype == np.uint8 and packed.size == math.ceil(values.size * bits / 8)
    np.testing.assert_array_equal(unpack_bits(packed, bits, values.size), values)


def test_packing_layout_is_little_endian_nibbles_and_plain_bytes():
    values = np.array([1, 2, 15, 0, 7])
    np.testing.assert_array_equal(pack_bits(values, 4), [1 | 2 << 4, 15, 7])
    np.testing.assert_array_equal(pack_bits(np.arange(256), 8), np.arange(256, dtype=np.uint8))


def test_semi_structured_mask_keeps_the_two_largest_of_every_four():
    w = np.random.default_rng(3).standard_normal((8, 16))
    keep = semi_structured_mask(w)
    groups, kept = np.abs(w).reshape(-1, 4), keep.reshape(-1, 4)
    assert (kept.sum(axis=1) == 2).all()
    assert (np.sort(groups, axis=1)[:, 2:] == np.sort(np.where(kept, groups, -1), axis=1)[:, 2:]
            ).all()
    np.testing.assert_array_equal(semi_structured_mask(torch.tensor(w)).numpy(), keep)
    with pytest.raises(ValueError, match="multiple"):
        semi_structured_mask(np.ones((2, 6)))
    with pytest.raises(ValueError, match="kept"):
        semi_structured_mask(w, kept=5)


def test_channel_mask_drops_whole_rows_of_smallest_norm():
    w = np.random.default_rng(4).standard_normal((10, 3, 2))
    keep = channel_mask(w, 0.3)
    rows = keep.reshape(10, -1)
    assert (rows.all(axis=1) | ~rows.any(axis=1)).all() and (~rows.any(axis=1)).sum() == 3
    norms = np.linalg.norm(w.reshape(10, -1), axis=1)
    assert norms[~rows[:, 0]].max() < norms[rows[:, 0]].min()
    np.testing.assert_array_equal(channel_mask(torch.tensor(w), 0.3).numpy(), keep)
    with pytest.raises(ValueError, match="ndim"):
        channel_mask(np.ones(4), 0.5)


def test_storage_refuses_bad_input():
    w = np.random.default_rng(5).standard_normal((4, 8))
    with pytest.raises(ValueError, match="encoding"):
        encoded_bytes((4, 8), encoding="coo")
    with pytest.raises(ValueError, match="shape"):
        encoded_bytes((32,))
    with pytest.raises(ValueError, match="2:4"):
        encoded_bytes((4, 8), sparsity=0.75, encoding="2:4")
    with pytest.raises(ValueError, match="grid"):
        encode(w, bits=4, scale=0.1)
    with pytest.raises(ValueError, match="mask"):
        encode(w, encoding="bitmask")
    with pytest.raises(ValueError, match="mask=None"):
        encode(w, mask=w > 0)
    with pytest.raises(ValueError, match="2 of every 4"):
        encode(w, mask=magnitude_mask(w, 0.5), encoding="2:4")
    with pytest.raises(ValueError, match="scale"):
        encode(w, scale=0.1)
    with pytest.raises(ValueError, match="no sparsity"):
        sparsity_at_budget(10, 8)
    with pytest.raises(ValueError, match="values"):
        pack_bits(np.array([4]), 2)
