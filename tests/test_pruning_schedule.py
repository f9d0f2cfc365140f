"""Gradual magnitude pruning: the cubic schedule, exact and nested masks, torch.prune agreement."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune as torch_prune

from pvq.prune import magnitude_mask, magnitude_prune
from pvq.pruning_schedule import GradualMagnitudePruning, cubic_sparsity, layer_sparsity

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 4 * 4, 10),
    )


LAYERS = ("0", "2", "5")


def test_cubic_schedule_hand_values():
    assert cubic_sparsity(5, 0.8, begin_step=0, end_step=10) == pytest.approx(0.8 - 0.8 / 8)
    assert cubic_sparsity(4, 0.8, begin_step=2, end_step=6, initial_sparsity=0.2) == pytest.approx(
        0.8 - 0.6 / 8)
    assert cubic_sparsity(0, 0.8, begin_step=0, end_step=10) == 0.0
    assert cubic_sparsity(1, 0.8, begin_step=2, end_step=6, initial_sparsity=0.2) == 0.2
    assert cubic_sparsity(10, 0.8, begin_step=0, end_step=10) == 0.8
    assert cubic_sparsity(99, 0.8, begin_step=0, end_step=10) == 0.8
    assert cubic_sparsity(0, 0.5, begin_step=0, end_step=0) == 0.5


@given(st.integers(0, 30), st.integers(0, 60), st.floats(0, 0.99), st.floats(0, 1))
def test_cubic_schedule_rises_from_initial_to_final(begin, length, final, fraction):
    initial = final * fraction
    values = [cubic_sparsity(t, final, begin_step=begin, end_step=begin + length,
                             initial_sparsity=initial) for t in range(begin + length + 2)]
    assert all(b >= a - 1e-15 for a, b in zip(values, values[1:]))
    assert values[0] == (initial if begin > 0 or length > 0 else final) and values[-1] == final


def test_masks_change_only_every_k_steps():
    pruner = GradualMagnitudePruning(tiny_cnn(), 0.75, begin_step=2, end_step=20, update_every=5)
    expected = {t: cubic_sparsity(max(t - (t - 2) % 5, 2) if t < 20 else 20, 0.75, begin_step=2,
                                  end_step=20) for t in range(2, 30)}
    assert [pruner.target_sparsity(t) for t in range(2, 30)] == list(expected.values())
    assert pruner.target_sparsity(6) == pruner.target_sparsity(2) == 0.0
    assert pruner.target_sparsity(7) == cubic_sparsity(7, 0.75, begin_step=2, end_step=20) > 0


def test_frozen_weights_end_with_the_one_shot_magnitude_mask_of_torch_prune():
    model, reference = tiny_cnn(), tiny_cnn()
    pruner = GradualMagnitudePruning(model, 0.75, end_step=40, update_every=10)
    for step in range(1, 45):
        pruner(step)
        for name in LAYERS:
            layer = model.get_submodule(name)
            target = magnitude_mask(layer.weight_orig, pruner.target_sparsity(step))
            assert torch.equal(layer.weight_mask.bool(), target)
    for name in LAYERS:
        theirs = reference.get_submodule(name)
        torch_prune.l1_unstructured(theirs, "weight", amount=0.75)
        assert torch.equal(model.get_submodule(name).weight_mask, theirs.weight_mask)
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(model(x), reference(x))


def test_training_keeps_masks_nested_applied_and_exact():
    model = tiny_cnn()
    pruner = GradualMagnitudePruning(model, 0.875, end_step=30, update_every=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    generator = torch.Generator().manual_seed(0)
    masks = {name: model.get_submodule(name).weight_mask.clone() for name in LAYERS}
    for step in range(1, 41):
        optimizer.zero_grad()
        model(torch.randn(4, 1, 8, 8, generator=generator)).square().mean().backward()
        optimizer.step()
        pruner(step)
        for name in LAYERS:
            layer = model.get_submodule(name)
            assert not (layer.weight_mask.bool() & ~masks[name].bool()).any(), "a weight regrew"
            masks[name] = layer.weight_mask.clone()
            assert not layer.weight[~layer.weight_mask.bool()].any(), "a pruned weight is used"
    sizes = {name: model.get_submodule(name).weight.numel() for name in LAYERS}
    zeros = {name: int((model.get_submodule(name).weight == 0).sum()) for name in LAYERS}
    assert zeros == {name: round(0.875 * size) for name, size in sizes.items()}
    expected = {name: zeros[name] / sizes[name] for name in LAYERS}
    assert layer_sparsity(model) == pytest.approx(expected)


def test_end_step_zero_is_one_shot_pruning_and_can_be_made_permanent():
    model, reference = tiny_cnn(), tiny_cnn()
    pruner = GradualMagnitudePruning(model, 0.5, end_step=0)
    pruner.make_permanent()
    assert not torch_prune.is_pruned(model)
    for name in LAYERS:
        weight = model.get_submodule(name).weight
        assert isinstance(weight, nn.Parameter)
        assert torch.equal(weight, magnitude_prune(reference.get_submodule(name).weight, 0.5))


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: GradualMagnitudePruning(tiny_cnn(), 1.0, end_step=5),
         ValueError, "final_sparsity"),
        (lambda: GradualMagnitudePruning(tiny_cnn(), 0.5, end_step=-1), ValueError, "end_step"),
        (lambda: GradualMagnitudePruning(tiny_cnn(), 0.5, end_step=5, update_every=0),
         ValueError, "update_every"),
        (lambda: GradualMagnitudePruning(tiny_cnn(), 0.5, end_step=5, begin_step=6),
         ValueError, "end_step"),
        (lambda: GradualMagnitudePruning(tiny_cnn(), 0.5, end_step=5, initial_sparsity=0.6),
         ValueError, "initial_sparsity"),
        (lambda: cubic_sparsity(1.5, 0.5, begin_step=0, end_step=5), ValueError, "step"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_a_model_is_not_pruned_twice():
    model = tiny_cnn()
    GradualMagnitudePruning(model, 0.5, end_step=5)
    with pytest.raises(ValueError, match="already"):
        GradualMagnitudePruning(model, 0.5, end_step=5)
