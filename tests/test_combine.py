"""Pruning and quantization together: the two orders, the frontier, joint fine-tuning."""

import copy
import inspect

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch.utils.data import DataLoader, TensorDataset

from pvq.combine import (
    TRAINED,
    TRAINED_FORMATS,
    TRAINED_GRID,
    TRAINED_LEARNING_RATES,
    TRAINED_PAIRS,
    compress,
    fine_tune,
    frontier,
    matched_formats,
    model_bits_per_weight,
    pareto_optimal,
    fine_tune_combined,
    fine_tune_in_order,
    post_training,
    quantized_magnitude_mask,
    semi_structured,
    stored_arrays,
    weight_snr,
)
from pvq.compression import (
    bitmask_bits_per_weight,
    decode,
    encoded_bytes,
    saved_payload_bytes,
)
from pvq.data import digits_split
from pvq.finetune import LEARNING_RATE_GRIDS, Budget
from pvq.layers import compressible_layers
from pvq.metrics import snr_db
from pvq.prune import magnitude_mask, magnitude_prune, pruned_count, semi_structured_mask
from pvq.pruning_schedule import GradualMagnitudePruning
from pvq.qat import apply_lsq, lsq_quantizers, step_size_parameters
from pvq.quantize import mse_scale, quantize
from pvq.theory import pruning_snr_db, quantization_snr_db
from pvq.zoo import pretrained

pytestmark = pytest.mark.usefixtures("single_thread")

W = np.random.default_rng(0).standard_normal((64, 128))


@pytest.mark.parametrize("bits, sparsity", [(2, 0.5), (4, 0.75), (8, 0.9)])
def test_prune_then_quantize_fits_the_scale_to_the_kept_weights(bits, sparsity):
    result = compress(W, bits=bits, sparsity=sparsity, order="prune-then-quantize")
    np.testing.assert_array_equal(result.mask, magnitude_mask(W, sparsity))
    assert result.scale == mse_scale(W[result.mask], bits)
    np.testing.assert_array_equal(result.w_hat[result.mask],
                                  quantize(W, bits, result.scale)[result.mask])
    assert (result.w_hat[~result.mask] == 0).all()


@pytest.mark.parametrize("bits, sparsity", [(2, 0.5), (4, 0.75), (8, 0.9)])
def test_quantize_then_prune_prunes_the_quantized_tensor(bits, sparsity):
    result = compress(W, bits=bits, sparsity=sparsity, order="quantize-then-prune")
    assert result.scale == mse_scale(W, bits)
    q = quantize(W, bits, result.scale)
    np.testing.assert_array_equal(result.w_hat, np.where(result.mask, q, 0.0))
    assert (~result.mask).sum() == pruned_count(W.size, sparsity)
    # ties between equal codes go by |w|: the mask is the magnitude mask of w (nothing clipped)
    np.testing.assert_array_equal(result.mask, magnitude_mask(W, sparsity))
    assert np.abs(q[~result.mask]).max() <= np.abs(q[result.mask]).min()


def test_equal_codes_are_ranked_by_the_original_magnitude_not_by_position():
    w = np.array([0.9, 0.1, 0.6, 0.4, -1.2, -0.2, 2.0, 0.05])
    q = np.round(w)  # codes 1, 0, 1, 0, -1, -0, 2, 0: four zeros, three of magnitude 1
    keep = quantized_magnitude_mask(q, w, 0.5)  # four go: the zero codes, whatever their order
    np.testing.assert_array_equal(keep, np.abs(q) > 0)
    keep = quantized_magnitude_mask(q, w, 5 / 8)  # five go: the zeros and the smallest |w| of 1s
    np.testing.assert_array_equal(keep, [True, False, False, False, True, False, True, False])
    np.testing.assert_array_equal(magnitude_mask(q, 5 / 8),  # by position: index 0 goes
                                  [False, False, True, False, True, False, True, False])
    tensor = quantized_magnitude_mask(torch.tensor(q), torch.tensor(w), 5 / 8)
    assert tensor.dtype == torch.bool and tensor.tolist() == keep.tolist()
    with pytest.raises(ValueError, match="same shape"):
        quantized_magnitude_mask(q[:4], w, 0.5)
    with pytest.raises(ValueError, match="sparsity"):
        quantized_magnitude_mask(q, w, 1.5)


