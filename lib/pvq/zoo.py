"""Trained networks and real layers that ship with the package, and a layer as a matrix problem.

- ``pretrained(name)``: the FP32 digits baselines (``pvq.models``), trained by
  ``scripts/train_baselines.py``; ``baseline_record(name)`` their recipe and measured accuracy.
- ``layer_matrices(model, layer, images)``: a ``Conv2d`` or ``Linear`` layer as ``(w, X)`` with
  ``X @ w.T`` equal to the layer's output before its bias, so ``||X w_hat^T - X w^T||^2`` is the
  output error of replacing ``w`` by ``w_hat``.
- ``real_layer(name)``: the same ``(w, X)`` for Linear layers of the pretrained sentence encoder
  all-MiniLM-L6-v2, read from a compact file made by ``scripts/extract_minilm_layers.py`` (see
  ``NOTICE-minilm.md`` beside the data for provenance and licence).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pvq._validation import call_model, check_inputs
from pvq.data import digits_split
from pvq.layers import compressible_layers
from pvq.models import ARCHITECTURES, build_model

DATA_PACKAGE = "pvq.data"
BASELINES_FILE = "digits_baselines.json"
REAL_LAYERS_FILE = "minilm_layers.npz"
REAL_LAYERS_INFO_FILE = "minilm_layers.json"


class LayerMatrices(NamedTuple):
    """A layer as a least-squares problem: weights ``w`` (outputs x inputs per output) and input
    rows ``X`` (samples x inputs per output), both float64; ``X @ w.T`` is the pre-bias output."""

    w: np.ndarray
    X: np.ndarray


def _data_file(name: str):
    return resources.files(DATA_PACKAGE).joinpath(name)


def weights_file(name: str) -> str:
    """The file name of a baseline's shipped state dict (inside ``pvq/data``)."""
    return f"{name}.pt"


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in ARCHITECTURES:
        raise ValueError(f"name must be one of {sorted(ARCHITECTURES)}, got {name!r}")
    return name


def pretrained(name: str) -> nn.Module:
    """The trained FP32 ``name`` network (``"digits_cnn"`` or ``"digits_mlp"``), in eval mode."""
    model = build_model(_check_name(name))
    with _data_file(weights_file(name)).open("rb") as handle:
        model.load_state_dict(torch.load(handle, weights_only=True))
    return model.eval()


def baseline_record(name: str) -> dict:
    """What the training script recorded for a baseline: its recipe, parameter count and the
    shipped weights' accuracy on the test and calibration splits."""
    records = json.loads(_data_file(BASELINES_FILE).read_text())
    return records[_check_name(name)]


def _as_images(images: np.ndarray | torch.Tensor | None) -> torch.Tensor:
    if images is None:
        return torch.from_numpy(digits_split().x_calibration)
    if isinstance(images, np.ndarray) and images.dtype.kind == "f":
        images = torch.from_numpy(images)
    images = check_inputs(images, "images")
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n >= 1, channels, height, width), "
                         f"got {tuple(images.shape)}")
    return images.float()


def conv_patches(module: nn.Conv2d, inputs: torch.Tensor) -> torch.Tensor:
    """im2col: one row per output position and image, ``in_channels * kh * kw`` columns in the
    order of ``weight.reshape(out_channels, -1)``, with the layer's stride, padding and dilation.
    """
    if not isinstance(module, nn.Conv2d):
        raise TypeError(f"module must be a torch.nn.Conv2d, got {type(module).__name__}")
    inputs = check_inputs(inputs)
    if inputs.ndim != 4 or inputs.shape[1] != module.in_channels:
        raise ValueError(f"inputs must have shape (n, {module.in_channels}, height, width), "
                         f"got {tuple(inputs.shape)}")
    if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
        raise ValueError("only ungrouped convolutions with explicit zero padding are supported")
    try:
        patches = F.unfold(inputs, module.kernel_size, dilation=module.dilation,
                           padding=module.padding, stride=module.stride)
    except RuntimeError as error:
        raise ValueError(f"inputs of shape {tuple(inputs.shape)} are too small for the "
                         f"convolution: {error}") from error
    return patches.transpose(1, 2).reshape(-1, patches.shape[1])


def layer_matrices(model: nn.Module, layer: str,
                   images: np.ndarray | torch.Tensor | None = None) -> LayerMatrices:
    """``(w, X)`` of ``model``'s ``Conv2d``/``Linear`` layer named ``layer``.

    ``images`` (default: the 256 calibration images of ``pvq.data.digits_split()``) run through
    the model in eval mode; ``X`` holds what reaches the layer: im2col patches for a convolution
    (rows = images x output positions), the input vectors for a linear layer. ``w`` is the weight
    flattened to ``out_channels x (in_channels * kh * kw)``. Then ``X @ w.T`` is the layer's
    output without its bias.
    """
    layers = compressible_layers(model)
    if not isinstance(layer, str) or layer not in layers:
        raise ValueError(f"layer must be one of {list(layers)}, got {layer!r}")
    module = layers[layer]
    captured = []
    hook = module.register_forward_hook(lambda _module, inputs, _output: captured.append(inputs[0]))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            call_model(model, _as_images(images), "images")
    finally:
        hook.remove()
        model.train(was_training)
    inputs = captured[0]
    if isinstance(module, nn.Conv2d):
        rows = conv_patches(module, inputs)
    else:
        rows = inputs.reshape(-1, module.in_features)
    weight = module.weight.detach().reshape(module.weight.shape[0], -1)
    return LayerMatrices(weight.double().numpy(), rows.double().numpy())


@cache
def _real_layers() -> dict[str, np.ndarray]:
    with _data_file(REAL_LAYERS_FILE).open("rb") as handle, np.load(handle) as archive:
        return {key: archive[key] for key in archive.files}


def real_layers_info() -> dict:
    """Provenance of the real layers: source model and licence, text, sample size, and per layer
    its module name in the original model, shapes and the stored file's float16 error."""
    return json.loads(_data_file(REAL_LAYERS_INFO_FILE).read_text())


def real_layer_names() -> list[str]:
    """The real layers shipped, early block first: ``blocks.{i}.attn.{query,key,value,proj}`` and
    ``blocks.{i}.mlp.{fc1,fc2}``."""
    return list(real_layers_info()["layers"])


def real_layer(name: str) -> LayerMatrices:
    """``(w, X)`` of a shipped all-MiniLM-L6-v2 Linear layer (float64 copies of the stored FP16
    values): ``w`` its weight (out x in), ``X`` the inputs that reached it for a seeded sample of
    tokens of real English text, so ``X @ w.T`` is its output without bias on those tokens."""
    layers = real_layers_info()["layers"]
    if name not in layers:
        raise ValueError(f"name must be one of {list(layers)}, got {name!r}")
    arrays = _real_layers()
    return LayerMatrices(arrays[f"{name}.weight"].astype(np.float64),
                         arrays[f"inputs.{layers[name]['input']}"].astype(np.float64))
