"""LSQ, learned step size quantization (Esser et al., ICLR 2020): quantization-aware training.

Weights only, one step size ``s`` per tensor, the course's symmetric grid ``-Qn .. Qp`` with
``Qn = 2^(b-1)`` and ``Qp = 2^(b-1) - 1``. The forward pass is the course's quantizer,
``w_hat = s * clip(round(w / s), -Qn, Qp)`` (``pvq.quantize.quantize``). The backward pass is LSQ's
(their eq. 3, straight-through estimator for ``round``)::

    d w_hat / d w = 1                     if -Qn < w/s < Qp, else 0
    d w_hat / d s = round(w/s) - w/s      if -Qn < w/s < Qp
                    -Qn                   if w/s <= -Qn
                    Qp                    if w/s >= Qp

and the step-size gradient is multiplied by ``g = 1 / sqrt(n * Qp)`` (n = weights in the tensor),
which keeps the step's update in proportion to the weights' updates. The step starts at the MSE
scale (``pvq.quantize.mse_scale``), as in the paper's code (LSQ itself used
``2 mean|w| / sqrt(Qp)``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from pvq._validation import check_bits, check_int, check_module, check_positive, check_weights
from pvq.layers import compressible_layers
from pvq.quantize import grid_limits, mse_scale, quantize


def _check_lsq_bits(bits: object, name: str = "bits") -> int:
    """LSQ needs ``Qp = 2^(b-1) - 1 >= 1`` (its gradient scale divides by it): b in 2..16."""
    bits = check_bits(bits, name, maximum=16)
    if bits < 2:
        raise ValueError(f"{name} must be at least 2 for LSQ (Qp = 2^(b-1) - 1 = 0 at 1 bit)")
    return bits


def gradient_scale(size: int, bits: int) -> float:
    """LSQ's step-size gradient scale ``g = 1 / sqrt(n * Qp)`` for a tensor of ``n`` weights."""
    size = check_int(size, "size", 1)
    return 1.0 / math.sqrt(size * grid_limits(_check_lsq_bits(bits))[1])


class _LearnedStepQuantize(torch.autograd.Function):
    """Forward: ``pvq.quantize.quantize``. Backward: LSQ's straight-through gradients (eq. 3)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, step: torch.Tensor, bits: int, grad_scale: float):
        ctx.save_for_backward(w, step)
        ctx.bits, ctx.grad_scale = bits, grad_scale
        return quantize(w, bits, float(step))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        w, step = ctx.saved_tensors
        lowest, highest = grid_limits(ctx.bits)
        ratio = w / step
        below, above = ratio <= lowest, ratio >= highest
        inside = ~(below | above)
        grad_w = grad_step = None
        if ctx.needs_input_grad[0]:
            grad_w = grad_output * inside
        if ctx.needs_input_grad[1]:
            per_weight = torch.where(
                inside, torch.round(ratio) - ratio, torch.where(below, lowest, highest).to(w.dtype)
            )
            grad_step = (ctx.grad_scale * (grad_output * per_weight).sum()).reshape(step.shape)
        return grad_w, grad_step, None, None


def lsq_quantize(
    w: torch.Tensor, step: torch.Tensor, bits: int, grad_scale: float | None = None
) -> torch.Tensor:
    """Fake-quantize ``w`` with the learnable scalar ``step``: forward ``quantize(w, bits, step)``,
    LSQ gradients backward. ``grad_scale`` defaults to ``1 / sqrt(w.numel() * Qp)``.
    """
    if not isinstance(w, torch.Tensor) or not isinstance(step, torch.Tensor):
        raise TypeError("w and step must be torch tensors")
    check_weights(w)
    if step.numel() != 1 or not step.dtype.is_floating_point:
        raise ValueError(f"step must hold one floating-point value (per-tensor quantization), "
                         f"got {step.numel()} of {step.dtype}")
    check_positive(float(step.detach()), "step")
    bits = _check_lsq_bits(bits)
    if grad_scale is None:
        grad_scale = gradient_scale(w.numel(), bits)
    grad_scale = check_positive(grad_scale, "grad_scale")
    return _LearnedStepQuantize.apply(w, step, bits, grad_scale)


class LSQQuantizer(nn.Module):
    """A weight parametrization ``w -> lsq_quantize(w, step, bits)`` with a learnable ``step``,
    initialised to the MSE scale of ``weight`` (the tensor it will quantize).
    """

    def __init__(self, weight: torch.Tensor, bits: int) -> None:
        super().__init__()
        if not isinstance(weight, torch.Tensor):
            raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
        check_weights(weight, "weight")
        self.bits = _check_lsq_bits(bits)
        self.grad_scale = gradient_scale(weight.numel(), self.bits)
        initial = mse_scale(weight.detach(), self.bits)
        self.step = nn.Parameter(torch.tensor(initial, dtype=weight.dtype, device=weight.device))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return lsq_quantize(weight, self.step, self.bits, self.grad_scale)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


def apply_lsq(
    model: nn.Module, bits: int, *, first_last_bits: int | None = None
) -> dict[str, LSQQuantizer]:
    """Quantize the weight of every ``Conv2d`` / ``Linear`` of ``model`` with LSQ, in place.

    Default: all layers at ``bits`` (the course's equal-compression setting, the same layers
    gradual pruning prunes). ``first_last_bits=8`` keeps the first and last layer at 8 bits, the
    setting of the LSQ paper. Each layer gets an ``LSQQuantizer`` through
    ``torch.nn.utils.parametrize``: ``layer.weight`` is then the quantized weight, the float
    weight lives in ``layer.parametrizations.weight.original``. Before any training the model
    is the post-training-quantized model with MSE scales. Returns the quantizers by layer name.
    """
    bits = _check_lsq_bits(bits)
    if first_last_bits is not None:
        first_last_bits = _check_lsq_bits(first_last_bits, "first_last_bits")
    layers = compressible_layers(model)
    if any(parametrize.is_parametrized(layer, "weight") for layer in layers.values()):
        raise ValueError("model already has weight parametrizations (LSQ applied twice?)")
    names = list(layers)
    quantizers = {}
    for name, layer in layers.items():
        edge = name in (names[0], names[-1])
        layer_bits = first_last_bits if first_last_bits is not None and edge else bits
        quantizers[name] = LSQQuantizer(layer.weight, layer_bits)
        parametrize.register_parametrization(layer, "weight", quantizers[name])
    return quantizers


def lsq_quantizers(model: nn.Module) -> dict[str, LSQQuantizer]:
    """The ``LSQQuantizer`` of each LSQ-quantized layer of ``model`` (empty if there is none)."""
    check_module(model)
    return {
        name: quantizer
        for name, layer in model.named_modules()
        if parametrize.is_parametrized(layer, "weight")
        for quantizer in layer.parametrizations.weight
        if isinstance(quantizer, LSQQuantizer)
    }


def step_size_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The learnable step sizes of ``model``'s LSQ quantizers (their own optimiser group)."""
    return [quantizer.step for quantizer in lsq_quantizers(model).values()]
