"""The layers the paper compresses: every ``Conv2d`` and ``Linear`` weight, first and last too."""

from __future__ import annotations

from torch import nn

from pvq._validation import check_module

#: layer types whose weight is quantized or pruned (biases and BatchNorm stay in full precision)
COMPRESSIBLE_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


def compressible_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The ``Conv2d`` / ``Linear`` submodules of ``model`` by name, in registration order.

    For a sequential network, registration order is the order of the forward pass, so the first
    and last entries are the network's first and last layers.
    """
    check_module(model)
    layers = {name: module for name, module in model.named_modules()
              if isinstance(module, COMPRESSIBLE_TYPES)}
    if not layers:
        raise ValueError("model has no Conv2d or Linear layer to compress")
    return layers
