"""Unstructured magnitude pruning: an exact ratio on a tensor, and the threshold of a distribution.

Pruning to sparsity c zeroes the ``round(c * n)`` weights of smallest magnitude (Python's
``round``, as ``torch.nn.utils.prune``). For a distribution symmetric about zero with CDF F, the
same ratio cuts at ``tau = F^-1(1/2 + c/2)``: a fraction c of the mass lies in ``(-tau, tau)``.
"""

from __future__ import annotations

import numpy as np
import torch

from pvq._validation import (
    Weights,
    as_float,
    check_int,
    check_sparsity,
    check_weights,
    to_numpy,
    unit_scaled,
)


def pruned_count(size: int, sparsity: float) -> int:
    """How many of ``size`` weights a ratio of ``sparsity`` removes: ``round(sparsity * size)``."""
    return round(check_sparsity(sparsity) * check_int(size, "size"))


def magnitude_mask(w: Weights, sparsity: float) -> Weights:
    """Boolean keep-mask (True = kept) that drops exactly ``round(sparsity * w.size)`` weights.

    The smallest magnitudes go first; ties are broken by position (earlier index pruned first),
    so the result is deterministic. The threshold is found by selection, in O(n), not by sorting.
    """
    check_weights(w)
    magnitudes = _magnitudes(w)
    drop = pruned_count(magnitudes.size, sparsity)
    keep = np.ones(magnitudes.size, dtype=bool)
    if drop > 0:
        threshold = np.partition(magnitudes, drop - 1)[drop - 1]
        keep = magnitudes > threshold
        ties = np.flatnonzero(magnitudes == threshold)
        keep[ties[drop - np.count_nonzero(magnitudes < threshold):]] = True
    return _mask_like(keep.reshape(tuple(w.shape)), w)


def _mask_like(keep: np.ndarray, w: Weights) -> Weights:
    """``keep`` broadcast to ``w``'s shape, of ``w``'s kind (a torch mask on ``w``'s device)."""
    keep = np.broadcast_to(keep, tuple(w.shape)).copy()
    return torch.from_numpy(keep).to(w.device) if isinstance(w, torch.Tensor) else keep


def _magnitudes(w: Weights) -> np.ndarray:
    """``|w|`` flattened, as a NumPy array of float32 or float64 (integers widened first, so the
    most negative integer keeps its magnitude)."""
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu()
        w = (w if w.dtype in (torch.float32, torch.float64) else w.double()).numpy()
    return np.abs(w if w.dtype in (np.float32, np.float64) else w.astype(np.float64)).ravel()


def magnitude_prune(w: Weights, sparsity: float) -> Weights:
    """``w`` with exactly ``round(sparsity * w.size)`` smallest-magnitude entries set to zero."""
    keep = magnitude_mask(w, sparsity)
    w = as_float(w)
    if isinstance(w, torch.Tensor):
        return torch.where(keep, w, torch.zeros_like(w))
    return np.where(keep, w, 0.0).astype(w.dtype, copy=False)


def magnitude_threshold(dist: object, sparsity: float) -> float:
    """The magnitude threshold ``tau = F^-1(1/2 + c/2)`` that prunes a fraction c of ``dist``.

    ``dist`` is a frozen ``scipy.stats`` distribution (or any object with ``cdf`` and ``ppf``)
    that is symmetric about zero.
    """
    if not (callable(getattr(dist, "cdf", None)) and callable(getattr(dist, "ppf", None))):
        raise TypeError(
            f"dist must be a frozen scipy.stats distribution, got {type(dist).__name__}"
        )
    sparsity = check_sparsity(sparsity)
    probes = np.array([0.5, 1.0, 2.0]) * float(dist.ppf(0.75))
    if not np.allclose(dist.cdf(probes) + dist.cdf(-probes), 1.0, atol=1e-9):
        raise ValueError("dist must be symmetric about zero (cdf(x) + cdf(-x) = 1)")
    return float(dist.ppf(0.5 + sparsity / 2.0))


def semi_structured_mask(w: Weights, kept: int = 2, group: int = 4) -> Weights:
    """Keep-mask of N:M semi-structured sparsity (default 2:4, the pattern of NVIDIA's sparse
    tensor cores): in every run of ``group`` consecutive weights along the last axis, the
    ``kept`` largest magnitudes stay (ties: the earlier index is pruned first, as in
    ``magnitude_mask``). The sparsity is exactly ``1 - kept / group``.
    """
    check_weights(w)
    kept, group = check_int(kept, "kept", 1), check_int(group, "group", 1)
    if kept > group:
        raise ValueError(f"kept must not exceed group={group}, got {kept}")
    if w.ndim == 0 or w.shape[-1] % group:
        raise ValueError(f"the last axis of w must be a multiple of group={group}, got shape "
                         f"{tuple(w.shape)}")
    runs = _magnitudes(w).reshape(-1, group)
    order = np.argsort(runs, axis=1, kind="stable")
    keep = np.ones(runs.shape, dtype=bool)
    np.put_along_axis(keep, order[:, : group - kept], False, axis=1)
    return _mask_like(keep.reshape(tuple(w.shape)), w)


def channel_mask(w: Weights, sparsity: float) -> Weights:
    """Keep-mask of structured pruning: the ``round(sparsity * rows)`` output channels (rows
    ``w[i]``, all their inputs together) with the smallest L2 norm go, ties broken by position.
    The mask has ``w``'s shape; hardware simply drops the pruned rows.
    """
    check_weights(w)
    if w.ndim < 2:
        raise ValueError(f"w must have an output-channel axis and inputs (ndim >= 2), got {w.ndim}")
    rows = w.shape[0]
    # the ranking does not change under a common power-of-two scale, which keeps squares in range
    norms = np.linalg.norm(unit_scaled(to_numpy(w)).reshape(rows, -1), axis=1)
    return _mask_like(magnitude_mask(norms, sparsity).reshape((rows,) + (1,) * (w.ndim - 1)), w)
