"""The course's data split, models and shipped weights: sizes, determinism, accuracy, and each
layer as ``(w, X)`` with ``X @ w.T`` equal to what the layer really computes."""

import numpy as np
import pytest
import torch
from torch import nn

from pvq import zoo
import pvq.data.distorted as distorted
from pvq.baselines import (
    RECIPES,
    baseline_loaders,
    kernel_signature,
    state_sha256,
    train_baseline,
)
from pvq.data import (
    CALIBRATION_SIZE,
    TEST_SIZE,
    TRAIN_SIZE,
    digits_loaders,
    digits_split,
    distorted_digits_loaders,
    distorted_digits_split,
)
from pvq.layers import compressible_layers
from pvq.models import ARCHITECTURES, build_model, parameter_count
from pvq.train import evaluate

pytestmark = pytest.mark.usefixtures("single_thread")


def test_split_sizes_are_documented_disjoint_and_stratified():
    split = digits_split()
    assert (TRAIN_SIZE, CALIBRATION_SIZE, TEST_SIZE) == (1181, 256, 360)
    assert [len(split.x_train), len(split.x_calibration), len(split.x_test)] == [1181, 256, 360]
    assert split.x_train.shape[1:] == (1, 8, 8) and split.x_train.dtype == np.float32
    assert 0.0 == split.x_train.min() and split.x_train.max() == 1.0
    # the 1,797 images are all distinct, so the parts are disjoint iff no image repeats
    images = np.concatenate([split.x_train, split.x_calibration, split.x_test]).reshape(1797, -1)
    assert len(np.unique(images, axis=0)) == 1797
    for labels in (split.y_train, split.y_calibration, split.y_test):
        counts = np.bincount(labels, minlength=10)
        assert counts.min() >= 0.09 * len(labels) and counts.max() <= 0.11 * len(labels)


def test_split_is_seeded():
    first, again, other = digits_split(0), digits_split(0), digits_split(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first.y_test, other.y_test)
    with pytest.raises(ValueError, match="seed"):
        digits_split(-1)


def test_loaders_replay_the_same_batches_and_cover_the_split():
    first, again = digits_loaders(batch_size=64), digits_loaders(batch_size=64)
    labels = [y for _, y in first.train]
    assert all(torch.equal(a, y) for a, (_, y) in zip(labels, again.train))
    assert sum(len(y) for y in labels) == TRAIN_SIZE
    assert not torch.equal(torch.cat(labels), torch.from_numpy(digits_split().y_train))  # shuffled
    test_labels = torch.cat([y for _, y in first.test])
    assert torch.equal(test_labels, torch.from_numpy(digits_split().y_test))  # in order
    with pytest.raises(ValueError, match="batch_size"):
        digits_loaders(batch_size=0)


@pytest.mark.parametrize("name", ["digits_cnn", "digits_mlp"])
def test_models_have_the_documented_size_and_a_wide_layer(name):
    model = build_model(name)
    assert 10_000 <= parameter_count(model) <= 100_000
    widths = [layer.weight[0].numel() for layer in compressible_layers(model).values()]
    assert max(widths) >= 256
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    head = {seed: build_model(name, seed=seed)[-1].weight for seed in (3, 4)}
    assert torch.equal(head[3], build_model(name, seed=3)[-1].weight)
    assert not torch.equal(head[3], head[4])


