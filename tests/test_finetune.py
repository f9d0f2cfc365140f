"""Equal-compression experiments: what each stage does to a copy of the model, records, the
learning-rate choice on calibration accuracy, the accuracy table and the representation table."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pvq.finetune as finetune
from pvq.data import DigitsLoaders
from pvq.finetune import (
    METHODS,
    Budget,
    accuracy_interval,
    accuracy_intervals,
    accuracy_table,
    at_chosen_rates,
    choose_learning_rates,
    compress,
    fine_tune,
    fine_tune_uncompressed,
    grid_sweep,
    headroom_run,
    headroom_setup,
    learning_rate_choice,
    paired_gap_table,
    per_example_correct,
    post_training,
    representation_table,
    run,
    sweep,
    uncompressed_runs,
)
from pvq.prune import magnitude_prune
from pvq.pruning_schedule import GradualMagnitudePruning, layer_sparsity
from pvq.qat import lsq_quantizers
from pvq.quantize import mse_scale, quantize
from pvq.representations import compare_layers
from pvq.stats import paired_bootstrap
from pvq.train import evaluate, reestimate_batchnorm

pytestmark = pytest.mark.usefixtures("single_thread")

BUDGET = Budget(epochs=2, update_every=2, bn_batches=3)


def blobs(n: int, seed: int) -> TensorDataset:
    """Three Gaussian blobs in 8 dimensions (same centres for every seed, other samples)."""
    centres = 2.0 * torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    return TensorDataset(centres[labels] + torch.randn(n, 8, generator=generator), labels)


def loaders() -> DigitsLoaders:
    return DigitsLoaders(
        train=DataLoader(blobs(64, 1), batch_size=16, shuffle=True,
                         generator=torch.Generator().manual_seed(0)),
        calibration=DataLoader(blobs(32, 2), batch_size=16),
        test=DataLoader(blobs(48, 3), batch_size=16),
    )


def tiny_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [model[0].weight.detach(), model[3].weight.detach()]


def same_state(a: nn.Module, b: nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_compress_is_ptq_at_mse_scales_or_exact_magnitude_pruning_of_a_copy():
    model = tiny_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized, pruned = compress(model, "quantization", 3), compress(model, "pruning", 3)
    for w, w_quantized, w_pruned in zip(weights(model), weights(quantized), weights(pruned)):
        torch.testing.assert_close(w_quantized, quantize(w, 3, mse_scale(w, 3)))
        torch.testing.assert_close(w_pruned, magnitude_prune(w, 1 - 3 / 16))
    assert set(layer_sparsity(pruned).values()) == {round(16 * 8 * 13 / 16) / 128,
                                                    round(3 * 16 * 13 / 16) / 48}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not quantized.training and not pruned.training


def test_a_quantized_start_keeps_its_step_sizes_but_not_at_other_bits():
    start = compress(tiny_mlp(), "quantization", 4)
    with torch.no_grad():
        lsq_quantizers(start)["0"].step.mul_(2.0)
    again = compress(start, "quantization", 4)
    assert lsq_quantizers(again)["0"].step.item() == lsq_quantizers(start)["0"].step.item()
    with pytest.raises(ValueError, match="already quantized"):
        compress(start, "quantization", 3)


def test_post_training_reestimates_batchnorm_on_seeded_training_batches():
    data = loaders()
    model = tiny_mlp()
    first, second = (post_training(model, "pruning", 4, data.train, bn_batches=2)
                     for _ in range(2))
    assert same_state(first, second)
    reference = compress(model, "pruning", 4)
    assert not torch.equal(reference[1].running_mean, first[1].running_mean)
    data.train.generator.manual_seed(0)
    reestimate_batchnorm(reference, data.train, batches=2)
    assert same_state(reference, first)


@pytest.mark.parametrize("method", METHODS)
def test_fine_tuning_is_seeded_and_leaves_the_original_alone(method):
    model, data = tiny_mlp(), loaders()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runs = [fine_tune(model, method, 3, data.train, lr=0.05, seed=seed, budget=BUDGET)
            for seed in (1, 1, 2)]
    assert same_state(runs[0], runs[1]) and not same_state(runs[0], runs[2])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fine_tuned_models_are_compressed_at_the_end():
    model, data = tiny_mlp(), loaders()
    pruned = fine_tune(model, "pruning", 2, data.train, lr=0.05, budget=BUDGET)
    assert layer_sparsity(pruned) == {"0": 112 / 128, "3": 42 / 48}
    quantized = fine_tune(model, "quantization", 2, data.train, lr=0.05, budget=BUDGET)
    for name, quantizer in lsq_quantizers(quantized).items():
        layer = dict(quantized.named_modules())[name]
        original = layer.parametrizations.weight.original.detach()
        torch.testing.assert_close(layer.weight.detach(),
                                   quantize(original, 2, quantizer.step.item()))
        assert quantizer.step.item() != mse_scale(original, 2)  # the step size was learned


def test_lsq_from_a_compressed_start_equals_lsq_from_the_float_model():
    model, data = tiny_mlp(), loaders()
    direct = fine_tune(model, "quantization", 4, data.train, lr=0.05, budget=BUDGET)
    started = fine_tune(compress(model, "quantization", 4), "quantization", 4, data.train,
                        lr=0.05, budget=BUDGET)
    assert same_state(direct, started)


def test_gradual_pruning_follows_the_budget(monkeypatch):
    pruners = []

    class Recorded(GradualMagnitudePruning):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            pruners.append(self)

    monkeypatch.setattr(finetune, "GradualMagnitudePruning", Recorded)
    budget = Budget(epochs=3, pruning_fraction=0.5, update_every=3, bn_batches=1)
    fine_tune(tiny_mlp(), "pruning", 4, loaders().train, lr=0.05, budget=budget)
    (pruner,) = pruners  # 4 batches per epoch: the target is reached at step round(0.5 * 12)
    assert (pruner.end_step, pruner.update_every, pruner.final_sparsity) == (6, 3, 0.75)
    assert pruner.sparsity == 0.75


def test_run_records_both_accuracies_of_the_model_it_returns():
    model, data = tiny_mlp(), loaders()
    record = run(model, "pruning", 4, data, lr=0.05, seed=3, budget=BUDGET)
    assert {k: record[k] for k in ("method", "stage", "bits", "sparsity", "lr", "seed")} == {
        "method": "pruning", "stage": "fine-tuned", "bits": 4, "sparsity": 0.75, "lr": 0.05,
        "seed": 3}
    assert record["test_accuracy"] == evaluate(record["model"], data.test)
    assert record["calibration_accuracy"] == evaluate(record["model"], data.calibration)
    assert np.array_equal(record["test_correct"], per_example_correct(record["model"], data.test))
    post = run(model, "quantization", 4, data, lr=None, budget=BUDGET)
    assert post["stage"] == "post-training" and math.isnan(post["lr"])


def test_sweep_runs_every_combination_once():
    records = sweep(tiny_mlp(), loaders(), bits=(4, 2), lrs=(None, 0.05), seeds=(0, 1),
                    budget=Budget(epochs=1, update_every=2, bn_batches=1))
    counts = records.groupby(["method", "stage"]).size()
    assert counts.to_dict() == {(m, s): n for m in METHODS
                                for s, n in (("fine-tuned", 4), ("post-training", 2))}
    assert len({id(model) for model in records["model"]}) == len(records)
    again = sweep(tiny_mlp(), loaders(), bits=(4, 2), lrs=(None, 0.05), seeds=(0, 1),
                  budget=Budget(epochs=1, update_every=2, bn_batches=1))
    pd.testing.assert_frame_equal(records.drop(columns="model"), again.drop(columns="model"))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="method"):
        compress(tiny_mlp(), "distillation", 4)
    with pytest.raises(ValueError, match="epochs"):
        Budget(epochs=0)
    with pytest.raises(ValueError, match="pruning_fraction"):
        Budget(pruning_fraction=1.5)
    with pytest.raises(ValueError, match="step_size_lr"):
        Budget(step_size_lr=0.0)
    with pytest.raises(TypeError, match="bits"):
        sweep(tiny_mlp(), loaders(), bits=(4.0,))


def fake_records() -> pd.DataFrame:
    rows = [("quantization", "post-training", b, math.nan, 0, 0.9) for b in (8, 4)]
    rows += [("pruning", "post-training", b, math.nan, 0, 0.5) for b in (8, 4)]
    rows += [("quantization", "fine-tuned", b, lr, s, 0.9 + 0.01 * s - lr)
             for b in (8, 4) for lr in (0.01, 0.1) for s in (0, 1, 2)]
    rows += [("pruning", "fine-tuned", b, lr, s, 0.8 + lr + 0.02 * s)
             for b in (8, 4) for lr in (0.01, 0.1) for s in (0, 1, 2)]
    records = pd.DataFrame(rows, columns=["method", "stage", "bits", "lr", "seed",
                                          "calibration_accuracy"])
    return records.assign(test_accuracy=records["calibration_accuracy"] - 0.05 * records["bits"])


def test_learning_rates_are_chosen_on_mean_calibration_accuracy():
    records = fake_records()
    assert choose_learning_rates(records) == {"quantization": 0.01, "pruning": 0.1}
    tied = records.assign(calibration_accuracy=0.5)
    assert choose_learning_rates(tied) == {"quantization": 0.01, "pruning": 0.01}
    with pytest.raises(ValueError, match="fine-tuned"):
        choose_learning_rates(records[records["stage"] == "post-training"])


def test_accuracy_table_means_spreads_and_counts():
    records = fake_records()
    chosen = records[(records["stage"] == "post-training") | (records["lr"] == 0.1)]
    table = accuracy_table(chosen)
    assert list(table.index) == [8, 4] and list(table["sparsity"]) == [0.5, 0.75]
    assert list(table.columns) == ["sparsity", "PTQ", "one-shot", "LSQ", "LSQ std", "LSQ seeds",
                                   "GMP", "GMP std", "GMP seeds"]
    gmp_8 = [0.9 + 0.02 * s - 0.4 for s in (0, 1, 2)]
    assert table.loc[8, "GMP"] == pytest.approx(np.mean(gmp_8))
    assert table.loc[8, "GMP std"] == pytest.approx(np.std(gmp_8, ddof=1))
    assert table.loc[4, "one-shot"] == pytest.approx(0.5 - 0.2)
    assert (table["LSQ seeds"] == 3).all()
    calibration = accuracy_table(chosen, column="calibration_accuracy")
    assert calibration.loc[4, "PTQ"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="mix learning rates"):
        accuracy_table(records)
    with pytest.raises(ValueError, match="column"):
        accuracy_table(chosen, column="loss")


def test_representation_table_stacks_compare_layers_per_model():
    model, data = tiny_mlp(), loaders()
    records = sweep(model, data, bits=(4,), budget=BUDGET)
    inputs = data.calibration.dataset.tensors[0]
    table = representation_table(model, records, inputs)
    assert len(table) == 2 * 2 and list(table.columns) == [
        "method", "stage", "bits", "lr", "seed", "layer", "snr_db", "cka"]
    pruned = table[table["method"] == "pruning"].set_index("layer")
    expected = compare_layers(model, records["model"].iloc[1], inputs)
    pd.testing.assert_frame_equal(pruned[["snr_db", "cka"]], expected)


def test_learning_rate_choice_says_whether_the_pick_is_inside_its_grid():
    choice = learning_rate_choice(fake_records())
    # quantization picks 0.01, pruning 0.1: both on an edge of the two-point grid
    assert choice.loc["quantization", "lr"] == 0.01 and choice.loc["pruning", "lr"] == 0.1
    assert not choice["inside"].any() and (choice["seeds"] == 3).all()
    wider = pd.concat([fake_records(), fake_records().query("stage == 'fine-tuned'").assign(
        lr=lambda r: r["lr"] * 0.1, calibration_accuracy=0.0)])
    assert learning_rate_choice(wider).loc["quantization", "inside"]  # 0.001 < 0.01 < 0.1


def test_per_example_correct_agrees_with_evaluate_in_loader_order():
    model, data = tiny_mlp(), loaders()
    model.train()
    correct = per_example_correct(model, data.test)
    assert correct.shape == (48,) and correct.dtype == bool and model.training
    assert correct.mean() == pytest.approx(evaluate(model, data.test))
    inputs, labels = data.test.dataset.tensors
    model.eval()
    with torch.no_grad():
        assert np.array_equal(correct, (model(inputs).argmax(1) == labels).numpy())


def test_paired_gap_table_pairs_seeds_and_examples():
    rng = np.random.default_rng(0)
    correct = {(m, s): rng.random(200) < (0.9 if m == "quantization" else 0.7)
               for m in METHODS for s in (0, 1, 2)}
    records = pd.DataFrame([{"method": m, "stage": "fine-tuned", "bits": 4, "lr": 0.1,
                             "seed": s, "test_correct": correct[m, s]}
                            for m in METHODS for s in (2, 0, 1)])  # seeds out of order
    table = paired_gap_table(records, resamples=2000)
    a = np.stack([correct["quantization", s] for s in (0, 1, 2)])
    b = np.stack([correct["pruning", s] for s in (0, 1, 2)])
    expected = paired_bootstrap(a, b, resamples=2000)
    assert table.loc[4, "gap"] == pytest.approx(expected.gap)
    assert (table.loc[4, "low"], table.loc[4, "high"]) == pytest.approx(expected[1:3])
    assert table.loc[4, "seeds"] == 3 and table.loc[4, "sparsity"] == 0.75
    assert 0.1 < table.loc[4, "low"] < table.loc[4, "gap"] < table.loc[4, "high"] < 0.3
    with pytest.raises(ValueError, match="one learning rate"):
        paired_gap_table(pd.concat([records, records.assign(lr=0.01)]))
    with pytest.raises(ValueError, match="test_correct"):
        paired_gap_table(records.drop(columns="test_correct"))


def test_uncompressed_fine_tuning_is_the_same_loop_without_compression():
    model, data = tiny_mlp(), loaders()
    tuned = fine_tune_uncompressed(model, data.train, lr=0.05, seed=1, budget=BUDGET)
    again = fine_tune_uncompressed(model, data.train, lr=0.05, seed=1, budget=BUDGET)
    assert same_state(tuned, again) and not same_state(tuned, model)
    assert not lsq_quantizers(tuned) and (weights(tuned)[0] != 0).all()


TINY = Budget(epochs=1, update_every=2, bn_batches=1)


def test_grid_sweep_gives_each_method_its_own_grid():
    grids = {"quantization": (0.01, 0.02), "pruning": (0.05, 0.1, 0.2)}
    records = grid_sweep(tiny_mlp(), loaders(), grids, bits=(4,), seeds=(0, 1), budget=TINY)
    assert {m: sorted(r["lr"].unique()) for m, r in records.groupby("method")} == {
        m: list(g) for m, g in grids.items()}
    assert (records["stage"] == "fine-tuned").all() and len(records) == 2 * (2 + 3)
    with pytest.raises(ValueError, match="grids"):
        grid_sweep(tiny_mlp(), loaders(), {}, budget=TINY)
    with pytest.raises(ValueError, match="learning rates"):
        grid_sweep(tiny_mlp(), loaders(), {"pruning": (0.1, -1.0)}, budget=TINY)
    with pytest.raises(ValueError, match="empty"):
        grid_sweep(tiny_mlp(), loaders(), {"pruning": ()}, budget=TINY)


def test_at_chosen_rates_keeps_the_chosen_runs_and_adds_the_missing_seeds():
    model, data = tiny_mlp(), loaders()
    grid = grid_sweep(model, data, {m: (0.01, 0.1) for m in METHODS}, bits=(4, 3), seeds=(0,),
                      budget=TINY)
    chosen = choose_learning_rates(grid)
    tuned = at_chosen_rates(model, data, grid, seeds=(0, 1), budget=TINY)
    assert len(tuned) == 2 * 2 * 2
    for (method, bits, seed), row in tuned.set_index(["method", "bits", "seed"]).iterrows():
        assert row["lr"] == chosen[method]
        if seed == 0:  # reused: the very model of the grid
            kept = grid[(grid["method"] == method) & (grid["bits"] == bits)
                        & (grid["lr"] == chosen[method])]["model"].item()
            assert row["model"] is kept
    fresh = run(model, "pruning", 3, data, lr=chosen["pruning"], seed=1, budget=TINY)
    again = tuned.query("method == 'pruning' and bits == 3 and seed == 1")["model"].item()
    assert same_state(fresh["model"], again)
    with pytest.raises(ValueError, match="seeds"):
        at_chosen_rates(model, data, grid, seeds=(), budget=TINY)


def test_uncompressed_runs_are_records_of_plain_fine_tuning():
    model, data = tiny_mlp(), loaders()
    records = uncompressed_runs(model, data, lrs=(0.05,), seeds=(1, 2), budget=TINY)
    assert list(records["seed"]) == [1, 2] and set(records["method"]) == {"fp32"}
    assert (records["bits"] == 32).all() and (records["sparsity"] == 0.0).all()
    direct = fine_tune_uncompressed(model, data.train, lr=0.05, seed=1, budget=TINY)
    assert same_state(records["model"].iloc[0], direct)
    assert records["test_accuracy"].iloc[0] == evaluate(direct, data.test)
    with pytest.raises(ValueError, match="lrs"):
        uncompressed_runs(model, data, lrs=(0.0,), budget=TINY)


def test_accuracy_intervals_bootstrap_each_group_of_runs():
    rng = np.random.default_rng(1)
    correct = {s: rng.random(120) < 0.8 for s in (0, 1, 2)}
    records = pd.DataFrame([{"method": "pruning", "stage": "fine-tuned", "bits": 4, "lr": 0.1,
                             "seed": s, "test_correct": correct[s]} for s in (0, 1, 2)]
                           + [{"method": "quantization", "stage": "post-training", "bits": 4,
                               "lr": math.nan, "seed": 0, "test_correct": correct[0]}])
    groups = np.arange(120) % 40
    table = accuracy_intervals(records, groups=groups, resamples=500).set_index("name")
    expected = paired_bootstrap(np.stack(list(correct.values())), np.zeros((3, 120)),
                                groups=groups, resamples=500)
    assert table.loc["GMP", "accuracy"] == pytest.approx(np.mean(list(correct.values())))
    assert (table.loc["GMP", "low"], table.loc["GMP", "high"]) == pytest.approx(expected[1:3])
    assert table.loc["GMP", "seeds"] == 3 and table.loc["PTQ", "seeds"] == 1
    one = accuracy_interval(correct[0], resamples=500)
    assert one.low < one.gap < one.high and one.gap == pytest.approx(correct[0].mean())
    with pytest.raises(ValueError, match="test_correct"):
        accuracy_intervals(records.drop(columns="test_correct"))


def test_per_example_correct_takes_the_same_batches_from_any_loader():
    model, data = tiny_mlp(), loaders()
    rows = [(x, y) for x, y in data.test]  # a plain iterable: the general path
    assert np.array_equal(per_example_correct(model, rows), per_example_correct(model, data.test))
    with pytest.raises(ValueError, match="empty"):
        per_example_correct(model, [])


def test_a_headroom_job_is_the_run_on_the_shipped_network_in_another_process():
    """``headroom_run`` in a worker gives the record ``run`` gives here, from the same start."""
    from pvq.parallel import parallel_map

    budget = Budget(epochs=1, bn_batches=2)
    baseline, task = headroom_setup()
    here = run(compress(baseline, "quantization", 6), "quantization", 6, task, lr=0.001,
               seed=1, budget=budget)
    (there,) = parallel_map(headroom_run, [("quantization", 6, 0.001, 1, budget)], workers=2)
    assert set(there) == set(here) - {"model"}
    np.testing.assert_array_equal(there["test_correct"], here["test_correct"])
    assert there["calibration_accuracy"] == here["calibration_accuracy"]


@pytest.mark.parametrize("job", [("quantization", 6, 0.001, 1), ["pruning", 4, 0.1, 0, Budget()],
                                 ("distillation", 4, 0.1, 0, Budget()),
                                 ("pruning", 4.5, 0.1, 0, Budget()),
                                 ("pruning", 4, 0.1, 0, "budget")])
def test_bad_headroom_jobs_are_named(job):
    with pytest.raises((TypeError, ValueError), match="job|method|bits|budget"):
        headroom_run(job)
