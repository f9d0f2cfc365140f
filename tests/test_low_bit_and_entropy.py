"""Binary and ternary codes, entropy-coded storage, the error split, and the new timing helpers."""

import lzma
import math

import numpy as np
import pandas as pd
import pytest
import torch

from pvq import combine, compression, hardware
from pvq.metrics import snr_db
from pvq.quantize import binarize, binary_scale, quantize, ternary_scale

RNG = np.random.default_rng(3)
W = RNG.standard_normal((16, 64))


def test_binary_scale_is_the_mse_optimum():
    best = binary_scale(W)
    errors = [np.mean((W - binarize(W, best * f)) ** 2) for f in (0.9, 0.99, 1.01, 1.1)]
    assert np.mean((W - binarize(W)) ** 2) < min(errors)
    assert set(np.unique(binarize(W))) == {-best, best}
    assert torch.equal(binarize(torch.tensor([-1.0, 0.0, 2.0])), torch.tensor([-1.0, 1.0, 1.0]))


def test_ternary_scale_beats_every_scale_of_the_symmetric_two_bit_grid():
    scale = ternary_scale(W)
    best = snr_db(W, quantize(W, 2, scale, symmetric=True))
    scan = max(snr_db(W, quantize(W, 2, s, symmetric=True))
               for s in np.linspace(0.2, 3.0, 2001) * W.std())
    assert best >= scan - 1e-9
    # the normal's optimal 3-level quantizer (Lloyd-Max) keeps about 7.2 dB
    normal = np.random.default_rng(0).standard_normal(200_000)
    assert snr_db(normal, quantize(normal, 2, ternary_scale(normal), symmetric=True)) == \
        pytest.approx(10 * np.log10(1 / 0.1902), abs=0.05)


@pytest.mark.parametrize("bad", [np.zeros(5), np.array([np.nan, 1.0])])
def test_low_bit_scales_reject_bad_weights(bad):
    with pytest.raises(ValueError):
        binary_scale(bad)
    with pytest.raises(ValueError):
        ternary_scale(bad)


def test_entropy_bits_and_the_bound():
    assert compression.entropy_bits(np.array([0, 1, 2, 3] * 5)) == pytest.approx(2.0)
    assert compression.entropy_bits(np.ones(7)) == 0.0
    codes, keep = np.arange(8) % 2, np.arange(8) < 2
    # H(0.25) + 0.25 * H(kept codes 0, 1) + 32 / 8
    expected = (-(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)) + 0.25 * 1.0 + 4.0)
    assert compression.entropy_coded_bits_per_weight(codes, keep) == pytest.approx(expected)
    assert compression.entropy_coded_bits_per_weight(codes, scale_bits=0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="mask"):
        compression.entropy_coded_bits_per_weight(codes, keep[:3])
    with pytest.raises(ValueError, match="scale_bits"):
        compression.entropy_coded_bits_per_weight(codes, scale_bits=-1)
    with pytest.raises(ValueError, match="empty"):
        compression.entropy_bits(np.array([]))


def test_lzma_bytes_are_what_lzma_writes():
    stored = combine.stored_arrays(W, bits=4, sparsity=0.5, encoding="bitmask")
    expected = sum(len(lzma.compress(t.numpy().tobytes())) for t in stored.values())
    assert compression.lzma_payload_bytes(stored) == expected


def test_entropy_frontier_costs_at_most_the_fixed_length_codes():
    table = combine.entropy_frontier(W, bits=(2, 4), sparsities=(0.5, 0.75))
    assert set(table["method"]) == {"binary", "ternary", "quantization", "prune-then-quantize"}
    assert len(table) == 2 + 2 + 4
    # entropy never exceeds log2 of the alphabet: codes and mask cost at most their fixed width
    assert (table["entropy_bits_per_weight"] <= table["fixed_bits_per_weight"] + 1e-9).all()
    assert table["pareto"].any()
    rows = combine.low_bit_rows(W).set_index("method")
    assert rows.loc["binary", "bits_per_weight"] == compression.encoded_bits_per_weight(
        W.shape, bits=1)
    assert rows.loc["binary", "snr_db"] < rows.loc["ternary", "snr_db"]
    with pytest.raises(ValueError, match="method"):
        combine.low_bit(W, "quaternary")


def test_error_split_is_exact_for_weights_and_has_a_cross_term_for_outputs():
    result = combine.compress(W, bits=2, sparsity=0.5)
    weight = combine.error_split(W, result)
    assert weight["cross"] == 0.0
    assert weight["pruning"] + weight["rounding"] == pytest.approx(
        np.sum((W - result.w_hat) ** 2))
    mixing = RNG.standard_normal((64, 64))
    X = RNG.standard_normal((200, 64)) @ mixing  # correlated inputs
    output = combine.error_split(W, result, X)
    total = np.sum(((W - result.w_hat) @ X.T) ** 2)
    assert output["total"] == pytest.approx(total)
    assert output["pruning"] + output["rounding"] + output["cross"] == pytest.approx(total)
    assert abs(output["cross"]) > 1e-6 * total
    with pytest.raises(ValueError, match="X"):
        combine.error_split(W, result, X[:, :10])


def _table(times):
    rows = [{"name": name, "kind": kind, "sparsity": c, "median_us": t}
            for name, kind, c, t in times]
    return pd.DataFrame(rows)


def test_interpolated_break_even():
    table = _table([("dense FP32", "dense", 0.0, 100.0), ("dense BF16", "bf16", 0.0, 200.0),
                    ("CSR 50%", "csr", 0.5, 400.0), ("CSR 80%", "csr", 0.8, 200.0),
                    ("CSR 90%", "csr", 0.9, 50.0)])
    # log ratio 0.693 at 80 %, -0.693 at 90 %: crosses halfway
    assert hardware.interpolated_break_even(table) == pytest.approx(0.85)
    assert hardware.interpolated_break_even(table, base="bf16") == pytest.approx(0.8)
    slow = table.assign(median_us=[100.0, 200.0, 400.0, 300.0, 150.0])
    assert math.isnan(hardware.interpolated_break_even(slow))
    fast = table.assign(median_us=[100.0, 200.0, 90.0, 80.0, 50.0])
    assert hardware.interpolated_break_even(fast) == 0.5
    with pytest.raises(ValueError, match="structured"):
        hardware.interpolated_break_even(table, "structured")
    with pytest.raises(ValueError, match="fp16"):
        hardware.speedups(table, base="fp16")


def test_median_interval_contains_the_median():
    times = np.random.default_rng(1).exponential(size=101)
    low, high = hardware.median_interval(times)
    assert low <= np.median(times) <= high
    with pytest.raises(ValueError):
        hardware.median_interval([])


def test_bf16_variant_and_flags():
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    variant = hardware.dense_variant(w, torch.bfloat16)
    assert variant.kind == "bf16" and variant.weight.dtype == torch.float32
    x = hardware.layer_input(tokens=4, features=16)
    assert snr_db(torch.nn.functional.linear(x, variant.weight), variant.output(x).float()) > 30
    with pytest.raises(ValueError, match="dtype"):
        hardware.dense_variant(w, torch.float64)
    assert hardware.has_native_bf16("flags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert not hardware.has_native_bf16("flags\t\t: fpu avx2 avx512f\n")
    assert hardware.has_native_bf16("Features\t: fp asimd bf16\n")
    assert not hardware.has_native_bf16("")