@given(st.integers(0, 2**31 - 1), st.sampled_from([2, 3, 4]),
       st.floats(0.0, 0.95, allow_nan=False))
@settings(max_examples=40, deadline=None)
def test_the_code_mask_is_the_magnitude_mask_below_the_clipping_level(seed, bits, sparsity):
    w = np.random.default_rng(seed).standard_normal(300)
    scale = np.abs(w).max() / (2 ** (bits - 1) - 1)  # no weight clipped
    keep = quantized_magnitude_mask(quantize(w, bits, scale), w, sparsity)
    np.testing.assert_array_equal(keep, magnitude_mask(w, sparsity))


@given(st.integers(0, 2**31 - 1), st.sampled_from([2, 3]), st.floats(0.0, 0.99),
       st.sampled_from([0.02, 0.3]))
@settings(max_examples=60, deadline=None)
def test_the_code_mask_ranks_like_a_full_lexicographic_sort(seed, bits, sparsity, scale):
    # clipped weights and many equal codes and equal magnitudes (rounded weights)
    w = np.round(np.random.default_rng(seed).standard_t(2, size=257), 2)
    q = quantize(w, bits, scale)
    keep = np.ones(w.size, dtype=bool)
    keep[np.lexsort((np.abs(w), np.abs(q)))[:pruned_count(w.size, sparsity)]] = False
    np.testing.assert_array_equal(quantized_magnitude_mask(q, w, sparsity), keep)


def test_squared_errors_of_pruning_and_quantization_add():
    for order in ("prune-then-quantize", "quantize-then-prune"):
        result = compress(W, bits=3, sparsity=0.6, order=order)
        total = np.sum((W - result.w_hat) ** 2)
        pruned = np.sum(W[~result.mask] ** 2)
        rounding = np.sum((W - quantize(W, 3, result.scale))[result.mask] ** 2)
        assert total == pytest.approx(pruned + rounding, rel=1e-12)


def test_pure_cases_and_torch_input():
    for order in ("prune-then-quantize", "quantize-then-prune"):
        alone = compress(W, bits=4, sparsity=0.0, order=order)
        np.testing.assert_array_equal(alone.w_hat, quantize(W, 4, mse_scale(W, 4)))
    np.testing.assert_array_equal(compress(W, sparsity=0.7).w_hat, magnitude_prune(W, 0.7))
    tensor = compress(torch.tensor(W), bits=4, sparsity=0.5)
    assert isinstance(tensor.w_hat, torch.Tensor)
    np.testing.assert_allclose(tensor.w_hat.numpy(), compress(W, bits=4, sparsity=0.5).w_hat)


def test_refitting_the_scale_after_pruning_is_never_worse_on_normal_weights():
    w = np.random.default_rng(1).standard_normal(20_000)
    for bits in (2, 3, 4, 6):
        for sparsity in (0.25, 0.5, 0.75):
            first = snr_db(w, compress(w, bits=bits, sparsity=sparsity).w_hat)
            second = snr_db(w, compress(w, bits=bits, sparsity=sparsity,
                                        order="quantize-then-prune").w_hat)
            assert first >= second - 1e-9


def test_compress_refuses_bad_input():
    with pytest.raises(ValueError, match="order"):
        compress(W, bits=4, sparsity=0.5, order="both")
    with pytest.raises(ValueError, match="sparsity"):
        compress(W, bits=4, sparsity=1.0)
    with pytest.raises(ValueError, match="scale"):
        compress(W, sparsity=0.5, scale=0.1)


@pytest.mark.parametrize("bits, sparsity, encoding, order", [
    (None, 0.0, "dense", "prune-then-quantize"), (3, 0.0, "dense", "prune-then-quantize"),
    (4, 0.6, "bitmask", "quantize-then-prune"), (None, 0.9, "csr", "prune-then-quantize"),
    (8, 0.5, "2:4", "prune-then-quantize"), (None, 0.5, "2:4", "prune-then-quantize")])
