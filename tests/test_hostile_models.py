"""Hostile input to the model-level API (training, evaluation, the zoo, LSQ, gradual pruning,
representations, plots and widgets): a ValueError/TypeError that names the argument, never an
AttributeError, a RuntimeError from deep inside torch, a NaN loss or a silent wrong answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scipy import stats  # noqa: E402

from pvq.baselines import state_sha256  # noqa: E402
from pvq.models import build_model, parameter_count  # noqa: E402
from pvq.plotting import error_density, weight_histogram  # noqa: E402
from pvq.pruning_schedule import GradualMagnitudePruning, layer_sparsity  # noqa: E402
from pvq.qat import LSQQuantizer, apply_lsq, lsq_quantize, lsq_quantizers  # noqa: E402
from pvq.representations import compare_layers, layer_outputs  # noqa: E402
from pvq.train import evaluate, reestimate_batchnorm, train  # noqa: E402
from pvq.widgets import figure_with_sliders  # noqa: E402
from pvq.zoo import conv_patches, layer_matrices, pretrained  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

#: values that are not a model, a loader, an Axes or a distribution
NOT_OBJECTS = [None, "a", 3, 1.5, math.nan, True, np.array([1.0]), [], torch.zeros(0, 1, 8, 8)]


def tiny_model() -> torch.nn.Module:
    return build_model("digits_cnn_small", seed=0)


def batch(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=generator), torch.arange(n) % 10


def refuses(call: Callable[[], object], *names: str) -> None:
    """``call()`` raises ValueError or TypeError whose message names one of ``names``."""
    with pytest.raises((ValueError, TypeError)) as raised:
        call()
    assert any(name in str(raised.value) for name in names), str(raised.value)


MODEL_FUNCTIONS = {
    "train": lambda m: train(m, [batch()], epochs=1, lr=0.1),
    "evaluate": lambda m: evaluate(m, [batch()]),
    "reestimate_batchnorm": lambda m: reestimate_batchnorm(m, [batch()]),
    "apply_lsq": lambda m: apply_lsq(m, 4),
    "lsq_quantizers": lsq_quantizers,
    "GradualMagnitudePruning": lambda m: GradualMagnitudePruning(m, 0.5, end_step=0),
    "layer_sparsity": layer_sparsity,
    "layer_outputs": lambda m: layer_outputs(m, batch()[0]),
    "compare_layers": lambda m: compare_layers(tiny_model(), m, batch()[0]),
    "layer_matrices": lambda m: layer_matrices(m, "conv1"),
    "parameter_count": parameter_count,
    "state_sha256": state_sha256,
}


@pytest.mark.parametrize("value", NOT_OBJECTS, ids=repr)
@pytest.mark.parametrize("function", MODEL_FUNCTIONS)
def test_a_model_argument_must_be_a_module(function, value):
    refuses(lambda: MODEL_FUNCTIONS[function](value), "model", "compressed")


LOADER_FUNCTIONS = {
    "train": lambda loader: train(tiny_model(), loader, epochs=1, lr=0.1),
    "evaluate": lambda loader: evaluate(tiny_model(), loader),
    "reestimate_batchnorm": lambda loader: reestimate_batchnorm(tiny_model(), loader),
}
x, y = batch()
BAD_LOADERS = {
    "not iterable": 3,
    "no batches": [],
    "a tensor": x,
    "not pairs": [(x,)],
    "integer inputs": [(x.long(), y)],
    "NaN inputs": [(x.masked_fill(x > 1, math.nan), y)],
    "float labels": [(x, y.float())],
    "too few labels": [(x, y[:2])],
    "flat images": [(torch.randn(4, 64), y)],
    "wrong channels": [(torch.randn(4, 3, 8, 8), y)],
}


@pytest.mark.parametrize("loader", BAD_LOADERS, ids=str)
@pytest.mark.parametrize("function", LOADER_FUNCTIONS)
def test_a_loader_must_yield_image_label_batches_the_model_takes(function, loader):
    refuses(lambda: LOADER_FUNCTIONS[function](BAD_LOADERS[loader]), "loader")


@pytest.mark.parametrize("labels", [torch.tensor([0, 1, 2, 10]), torch.tensor([-1, 0, 1, 2])])
def test_training_refuses_labels_that_name_no_class(labels):
    refuses(lambda: train(tiny_model(), [(x, labels)], epochs=1, lr=0.1), "labels")


@pytest.mark.parametrize("option, value", [
    ("epochs", 0), ("epochs", 1.5), ("lr", 0.0), ("lr", math.inf), ("momentum", 1.0),
    ("momentum", -0.1), ("weight_decay", -1e-4), ("final_lr_fraction", 2.0), ("seed", -1),
    ("seed", math.inf), ("seed", True), ("bn_batches", 0), ("callbacks", [3]),
    ("step_size_lr", -1.0),
])
def test_training_options_are_checked(option, value):
    refuses(lambda: train(tiny_model(), [batch()], **{"epochs": 1, "lr": 0.1, option: value}),
            option)


def test_a_loader_without_a_length_is_refused_before_training():
    refuses(lambda: train(tiny_model(), iter([batch()]), epochs=1, lr=0.1), "loader")


def test_divergence_is_an_error_not_a_nan_model():
    model = tiny_model()
    refuses(lambda: train(model, [batch(32)] * 4, epochs=3, lr=1e30), "lr")


def test_the_checks_leave_a_good_run_alone():
    model = tiny_model()
    losses = train(model, [batch(16)] * 2, epochs=2, lr=0.05)
    assert len(losses) == 2 and all(map(math.isfinite, losses))
    assert 0.0 <= evaluate(model, [batch(16)]) <= 1.0


@pytest.mark.parametrize("name", [None, 3, ["digits_cnn"], "resnet18"])
def test_only_shipped_networks_load(name):
    refuses(lambda: pretrained(name), "name")


@pytest.mark.parametrize("images", [
    np.zeros((4, 1, 8, 8), dtype=np.int64), torch.zeros(0, 1, 8, 8), torch.zeros(4, 64),
    torch.full((2, 1, 8, 8), math.inf), "images",
])
def test_layer_matrices_checks_its_images(images):
    refuses(lambda: layer_matrices(pretrained("digits_cnn"), "conv1", images), "images")


@pytest.mark.parametrize("layer", [None, 3, "conv9", ["conv1"]])
def test_layer_matrices_checks_the_layer_name(layer):
    refuses(lambda: layer_matrices(pretrained("digits_cnn"), layer), "layer")


def test_conv_patches_checks_module_and_inputs():
    conv = torch.nn.Conv2d(1, 2, 3)
    refuses(lambda: conv_patches(torch.nn.Linear(3, 2), x), "module")
    refuses(lambda: conv_patches(conv, torch.zeros(0, 1, 8, 8)), "inputs")
    refuses(lambda: conv_patches(conv, torch.zeros(2, 3, 8, 8)), "inputs")
    refuses(lambda: conv_patches(conv, torch.zeros(2, 1, 2, 2)), "inputs")


@pytest.mark.parametrize("layers", ["conv1", torch.zeros(2), [3], ["nope"]])
def test_layer_outputs_wants_layer_names(layers):
    refuses(lambda: layer_outputs(tiny_model(), x, layers), "layers")


@pytest.mark.parametrize("step", [torch.tensor(0.0), torch.tensor(-0.1), torch.tensor(math.nan),
                                  torch.tensor([0.1, 0.2]), torch.tensor(1)])
def test_lsq_step_must_be_one_positive_float(step):
    refuses(lambda: lsq_quantize(torch.randn(5), step, 4), "step")


@pytest.mark.parametrize("weight", [torch.tensor([math.nan, 1.0]), torch.zeros(0), np.ones(3)])
def test_lsq_quantizer_checks_its_weight(weight):
    refuses(lambda: LSQQuantizer(weight, 4), "weight")


def test_lsq_gradients_still_flow_after_the_checks():
    step = torch.tensor(0.1, requires_grad=True)
    w = torch.randn(16, requires_grad=True)
    lsq_quantize(w, step, 3).sum().backward()
    assert w.grad is not None and step.grad is not None and torch.isfinite(step.grad)


@given(st.one_of(st.sampled_from(NOT_OBJECTS), st.integers(), st.text(max_size=3)))
@settings(max_examples=25, deadline=None)
def test_plots_want_axes(ax):
    refuses(lambda: weight_histogram(ax, np.random.default_rng(0).normal(size=10)), "ax")
    plt.close("all")


@pytest.mark.parametrize("option, value", [
    ("w", "abc"), ("w", np.array([])), ("w", np.array([1.0, math.nan])), ("levels", "a"),
    ("threshold", math.inf), ("threshold", -1.0), ("bins", 0), ("bins", 2.5),
])
def test_weight_histogram_checks_its_inputs(option, value):
    arguments = {"w": np.linspace(-1, 1, 20)} | {option: value}
    refuses(lambda: weight_histogram(plt.gca(), **arguments), option)
    plt.close("all")


@pytest.mark.parametrize("option, value", [
    ("dist", None), ("dist", 3.0), ("bits", 0), ("scale", math.inf), ("scale", 0.0),
    ("sparsity", 1.0), ("x", np.array([])), ("x", np.array([1.0, 0.0])), ("axes", None),
])
def test_error_density_checks_its_inputs(option, value):
    _, axes = plt.subplots(2, 1)
    arguments = {"axes": tuple(axes), "dist": stats.norm(), "bits": 3, "scale": 0.5,
                 "sparsity": 0.5} | {option: value}
    refuses(lambda: error_density(**arguments), option)
    plt.close("all")


@pytest.mark.parametrize("draw", [None, 3, "plot"])
def test_sliders_need_a_drawing_function(draw):
    from ipywidgets import IntSlider
    refuses(lambda: figure_with_sliders(draw, bits=IntSlider(4, min=2, max=8)), "draw")


# fine-tuning and combining: loaders, budgets, records and jobs are checked before any work
from pvq import combine, finetune  # noqa: E402
from pvq.data import DigitsLoaders  # noqa: E402

LOADERS = DigitsLoaders([batch()], [batch()], [batch()])


@pytest.mark.parametrize("loaders", NOT_OBJECTS + [[batch()]], ids=repr)
def test_fine_tuning_wants_the_three_loaders(loaders):
    refuses(lambda: finetune.run(tiny_model(), "pruning", 4, loaders, lr=None), "loaders")
    refuses(lambda: finetune.sweep(tiny_model(), loaders), "loaders")
    refuses(lambda: finetune.uncompressed_runs(tiny_model(), loaders, lrs=[0.1]), "loaders")


@pytest.mark.parametrize("budget", [None, 3, {"epochs": 1}])
def test_a_budget_is_a_budget(budget):
    refuses(lambda: finetune.fine_tune(tiny_model(), "pruning", 4, [batch()], lr=0.1,
                                       budget=budget), "budget")


@pytest.mark.parametrize("fraction", [True, 1.5, -0.1, math.nan, torch.zeros(0), "a"])
def test_pruning_fraction_is_a_fraction(fraction):
    refuses(lambda: finetune.Budget(pruning_fraction=fraction), "pruning_fraction")
    refuses(lambda: combine.fine_tune(tiny_model(), [batch()], bits=4, sparsity=0.5,
                                      pruning_fraction=fraction), "pruning_fraction")


@pytest.mark.parametrize("seeds", ["ab", [], [1.5], [-1], 3])
def test_seeds_are_non_negative_integers(seeds):
    refuses(lambda: finetune.sweep(tiny_model(), LOADERS, seeds=seeds), "seeds")


@pytest.mark.parametrize("records", [None, "a", [], np.ones(3), torch.zeros(2)])
def test_records_are_a_table_of_runs(records):
    for function in (finetune.choose_learning_rates, finetune.accuracy_table,
                     finetune.learning_rate_choice, finetune.paired_gap_table,
                     finetune.accuracy_intervals):
        refuses(lambda: function(records), "records")
    refuses(lambda: finetune.representation_table(tiny_model(), records, x), "records")


def test_records_without_their_columns_are_refused():
    import pandas as pd
    refuses(lambda: finetune.choose_learning_rates(pd.DataFrame({"method": ["pruning"]})),
            "records")


@pytest.mark.parametrize("model", NOT_OBJECTS)
def test_per_example_correct_wants_a_model(model):
    refuses(lambda: finetune.per_example_correct(model, [batch()]), "model")


@pytest.mark.parametrize("loader", list(BAD_LOADERS.values()), ids=list(BAD_LOADERS))
def test_per_example_correct_checks_its_loader(loader):
    refuses(lambda: finetune.per_example_correct(tiny_model(), loader), "loader")


@pytest.mark.parametrize("job", [None, (4, 0.5), [4, 0.5, "prune-then-quantize"], "job"])
def test_jobs_for_the_workers_are_checked(job):
    refuses(lambda: combine.post_training_test_correct(job), "job")
    refuses(lambda: combine.trained_test_correct(job), "job")
    refuses(lambda: combine.trained_correct(job), "job")
