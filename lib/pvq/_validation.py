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
        return w.detach().cpu().to(torch.float64).numpy()
    return np.asarray(w, dtype=np.float64)


def check_module(model: object, name: str = "model") -> torch.nn.Module:
    """Require a ``torch.nn.Module``."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    return model


def check_inputs(inputs: object, name: str = "inputs") -> torch.Tensor:
    """Require a batch for a network: a finite floating-point tensor with n >= 1 rows."""
    if not isinstance(inputs, torch.Tensor) or not inputs.dtype.is_floating_point:
        got = inputs.dtype if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {got}")
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n >= 1, ...), got {tuple(inputs.shape)}")
    if not bool(torch.isfinite(inputs).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return inputs


def call_model(model: torch.nn.Module, inputs: torch.Tensor, name: str = "inputs") -> torch.Tensor:
    """``model(inputs)``; a shape the network cannot take is a ValueError naming ``name``."""
    try:
        return model(inputs)
    except RuntimeError as error:
        raise ValueError(f"{name} of shape {tuple(inputs.shape)} does not fit the model: "
                         f"{error}") from error


def check_int(value: object, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    """Require an integer (Python or NumPy, not a bool) in ``minimum .. maximum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        accepted = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be an integer {accepted}, got {value}")
    return value


def check_bits(bits: object, name: str = "bits", maximum: int = 32) -> int:
    """Require an integer bit-width in 1..maximum."""
    return check_int(bits, name, 1, maximum)


def check_real(value: object, name: str) -> float:
    """Require a finite real number (Python or NumPy, not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    try:
        value = float(value)
    except OverflowError:  # a Python integer beyond the float range
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_real_sequence(values: object, name: str) -> np.ndarray:
    """Require a 1-D sequence of real numbers (NaN and inf are left to the caller)."""
    try:
        array = np.asarray(list(values), dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a sequence of real numbers, got {values!r}") from error
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence, got shape {array.shape}")
    return array


def check_positive(value: object, name: str) -> float:
    """Require a finite real number > 0."""
    value = check_real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def power_of_two_exponent(values: np.ndarray) -> int:
    """The exponent e with ``max|values| / 2^e`` in [0.5, 1) (0 for all zeros).

    Dividing by ``2^e`` (``np.ldexp(values, -e)``) is exact, so squares and sums of the result
    neither overflow nor underflow, and what is computed from it is exactly scale-equivariant.
    """
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    return int(np.frexp(largest)[1]) if largest > 0.0 else 0


def unit_scaled(values: np.ndarray) -> np.ndarray:
    """``values / 2^e`` with max|.| in [0.5, 1) (``power_of_two_exponent``), in float64."""
    values = np.asarray(values, dtype=np.float64)
    return np.ldexp(values, -power_of_two_exponent(values))


def check_fraction(value: object, name: str) -> float:
    """Require a real number in [0, 1]."""
    value = check_real(value, name)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def check_sparsity(sparsity: object, name: str = "sparsity") -> float:
    """Require a pruning ratio in [0, 1)."""
    sparsity = check_real(sparsity, name)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {sparsity}")
    return sparsity