def test_small_cnn_is_the_cnn_at_half_width():
    small, full = build_model("digits_cnn_small"), build_model("digits_cnn")
    assert parameter_count(small) == 6274
    assert [type(m) for m in small] == [type(m) for m in full]
    for name, layer in compressible_layers(full).items():
        narrow = compressible_layers(small)[name]
        assert narrow.weight.shape[0] == (10 if name == "fc" else layer.weight.shape[0] // 2)
    assert small(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_distorted_digits_are_made_from_their_own_part_only():
    clean, hard = digits_split(), distorted_digits_split()
    assert [len(hard.x_train), len(hard.x_calibration), len(hard.x_test)] == [
        4 * TRAIN_SIZE, 4 * CALIBRATION_SIZE, 10 * TEST_SIZE]
    assert hard.x_test.dtype == np.float32 and hard.x_test.shape[1:] == (1, 8, 8)
    assert 0.0 <= hard.x_test.min() and hard.x_test.max() <= 1.0
    np.testing.assert_array_equal(hard.y_test, clean.y_test[hard.test_source])
    assert np.array_equal(np.bincount(hard.test_source), np.full(TEST_SIZE, 10))
    assert np.abs(hard.x_test[:TEST_SIZE] - clean.x_test).mean() > 0.05  # really distorted
    again = distorted_digits_split()
    assert all(np.array_equal(a, b) for a, b in zip(hard, again))
    assert not np.array_equal(hard.x_test, distorted_digits_split(seed=1).x_test)
    loaders = distorted_digits_loaders()
    assert loaders.train.batch_size == 64 and len(loaders.test.dataset) == 10 * TEST_SIZE


def test_distortion_without_randomness_is_the_identity(monkeypatch):
    for name in ("ROTATION_DEGREES", "SCALE", "SHIFT_PIXELS", "NOISE"):
        monkeypatch.setattr(distorted, name, 0.0)
    images = digits_split().x_test[:50]
    same = distorted.distort(images, np.random.default_rng(0))
    np.testing.assert_allclose(same, images, atol=1e-6)
    # undistorted, the test part is exactly its originals: no training or calibration image
    identity = distorted_digits_split()
    np.testing.assert_allclose(identity.x_test, digits_split().x_test[identity.test_source],
                               atol=1e-6)
    # a 90 degree turn about the centre is exact on the pixel grid (clockwise on the array)
    monkeypatch.setattr(distorted, "ROTATION_DEGREES", 90.0)

    class Quarter:
        def uniform(self, low, high, size):
            return np.full(size, high)

        def normal(self, mean, std, size):
            return np.zeros(size)

    turned = distorted.distort(images, Quarter())
    np.testing.assert_allclose(turned[:, 0], np.rot90(images[:, 0], k=-1, axes=(1, 2)),
                               atol=1e-5)


def test_cnn_has_batchnorm_and_relu_after_every_conv():
    kinds = [type(module) for module in build_model("digits_cnn")]
    for index, kind in enumerate(kinds):
        if kind is nn.Conv2d:
            assert kinds[index + 1: index + 3] == [nn.BatchNorm2d, nn.ReLU]
    assert kinds.count(nn.Conv2d) == 3 and kinds[-1] is nn.Linear


@pytest.mark.parametrize(("name", "low", "high"), [("digits_cnn", 0.97, 0.995),
                                                   ("digits_mlp", 0.96, 0.99),
                                                   ("digits_cnn_small", 0.85, 0.95)])
def test_shipped_weights_reach_the_recorded_accuracy(name, low, high):
    # shipped: CNN 99.17 %, MLP 97.50 % on the 360 test images; the small CNN 90.86 % on the
    # 3,600 distorted test images: clearly below the ceiling, as the headroom task needs
    model = zoo.pretrained(name)
    record = zoo.baseline_record(name)
    accuracy = evaluate(model, baseline_loaders(name).test)
    assert accuracy == pytest.approx(record["test_accuracy"], abs=1e-12)
    assert low <= accuracy <= high
    assert record["parameters"] == parameter_count(model)
    assert not model.training


# Retrained with its recipe, the CNN's test accuracy lands within this distance of the shipped
# one: over seeds 0-2 under each ATEN_CPU_CAPABILITY of an AVX-512 Xeon (9 runs, the weights
# different in each) the largest distance was 2 of 360 test images
# (scripts/bench_training_spread.py, BENCHMARKS.md); we allow twice that.
RETRAINED_ACCURACY_TOLERANCE = 4 / 360
# The small CNN on the 3,600 distorted test images: seeds 1 and 2 (AVX-512) and seed 0 under
# DEFAULT and AVX2 kernels lay within 20 images (0.56 points) of the shipped 90.86 %; twice that.
TOLERANCES = {"digits_cnn": RETRAINED_ACCURACY_TOLERANCE, "digits_cnn_small": 40 / 3600}


@pytest.fixture(scope="module", params=sorted(TOLERANCES))
def retrained(request):
    return request.param, train_baseline(request.param)


def test_retraining_follows_the_recorded_recipe_to_the_shipped_accuracy(retrained):
    name, model = retrained
    recorded = zoo.baseline_record(name)
    assert recorded["recipe"] == RECIPES[name].as_dict()
    test = baseline_loaders(name).test
    assert evaluate(model, test) == pytest.approx(recorded["test_accuracy"],
                                                  abs=TOLERANCES[name])


def test_retraining_is_bit_identical_where_the_kernels_match_a_recorded_run(retrained):
    name, model = retrained
    here = kernel_signature()
    recorded = zoo.baseline_record(name)
    same_kernels = [run for run in recorded["reproductions"]
                    if all(run[key] == value for key, value in here.items())]
    if not same_kernels:
        pytest.skip(f"no retraining recorded on these kernels ({here}); "
                    "scripts/train_baselines.py --record adds one")
    assert state_sha256(model) == same_kernels[0]["sha256"]
    assert evaluate(model, baseline_loaders(name).test) == same_kernels[0]["test_accuracy"]


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_shipped_weights_are_the_recorded_ones(name):
    recorded = zoo.baseline_record(name)
    assert state_sha256(zoo.pretrained(name)) == recorded["sha256"]
    assert set(recorded["trained_on"]) == set(kernel_signature())
    for run in recorded["reproductions"]:  # each names its kernels and what they gave
        assert set(run) == {*kernel_signature(), "sha256", "test_accuracy"}
        assert abs(run["test_accuracy"] - recorded["test_accuracy"]) <= TOLERANCES.get(
            name, RETRAINED_ACCURACY_TOLERANCE)


def test_kernel_signature_names_torch_the_cpu_and_the_capability_in_use():
    signature = kernel_signature()
    assert signature["torch"] == torch.__version__ and signature["cpu"]
    assert signature["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    with pytest.raises(ValueError, match="seed"):
        train_baseline("digits_mlp", epochs=1, seed=-1)


def test_training_is_deterministic():
    first, again = train_baseline("digits_mlp", epochs=2), train_baseline("digits_mlp", epochs=2)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                 again.state_dict().values()))
    assert state_sha256(first) == state_sha256(again)
    assert state_sha256(train_baseline("digits_mlp", epochs=2, seed=1)) != state_sha256(first)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="digits_cnn"):
        zoo.pretrained("resnet18")
    with pytest.raises(ValueError, match="name"):
        build_model("resnet18")
    with pytest.raises(ValueError, match="conv2"):
        zoo.layer_matrices(zoo.pretrained("digits_cnn"), "bn2")


