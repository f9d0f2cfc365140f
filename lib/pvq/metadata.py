"""Bits per weight that a compressed layer stores besides its values: scales and masks.

The paper compares b-bit quantization with pruning that keeps ``k = n b / 16`` FP16 values and
charges neither method its metadata. Counted, each side costs more than its values:

- quantization stores one 16-bit scale per group of weights. ``scale_bits_per_weight``:
  ``16 * (number of scales) / (number of weights)`` for a layer ``W`` (outputs x inputs) with
  one scale per tensor, per input slice of ``slice_width`` inputs across all outputs (the
  authors' code), per output channel, or per group of ``g`` consecutive inputs of one output
  channel (``16 / g``);
- pruning stores where its kept values are. ``mask_bits_per_weight`` at density ``d = k / n``:
  nothing (the paper's rule), a bitmask (1 bit, ``pvq.compression.bitmask_bits_per_weight``),
  an entropy-coded mask (the binary entropy ``H(d)`` bits, its information content), or CSR
  column indices (``d`` times the index width, ``pvq.compression.index_bits``).

``pruning_k`` turns a budget in bits per weight into the number of non-zeros pruning may keep
(never more bits than the budget).
"""

from __future__ import annotations

import math
import numbers

from pvq._validation import check_int
from pvq.compression import BASE_BITS, index_bits

#: bits of one stored scale (an FP16 number, as the dense weights it replaces)
SCALE_BITS = BASE_BITS
#: the scale granularities by name; an integer g means groups of g consecutive inputs
GRANULARITIES = ("tensor", "input slice", "output channel")
#: the paper's granularity: one scale per input slice across all output channels
PAPER_GRANULARITY = "input slice"
#: how pruning's positions are stored ("none": not charged, the paper's rule)
MASKS = ("none", "bitmask", "entropy", "csr")

__all__ = ["GRANULARITIES", "MASKS", "PAPER_GRANULARITY", "SCALE_BITS", "binary_entropy",
           "check_granularity", "check_mask", "granularity_label", "mask_bits_per_weight",
           "pruning_bits_per_weight", "pruning_k", "scale_bits_per_weight"]


def _positive_integer(value: object, name: str) -> int:
    return check_int(value, name, minimum=1)


def check_granularity(granularity: object) -> str | int:
    """One of ``GRANULARITIES``, or a positive integer g (groups of g inputs)."""
    if isinstance(granularity, str):
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {list(GRANULARITIES)} or a positive "
                             f"integer group size, got {granularity!r}")
        return granularity
    try:
        return _positive_integer(granularity, "granularity")
    except TypeError:
        raise TypeError(f"granularity must be one of {list(GRANULARITIES)} or a positive "
                        f"integer group size, got {granularity!r}") from None


def check_mask(mask: object) -> str:
    """One of ``MASKS``."""
    if not isinstance(mask, str) or mask not in MASKS:
        raise ValueError(f"mask must be one of {list(MASKS)}, got {mask!r}")
    return mask


def granularity_label(granularity: str | int) -> str:
    """``"group of 8"`` for 8, the name itself otherwise."""
    granularity = check_granularity(granularity)
    return f"group of {granularity}" if isinstance(granularity, int) else granularity


def scale_bits_per_weight(outputs: int, inputs: int, granularity: str | int,
                          slice_width: int = 32) -> float:
    """``16 * scales / (outputs * inputs)``: one scale per tensor, per input slice of
    ``slice_width`` inputs (``ceil(inputs / slice_width)`` scales), per output channel
    (``outputs``), or per group of g inputs in each output channel
    (``outputs * ceil(inputs / g)``, ``16 / g`` when g divides the inputs)."""
    outputs, inputs = _positive_integer(outputs, "outputs"), _positive_integer(inputs, "inputs")
    slice_width = _positive_integer(slice_width, "slice_width")
    granularity = check_granularity(granularity)
    if granularity == "tensor":
        scales = 1
    elif granularity == "input slice":
        scales = math.ceil(inputs / slice_width)
    elif granularity == "output channel":
        scales = outputs
    else:
        scales = outputs * math.ceil(inputs / granularity)
    return SCALE_BITS * scales / (outputs * inputs)


def binary_entropy(density: float) -> float:
    """``H(d) = -d log2 d - (1 - d) log2 (1 - d)`` bits (0 at d = 0 or 1)."""
    if isinstance(density, bool) or not isinstance(density, numbers.Real) or \
            not 0.0 <= float(density) <= 1.0:
        raise ValueError(f"density must be a number in [0, 1], got {density!r}")
    d = float(density)
    return 0.0 if d in (0.0, 1.0) else -d * math.log2(d) - (1.0 - d) * math.log2(1.0 - d)


def mask_bits_per_weight(density: float, mask: str, columns: int = 2**16) -> float:
    """Bits per weight that locate the kept values at ``density = k / n``: ``"none"`` 0,
    ``"bitmask"`` 1, ``"entropy"`` ``H(d)``, ``"csr"`` ``d * index_bits(columns - 1)`` (one
    column index per kept value, row pointers neglected, as ``pvq.compression``)."""
    entropy = binary_entropy(density)  # checks density
    mask = check_mask(mask)
    if mask == "none":
        return 0.0
    if mask == "bitmask":
        return 1.0
    if mask == "entropy":
        return entropy
    return float(density) * index_bits(_positive_integer(columns, "columns") - 1)


def pruning_bits_per_weight(k: int, n: int, mask: str, columns: int = 2**16) -> float:
    """``16 k / n + mask_bits_per_weight(k / n)``: k FP16 values of n weights and their mask."""
    n = _positive_integer(n, "n")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= int(k) <= n:
        raise ValueError(f"k must be an integer in 0..n = {n}, got {k!r}")
    return BASE_BITS * int(k) / n + mask_bits_per_weight(int(k) / n, mask, columns)


def pruning_k(n: int, budget_bits: float, mask: str = "none", columns: int = 2**16) -> int:
    """The most non-zeros k in 0..n whose ``pruning_bits_per_weight`` fits in ``budget_bits``
    per weight (1e-9 bit of slack for rounding; 0 when none fits): with ``mask="none"`` the
    paper's model ``sum(m) <= n b / 16``, i.e. ``floor(n b / 16)``. Pruning never gets more
    bits than the budget."""
    n = _positive_integer(n, "n")
    if isinstance(budget_bits, bool) or not isinstance(budget_bits, numbers.Real) or \
            not 0.0 < float(budget_bits) < math.inf:
        raise ValueError(f"budget_bits must be a positive finite number, got {budget_bits!r}")
    fits = [k for k in range(1, n + 1)
            if pruning_bits_per_weight(k, n, mask, columns) <= float(budget_bits) + 1e-9]
    return max(fits, default=0)
