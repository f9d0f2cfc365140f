"""The timed Linear variants compute what they claim (speed is measured, never asserted here)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from pvq.hardware import (
    break_even_sparsity,
    csr_variant,
    dense_variant,
    int8_linear,
    int8_variant,
    layer_input,
    linear_variants,
    speedups,
    structured_variant,
    time_variants,
)
from pvq.metrics import snr_db
from pvq.prune import pruned_count
from pvq.quantize import integer_codes, mse_scale, quantize

pytestmark = pytest.mark.usefixtures("single_thread")

W = torch.randn(96, 64, generator=torch.Generator().manual_seed(0))
X = layer_input(tokens=16, features=64, seed=1)


@pytest.mark.parametrize("variant", linear_variants(W, (0.5, 0.9)), ids=lambda v: v.name)
def test_every_variant_computes_x_times_its_weight(variant):
    reference = F.linear(X, variant.weight)
    if variant.kind == "int8":  # activations are quantized on the fly as well
        assert snr_db(reference, variant.output(X)) > 30
    else:
        torch.testing.assert_close(variant.output(X), reference, rtol=1e-5, atol=1e-5)


def test_pruned_variants_keep_the_same_number_of_weights():
    for sparsity in (0.5, 0.75, 0.99):
        unstructured = csr_variant(W, sparsity)
        structured = structured_variant(W, sparsity)
        assert int((unstructured.weight == 0).sum()) == pruned_count(W.numel(), sparsity)
        assert len(structured.rows) == 96 - pruned_count(96, sparsity)
        kept = int((structured.weight != 0).sum())
        assert kept == len(structured.rows) * 64
        assert abs(kept - int((unstructured.weight != 0).sum())) <= 64  # one row at most


def test_int8_holds_the_course_grid():
    scale = mse_scale(W, 8)
    layer = int8_linear(W, scale)
    codes = torch.int_repr(layer.weight()).to(torch.float64)
    np.testing.assert_array_equal(codes.numpy(), np.round(integer_codes(W, 8, scale).numpy()))
    torch.testing.assert_close(int8_variant(W).weight, quantize(W, 8, scale))


def test_dense_variant_is_the_float_layer_and_refuses_bad_weights():
    torch.testing.assert_close(dense_variant(W).output(X), X @ W.T)
    with pytest.raises(ValueError, match="2-D"):
        dense_variant(W.flatten())
    with pytest.raises(TypeError, match="torch.Tensor"):
        dense_variant(W.numpy())


def test_timing_table_has_ordered_quartiles():
    variants = [dense_variant(W), csr_variant(W, 0.9)]
    table = time_variants(variants, X, rounds=2, min_run_time=0.002)
    assert list(table["name"]) == ["dense FP32", "CSR 90%"]
    assert (table["q1_us"] <= table["median_us"]).all()
    assert (table["median_us"] <= table["q3_us"]).all() and (table["q1_us"] > 0).all()
    assert (table["blocks"] >= 2).all()
    with pytest.raises(ValueError, match="rounds"):
        time_variants(variants, X, rounds=0)


def test_speedups_and_break_even_from_a_table():
    table = pd.DataFrame({
        "name": ["dense", "a", "b", "c", "d"], "kind": ["dense", "csr", "csr", "csr", "csr"],
        "sparsity": [0.0, 0.5, 0.9, 0.95, 0.99], "median_us": [100.0, 300.0, 90.0, 110.0, 20.0]})
    np.testing.assert_allclose(speedups(table).to_numpy(), [1, 1 / 3, 100 / 90, 100 / 110, 5])
    assert break_even_sparsity(table) == 0.99  # 0.9 wins, but 0.95 loses again
    table.loc[3, "median_us"] = 50.0
    assert break_even_sparsity(table) == 0.9
    table["median_us"] = [100.0, 300, 200, 150, 120]
    assert math.isnan(break_even_sparsity(table))
    with pytest.raises(ValueError, match="structured"):
        break_even_sparsity(table, "structured")
