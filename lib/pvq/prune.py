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