def pre_bias_output(model: nn.Module, layer: str, images: torch.Tensor) -> np.ndarray:
    """What the layer really computes on ``images`` (from a forward hook), bias removed, as rows
    in the order ``layer_matrices`` uses: image-major, then output position."""
    module = dict(model.named_modules())[layer]
    outputs = []
    handle = module.register_forward_hook(lambda _m, _i, output: outputs.append(output))
    with torch.no_grad():
        model(images)
    handle.remove()
    output = outputs[0]
    if module.bias is not None:
        shape = (1, -1, 1, 1) if isinstance(module, nn.Conv2d) else (1, -1)
        output = output - module.bias.detach().reshape(shape)
    if isinstance(module, nn.Conv2d):
        output = output.flatten(2).transpose(1, 2)
    return output.reshape(-1, output.shape[-1]).double().numpy()


@pytest.mark.parametrize(("name", "layer", "fan_in"), [
    ("digits_cnn", "conv1", 9), ("digits_cnn", "conv2", 144), ("digits_cnn", "conv3", 288),
    ("digits_cnn", "fc", 64), ("digits_mlp", "fc1", 64), ("digits_mlp", "fc2", 256),
])
def test_layer_matrices_reproduce_the_layer_output(name, layer, fan_in):
    model = zoo.pretrained(name)
    images = torch.from_numpy(digits_split().x_calibration[:32])
    w, X = zoo.layer_matrices(model, layer, images)
    assert w.shape[1] == X.shape[1] == fan_in and w.dtype == X.dtype == np.float64
    expected = pre_bias_output(model, layer, images)
    assert X.shape[0] == expected.shape[0]
    np.testing.assert_allclose(X @ w.T, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_conv3_patches_use_its_stride_and_padding():
    # conv3 has stride 2 and padding 1: 8x8 -> 4x4 positions per image; the corner patch of a
    # padded input has zeros where the padding is.
    model = zoo.pretrained("digits_cnn")
    w, X = zoo.layer_matrices(model, "conv3")
    assert X.shape == (CALIBRATION_SIZE * 16, 32 * 9)
    corner = X[0].reshape(32, 3, 3)
    assert np.all(corner[:, 0, :] == 0) and np.all(corner[:, :, 0] == 0)
    # a model left in training mode is evaluated in eval mode and handed back in training mode
    model.train()
    _, X_again = zoo.layer_matrices(model, "conv3")
    assert model.training and np.array_equal(X, X_again)


def test_layer_matrices_default_to_the_calibration_images():
    model = zoo.pretrained("digits_mlp")
    _, X = zoo.layer_matrices(model, "fc1")
    np.testing.assert_array_equal(X, digits_split().x_calibration.reshape(-1, 64))
    with pytest.raises(ValueError, match="shape"):
        zoo.layer_matrices(model, "fc1", np.zeros((4, 64), dtype=np.float32))
    with pytest.raises(TypeError, match="images"):
        zoo.layer_matrices(model, "fc1", np.zeros((4, 1, 8, 8), dtype=np.int64))


def test_real_layers_are_the_documented_minilm_layers():
    names = zoo.real_layer_names()
    assert names == [f"blocks.{b}.{layer}" for b in (1, 5) for layer in (
        "attn.query", "attn.key", "attn.value", "attn.proj", "mlp.fc1", "mlp.fc2")]
    shapes = {"attn.query": (384, 384), "attn.proj": (384, 384), "mlp.fc1": (1536, 384),
              "mlp.fc2": (384, 1536)}
    for name in names:
        w, X = zoo.real_layer(name)
        assert w.dtype == X.dtype == np.float64
        assert X.shape == (256, w.shape[1]) and np.isfinite(X).all() and np.isfinite(w).all()
        kind = name.split(".", 2)[2]
        assert w.shape == shapes.get(kind, (384, 384))
    # query, key and value read the same input
    query, value = zoo.real_layer("blocks.5.attn.query"), zoo.real_layer("blocks.5.attn.value")
    assert np.array_equal(query.X, value.X) and not np.array_equal(query.w, value.w)
    with pytest.raises(ValueError, match="blocks.1.mlp.fc1"):
        zoo.real_layer("blocks.3.mlp.fc1")


def test_real_layers_are_consistent_with_the_network_they_came_from():
    # fc2's input is GELU(fc1's output) on the same tokens: the stored arrays must chain up to
    # float16 rounding. Bias from the same file; GELU in BERT's exact (erf) form.
    from importlib import resources

    with resources.files("pvq.data").joinpath(zoo.REAL_LAYERS_FILE).open("rb") as handle:
        bias = np.load(handle)["blocks.1.mlp.fc1.bias"].astype(np.float64)
    w1, X1 = zoo.real_layer("blocks.1.mlp.fc1")
    _, X2 = zoo.real_layer("blocks.1.mlp.fc2")
    hidden = torch.from_numpy(X1 @ w1.T + bias)
    expected = torch.nn.functional.gelu(hidden).numpy()
    assert np.abs(X2 - expected).max() < 0.002 * np.abs(expected).max()
    assert X2.min() >= -0.1701  # GELU's minimum is -0.16997


def test_real_layers_ship_compactly_with_their_provenance():
    from importlib import resources

    data = resources.files("pvq.data")
    assert len(data.joinpath(zoo.REAL_LAYERS_FILE).read_bytes()) <= 10_000_000
    notice = data.joinpath("NOTICE-minilm.md").read_text()
    assert "Apache License" in notice and "all-MiniLM-L6-v2" in notice
    info = zoo.real_layers_info()
    assert "Apache-2.0" in info["licence"]
    assert info["sanity_check_cosine_similarity"]["eating food / eating bread"] > 0.5
    for layer in info["layers"].values():
        assert layer["weight_float16_snr_db"] > 60 and layer["output_float16_snr_db"] > 60
