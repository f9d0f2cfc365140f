"""Orthogonal rotations that spread a layer's outliers over all its weights (QuaRot, Ashkboos et
al. 2024): with ``R`` orthogonal, ``(W R)(X R)^T = W X^T``, so a layer computes the same outputs
from rotated weights and rotated inputs, and the rotation folds into the adjacent layers.

``hadamard(n)``: Sylvester's Hadamard matrix divided by ``sqrt(n)``, entries ``+-1/sqrt(n)``,
``R R^T = I`` (``scipy.linalg.hadamard``); ``n`` a power of 2.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from pvq._validation import check_int

__all__ = ["hadamard"]


def hadamard(n: int) -> np.ndarray:
    """The orthogonal n x n Hadamard matrix ``H_n / sqrt(n)`` (Sylvester: ``H_1 = [1]``,
    ``H_2m = [[H_m, H_m], [H_m, -H_m]]``), float64; ``n`` a power of 2."""
    n = check_int(n, "n", 1)
    if n & (n - 1):
        raise ValueError(f"n must be a power of 2, got {n}")
    return scipy.linalg.hadamard(n).astype(np.float64) / np.sqrt(n)
