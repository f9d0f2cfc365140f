"""Orthogonal rotations that spread a layer's outliers over all its weights (QuaRot, Ashkboos et
al. 2024): with ``R`` orthogonal, ``(W R)(X R)^T = W X^T``, so a layer computes the same outputs
from rotated weights and rotated inputs.

- ``hadamard(n)``: Sylvester's Hadamard matrix divided by ``sqrt(n)``, entries ``+-1/sqrt(n)``,
  ``R R^T = I`` (``scipy.linalg.hadamard``); ``n`` a power of 2.
- ``hadamard_block(n)``: the largest power of 2 dividing ``n`` (384 -> 128, 1536 -> 512).
- ``rotate(x)``: ``x R`` along the last axis, ``R = diag(H_b, ..., H_b)`` the block-diagonal
  Hadamard with ``b = hadamard_block(n)`` (each run of ``b`` entries times ``hadamard(b)``; a
  fast Walsh-Hadamard transform would need ``n log2 b`` additions per row, BLAS is faster here).
  ``R`` is symmetric and orthogonal, so ``R^T = R = R^-1`` and rotating twice gives ``x`` back.
- ``rotate_layer(W, gram)``: a linear layer ``y = W x`` in the rotated basis, ``W' = W R`` and
  the Gram of its inputs ``G' = R^T G R`` (inputs ``x' = R^T x``): ``W' x' = W x`` exactly, and a
  weight error ``D'`` in the rotated basis is the error ``D = D' R^T`` of the original layer,
  with the same output energy ``tr(D' G' D'^T) = tr(D G D^T)``.

``R`` is generated, never stored: a compressed ``W'`` (codes and scales, or a mask and the kept
weights, in the rotated basis) costs what a compressed ``W`` does.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from pvq._validation import check_int, check_weights

__all__ = ["hadamard", "hadamard_block", "rotate", "rotate_layer"]


def hadamard(n: int) -> np.ndarray:
    """The orthogonal n x n Hadamard matrix ``H_n / sqrt(n)`` (Sylvester: ``H_1 = [1]``,
    ``H_2m = [[H_m, H_m], [H_m, -H_m]]``), float64; ``n`` a power of 2."""
    n = check_int(n, "n", 1)
    if n & (n - 1):
        raise ValueError(f"n must be a power of 2, got {n}")
    return scipy.linalg.hadamard(n).astype(np.float64) / np.sqrt(n)


def hadamard_block(n: int) -> int:
    """The largest power of 2 that divides ``n``: the block size of ``rotate``'s ``R``."""
    n = check_int(n, "n", 1)
    return n & -n


def rotate(x: torch.Tensor) -> torch.Tensor:
    """``x R`` along the last axis (a new tensor of ``x``'s dtype), ``R = diag(H, ..., H)`` with
    ``H = hadamard(b)``, ``b = hadamard_block(x.shape[-1])``: each run of ``b`` entries of a row
    times ``H``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    check_weights(x, "x")
    if x.ndim == 0 or not x.dtype.is_floating_point:
        raise ValueError(f"x must be a floating tensor with at least one axis, got shape "
                         f"{tuple(x.shape)} and dtype {x.dtype}")
    n = x.shape[-1]
    block = hadamard_block(n)
    H = torch.from_numpy(hadamard(block)).to(x.dtype)
    return (x.reshape(-1, n // block, block) @ H).reshape(x.shape)


def rotate_layer(W: torch.Tensor, gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W R, R^T G R)`` for a layer ``W`` (outputs x inputs) and the Gram ``G = X^T X`` of its
    inputs, ``R`` the block-diagonal Hadamard of ``rotate`` (``R^T G R = rotate(rotate(G)^T)``,
    ``G`` symmetric)."""
    for value, name in ((W, "W"), (gram, "gram")):
        if not isinstance(value, torch.Tensor) or value.ndim != 2:
            raise TypeError(f"{name} must be a 2-D torch.Tensor, got {type(value).__name__}"
                            f"{'' if not isinstance(value, torch.Tensor) else tuple(value.shape)}")
    if gram.shape != (W.shape[1], W.shape[1]):
        raise ValueError(f"gram must be {W.shape[1]} x {W.shape[1]} (W's inputs), got "
                         f"{tuple(gram.shape)}")
    return rotate(W), rotate(rotate(gram).T.contiguous())
