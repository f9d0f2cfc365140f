"""Equal compression, storage accounting, SNR and kurtosis (against scipy)."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from pvq.compression import (
    bitmask_bits_per_weight,
    dense_bits_per_weight,
    equivalent_bits,
    equivalent_sparsity,
    mask_overhead,
    storage_bytes,
)
from pvq.metrics import excess_kurtosis, kurtosis, snr_db, snr_db_standard_error


@pytest.mark.parametrize(
    "bits, sparsity", [(8, 0.5), (6, 0.625), (4, 0.75), (3, 0.8125), (2, 0.875)]
)
def test_equal_compression_matches_the_paper(bits, sparsity):
    assert equivalent_sparsity(bits) == sparsity
    assert equivalent_bits(sparsity) == bits
    assert dense_bits_per_weight(bits) == bits
    assert bitmask_bits_per_weight(sparsity) == bits + 1


def test_mask_costs_one_sixteenth_of_fp16():
    assert mask_overhead() == 0.0625
    assert storage_bytes(1000, bitmask_bits_per_weight(0.75)) == 625


def test_compression_refuses_bad_input():
    with pytest.raises(ValueError, match="bits"):
        equivalent_sparsity(16)
    with pytest.raises(ValueError, match="sparsity"):
        equivalent_bits(1.0)
    with pytest.raises(ValueError, match="size"):
        storage_bytes(-1, 4)


def test_snr_definition_and_invariance():
    w = np.random.default_rng(0).standard_normal(1000)
    noisy = w + 0.1 * np.random.default_rng(1).standard_normal(1000)
    expected = 10 * math.log10(np.mean(w**2) / np.mean((w - noisy) ** 2))
    assert snr_db(w, noisy) == pytest.approx(expected)
    assert snr_db(3 * w, 3 * noisy) == pytest.approx(expected)
    assert snr_db(torch.tensor(w), torch.tensor(noisy)) == pytest.approx(expected)
    assert snr_db(w, w) == math.inf
    assert snr_db(w, np.zeros_like(w)) == pytest.approx(0.0)


def test_snr_refuses_bad_input():
    with pytest.raises(ValueError, match="shape"):
        snr_db(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="w is all zeros"):
        snr_db(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="w_hat"):
        snr_db(np.ones(3), np.array([1.0, np.nan, 1.0]))


def test_kurtosis_agrees_with_scipy():
    rng = np.random.default_rng(0)
    for w in (rng.standard_normal(10_000), rng.laplace(size=10_000), rng.uniform(size=500)):
        assert kurtosis(w) == pytest.approx(stats.kurtosis(w, fisher=False, bias=True))
        assert excess_kurtosis(w) == pytest.approx(stats.kurtosis(w, fisher=True, bias=True))
    assert kurtosis(rng.standard_normal(1_000_000)) == pytest.approx(3.0, abs=0.02)
    with pytest.raises(ValueError, match="constant"):
        kurtosis(np.ones(10))


def test_snr_standard_error_matches_the_spread_over_repeated_samples():
    rng = np.random.default_rng(3)
    repeats = [rng.standard_normal(4000) for _ in range(300)]
    snrs = [snr_db(w, np.round(w * 2) / 2) for w in repeats]
    errors = [snr_db_standard_error(w, np.round(w * 2) / 2) for w in repeats]
    assert np.mean(errors) == pytest.approx(np.std(snrs, ddof=1), rel=0.15)
    with pytest.raises(ValueError, match="error"):
        snr_db_standard_error(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="shape"):
        snr_db_standard_error(np.ones(5), np.ones(4))
