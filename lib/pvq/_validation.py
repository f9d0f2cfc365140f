"""Argument checks shared by the public functions: clear errors that name the argument."""

from __future__ import annotations

import math
import numbers
from typing import TypeVar

import numpy as np
import torch

Weights = TypeVar("Weights", np.ndarray, torch.Tensor)


def check_weights(w: object, name: str = "w") -> None:
    """Require a non-empty, finite, real NumPy array or torch tensor."""
    if isinstance(w, torch.Tensor):
        if not (w.dtype.is_floating_point or w.dtype in _TORCH_INTEGER_DTYPES):
            raise TypeError(f"{name} must hold real numbers, got torch dtype {w.dtype}")
        if w.numel() == 0:
            raise ValueError(f"{name} is empty")
        if w.dtype.is_floating_point and not bool(torch.isfinite(w).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
        return
    if isinstance(w, np.ndarray):
        if w.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got NumPy dtype {w.dtype}")
        if w.size == 0:
            raise ValueError(f"{name} is empty")
        if w.dtype.kind == "f" and not np.isfinite(w).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return
    raise TypeError(f"{name} must be a numpy.ndarray or torch.Tensor, got {type(w).__name__}")


_TORCH_INTEGER_DTYPES = {torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64}


def as_float(w: Weights) -> Weights:
    """Integer arrays become float64 (NumPy) or float32 (torch); floating ones pass unchanged."""
    if isinstance(w, torch.Tensor):
        return w if w.dtype.is_floating_point else w.to(torch.get_default_dtype())
    return w if w.dtype.kind == "f" else w.astype(np.float64)


def to_numpy(w: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float64 NumPy view of the values (detached from autograd)."""
    if isinstance(w, torch.Tensor):
        return w.detach().cpu().numpy().astype(np.float64, copy=False)
    return np.asarray(w, dtype=np.float64)


def check_bits(bits: object, name: str = "bits", maximum: int = 32) -> int:
    """Require an integer bit-width in 1..maximum."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(bits).__name__} {bits!r}")
    if not 1 <= int(bits) <= maximum:
        raise ValueError(f"{name} must be between 1 and {maximum}, got {bits}")
    return int(bits)


def check_real(value: object, name: str) -> float:
    """Require a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_positive(value: object, name: str) -> float:
    """Require a finite real number > 0."""
    value = check_real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def check_sparsity(sparsity: object, name: str = "sparsity") -> float:
    """Require a pruning ratio in [0, 1)."""
    sparsity = check_real(sparsity, name)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {sparsity}")
    return sparsity
