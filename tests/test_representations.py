"""Representations: linear CKA against the HSIC definition and its invariances; per-layer outputs,
SNR and CKA of compressed networks against the original."""

import copy
import math

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group
from torch import nn

from pvq.metrics import snr_db
from pvq.pruning_schedule import GradualMagnitudePruning
from pvq.qat import apply_lsq
from pvq.quantize import mse_scale, quantize
from pvq.representations import compare_layers, layer_outputs, linear_cka

pytestmark = pytest.mark.usefixtures("single_thread")


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s definition: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), linear kernels,
    HSIC(K, L) = tr(K H L H) / (n - 1)^2 with the centring matrix H = I - 11^T / n."""
    n = x.shape[0]
    centring = np.eye(n) - np.ones((n, n)) / n

    def hsic(k, l):
        return np.trace(k @ centring @ l @ centring) / (n - 1) ** 2

    k, l = x @ x.T, y @ y.T
    return hsic(k, l) / math.sqrt(hsic(k, k) * hsic(l, l))


def features(n: int, p: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) + rng.standard_normal(p)


@pytest.mark.parametrize("n, p, q", [(50, 5, 7), (6, 20, 9), (12, 12, 3)])
def test_cka_agrees_with_the_hsic_definition(n, p, q):
    x = features(n, p, 0)
    y = np.tanh(x[:, :1]) @ np.ones((1, q)) + 0.5 * features(n, q, 1)
    ours = linear_cka(x, y)
    assert 0.05 < ours < 0.95
    assert ours == pytest.approx(hsic_cka(x, y), rel=1e-10)


@pytest.mark.parametrize("n, p", [(40, 6), (5, 12)])
def test_cka_invariances(n, p):
    x = features(n, p, 2)
    y = np.sin(x) + 0.3 * features(n, p, 3)
    rotation = ortho_group.rvs(p, random_state=4)
    base = linear_cka(x, y)
    assert linear_cka(x, x) == pytest.approx(1.0, rel=1e-12)
    assert linear_cka(x, y @ rotation) == pytest.approx(base, rel=1e-10)
    assert linear_cka(x, 7.5 * y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(x, y + 3.0) == pytest.approx(base, rel=1e-10)
    assert linear_cka(y, x) == pytest.approx(base, rel=1e-12)
    # not invariant to an anisotropic scaling of the features
    assert abs(linear_cka(x, y * np.geomspace(1, 100, p)) - base) > 1e-3


def test_cka_accepts_tensors_and_refuses_bad_shapes():
    x = torch.tensor(features(10, 3, 5), dtype=torch.float32)
    assert linear_cka(x, x.double() * 2) == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(ValueError, match="rows"):
        linear_cka(np.ones((4, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="constant"):
        linear_cka(np.ones((4, 2)), features(4, 2, 0))
    with pytest.raises(TypeError, match="y"):
        linear_cka(np.ones((4, 2)), [[1.0]])


def tiny_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 10),
    )


def test_layer_outputs_are_the_flattened_layer_outputs_in_eval_mode():
    model = tiny_cnn().train()
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    outputs = layer_outputs(model, x)
    assert list(outputs) == ["0", "3", "6"]
    assert outputs["0"].shape == (5, 4 * 6 * 6) and outputs["6"].shape == (5, 10)
    model.eval()
    assert torch.equal(outputs["0"], model[0](x).flatten(1).detach())
    assert torch.equal(outputs["6"], model(x).detach())
    assert not any(module._forward_hooks for module in model.modules())
    assert list(layer_outputs(model, x, ["1", "2"])) == ["1", "2"]
    with pytest.raises(ValueError, match="not in the model"):
        layer_outputs(model, x, ["head"])


def test_compare_layers_of_a_network_with_itself_and_a_quantized_copy():
    model = tiny_cnn().eval()
    x = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    same = compare_layers(model, copy.deepcopy(model), x)
    assert list(same.index) == ["0", "3", "6"] and list(same.columns) == ["snr_db", "cka"]
    assert np.isinf(same["snr_db"]).all() and np.allclose(same["cka"], 1.0)

    quantized = copy.deepcopy(model)
    apply_lsq(quantized, 3)
    table = compare_layers(model, quantized, x)
    weight = model[0].weight.detach()
    first = nn.functional.conv2d(x, quantize(weight, 3, mse_scale(weight, 3)), model[0].bias)
    expected = snr_db(model[0](x).detach().flatten(1), first.detach().flatten(1))
    assert table.loc["0", "snr_db"] == pytest.approx(expected, rel=1e-5)
    assert table.loc["0", "snr_db"] > table.loc["6", "snr_db"]  # errors accumulate with depth
    assert (table["cka"] < 1.0).all() and (table["cka"] > 0.5).all()


def test_compare_layers_matches_layers_of_a_pruned_copy_by_name():
    model = tiny_cnn().eval()
    pruned = copy.deepcopy(model)
    GradualMagnitudePruning(pruned, 0.5, end_step=0)
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    table = compare_layers(model, pruned, x)
    assert list(table.index) == ["0", "3", "6"]
    assert np.isfinite(table["snr_db"]).all() and (table["snr_db"] > 0).all()