def test_stored_arrays_hold_the_compressed_tensor_in_the_counted_bytes(bits, sparsity, encoding,
                                                                       order):
    stored = stored_arrays(W, bits=bits, sparsity=sparsity, encoding=encoding, order=order)
    assert saved_payload_bytes(stored) == encoded_bytes(W.shape, bits=bits, sparsity=sparsity,
                                                        encoding=encoding)
    expected = (semi_structured(W, bits=bits) if encoding == "2:4"
                else compress(W, bits=bits, sparsity=sparsity, order=order)).w_hat
    np.testing.assert_allclose(decode(stored, W.shape, bits=bits, encoding=encoding), expected,
                               rtol=1e-3 if bits is None else 1e-6, atol=0)
    with pytest.raises(ValueError, match="2:4"):
        stored_arrays(W, sparsity=0.75, encoding="2:4")


def test_semi_structured_quantizes_the_kept_half_at_its_own_scale():
    result = semi_structured(W, bits=4)
    np.testing.assert_array_equal(result.mask, semi_structured_mask(W))
    assert result.scale == mse_scale(W[result.mask], 4)
    np.testing.assert_array_equal(result.w_hat, np.where(result.mask,
                                                         quantize(W, 4, result.scale), 0.0))
    np.testing.assert_array_equal(semi_structured(W).w_hat, np.where(result.mask, W, 0.0))


@pytest.mark.parametrize("budget", [2, 3, 4])
def test_matched_formats_all_cost_the_budget(budget):
    formats = matched_formats(budget)
    assert formats[:2] == [(budget, 0.0), (None, 1 - (budget - 1) / 16)]
    for bits, sparsity in formats[2:]:
        assert 0 < sparsity < 1 and bits > budget - 1
        assert bitmask_bits_per_weight(sparsity, bits) == pytest.approx(budget)
    assert [b for b, _ in formats[2:]] == [b for b in (2, 3, 4, 6, 8) if b > budget - 1]


def test_pareto_points_by_hand():
    cost = [1, 2, 2, 3, 4, 4]
    quality = [5, 4, 7, 7, 9, 9]
    np.testing.assert_array_equal(pareto_optimal(cost, quality),
                                  [True, False, True, False, True, False])
    with pytest.raises(ValueError, match="same length"):
        pareto_optimal([1, 2], [1])


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=30))
@settings(max_examples=80, deadline=None)
def test_pareto_points_are_exactly_the_undominated_ones(points):
    cost, quality = map(np.array, zip(*points))
    optimal = pareto_optimal(cost, quality)
    for i in range(len(points)):
        dominated = any((cost[j] <= cost[i] and quality[j] >= quality[i]
                         and (cost[j] < cost[i] or quality[j] > quality[i]))
                        for j in range(len(points)))
        duplicate_before = any(points[j] == points[i] for j in range(len(points))
                               if optimal[j] and j != i)
        assert optimal[i] == (not dominated and not duplicate_before)


def test_frontier_on_a_normal_sample_agrees_with_the_exact_theory():
    w = np.random.default_rng(2).standard_normal((256, 256))
    table = frontier(w, bits=(3, 4), sparsities=(0.5, 0.75), encodings=("bitmask",))
    assert len(table) == 2 + 2 + 2 * 2 * 2
    normal = stats.norm()
    quantization = table[table["method"] == "quantization"].set_index("value_bits")["snr_db"]
    pruning = table[table["method"] == "pruning"].set_index("sparsity")["snr_db"]
    for bits in (3, 4):
        assert quantization[bits] == pytest.approx(quantization_snr_db(normal, bits), abs=0.1)
    for sparsity in (0.5, 0.75):
        assert pruning[sparsity] == pytest.approx(pruning_snr_db(normal, sparsity), abs=0.1)
    row = table[(table["method"] == "prune-then-quantize") & (table["value_bits"] == 4)
                & (table["sparsity"] == 0.5)].iloc[0]
    assert row["bits_per_weight"] == pytest.approx(0.5 * 4 + 1 + 32 / w.size)
    assert row["snr_db"] == pytest.approx(snr_db(w, compress(w, bits=4, sparsity=0.5).w_hat))
    # quantization alone at 4 bits beats every pruned format that costs 4 bits or more
    assert table.loc[table["pareto"], "method"].tolist().count("quantization") == 2


def tiny_loader():
    split = digits_split()
    data = TensorDataset(torch.from_numpy(split.x_train[:64]), torch.from_numpy(split.y_train[:64]))
    return DataLoader(data, batch_size=16, shuffle=True, generator=torch.Generator())


