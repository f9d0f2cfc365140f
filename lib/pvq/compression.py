"""Equal compression and storage: how many bits per weight each format really costs.

The paper compares against an FP16 base: b-bit quantization stores ``b / 16`` of the base, and so
does pruning to sparsity ``1 - b / 16`` *if the positions of the kept weights were free*. They are
not: an unstructured mask costs at least one bit per weight, ``1 / 16 = 6.25 %`` of FP16.
"""

from __future__ import annotations

import math

from pvq._validation import check_bits, check_positive, check_sparsity

BASE_BITS = 16


def equivalent_sparsity(bits: int, base_bits: int = BASE_BITS) -> float:
    """Sparsity with the same number of stored values as b-bit weights: ``1 - b / base_bits``."""
    bits = check_bits(bits)
    base_bits = check_bits(base_bits, "base_bits")
    if bits >= base_bits:
        raise ValueError(f"bits must be below base_bits={base_bits}, got {bits}")
    return 1.0 - bits / base_bits


def equivalent_bits(sparsity: float, base_bits: int = BASE_BITS) -> float:
    """Bits per weight that pruning to ``sparsity`` keeps, mask not counted: ``(1 - c) * base``."""
    return (1.0 - check_sparsity(sparsity)) * check_bits(base_bits, "base_bits")


def dense_bits_per_weight(bits: int) -> float:
    """A dense b-bit tensor stores b bits per weight (one scale per tensor is negligible)."""
    return float(check_bits(bits))


def bitmask_bits_per_weight(sparsity: float, value_bits: int = BASE_BITS) -> float:
    """Pruned tensor stored as kept values plus a one-bit mask: ``(1 - c) * value_bits + 1``."""
    return equivalent_bits(sparsity, value_bits) + 1.0


def mask_overhead(base_bits: int = BASE_BITS) -> float:
    """The bitmask's cost as a fraction of the dense base format: ``1 / base_bits``."""
    return 1.0 / check_bits(base_bits, "base_bits")


def storage_bytes(size: int, bits_per_weight: float) -> int:
    """Bytes to hold ``size`` weights at ``bits_per_weight``, rounded up to whole bytes."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be a non-negative integer, got {size!r}")
    return math.ceil(size * check_positive(bits_per_weight, "bits_per_weight") / 8)
