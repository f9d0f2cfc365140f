"""Gradual magnitude pruning (Zhu & Gupta, 2017): sparsity rises on a cubic schedule in training.

From step ``t0`` to ``t0 + n dt`` the target sparsity follows
``s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3``: fast at first, while many weights are
redundant, slowly near the end. Every ``dt`` steps each layer's mask is recomputed with
``pvq.prune.magnitude_mask`` at the current target, uniformly per layer (first and last included,
as in the paper). Masks only grow: the new mask is computed on the already-masked weights, so a
pruned weight never returns. The masks are applied through ``torch.nn.utils.prune`` custom masks
(``layer.weight = layer.weight_orig * layer.weight_mask`` before every forward pass), which also
zeroes the gradient of pruned weights.

A layer whose weight is already parametrized (LSQ, ``pvq.qat.apply_lsq``) is masked *beneath* the
parametrization: the mask goes on its float ``original``, so the layer computes ``Q(m * w)`` and
the masks are chosen on the float weights (quantization-aware pruning, ``pvq.combine``).
"""

from __future__ import annotations

import numbers

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from pvq._validation import check_sparsity
from pvq.layers import compressible_layers
from pvq.prune import magnitude_mask


def _check_step(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def cubic_sparsity(
    step: int, final_sparsity: float, *, begin_step: int, end_step: int,
    initial_sparsity: float = 0.0,
) -> float:
    """Zhu & Gupta's target ``s_f + (s_i - s_f)(1 - (t - t0) / (t1 - t0))^3`` at step ``t``.

    ``s_i`` up to ``begin_step`` (t0), ``s_f`` from ``end_step`` (t1 = t0 + n dt) on.
    """
    step = _check_step(step, "step")
    begin_step, end_step = _check_step(begin_step, "begin_step"), _check_step(end_step, "end_step")
    final_sparsity = check_sparsity(final_sparsity, "final_sparsity")
    initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
    if end_step < begin_step:
        raise ValueError(f"end_step must be >= begin_step={begin_step}, got {end_step}")
    if initial_sparsity > final_sparsity:
        raise ValueError("initial_sparsity must not exceed final_sparsity")
    if step >= end_step:
        return final_sparsity
    if step <= begin_step:
        return initial_sparsity
    remaining = 1.0 - (step - begin_step) / (end_step - begin_step)
    return final_sparsity + (initial_sparsity - final_sparsity) * remaining**3


def _masked_tensor(layer: nn.Module) -> tuple[nn.Module, str]:
    """Where a layer's mask goes: ``(layer, "weight")``, or for a parametrized weight the float
    tensor beneath the parametrization, ``(layer.parametrizations.weight, "original")``."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight, "original"
    return layer, "weight"


class GradualMagnitudePruning:
    """Prunes ``model``'s Conv2d/Linear weights in place on the cubic schedule; a training callback.

    On construction every layer gets a ``torch.nn.utils.prune`` mask at the step-0 target. Call
    the object with the number of optimiser steps done (``pruner(step)``, e.g. as a
    ``pvq.train.train`` callback): at ``begin_step + k * update_every`` and from ``end_step`` on,
    the masks follow ``cubic_sparsity``; in between they stay. From ``end_step`` on, every layer
    has exactly ``round(final_sparsity * n)`` zeros. ``end_step=0`` is one-shot pruning.
    """

    def __init__(
        self, model: nn.Module, final_sparsity: float, *, end_step: int, begin_step: int = 0,
        update_every: int = 50, initial_sparsity: float = 0.0,
    ) -> None:
        self.final_sparsity = check_sparsity(final_sparsity, "final_sparsity")
        self.initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
        self.begin_step = _check_step(begin_step, "begin_step")
        self.end_step = _check_step(end_step, "end_step")
        self.update_every = _check_step(update_every, "update_every")
        if self.update_every == 0:
            raise ValueError("update_every must be at least 1")
        self.layers = compressible_layers(model)
        if any(torch_prune.is_pruned(layer) for layer in self.layers.values()):
            raise ValueError("model already has pruning masks")
        self.target_sparsity(0)  # validates the schedule before touching the model
        self.targets = [_masked_tensor(layer) for layer in self.layers.values()]
        for module, name in self.targets:
            torch_prune.custom_from_mask(module, name,
                                         torch.ones_like(getattr(module, name), dtype=bool))
        self.sparsity = 0.0
        self(0)

    def target_sparsity(self, step: int) -> float:
        """The sparsity the masks have after ``step`` steps: the cubic target at the last update."""
        step = _check_step(step, "step")
        if self.begin_step < step < self.end_step:
            step -= (step - self.begin_step) % self.update_every
        return cubic_sparsity(step, self.final_sparsity, begin_step=self.begin_step,
                              end_step=self.end_step, initial_sparsity=self.initial_sparsity)

    def __call__(self, step: int) -> None:
        """Bring the masks to ``target_sparsity(step)`` (nothing to do between updates)."""
        target = self.target_sparsity(step)
        if target != self.sparsity:
            for module, name in self.targets:
                original, mask = getattr(module, f"{name}_orig"), getattr(module, f"{name}_mask")
                with torch.no_grad():
                    mask.copy_(magnitude_mask(original * mask, target))
                setattr(module, name, original * mask)
            self.sparsity = target

    def make_permanent(self) -> None:
        """Bake the masks into the weights and remove the pruning hooks (no training after this)."""
        for module, name in self.targets:
            torch_prune.remove(module, name)


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero weights in each Conv2d/Linear layer of ``model``."""
    return {name: float((layer.weight == 0).float().mean())
            for name, layer in compressible_layers(model).items()}