def test_model_storage_counts_every_layer_with_its_overheads():
    model = pretrained("digits_cnn")
    layers = compressible_layers(model).values()
    weights = sum(layer.weight.numel() for layer in layers)
    assert weights == 23_824
    packed = sum(layer.weight.numel() * 4 / 8 + 4 for layer in layers)
    assert model_bits_per_weight(model, bits=4) == pytest.approx(8 * packed / weights)
    masked = sum(encoded_bytes(layer.weight.shape, bits=2, sparsity=0.5, encoding="bitmask")
                 for layer in layers)
    assert model_bits_per_weight(model, bits=2, sparsity=0.5) == 8 * masked / weights
    assert model_bits_per_weight(model, sparsity=0.5) == pytest.approx(9.0, abs=0.01)


def test_post_training_compresses_every_layer_and_reestimates_batchnorm():
    model, loader = pretrained("digits_cnn"), tiny_loader()
    compressed = post_training(model, loader, bits=3, sparsity=0.5, bn_batches=2)
    for name, layer in compressible_layers(model).items():
        expected = compress(layer.weight.detach(), bits=3, sparsity=0.5).w_hat
        torch.testing.assert_close(compressed.get_submodule(name).weight.detach(), expected)
    assert not torch.equal(compressed.bn1.running_mean, model.bn1.running_mean)
    snrs = weight_snr(model, compressed)
    assert snrs["conv2"] == pytest.approx(snr_db(model.conv2.weight, compressed.conv2.weight))


def test_lsq_with_gradual_pruning_masks_the_float_weights_beneath_the_quantizer():
    model = pretrained("digits_cnn")
    apply_lsq(model, 3)
    floats = {name: layer.parametrizations.weight.original.detach().clone()
              for name, layer in compressible_layers(model).items()}
    pruner = GradualMagnitudePruning(model, 0.5, end_step=0)
    for name, layer in compressible_layers(model).items():
        mask = magnitude_mask(floats[name], 0.5)
        step = layer.parametrizations.weight[0].step.item()
        torch.testing.assert_close(layer.weight, quantize(floats[name] * mask, 3, step))
    assert len(step_size_parameters(model)) == 4
    pruner.make_permanent()
    assert all((layer.weight == 0).float().mean() >= 0.5
               for layer in compressible_layers(model).values())


def test_quantization_aware_pruning_trains_both_and_is_reproducible():
    model, loader = pretrained("digits_cnn"), tiny_loader()
    runs = [fine_tune(model, loader, bits=3, sparsity=0.75, epochs=2, pruning_fraction=0.5,
                      update_every=1, bn_batches=2) for _ in range(2)]
    tuned = runs[0]
    untrained = copy.deepcopy(model)
    start = {name: q.step.item() for name, q in apply_lsq(untrained, 3).items()}
    for name, layer in compressible_layers(tuned).items():
        chain = layer.parametrizations.weight  # the LSQ quantizer with the mask beneath it
        quantizer, mask = chain[0], chain.original_mask
        assert int((mask == 0).sum()) == pruned_count(mask.numel(), 0.75)
        torch.testing.assert_close(layer.weight,
                                   quantize(chain.original_orig * mask, 3, quantizer.step.item()))
        assert quantizer.step.item() != start[name]  # the step sizes were trained (by Adam)
        torch.testing.assert_close(layer.weight, runs[1].get_submodule(name).weight, rtol=0,
                                   atol=0)
    with pytest.raises(ValueError, match="nothing to compress"):
        fine_tune(model, loader)


def test_fine_tune_alone_is_lsq_or_gmp():
    model, loader = pretrained("digits_cnn"), tiny_loader()
    pruned = fine_tune(model, loader, sparsity=0.5, epochs=1, bn_batches=1)
    assert not lsq_quantizers(pruned)
    assert all((layer.weight == 0).float().mean() == pytest.approx(0.5, abs=0.01)
               for layer in compressible_layers(pruned).values())
    quantized = fine_tune(model, loader, bits=4, epochs=1, bn_batches=1)
    assert len(lsq_quantizers(quantized)) == 4
    assert quantized.conv2.weight.unique().numel() <= 16


