"""The shared fine-tuning loop: learns, is deterministic, steps each optimiser as documented,
calls back every step, re-estimates BatchNorm, evaluates, and stays quiet when nobody watches."""

import io
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pvq.pruning_schedule import GradualMagnitudePruning, layer_sparsity
from pvq.qat import apply_lsq, step_size_parameters
from pvq.train import evaluate, reestimate_batchnorm, show_progress, train

pytestmark = pytest.mark.usefixtures("single_thread")


def blobs(n: int = 96, seed: int = 0) -> TensorDataset:
    """Three Gaussian blobs in 8 dimensions, linearly separable but not trivially."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = 2.0 * torch.randn(3, 8, generator=generator)
    return TensorDataset(centres[labels] + torch.randn(n, 8, generator=generator), labels)


def tiny_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def loader(shuffle: bool = True, batch_size: int = 16) -> DataLoader:
    return DataLoader(blobs(), batch_size=batch_size, shuffle=shuffle)


def test_training_learns_the_blobs():
    model = tiny_mlp()
    before = evaluate(model, loader(False))
    losses = train(model, loader(), epochs=4, lr=0.05)
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0]
    assert evaluate(model, loader(False)) > max(0.9, before)


@pytest.mark.parametrize("own_generator", [False, True])
def test_same_seed_same_weights_other_seed_other_weights(own_generator):
    generator = torch.Generator().manual_seed(123) if own_generator else None
    data = DataLoader(blobs(), batch_size=16, shuffle=True, generator=generator)  # reused
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        model = tiny_mlp()
        train(model, data, epochs=2, lr=0.05, seed=seed)
        runs[name] = model.state_dict()
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_one_step_is_sgd_for_weights_and_adam_for_step_sizes():
    model = tiny_mlp()
    apply_lsq(model, 4)
    data = DataLoader(blobs(16), batch_size=16)
    inputs, labels = next(iter(data))
    original = model[3].parametrizations.weight.original
    step = step_size_parameters(model)[1]
    nn.functional.cross_entropy(model(inputs), labels).backward()
    expected_weight = (original - 0.05 * original.grad).detach()
    expected_step = (step - 1e-3 * step.grad.sign()).detach()  # Adam's first step: lr * sign
    model.zero_grad()
    train(model, data, epochs=1, lr=0.05, step_size_lr=1e-3, bn_batches=1)
    torch.testing.assert_close(original.detach(), expected_weight, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(step.detach(), expected_step, rtol=1e-5, atol=0.0)


def test_learning_rate_follows_the_cosine_to_the_final_fraction():
    data = DataLoader(blobs(16), batch_size=16)
    inputs, labels = next(iter(data))
    model, replica = tiny_mlp(), tiny_mlp()
    # two steps of T = 2: lr, then final + (lr - final) (1 + cos(pi / 2)) / 2
    for lr in (0.05, 0.1 * 0.05 + 0.9 * 0.05 / 2):
        replica.zero_grad()
        nn.functional.cross_entropy(replica(inputs), labels).backward()
        with torch.no_grad():
            for parameter in replica.parameters():
                parameter -= lr * parameter.grad
    train(model, data, epochs=2, lr=0.05, momentum=0.0, final_lr_fraction=0.1)
    for ours, expected in zip(model.parameters(), replica.parameters()):
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)


def test_callbacks_see_every_step_and_drive_gradual_pruning():
    model = tiny_mlp()
    seen = []
    pruner = GradualMagnitudePruning(model, 0.75, end_step=8, update_every=2)
    train(model, loader(), epochs=2, lr=0.05, callbacks=[seen.append, pruner])
    assert seen == list(range(1, 13))  # 96 examples / 16 per batch = 6 steps per epoch
    assert layer_sparsity(model) == {"0": 0.75, "3": round(0.75 * 48) / 48}


def test_batchnorm_is_reestimated_as_an_equal_average_over_batches():
    data = loader(False, batch_size=24)
    norm = nn.BatchNorm1d(8, momentum=0.3)
    model = nn.Sequential(norm).eval()
    reestimate_batchnorm(model, data, batches=3)
    batches = [inputs for inputs, _ in data][:3]
    torch.testing.assert_close(norm.running_mean, torch.stack([b.mean(0) for b in batches]).mean(0))
    torch.testing.assert_close(norm.running_var, torch.stack([b.var(0) for b in batches]).mean(0))
    assert norm.momentum == 0.3 and not model.training


def test_training_ends_with_batchnorm_statistics_of_the_final_weights():
    model = tiny_mlp()
    train(model, loader(), epochs=1, lr=0.05, bn_batches=None)
    features = model[0](blobs().tensors[0]).detach()
    torch.testing.assert_close(model[1].running_mean, features.mean(0), rtol=1e-4, atol=1e-5)
    assert not model.training


def test_evaluate_counts_correct_predictions():
    model = nn.Linear(8, 3, bias=False)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[:, 0] = torch.tensor([1.0, 0.0, -1.0])  # class 0 if x0 > 0 else class 2
    inputs = torch.tensor([[1.0], [2.0], [-1.0], [-3.0]]) * torch.eye(8)[0]
    data = DataLoader(TensorDataset(inputs, torch.tensor([0, 1, 2, 2])), batch_size=3)
    assert evaluate(model.train(), data) == 0.75 and model.training


def test_progress_bar_only_for_a_person_watching(monkeypatch, capsys):
    assert show_progress(True) and not show_progress(False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not show_progress(None)
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/05.ipynb")
    assert show_progress(None)
    monkeypatch.undo()
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    train(tiny_mlp(), loader(), epochs=1, lr=0.05)
    assert capsys.readouterr().err == ""
    train(tiny_mlp(), loader(), epochs=1, lr=0.05, progress=True)
    assert "fine-tuning" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"epochs": 0, "lr": 0.1}, ValueError, "epochs"),
        ({"epochs": 1, "lr": -0.1}, ValueError, "lr"),
        ({"epochs": 1, "lr": 0.1, "final_lr_fraction": 2.0}, ValueError, "final_lr_fraction"),
        ({"epochs": 1, "lr": 0.1, "bn_batches": 0}, ValueError, "batches"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(kwargs, error, words):
    with pytest.raises(error, match=words):
        train(tiny_mlp(), loader(), **kwargs)
