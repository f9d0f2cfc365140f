"""Unstructured magnitude pruning: an exact ratio on a tensor, and the threshold of a distribution.

Pruning to sparsity c zeroes the ``round(c * n)`` weights of smallest magnitude (Python's
``round``, as ``torch.nn.utils.prune``). For a distribution symmetric about zero with CDF F, the
same ratio cuts at ``tau = F^-1(1/2 + c/2)``: a fraction c of the mass lies in ``(-tau, tau)``.
"""

from __future__ import annotations

import numpy as np
import torch

from pvq._validation import Weights, as_float, check_sparsity, check_weights


def pruned_count(size: int, sparsity: float) -> int:
    """How many of ``size`` weights a ratio of ``sparsity`` removes: ``round(sparsity * size)``."""
    return round(check_sparsity(sparsity) * size)


def magnitude_mask(w: Weights, sparsity: float) -> Weights:
    """Boolean keep-mask (True = kept) that drops exactly ``round(sparsity * w.size)`` weights.

    The smallest magnitudes go first; ties are broken by position (earlier index pruned first),
    so the result is deterministic.
    """
    check_weights(w)
    if isinstance(w, torch.Tensor):
        drop = pruned_count(w.numel(), sparsity)
        order = torch.argsort(w.detach().abs().flatten(), stable=True)
        keep = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
        keep[order[:drop]] = False
        return keep.reshape(w.shape)
    drop = pruned_count(w.size, sparsity)
    order = np.argsort(np.abs(w).ravel(), kind="stable")
    keep = np.ones(w.size, dtype=bool)
    keep[order[:drop]] = False
    return keep.reshape(w.shape)


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
    for name, value in (("kept", kept), ("group", group)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if kept > group:
        raise ValueError(f"kept must not exceed group={group}, got {kept}")
    if w.shape[-1] % group:
        raise ValueError(f"the last axis of w ({w.shape[-1]}) must be a multiple of group={group}")
    if isinstance(w, torch.Tensor):
        runs = w.detach().abs().reshape(-1, group)
        order = torch.argsort(runs, dim=1, stable=True)
        keep = torch.ones_like(runs, dtype=torch.bool)
        keep.scatter_(1, order[:, : group - kept], False)
        return keep.reshape(w.shape)
    runs = np.abs(w).reshape(-1, group)
    order = np.argsort(runs, axis=1, kind="stable")
    keep = np.ones(runs.shape, dtype=bool)
    np.put_along_axis(keep, order[:, : group - kept], False, axis=1)
    return keep.reshape(w.shape)


def channel_mask(w: Weights, sparsity: float) -> Weights:
    """Keep-mask of structured pruning: the ``round(sparsity * rows)`` output channels (rows
    ``w[i]``, all their inputs together) with the smallest L2 norm go, ties broken by position.
    The mask has ``w``'s shape; hardware simply drops the pruned rows.
    """
    check_weights(w)
    if w.ndim < 2:
        raise ValueError(f"w must have an output-channel axis and inputs (ndim >= 2), got {w.ndim}")
    rows = w.shape[0]
    if isinstance(w, torch.Tensor):
        norms = w.detach().reshape(rows, -1).double().norm(dim=1)
        keep = magnitude_mask(norms, sparsity)
        return keep.reshape((rows,) + (1,) * (w.ndim - 1)).expand(w.shape).clone()
    norms = np.linalg.norm(np.asarray(w, dtype=np.float64).reshape(rows, -1), axis=1)
    keep = magnitude_mask(norms, sparsity)
    return np.broadcast_to(keep.reshape((rows,) + (1,) * (w.ndim - 1)), w.shape).copy()
