"""The course's two small networks for 8x8 digits (input ``(n, 1, 8, 8)``, 10 classes).

``digits_cnn``: three 3x3 convolutions, each followed by BatchNorm and ReLU, then global average
pooling and a linear head (24,058 parameters)::

    conv1  1 -> 16, stride 1, padding 1   8x8 -> 8x8    9 inputs per output
    conv2 16 -> 32, stride 1, padding 1   8x8 -> 8x8  144 inputs per output
    conv3 32 -> 64, stride 2, padding 1   8x8 -> 4x4  288 inputs per output
    fc    64 -> 10                                     64 inputs per output

The convolutions have no bias (the BatchNorm after each one has its own shift), so a conv's output
is exactly ``X @ w.T`` for its im2col patches ``X``.

``digits_mlp``: ``64 -> 256 -> 256 -> 10`` with ReLU (85,002 parameters); ``fc2`` and ``fc3``
have 256 inputs per output.

``digits_cnn_small``: ``digits_cnn`` at half the width (8, 16, 32 channels, fc 32 -> 10; 6,274
parameters), for the distorted digits (``pvq.data.distorted``): small enough to stay clearly
below 100 % there, so that compressing it has accuracy to lose.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from pvq._validation import check_int, check_module


def _conv_bn_relu(name: str, channels_in: int, channels_out: int, stride: int) -> list:
    index = name[-1]
    return [
        (name, nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)),
        (f"bn{index}", nn.BatchNorm2d(channels_out)),
        (f"relu{index}", nn.ReLU()),
    ]


def _cnn(width: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        *_conv_bn_relu("conv1", 1, width, stride=1),
        *_conv_bn_relu("conv2", width, 2 * width, stride=1),
        *_conv_bn_relu("conv3", 2 * width, 4 * width, stride=2),
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(4 * width, 10)),
    ]))


def digits_cnn() -> nn.Sequential:
    """The small CNN described in the module docstring (freshly initialised)."""
    return _cnn(16)


def digits_cnn_small() -> nn.Sequential:
    """``digits_cnn`` at half the width (module docstring; freshly initialised)."""
    return _cnn(8)


def digits_mlp() -> nn.Sequential:
    """The MLP described in the module docstring (freshly initialised)."""
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(64, 256)),
        ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(256, 256)),
        ("relu2", nn.ReLU()),
        ("fc3", nn.Linear(256, 10)),
    ]))


#: every architecture by the name ``pvq.zoo.pretrained`` knows it under
ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "digits_cnn": digits_cnn,
    "digits_mlp": digits_mlp,
    "digits_cnn_small": digits_cnn_small,
}


def build_model(name: str, seed: int = 0) -> nn.Module:
    """A freshly initialised ``name`` network; the initial weights depend on ``seed`` only
    (the global torch random state is left as it was).
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"name must be one of {sorted(ARCHITECTURES)}, got {name!r}")
    seed = check_int(seed, "seed")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHITECTURES[name]()


def parameter_count(model: nn.Module) -> int:
    """The number of trainable parameters (weights, biases, BatchNorm scales and shifts)."""
    check_module(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
