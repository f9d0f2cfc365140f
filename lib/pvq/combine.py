"""Pruning and quantization together: in which order, trained jointly, and at what storage.

Two orders on one tensor, both with the course's pruner (``pvq.prune.magnitude_mask``) and
quantizer (``pvq.quantize.quantize`` at an MSE scale), both storing the same thing (the kept
b-bit codes, their positions and one scale):

- **prune-then-quantize**: the mask ``m`` drops the ``round(c n)`` smallest ``|w|``; the scale is
  the MSE scale of the *kept* weights only; ``w_hat = m * Q_s(w)``. Pruned weights are exact zeros
  through the mask, so the grid does not have to represent them.
- **quantize-then-prune**: the scale is the MSE scale of the *whole* tensor, ``q = Q_s(w)``, and
  then ``q`` is magnitude-pruned (``quantized_magnitude_mask``): the smallest ``|q|`` go first,
  and equal codes are ranked by the *original* magnitude ``|w|``, not by position:
  ``w_hat = m(q, w) * q``. Below the clipping level ``|q|`` is a non-decreasing function of
  ``|w|``, so this mask is the magnitude mask of ``w`` itself unless a clipped weight is pruned:
  the two orders then differ only in the scale (the kept weights' against the whole tensor's).

Either way pruning and quantization change disjoint weights, so their squared errors add:
``||w - w_hat||^2 = sum_pruned w^2 + sum_kept (w - Q_s(w))^2``.

**Trained**, with LSQ (``pvq.qat.apply_lsq``) and gradual magnitude pruning
(``pvq.pruning_schedule``) on the same layers, each trained by ``pvq.train.train``; every layer
then computes ``Q_s(m * w)`` with a learned step ``s`` and a mask ``m``:

- **quantization-aware pruning** (``fine_tune`` with both ``bits`` and ``sparsity``): both at once,
  the mask growing on the cubic schedule while ``s`` and ``w`` train;
- **the two orders** (``fine_tune_in_order``), two stages: prune-then-quantize is gradual pruning,
  then quantization-aware training with the mask fixed; quantize-then-prune is
  quantization-aware training, then gradual pruning of the quantized model (LSQ still training).

Storage is ``pvq.compression.encoded_bits_per_weight``: masks, indices and scales all counted.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from pvq._validation import (
    Weights,
    check_fraction,
    check_int,
    check_module,
    check_real_sequence,
    check_sparsity,
    check_weights,
    to_numpy,
)
from pvq.compression import (
    encode,
    encoded_bits_per_weight,
    encoded_bytes,
    entropy_coded_bits_per_weight,
    sparsity_at_budget,
)
from pvq.finetune import (HEADROOM_NETWORK, LEARNING_RATE_GRIDS, headroom_setup,
                          per_example_correct)
from pvq.layers import compressible_layers
from pvq.metrics import snr_db
from pvq.pruning_schedule import GradualMagnitudePruning
from pvq.prune import magnitude_mask, pruned_count, semi_structured_mask
from pvq.qat import apply_lsq
from pvq.quantize import binarize, binary_scale, mse_scale, quantize, ternary_scale
from pvq.train import Batches, loader_length, reestimate_batchnorm, train

#: the two orders of applying both methods to a tensor
ORDERS = ("prune-then-quantize", "quantize-then-prune")
#: the sparsities of the default storage-vs-SNR frontier
FRONTIER_SPARSITIES = (0.25, 0.5, 0.625, 0.75, 0.875, 0.9, 0.95)


class Compressed(NamedTuple):
    """A compressed tensor: its values ``w_hat``, the keep-``mask`` (True = stored) and the
    quantization ``scale`` (None for FP16 values)."""

    w_hat: Weights
    mask: Weights
    scale: float | None


def _where(mask: Weights, values: Weights) -> Weights:
    if isinstance(values, torch.Tensor):
        return torch.where(mask, values, torch.zeros_like(values))
    return np.where(mask, values, 0.0)


def compress(w: Weights, *, bits: int | None = None, sparsity: float = 0.0,
             order: str = "prune-then-quantize", scale: float | None = None) -> Compressed:
    """``w`` quantized to ``bits`` (None: FP16 values, not quantized) and pruned to ``sparsity``
    in ``order`` (see the module docstring). ``sparsity=0`` is quantization alone and
    ``bits=None`` pruning alone; then the order does not matter. ``scale`` overrides the MSE
    scale (of the kept weights for prune-then-quantize, of all weights for quantize-then-prune).
    """
    check_weights(w)
    sparsity = check_sparsity(sparsity)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if bits is None:
        if scale is not None:
            raise ValueError("scale belongs to quantization: pass bits too")
        mask = magnitude_mask(w, sparsity)
        return Compressed(_where(mask, w), mask, None)
    if order == "prune-then-quantize":
        mask = magnitude_mask(w, sparsity)
        scale = _kept_scale(w[mask], bits, sparsity) if scale is None else scale
        return Compressed(_where(mask, quantize(w, bits, scale)), mask, scale)
    scale = mse_scale(w, bits) if scale is None else scale
    quantized = quantize(w, bits, scale)
    mask = quantized_magnitude_mask(quantized, w, sparsity)
    return Compressed(_where(mask, quantized), mask, scale)


def quantized_magnitude_mask(q: Weights, w: Weights, sparsity: float) -> Weights:
    """Keep-mask (True = kept) of the quantized tensor ``q`` that drops ``round(sparsity * n)``
    weights: the smallest ``|q|`` first, equal ``|q|`` by the original magnitude ``|w|`` (smaller
    first), then by position. ``magnitude_mask(q, ...)`` would rank equal codes by position only.
    """
    check_weights(q, "q")
    check_weights(w)
    if tuple(q.shape) != tuple(w.shape):
        raise ValueError(f"q and w must have the same shape, got {tuple(q.shape)} and "
                         f"{tuple(w.shape)}")
    drop = pruned_count(int(np.prod(w.shape)), sparsity)
    codes, originals = np.abs(to_numpy(q)).ravel(), np.abs(to_numpy(w)).ravel()
    keep = np.ones(codes.size, dtype=bool)
    if drop:
        # = np.lexsort((originals, codes))[:drop], without sorting all n: every code below the
        # drop-th smallest goes; among the codes equal to it, the smallest originals (stable
        # sort: then by position)
        threshold = np.partition(codes, drop - 1)[drop - 1]
        below = codes < threshold
        keep[below] = False
        tied = np.flatnonzero(codes == threshold)
        ranked = tied[np.argsort(originals[tied], kind="stable")]
        keep[ranked[:drop - int(below.sum())]] = False
    keep = keep.reshape(tuple(w.shape))
    return torch.from_numpy(keep).to(w.device) if isinstance(w, torch.Tensor) else keep


def semi_structured(w: Weights, *, bits: int | None = None) -> Compressed:
    """2:4 magnitude pruning (``pvq.prune.semi_structured_mask``), then, if ``bits`` is given,
    the kept weights quantized at their own MSE scale (prune-then-quantize)."""
    check_weights(w)
    mask = semi_structured_mask(w)
    if bits is None:
        return Compressed(_where(mask, w), mask, None)
    scale = _kept_scale(w[mask], bits, 0.5)
    return Compressed(_where(mask, quantize(w, bits, scale)), mask, scale)


def _kept_scale(kept: Weights, bits: int, sparsity: float) -> float:
    """The MSE scale of the kept weights, or a clear error when none of them is non-zero."""
    if not (kept != 0).any():
        raise ValueError(f"sparsity={sparsity} leaves no non-zero weight of w to quantize")
    return mse_scale(kept, bits)


def stored_arrays(w: Weights, *, bits: int | None = None, sparsity: float = 0.0,
                  encoding: str = "dense", order: str = "prune-then-quantize"
                  ) -> dict[str, torch.Tensor]:
    """The arrays that store ``w`` compressed (``pvq.compression.encode``): ``compress(...)`` in
    ``order``, or ``semi_structured(w, bits=bits)`` for ``encoding="2:4"`` (sparsity 0.5)."""
    if encoding == "2:4":
        if sparsity != 0.5:
            raise ValueError(f"2:4 sparsity is 0.5, got {sparsity}")
        result = semi_structured(w, bits=bits)
    else:
        result = compress(w, bits=bits, sparsity=sparsity, order=order)
    mask = None if encoding == "dense" else result.mask
    return encode(result.w_hat, mask=mask, bits=bits, scale=result.scale, encoding=encoding)


def matched_formats(budget_bits: int, bits: Iterable[int] = (2, 3, 4, 6, 8)
                    ) -> list[tuple[int | None, float]]:
    """``(bits, sparsity)`` pairs that store ``budget_bits`` per weight (large-tensor costs, a
    bitmask for pruned ones): quantization alone ``(B, 0)``, FP16 pruning ``(None, c)``, and
    b-bit codes pruned to ``sparsity_at_budget(B, b)`` for each b in ``bits`` above ``B - 1``."""
    formats: list[tuple[int | None, float]] = [(budget_bits, 0.0)]
    formats.append((None, sparsity_at_budget(budget_bits, 16)))
    formats += [(b, sparsity_at_budget(budget_bits, b)) for b in bits if b > budget_bits - 1
                and sparsity_at_budget(budget_bits, b) > 0]
    return formats


def pareto_optimal(cost: Iterable[float], quality: Iterable[float]) -> np.ndarray:
    """True for each point that no other point beats: none has lower-or-equal ``cost`` and
    higher-or-equal ``quality`` with one of them strict (of identical points the first counts)."""
    cost, quality = check_real_sequence(cost, "cost"), check_real_sequence(quality, "quality")
    if not np.isfinite(cost).all() or np.isnan(quality).any():
        raise ValueError("cost must be finite and quality not NaN (an SNR may be +inf)")
    if cost.shape != quality.shape:
        raise ValueError("cost and quality must be 1-D sequences of the same length")
    optimal = np.zeros(cost.size, dtype=bool)
    best = -np.inf
    for index in np.lexsort((-quality, cost)):  # by cost, then the best quality first
        if quality[index] > best:
            optimal[index], best = True, quality[index]
    return optimal


def frontier(
    w: Weights, *, bits: Iterable[int] = range(2, 9),
    sparsities: Iterable[float] = FRONTIER_SPARSITIES,
    encodings: Iterable[str] = ("bitmask", "csr"), low_bit: bool = False,
) -> pd.DataFrame:
    """Storage against SNR for one tensor: every method at every level, with every overhead.

    Rows: ``quantization`` (b bits, dense), ``pruning`` (FP16 values) and both orders of
    ``compress`` (b bits and sparsity c), the pruned ones once per encoding; with ``low_bit``,
    first the binary and ternary rows of ``low_bit_rows``. Columns: method,
    encoding, value_bits (16 = FP16), sparsity, bits_per_weight (``encoded_bits_per_weight`` of
    ``w``'s shape), snr_db, and ``pareto`` (``pareto_optimal`` over all rows).
    """
    check_weights(w)
    bits, encodings = list(bits), list(encodings)
    sparsities = [check_sparsity(c) for c in sparsities]
    cases = [("quantization", "dense", b, 0.0) for b in bits]
    cases += [("pruning", encoding, None, c) for c in sparsities for encoding in encodings]
    cases += [(order, encoding, b, c) for order in ORDERS for b in bits for c in sparsities
              for encoding in encodings]
    full_scales = {b: mse_scale(w, b) for b in bits}  # quantization alone = quantize-then-prune's
    snrs: dict[tuple, float] = {}
    rows = []
    for method, encoding, b, c in cases:
        key = (method if c > 0 and b is not None else "-", b, c)
        if key not in snrs:
            order = method if method in ORDERS else "quantize-then-prune"
            scale = full_scales[b] if order == "quantize-then-prune" and b is not None else None
            snrs[key] = snr_db(w, compress(w, bits=b, sparsity=c, order=order,
                                           scale=scale).w_hat)
        rows.append({"method": method, "encoding": encoding, "value_bits": 16 if b is None else b,
                     "sparsity": c, "snr_db": snrs[key], "bits_per_weight":
                     encoded_bits_per_weight(w.shape, bits=b, sparsity=c, encoding=encoding)})
    table = pd.DataFrame(rows)
    if low_bit:
        table = pd.concat([low_bit_rows(w), table], ignore_index=True)
    table["pareto"] = pareto_optimal(table["bits_per_weight"], table["snr_db"])
    return table


#: the two grids below two bits: binary ``s * sign(w)`` and ternary ``{-s, 0, s}``
LOW_BIT_METHODS = ("binary", "ternary")


def low_bit(w: Weights, method: str) -> Compressed:
    """``w`` with binary codes (``pvq.quantize.binarize`` at ``binary_scale``, 1 bit) or ternary
    codes (``quantize(w, 2, s, symmetric=True)`` at ``ternary_scale``, a 2-bit code); the mask
    keeps every weight (a ternary zero is a code, not a pruned weight)."""
    check_weights(w)
    if method == "binary":
        scale = binary_scale(w)
        w_hat = binarize(w, scale)
    elif method == "ternary":
        scale = ternary_scale(w)
        w_hat = quantize(w, 2, scale, symmetric=True)
    else:
        raise ValueError(f"method must be one of {LOW_BIT_METHODS}, got {method!r}")
    keep = torch.ones_like(w, dtype=torch.bool) if isinstance(w, torch.Tensor) else \
        np.ones(w.shape, dtype=bool)
    return Compressed(w_hat, keep, scale)


def low_bit_rows(w: Weights) -> pd.DataFrame:
    """Binary and ternary as rows in ``frontier``'s columns (encoding ``dense``, value_bits 1 and
    2, sparsity 0, bits_per_weight of packed 1- and 2-bit codes plus the FP32 scale); no
    ``pareto`` column: recompute it over the rows you compare."""
    rows = [{"method": method, "encoding": "dense", "value_bits": value_bits, "sparsity": 0.0,
             "snr_db": snr_db(w, low_bit(w, method).w_hat),
             "bits_per_weight": encoded_bits_per_weight(w.shape, bits=value_bits)}
            for method, value_bits in zip(LOW_BIT_METHODS, (1, 2))]
    return pd.DataFrame(rows)


def entropy_frontier(w: Weights, *, bits: Iterable[int] = range(2, 9),
                     sparsities: Iterable[float] = FRONTIER_SPARSITIES) -> pd.DataFrame:
    """Storage against SNR when the codes and the mask are entropy-coded (the Shannon bound,
    ``pvq.compression.entropy_coded_bits_per_weight``), for binary, ternary, quantization alone
    and prune-then-quantize at every ``bits`` and sparsity.

    Columns: method, value_bits, sparsity, snr_db, fixed_bits_per_weight (packed codes, and a
    bitmask if pruned), entropy_bits_per_weight, and ``pareto`` over the entropy-coded costs.
    """
    check_weights(w)
    cases = [(method, None, 0.0) for method in LOW_BIT_METHODS]
    cases += [("quantization", b, 0.0) for b in bits]
    cases += [("prune-then-quantize", b, check_sparsity(c)) for b in bits for c in sparsities]
    rows = []
    for method, b, c in cases:
        result = low_bit(w, method) if b is None else compress(w, bits=b, sparsity=c)
        codes = np.round(to_numpy(result.w_hat) / result.scale)
        value_bits = {"binary": 1, "ternary": 2}.get(method, b)
        rows.append({"method": method, "value_bits": value_bits, "sparsity": c,
                     "snr_db": snr_db(w, result.w_hat),
                     "fixed_bits_per_weight": encoded_bits_per_weight(
                         w.shape, bits=value_bits, sparsity=c,
                         encoding=_default_encoding(c)),
                     "entropy_bits_per_weight": entropy_coded_bits_per_weight(
                         codes, None if c == 0 else result.mask)})
    table = pd.DataFrame(rows)
    table["pareto"] = pareto_optimal(table["entropy_bits_per_weight"], table["snr_db"])
    return table


def error_split(w: Weights, result: Compressed, X: Weights | None = None) -> dict[str, float]:
    """The squared error of ``result`` (from ``compress``) split between its two causes: with
    ``e_p = w`` on the pruned weights and ``e_r = w - w_hat`` on the kept ones (so ``w - w_hat =
    e_p + e_r``), and the output error of inputs ``X`` (samples x in, ``X @ w.T`` the output),

    ``||(e_p + e_r) X^T||^2 = ||e_p X^T||^2 + ||e_r X^T||^2 + 2 <e_p X^T, e_r X^T>``.

    Returns ``pruning``, ``rounding``, ``cross`` (the last term) and ``total``. Without ``X``
    (the weight error, X = identity) ``e_p`` and ``e_r`` sit on disjoint weights and the cross
    term is exactly zero; with correlated inputs it is not.
    """
    check_weights(w)
    w, w_hat = to_numpy(w), to_numpy(result.w_hat)
    keep = np.asarray(to_numpy(result.mask), dtype=bool)
    if w_hat.shape != w.shape or keep.shape != w.shape:
        raise ValueError(f"result must hold arrays of w's shape {w.shape}")
    pruned, rounded = np.where(keep, 0.0, w), np.where(keep, w - w_hat, 0.0)
    if X is not None:
        check_weights(X, "X")
        X = to_numpy(X)
        if X.ndim != 2 or w.ndim != 2 or X.shape[1] != w.shape[1]:
            raise ValueError(f"X must be samples x {w.shape[-1]}, got shape {X.shape}")
        pruned, rounded = pruned @ X.T, rounded @ X.T
    return {"pruning": float(np.sum(pruned**2)), "rounding": float(np.sum(rounded**2)),
            "cross": float(2.0 * np.sum(pruned * rounded)),
            "total": float(np.sum((pruned + rounded) ** 2))}


def _default_encoding(sparsity: float) -> str:
    return "dense" if sparsity == 0 else "bitmask"


def model_bits_per_weight(model: nn.Module, *, bits: int | None = None, sparsity: float = 0.0,
                          encoding: str | None = None) -> float:
    """Bits per weight of all Conv2d/Linear weights of ``model`` stored with ``bits``-bit codes
    (None: FP16) at ``sparsity`` in ``encoding`` (default: dense if unpruned, else a bitmask):
    ``8 * sum of encoded_bytes / number of weights``. Biases and BatchNorm are not counted."""
    encoding = _default_encoding(sparsity) if encoding is None else encoding
    layers = compressible_layers(model).values()
    total = sum(encoded_bytes(layer.weight.shape, bits=bits, sparsity=sparsity,
                              encoding=encoding) for layer in layers)
    return 8.0 * total / sum(layer.weight.numel() for layer in layers)


def post_training(model: nn.Module, loader: Batches, *, bits: int | None = None,
                  sparsity: float = 0.0, order: str = "prune-then-quantize",
                  bn_batches: int = 20) -> nn.Module:
    """A copy of ``model`` with every Conv2d/Linear weight replaced by ``compress(...)`` (no
    training), then BatchNorm re-estimated on ``bn_batches`` batches of ``loader`` (a shuffling
    DataLoader's generator re-seeded with 0 first, as ``pvq.train.train`` does)."""
    compressed = copy.deepcopy(model)
    with torch.no_grad():
        for layer in compressible_layers(compressed).values():
            layer.weight.copy_(compress(layer.weight, bits=bits, sparsity=sparsity,
                                        order=order).w_hat)
    shuffling = getattr(loader, "generator", None)
    if isinstance(shuffling, torch.Generator):
        shuffling.manual_seed(0)
    reestimate_batchnorm(compressed, loader, batches=bn_batches)
    return compressed.eval()


def fine_tune(model: nn.Module, loader: Batches, *, bits: int | None = None,
              sparsity: float = 0.0, epochs: int = 3, lr: float = 0.03,
              pruning_fraction: float = 0.75, update_every: int = 5,
              step_size_lr: float = 1e-4, seed: int = 0, bn_batches: int = 20) -> nn.Module:
    """A copy of ``model`` fine-tuned by ``pvq.train.train``: LSQ at ``bits`` (if given) and
    gradual magnitude pruning to ``sparsity`` (if > 0), reached after ``pruning_fraction`` of the
    steps with masks updated every ``update_every`` steps. Both together is quantization-aware
    pruning: each layer computes ``Q_s(m * w)``, the masks chosen on the float weights.
    """
    sparsity = check_sparsity(sparsity)
    if bits is None and sparsity == 0:
        raise ValueError("nothing to compress: give bits, a sparsity > 0, or both")
    pruning_fraction = check_fraction(pruning_fraction, "pruning_fraction")
    steps = loader_length(loader)
    tuned = copy.deepcopy(check_module(model))
    if bits is not None:
        apply_lsq(tuned, bits)
    callbacks = []
    if sparsity > 0:
        end_step = round(pruning_fraction * check_int(epochs, "epochs", 1) * steps)
        callbacks.append(GradualMagnitudePruning(tuned, sparsity, end_step=end_step,
                                                 update_every=update_every))
    train(tuned, loader, epochs=epochs, lr=lr, seed=seed, callbacks=callbacks,
          step_size_lr=step_size_lr, bn_batches=bn_batches, progress=False)
    return tuned


def fine_tune_in_order(model: nn.Module, loader: Batches, *, bits: int, sparsity: float,
                       order: str, epochs: int = 1, lr: float = 0.03,
                       pruning_fraction: float = 0.75, update_every: int = 5,
                       step_size_lr: float = 1e-4, seed: int = 0,
                       bn_batches: int = 20) -> nn.Module:
    """A copy of ``model`` compressed to ``bits``-bit codes at ``sparsity`` in ``order``, trained
    in two stages of ``epochs`` each (``pvq.train.train``, the same ``lr``, ``seed`` and
    cosine schedule in each, BatchNorm re-estimated after each):

    - ``"prune-then-quantize"``: gradual magnitude pruning of the float weights to ``sparsity``
      (reached after ``pruning_fraction`` of the stage), then LSQ at ``bits`` with the masks
      fixed; LSQ's step starts at the MSE scale of the kept weights (pruned zeros cost nothing).
    - ``"quantize-then-prune"``: LSQ at ``bits``, then gradual pruning of the quantized model
      while LSQ goes on training. The masks are chosen on the float weights beneath the
      quantizer; they rank like the codes with ties broken by the original magnitude
      (``quantized_magnitude_mask``) as long as no clipped weight is pruned.

    Either way each layer ends computing ``Q_s(m * w)``, as ``fine_tune`` does with both at once.
    """
    sparsity = check_sparsity(sparsity)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if bits is None or sparsity == 0:
        raise ValueError("an order needs both bits and a sparsity > 0")
    pruning_fraction = check_fraction(pruning_fraction, "pruning_fraction")
    tuned = copy.deepcopy(model)
    common = {"epochs": epochs, "lr": lr, "seed": seed, "step_size_lr": step_size_lr,
              "bn_batches": bn_batches, "progress": False}
    end_step = round(pruning_fraction * check_int(epochs, "epochs", 1) * loader_length(loader))
    if order == "prune-then-quantize":
        pruner = GradualMagnitudePruning(tuned, sparsity, end_step=end_step,
                                         update_every=update_every)
        train(tuned, loader, callbacks=[pruner], **common)
        pruner.make_permanent()
        apply_lsq(tuned, bits)
        # the zeros of stage 1 as a fixed mask beneath the quantizer (one-shot at their count)
        GradualMagnitudePruning(tuned, sparsity, end_step=0)
        train(tuned, loader, **common)
    else:
        apply_lsq(tuned, bits)
        train(tuned, loader, **common)
        pruner = GradualMagnitudePruning(tuned, sparsity, end_step=end_step,
                                         update_every=update_every)
        train(tuned, loader, callbacks=[pruner], **common)
    return tuned


#: the trained ways to reach a format: both at once (or one alone), or one of the two orders
TRAINED = ("joint", *ORDERS)


def fine_tune_combined(model: nn.Module, loader: Batches, *, method: str, bits: int | None,
                       sparsity: float = 0.0, epochs: int = 2, lr: float, seed: int = 0,
                       **budget: float) -> nn.Module:
    """Any trained ``method`` of ``TRAINED`` at the same total number of ``epochs``: ``"joint"``
    is ``fine_tune`` (LSQ alone, gradual pruning alone or quantization-aware pruning); an order
    is ``fine_tune_in_order`` with ``epochs / 2`` per stage (``epochs`` must then be even).
    ``budget`` passes ``pruning_fraction``, ``update_every``, ``step_size_lr``, ``bn_batches``.
    """
    if method not in TRAINED:
        raise ValueError(f"method must be one of {TRAINED}, got {method!r}")
    if method == "joint":
        return fine_tune(model, loader, bits=bits, sparsity=sparsity, epochs=epochs, lr=lr,
                         seed=seed, **budget)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 2 or epochs % 2:
        raise ValueError(f"epochs must be an even integer >= 2 for an order, got {epochs!r}")
    return fine_tune_in_order(model, loader, bits=bits, sparsity=sparsity, order=method,
                              epochs=epochs // 2, lr=lr, seed=seed, **budget)


def post_training_test_correct(job: tuple[int | None, float, str]) -> dict:
    """``post_training`` of the shipped ``digits_cnn_small`` with ``job = (bits, sparsity,
    order)``: its worst layer's weight SNR and which test images it gets right (a function of
    the job alone, for ``pvq.parallel.parallel_map``)."""
    if not (isinstance(job, tuple) and len(job) == 3):
        raise TypeError(f"job must be a tuple (bits, sparsity, order), got {job!r}")
    bits, sparsity, order = job
    baseline, loaders = headroom_setup()
    model = post_training(baseline, loaders.train, bits=bits, sparsity=sparsity, order=order)
    return {"worst layer SNR (dB)": weight_snr(baseline, model).min(),
            "correct": per_example_correct(model, loaders.test)}


#: the trained comparison of notebook 6 (section 4) and ``scripts/bench_combine.py``: by name,
#: ``(method of TRAINED, bits, sparsity)``, all at 3 bits per weight with a bitmask
TRAINED_FORMATS = {"prune-then-quantize": ("prune-then-quantize", 4, 0.5),
                   "quantize-then-prune": ("quantize-then-prune", 4, 0.5),
                   "QAP (both at once)": ("joint", 4, 0.5), "LSQ INT3": ("joint", 3, 0.0)}
#: every trained format searches the union of notebook 5's two grids (each combination has a
#: quantization and a pruning part): eight rates a factor of about 3 apart
TRAINED_GRID = tuple(sorted({lr for grid in LEARNING_RATE_GRIDS.values() for lr in grid}))
#: epochs per trained model, in all (an order: one per stage, the fewest two stages can have)
TRAINED_EPOCHS = 2
#: the paired comparisons ``A - B`` of the trained formats, on the same test images
TRAINED_PAIRS = (("prune-then-quantize", "quantize-then-prune"),
                 ("QAP (both at once)", "prune-then-quantize"),
                 ("QAP (both at once)", "quantize-then-prune"), ("LSQ INT3", "QAP (both at once)"),
                 ("LSQ INT3", "prune-then-quantize"), ("LSQ INT3", "quantize-then-prune"))
#: the rates ``scripts/bench_combine.py`` picked from ``TRAINED_GRID`` on calibration accuracy
#: (mean of seeds 0 and 1, ``pvq.finetune.learning_rate_choice``); recorded in BENCHMARKS.md
TRAINED_LEARNING_RATES = {"prune-then-quantize": 0.03, "quantize-then-prune": 0.3,
                          "QAP (both at once)": 0.1, "LSQ INT3": 0.03}


def _trained_model(job: tuple[str, int | None, float, float, int, int]) -> tuple[nn.Module, object]:
    """``fine_tune_combined`` of the shipped ``digits_cnn_small`` with ``job = (method, bits,
    sparsity, lr, seed, epochs)``, and the loaders of its task."""
    if not (isinstance(job, tuple) and len(job) == 6):
        raise TypeError(f"job must be a tuple (method, bits, sparsity, lr, seed, epochs), "
                        f"got {job!r}")
    method, bits, sparsity, lr, seed, epochs = job
    baseline, loaders = headroom_setup()
    return fine_tune_combined(baseline, loaders.train, method=method, bits=bits,
                              sparsity=sparsity, epochs=epochs, lr=lr, seed=seed), loaders


def trained_test_correct(job: tuple[str, int | None, float, float, int, int]) -> np.ndarray:
    """Which test images one trained model gets right: ``fine_tune_combined`` of the shipped
    ``digits_cnn_small`` on the distorted digits with ``job = (method, bits, sparsity, lr,
    seed, epochs)``. A function of the job alone (the baseline is never changed), so
    ``pvq.parallel.parallel_map`` may run the jobs in other processes."""
    model, loaders = _trained_model(job)
    return per_example_correct(model, loaders.test)


def trained_correct(job: tuple[str, int | None, float, float, int, int]) -> dict[str, np.ndarray]:
    """``trained_test_correct`` on the calibration and the test images (keys ``calibration``
    and ``test``): what a learning-rate search needs (``scripts/bench_combine.py``)."""
    model, loaders = _trained_model(job)
    return {"calibration": per_example_correct(model, loaders.calibration),
            "test": per_example_correct(model, loaders.test)}


def weight_snr(original: nn.Module, compressed: nn.Module) -> pd.Series:
    """SNR (dB) of each Conv2d/Linear weight of ``compressed`` (as its forward pass uses it:
    quantized and masked) against the same layer of ``original``."""
    reference = compressible_layers(original)
    changed = compressible_layers(compressed)
    return pd.Series({name: snr_db(to_numpy(layer.weight), to_numpy(changed[name].weight))
                      for name, layer in reference.items()}, name="snr_db")