@pytest.mark.parametrize("order", ["prune-then-quantize", "quantize-then-prune"])
def test_trained_orders_end_with_quantized_codes_on_the_kept_weights(order):
    model, loader = pretrained("digits_cnn"), tiny_loader()
    tuned = fine_tune_in_order(model, loader, bits=3, sparsity=0.5, order=order, epochs=1,
                               update_every=1, bn_batches=2)
    quantizers = lsq_quantizers(tuned)
    start = {name: q.step.item() for name, q in apply_lsq(copy.deepcopy(model), 3).items()}
    for name, layer in compressible_layers(tuned).items():
        chain = layer.parametrizations.weight
        mask, floats = chain.original_mask, chain.original_orig
        assert int((mask == 0).sum()) == pruned_count(mask.numel(), 0.5)
        torch.testing.assert_close(layer.weight,
                                   quantize(floats * mask, 3, quantizers[name].step.item()))
        assert quantizers[name].step.item() != start[name]  # LSQ trained in its stage
    again = fine_tune_combined(model, loader, method=order, bits=3, sparsity=0.5, epochs=2,
                               lr=0.03, update_every=1, bn_batches=2)
    torch.testing.assert_close(again.conv2.weight, tuned.conv2.weight, rtol=0, atol=0)


def test_prune_then_quantize_keeps_the_pruned_weights_of_its_first_stage():
    model, loader = pretrained("digits_cnn"), tiny_loader()
    pruned = fine_tune(model, loader, sparsity=0.5, epochs=1, update_every=1, bn_batches=2)
    both = fine_tune_in_order(model, loader, bits=4, sparsity=0.5, order="prune-then-quantize",
                              epochs=1, update_every=1, bn_batches=2)
    for name, layer in compressible_layers(both).items():
        zeros = pruned.get_submodule(name).weight == 0
        assert bool((layer.weight[zeros] == 0).all())


def test_fine_tune_combined_dispatches_and_refuses_bad_input():
    model, loader = pretrained("digits_cnn"), tiny_loader()
    joint = fine_tune_combined(model, loader, method="joint", bits=3, sparsity=0.5, epochs=1,
                               lr=0.03, bn_batches=1)
    alone = fine_tune(model, loader, bits=3, sparsity=0.5, epochs=1, lr=0.03, bn_batches=1)
    torch.testing.assert_close(joint.fc.weight, alone.fc.weight, rtol=0, atol=0)
    with pytest.raises(ValueError, match="method"):
        fine_tune_combined(model, loader, method="both", bits=3, lr=0.03)
    with pytest.raises(ValueError, match="even"):
        fine_tune_combined(model, loader, method="quantize-then-prune", bits=3, sparsity=0.5,
                           epochs=3, lr=0.03)
    with pytest.raises(ValueError, match="both bits and a sparsity"):
        fine_tune_in_order(model, loader, bits=3, sparsity=0.0, order="quantize-then-prune")
    with pytest.raises(ValueError, match="order"):
        fine_tune_in_order(model, loader, bits=3, sparsity=0.5, order="joint")


def test_the_trained_comparison_follows_notebook_5s_grids_and_budget():
    """Notebook 6's trained formats search the union of notebook 5's grids, with notebook 5's
    training settings besides the epochs; the recorded picks lie strictly inside the grid."""
    assert set(TRAINED_GRID) == set(LEARNING_RATE_GRIDS["quantization"]) | set(
        LEARNING_RATE_GRIDS["pruning"]) and list(TRAINED_GRID) == sorted(TRAINED_GRID)
    assert set(TRAINED_LEARNING_RATES) == set(TRAINED_FORMATS)
    assert all(TRAINED_GRID[0] < lr < TRAINED_GRID[-1] and lr in TRAINED_GRID
               for lr in TRAINED_LEARNING_RATES.values())
    assert {name for pair in TRAINED_PAIRS for name in pair} == set(TRAINED_FORMATS)
    assert all(method in TRAINED for method, _, _ in TRAINED_FORMATS.values())
    defaults = {name: parameter.default for name, parameter
                in inspect.signature(fine_tune).parameters.items()}
    budget = Budget()
    for setting in ("pruning_fraction", "update_every", "step_size_lr", "bn_batches"):
        assert defaults[setting] == getattr(budget, setting), setting
