"""How far a compressed network's internal representations are from the original network's.

Two views of each layer's output on the same inputs: the SNR of the compressed output against
the original one (``pvq.metrics.snr_db``: sensitive to any change, scale included), and linear
CKA (Kornblith et al., ICML 2019), a similarity of representations that ignores rotations and
isotropic scaling of the features: for centred ``X`` (n x p) and ``Y`` (n x q),
``CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` (1 = the same up to rotation and scale).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn

from pvq._validation import (call_model, check_inputs, check_module, check_weights, to_numpy,
                             unit_scaled)
from pvq.layers import compressible_layers
from pvq.metrics import snr_db


def linear_cka(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Linear CKA of two representations of the same n examples (rows), in float64.

    Columns are centred first. Uses the features form ``||Y^T X||^2 / (||X^T X|| ||Y^T Y||)``, or
    the equal Gram form ``<XX^T, YY^T> / (||XX^T|| ||YY^T||)`` when there are fewer examples
    than features (cheaper).
    """
    check_weights(x, "x")
    check_weights(y, "y")
    x, y = to_numpy(x), to_numpy(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"x and y must be 2-D with the same number (>= 2) of rows, got "
                         f"{x.shape} and {y.shape}")
    # CKA is scale free: power-of-two rescaling (exact) keeps the products in range
    x, y = (unit_scaled(v - v.mean(axis=0)) for v in (unit_scaled(x), unit_scaled(y)))
    if x.shape[0] < max(x.shape[1], y.shape[1]):
        gram_x, gram_y = x @ x.T, y @ y.T
        cross = np.vdot(gram_x, gram_y)
        norm_x, norm_y = np.linalg.norm(gram_x), np.linalg.norm(gram_y)
    else:
        cross = np.linalg.norm(y.T @ x) ** 2
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    if norm_x == 0.0 or norm_y == 0.0:
        raise ValueError("x or y is constant across examples: CKA is undefined")
    return float(cross / (norm_x * norm_y))


def layer_outputs(
    model: nn.Module, inputs: torch.Tensor, layers: Iterable[str] | None = None
) -> dict[str, torch.Tensor]:
    """Each named layer's output on ``inputs`` (eval mode, no gradients), one row per example.

    ``layers`` defaults to the model's Conv2d/Linear layers (``pvq.layers``); a conv output
    (n, C, H, W) becomes (n, C*H*W).
    """
    check_module(model)
    inputs = check_inputs(inputs)
    if isinstance(layers, (str, torch.Tensor, np.ndarray)):
        raise TypeError(f"layers must be a list of layer names, got {type(layers).__name__}")
    names = list(compressible_layers(model) if layers is None else layers)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"layers must be layer names (strings), got {names!r}")
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules]
    if missing:
        raise ValueError(f"layers not in the model: {missing}")
    outputs: dict[str, torch.Tensor] = {}
    hooks = [modules[name].register_forward_hook(
        lambda _module, _inputs, output, name=name: outputs.__setitem__(
            name, output.detach().flatten(start_dim=1)))
        for name in names]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            call_model(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return {name: outputs[name] for name in names}


def compare_layers(
    original: nn.Module, compressed: nn.Module, inputs: torch.Tensor
) -> pd.DataFrame:
    """Per-layer output SNR (dB) and linear CKA of ``compressed`` against ``original``.

    Both networks see the same ``inputs``; rows are the original's Conv2d/Linear layers in order,
    matched by name (pruning and LSQ keep the names).
    """
    names = list(compressible_layers(original))
    reference = layer_outputs(original, inputs, names)
    changed = layer_outputs(compressed, inputs, names)
    rows = [{"layer": name, "snr_db": snr_db(reference[name], changed[name]),
             "cka": linear_cka(reference[name], changed[name])} for name in names]
    return pd.DataFrame(rows).set_index("layer")
