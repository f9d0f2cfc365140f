"""Magnitude pruning: exact counts, ties, the CDF threshold; cross-checked against torch.prune."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from torch.nn.utils import prune as torch_prune

from pvq.prune import magnitude_mask, magnitude_prune, magnitude_threshold, pruned_count

weights = arrays(np.float64, st.integers(1, 300), elements=st.floats(-10, 10, width=64))
sparsities = st.floats(0.0, 0.999)


@given(weights, sparsities)
def test_exactly_round_c_n_entries_are_removed(w, sparsity):
    keep = magnitude_mask(w, sparsity)
    assert (~keep).sum() == round(sparsity * w.size)
    pruned = magnitude_prune(w, sparsity)
    np.testing.assert_array_equal(pruned[keep], w[keep])
    assert np.all(pruned[~keep] == 0)


@given(weights, sparsities)
def test_every_pruned_magnitude_is_at_most_every_kept_one(w, sparsity):
    keep = magnitude_mask(w, sparsity)
    if keep.any() and (~keep).any():
        assert np.abs(w[~keep]).max() <= np.abs(w[keep]).min()


def test_ties_are_broken_by_position():
    w = np.array([1.0, -1.0, 1.0, 1.0, 2.0])
    np.testing.assert_array_equal(magnitude_mask(w, 0.4), [False, False, True, True, True])


@given(weights, sparsities)
def test_same_count_as_torch_l1_unstructured(w, sparsity):
    module = torch.nn.Linear(1, w.size, bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(w).reshape(-1, 1))
    torch_prune.l1_unstructured(module, "weight", amount=float(sparsity))
    torch_zeros = int((module.weight_mask == 0).sum())
    ours = magnitude_mask(torch.tensor(w).reshape(-1, 1), sparsity)
    assert int((~ours).sum()) == torch_zeros == pruned_count(w.size, sparsity)


def test_same_mask_as_torch_when_magnitudes_are_distinct():
    w = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    module = torch.nn.Linear(32, 64, bias=False)
    with torch.no_grad():
        module.weight.copy_(w)
    torch_prune.l1_unstructured(module, "weight", amount=0.75)
    assert torch.equal(magnitude_mask(w, 0.75), module.weight_mask.bool())
    assert torch.equal(magnitude_prune(w, 0.75), module.weight.detach())


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.875])
def test_threshold_leaves_the_right_mass_inside(sparsity):
    for dist in (stats.norm(scale=0.2), stats.laplace(), stats.t(4)):
        tau = magnitude_threshold(dist, sparsity)
        assert dist.cdf(tau) - dist.cdf(-tau) == pytest.approx(sparsity, abs=1e-12)


def test_threshold_matches_the_empirical_cut_of_a_large_sample():
    w = np.random.default_rng(0).standard_normal(1_000_000)
    keep = magnitude_mask(w, 0.75)
    assert np.abs(w[keep]).min() == pytest.approx(magnitude_threshold(stats.norm(), 0.75), abs=3e-3)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: magnitude_prune(np.ones(4), 1.0), ValueError, "sparsity"),
        (lambda: magnitude_prune(np.ones(4), -0.1), ValueError, "sparsity"),
        (lambda: magnitude_prune(np.ones(4), "half"), TypeError, "sparsity"),
        (lambda: magnitude_prune(np.array([np.nan]), 0.5), ValueError, "w"),
        (lambda: magnitude_prune(np.zeros(0), 0.5), ValueError, "w"),
        (lambda: magnitude_prune((1.0, 2.0), 0.5), TypeError, "w"),
        (lambda: magnitude_threshold("normal", 0.5), TypeError, "dist"),
        (lambda: magnitude_threshold(stats.norm(loc=1), 0.5), ValueError, "dist"),
        (lambda: magnitude_threshold(stats.norm(), 1.5), ValueError, "sparsity"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, error, words):
    with pytest.raises(error, match=words):
        call()
