"""Orthogonal rotations that spread a layer's outliers over all its weights (QuaRot, Ashkboos et
al. 2024): with ``R`` orthogonal, ``(W R)(X R)^T = W X^T``, so a layer computes the same outputs
from rotated weights and rotated inputs.

- ``hadamard(n)``: Sylvester's Hadamard matrix divided by ``sqrt(n)``, entries ``+-1/sqrt(n)``,
  ``R R^T = I`` (``scipy.linalg.hadamard``); ``n`` a power of 2.
- ``hadamard_block(n)``: the largest power of 2 dividing ``n`` (384 -> 128, 1536 -> 512).
- ``rotate(x, block=None)``: ``x R`` along the last axis, ``R = diag(H_b, ..., H_b)`` the
  block-diagonal Hadamard with ``b = block`` or ``hadamard_block(n)`` (each run of ``b``
  entries times ``hadamard(b)``; a fast Walsh-Hadamard transform would need ``n log2 b``
  additions per row, BLAS is faster here).
  ``R`` is symmetric and orthogonal, so ``R^T = R = R^-1`` and rotating twice gives ``x`` back.
- ``rotate_layer(W, gram, block=None)``: a linear layer ``y = W x`` in the rotated basis, ``W' = W R`` and
  the Gram of its inputs ``G' = R^T G R`` (inputs ``x' = R^T x``): ``W' x' = W x`` exactly, and a
  weight error ``D'`` in the rotated basis is the error ``D = D' R^T`` of the original layer,
  with the same output energy ``tr(D' G' D'^T) = tr(D G D^T)``.
- ``fold_value_rotation(W_V, b_V, W_O, head_size)``: a rotation folded into BERT's attention,
  no online rotation needed. Attention mixes the value vectors of different tokens, head by
  head, never the channels within a head: with ``R = diag(H_h, ..., H_h)``, ``h = head_size``
  (one block per head), the value projection ``V = X W_V^T + b_V`` becomes ``V R`` with
  ``W_V' = R^T W_V`` and ``b_V' = R^T b_V``, so the heads' context ``A V R`` arrives rotated, and
  the output projection with ``W_O' = W_O R`` gives ``(A V R)(W_O R)^T = A V W_O^T``, exactly
  what it gave before.

``R`` is generated, never stored: a compressed ``W'`` (codes and scales, or a mask and the kept
weights, in the rotated basis) costs what a compressed ``W`` does.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from pvq._validation import check_int, check_weights

__all__ = ["fold_value_rotation", "hadamard", "hadamard_block", "rotate", "rotate_layer"]


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


def rotate(x: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """``x R`` along the last axis (a new tensor of ``x``'s dtype), ``R = diag(H, ..., H)`` with
    ``H = hadamard(b)``, ``b = block`` (a power of 2 dividing ``x.shape[-1]``) or by default
    ``hadamard_block(x.shape[-1])``: each run of ``b`` entries of a row times ``H``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    check_weights(x, "x")
    if x.ndim == 0 or not x.dtype.is_floating_point:
        raise ValueError(f"x must be a floating tensor with at least one axis, got shape "
                         f"{tuple(x.shape)} and dtype {x.dtype}")
    n = x.shape[-1]
    block = hadamard_block(n) if block is None else check_int(block, "block", 1)
    if n % block or block & (block - 1):
        raise ValueError(f"block must be a power of 2 dividing the last axis {n}, got {block}")
    H = torch.from_numpy(hadamard(block)).to(x.dtype)
    return (x.reshape(-1, n // block, block) @ H).reshape(x.shape)


def rotate_layer(W: torch.Tensor, gram: torch.Tensor, block: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W R, R^T G R)`` for a layer ``W`` (outputs x inputs) and the Gram ``G = X^T X`` of its
    inputs, ``R`` the block-diagonal Hadamard of ``rotate(..., block)``
    (``R^T G R = rotate(rotate(G)^T)``, ``G`` symmetric)."""
    for value, name in ((W, "W"), (gram, "gram")):
        if not isinstance(value, torch.Tensor) or value.ndim != 2:
            raise TypeError(f"{name} must be a 2-D torch.Tensor, got {type(value).__name__}"
                            f"{'' if not isinstance(value, torch.Tensor) else tuple(value.shape)}")
    if gram.shape != (W.shape[1], W.shape[1]):
        raise ValueError(f"gram must be {W.shape[1]} x {W.shape[1]} (W's inputs), got "
                         f"{tuple(gram.shape)}")
    return rotate(W, block), rotate(rotate(gram, block).T.contiguous(), block)


def fold_value_rotation(value_weight: torch.Tensor, value_bias: torch.Tensor,
                        output_weight: torch.Tensor, head_size: int
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(R^T W_V, R^T b_V, W_O R)`` (module docstring), ``R = diag(H_h, ..., H_h)`` with
    ``h = head_size`` a power of 2 dividing the value's outputs: the attention block computes
    the same with these. ``R`` is symmetric and its own inverse: folding twice undoes it."""
    for value, name, ndim in ((value_weight, "value_weight", 2), (value_bias, "value_bias", 1),
                              (output_weight, "output_weight", 2)):
        if not isinstance(value, torch.Tensor) or value.ndim != ndim:
            raise TypeError(f"{name} must be a {ndim}-D torch.Tensor, got {type(value).__name__}"
                            f"{'' if not isinstance(value, torch.Tensor) else tuple(value.shape)}")
    width = value_weight.shape[0]
    if value_bias.shape != (width,) or output_weight.shape[1] != width:
        raise ValueError(f"value_bias must have {width} entries and output_weight {width} "
                         f"columns (value_weight's outputs), got {tuple(value_bias.shape)} and "
                         f"{tuple(output_weight.shape)}")
    head_size = check_int(head_size, "head_size", 1)
    if head_size & (head_size - 1) or width % head_size:
        raise ValueError(f"head_size must be a power of 2 dividing {width}, got {head_size}")
    # R symmetric: R^T W_V = (W_V^T R)^T, and R^T b_V = b_V R as a row
    return (rotate(value_weight.T, head_size).T.contiguous(), rotate(value_bias, head_size),
            rotate(output_weight, head_size))
