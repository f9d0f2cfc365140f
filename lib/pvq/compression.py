"""Equal compression and storage: how many bits per weight each format really costs.

The paper compares against an FP16 base: b-bit quantization stores ``b / 16`` of the base, and so
does pruning to sparsity ``1 - b / 16`` *if the positions of the kept weights were free*. They are
not: an unstructured mask costs at least one bit per weight, ``1 / 16 = 6.25 %`` of FP16.

The second half counts bytes exactly, for a given tensor shape: dense FP16, packed b-bit codes
with their FP32 scale, and pruned tensors as a bitmask, as CSR (column indices and row pointers)
or as 2:4 semi-structured sparsity (``encoded_bytes``). ``encode`` builds the stored arrays
themselves as torch tensors and ``saved_payload_bytes`` measures what ``torch.save`` writes for
them, so the accounting is checked against real files.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from pvq._validation import (
    Weights,
    check_bits,
    check_int,
    check_positive,
    check_sparsity,
    check_weights,
    to_numpy,
)
from pvq.prune import pruned_count
from pvq.quantize import grid_limits

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
    return math.ceil(check_int(size, "size") * check_positive(bits_per_weight, "bits_per_weight")
                     / 8)


# --- Exact storage of one weight tensor in each encoding ------------------------------------------
#
# A tensor of shape (rows, ...) is stored as the matrix rows x cols, cols = the rest flattened (a
# convolution's out_channels x in_channels * kh * kw). Each part of an encoding is its own array,
# rounded up to whole bytes. Values are FP16 (``bits=None``) or b-bit integer codes packed back to
# back (``bits=b``), and then one FP32 scale per tensor comes with them.

#: the scale stored with a quantized tensor: one FP32 number per tensor
SCALE_BITS = 32
#: the unsigned integer widths an index may be stored in
INDEX_WIDTHS = (8, 16, 32, 64)
#: how a tensor's kept values and their positions are stored
ENCODINGS = ("dense", "bitmask", "csr", "2:4")
#: 2:4 semi-structured sparsity: 2 of every 4 consecutive weights kept, each with its 2-bit
#: position inside the group (the metadata layout of NVIDIA's sparse tensor cores)
SEMI_STRUCTURED_GROUP, SEMI_STRUCTURED_KEPT, SEMI_STRUCTURED_INDEX_BITS = 4, 2, 2

_UNSIGNED = {8: torch.uint8, 16: torch.uint16, 32: torch.uint32, 64: torch.uint64}


def index_bits(largest: int) -> int:
    """The narrowest unsigned integer width in ``INDEX_WIDTHS`` that holds ``0 .. largest``."""
    largest = check_int(largest, "largest", 0, 2 ** INDEX_WIDTHS[-1] - 1)
    return next(width for width in INDEX_WIDTHS if largest < 2**width)


def _matrix_shape(shape: Sequence[int]) -> tuple[int, int]:
    if not isinstance(shape, (Sequence, torch.Size)) or isinstance(shape, str):
        raise TypeError(f"shape must be a sequence of integers, got {type(shape).__name__}")
    shape = tuple(check_int(n, "each entry of shape", 1) for n in shape)
    if len(shape) < 2:
        raise ValueError(f"shape must have at least 2 positive dimensions, got {shape}")
    return shape[0], math.prod(shape[1:])


def _check_encoding(encoding: object) -> str:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    return encoding


def _check_value_bits(bits: object) -> int:
    """``None`` (FP16 values) or a code width 1..16."""
    return BASE_BITS if bits is None else check_bits(bits, maximum=16)


def encoded_bytes(
    shape: Sequence[int], *, bits: int | None = None, sparsity: float = 0.0,
    encoding: str = "dense",
) -> int:
    """Exact bytes of a weight tensor of ``shape`` (matrix rows x cols, n = rows * cols) with
    ``k = n - round(sparsity * n)`` kept values of ``v`` bits (16 for FP16, b for b-bit codes):

    - ``dense``: every value, ``ceil(n v / 8)`` (pruned weights are stored as zeros);
    - ``bitmask``: ``ceil(n / 8)`` mask bytes + ``ceil(k v / 8)``;
    - ``csr``: ``ceil(k v / 8)`` + k column indices of ``index_bits(cols - 1)`` bits + rows + 1
      row pointers of ``index_bits(k)`` bits;
    - ``2:4``: ``ceil(k v / 8)`` + ``ceil(2 k / 8)`` metadata, with ``sparsity`` 0.5 exactly;

    plus ``SCALE_BITS / 8 = 4`` bytes for the scale when ``bits`` is given.
    """
    rows, cols = _matrix_shape(shape)
    size, value_bits, encoding = rows * cols, _check_value_bits(bits), _check_encoding(encoding)
    kept = size - pruned_count(size, sparsity)
    scale = 0 if bits is None else SCALE_BITS // 8
    values = math.ceil(kept * value_bits / 8)
    if encoding == "dense":
        return math.ceil(size * value_bits / 8) + scale
    if encoding == "bitmask":
        return math.ceil(size / 8) + values + scale
    if encoding == "csr":
        return values + (kept * index_bits(cols - 1) + (rows + 1) * index_bits(kept)) // 8 + scale
    if cols % SEMI_STRUCTURED_GROUP or sparsity != 1 - SEMI_STRUCTURED_KEPT / SEMI_STRUCTURED_GROUP:
        raise ValueError(f"2:4 needs sparsity 0.5 and a multiple of 4 columns, got {sparsity} "
                         f"and {cols}")
    return values + math.ceil(kept * SEMI_STRUCTURED_INDEX_BITS / 8) + scale


def encoded_bits_per_weight(
    shape: Sequence[int], *, bits: int | None = None, sparsity: float = 0.0,
    encoding: str = "dense",
) -> float:
    """``8 * encoded_bytes(...) / n``: every overhead (mask, indices, pointers, scale) counted."""
    rows, cols = _matrix_shape(shape)
    return 8.0 * encoded_bytes(shape, bits=bits, sparsity=sparsity, encoding=encoding) / (
        rows * cols)


def csr_bits_per_weight(sparsity: float, value_bits: int = BASE_BITS,
                        column_bits: int = 16) -> float:
    """Large-matrix CSR cost per weight, row pointers neglected: ``(1 - c)(v + column_bits)``."""
    return (1.0 - check_sparsity(sparsity)) * (check_bits(value_bits, "value_bits")
                                               + check_bits(column_bits, "column_bits", 64))


def sparsity_at_budget(budget_bits: float, value_bits: int = BASE_BITS, *,
                       encoding: str = "bitmask", column_bits: int = 16) -> float:
    """The sparsity at which pruned ``value_bits``-bit values cost ``budget_bits`` per weight:
    bitmask ``1 - (B - 1) / v``, CSR ``1 - B / (v + column_bits)`` (large-matrix costs)."""
    budget_bits = check_positive(budget_bits, "budget_bits")
    value_bits = check_bits(value_bits, "value_bits")
    if encoding == "bitmask":
        sparsity = 1.0 - (budget_bits - 1.0) / value_bits
    elif encoding == "csr":
        sparsity = 1.0 - budget_bits / (value_bits + check_bits(column_bits, "column_bits", 64))
    else:
        raise ValueError(f"encoding must be 'bitmask' or 'csr', got {encoding!r}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"no sparsity in [0, 1) stores {value_bits}-bit values in "
                         f"{budget_bits} bits per weight with a {encoding}")
    return sparsity


# --- The stored arrays themselves, to check the accounting against real bytes --------------------


def pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned integers ``0 .. 2^bits - 1`` packed back to back, least significant bit first,
    into ``ceil(len * bits / 8)`` bytes (uint8)."""
    bits = check_bits(bits, maximum=32)
    values = _integers(values, "values")
    if values.size and (values.min() < 0 or values.max() >= 2**bits):
        raise ValueError(f"values must lie in 0 .. {2**bits - 1} to pack into {bits} bits")
    planes = (values.astype(np.uint64)[:, None] >> np.arange(bits, dtype=np.uint64)) & 1
    return np.packbits(planes.astype(np.uint8).ravel(), bitorder="little")


def unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The inverse of ``pack_bits``: ``count`` unsigned integers of ``bits`` bits (int64)."""
    bits, count = check_bits(bits, maximum=32), check_int(count, "count")
    packed = _integers(packed, "packed")
    if packed.size and (packed.min() < 0 or packed.max() > 255):
        raise ValueError("packed must hold bytes, 0 .. 255")
    if packed.size != math.ceil(count * bits / 8):
        raise ValueError(f"packed must have ceil(count * bits / 8) = {math.ceil(count * bits / 8)}"
                         f" bytes for count={count} values of {bits} bits, got {packed.size}")
    planes = np.unpackbits(packed.astype(np.uint8), count=count * bits,
                           bitorder="little").reshape(count, bits).astype(np.int64)
    return planes @ (np.int64(1) << np.arange(bits, dtype=np.int64))


def _integers(values: object, name: str) -> np.ndarray:
    """``values`` flattened as an int64 array: booleans, integers or integral floats."""
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
    if array.dtype.kind == "f":
        array = array.astype(np.float64)
        if not (np.isfinite(array).all() and (array == np.round(array)).all()):
            raise TypeError(f"{name} must hold integers, got {array.ravel()[:3]}")
        if array.size and np.abs(array).max() >= 2.0**63:
            raise ValueError(f"{name} must lie in the int64 range")
    elif array.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold integers, got {array.dtype} {array.ravel()[:3]}")
    return array.ravel().astype(np.int64)


def encode(
    w_hat: Weights, *, mask: Weights | None = None, bits: int | None = None,
    scale: float | None = None, encoding: str = "dense",
) -> dict[str, torch.Tensor]:
    """The arrays that store the compressed tensor ``w_hat`` in ``encoding``, as torch tensors
    whose bytes add up to ``encoded_bytes`` (``saved_payload_bytes`` measures them).

    ``mask`` (True = kept) selects the stored values (``None``: all, the only choice for
    ``dense``). Values are FP16, or with ``bits`` and ``scale`` the packed codes ``w_hat / scale``
    (which must lie on the b-bit grid) and the FP32 scale. ``csr`` stores column indices and row
    pointers in the narrowest unsigned width (``index_bits``); ``2:4`` a 2-bit position per value.
    """
    check_weights(w_hat, "w_hat")
    rows, cols = _matrix_shape(w_hat.shape)
    encoding = _check_encoding(encoding)
    matrix = to_numpy(w_hat).reshape(rows, cols)
    if mask is None:
        if encoding != "dense":
            raise ValueError(f"the {encoding} encoding needs the mask of kept weights")
        keep = np.ones((rows, cols), dtype=bool)
    else:
        if encoding == "dense":
            raise ValueError("the dense encoding stores every weight: pass mask=None")
        keep = np.asarray(to_numpy(mask), dtype=bool)
        if keep.size != matrix.size:
            raise ValueError(f"mask must have w_hat's {matrix.size} entries, got {keep.size}")
        keep = keep.reshape(rows, cols)
    stored = {"values": _stored_values(matrix[keep], bits, scale)}
    if bits is not None:
        stored["scale"] = torch.tensor(check_positive(scale, "scale"), dtype=torch.float32)
    if encoding == "bitmask":
        stored["mask"] = torch.from_numpy(pack_bits(keep, 1))
    elif encoding == "csr":
        kept = int(keep.sum())
        pointers = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        stored["column_indices"] = _unsigned(np.nonzero(keep)[1], index_bits(cols - 1))
        stored["row_pointers"] = _unsigned(pointers, index_bits(kept))
    elif encoding == "2:4":
        groups = keep.reshape(-1, SEMI_STRUCTURED_GROUP) if cols % SEMI_STRUCTURED_GROUP == 0 \
            else None
        if groups is None or not (groups.sum(axis=1) == SEMI_STRUCTURED_KEPT).all():
            raise ValueError("mask must keep exactly 2 of every 4 consecutive weights of a row")
        positions = np.nonzero(groups)[1]
        stored["metadata"] = torch.from_numpy(pack_bits(positions, SEMI_STRUCTURED_INDEX_BITS))
    return stored


def _stored_values(values: np.ndarray, bits: int | None, scale: float | None) -> torch.Tensor:
    """FP16 values, or the packed offset codes ``round(v / s) + 2^(b-1)``."""
    if bits is None:
        if scale is not None:
            raise ValueError("scale belongs to quantized values: pass bits too")
        return torch.from_numpy(values.astype(np.float16))
    bits = check_bits(bits, maximum=16)
    codes = values / check_positive(scale, "scale")
    lowest, highest = grid_limits(bits)
    rounded = np.round(codes)
    if not (np.allclose(codes, rounded, rtol=0.0, atol=1e-6)
            and (rounded >= lowest).all() and (rounded <= highest).all()):
        raise ValueError(f"w_hat is not on the {bits}-bit grid of scale {scale}")
    return torch.from_numpy(pack_bits(rounded.astype(np.int64) - lowest, bits))


def _unsigned(values: np.ndarray, width: int) -> torch.Tensor:
    return torch.from_numpy(np.asarray(values, dtype=np.int64)).to(_UNSIGNED[width])


def decode(stored: Mapping[str, torch.Tensor], shape: Sequence[int], *, bits: int | None = None,
           encoding: str = "dense") -> np.ndarray:
    """The float64 tensor of ``shape`` that ``encode`` stored (FP16 values come back rounded)."""
    rows, cols = _matrix_shape(shape)
    encoding = _check_encoding(encoding)
    if not isinstance(stored, Mapping):
        raise TypeError(f"stored must be a mapping of names to tensors, got {type(stored).__name__}")
    if encoding == "dense":
        keep = np.ones(rows * cols, dtype=bool)
    elif encoding == "bitmask":
        keep = _unpack_stored(stored, "mask", 1, rows * cols).astype(bool)
    elif encoding == "csr":
        pointers = _stored_array(stored, "row_pointers").astype(np.int64)
        columns = _stored_array(stored, "column_indices").astype(np.int64)
        if (pointers.size != rows + 1 or pointers[0] != 0 or pointers[-1] != columns.size
                or (np.diff(pointers) < 0).any() or ((columns < 0) | (columns >= cols)).any()):
            raise ValueError(f"stored['row_pointers'] and stored['column_indices'] are not a CSR "
                             f"structure of a {rows} x {cols} matrix")
        keep = np.zeros((rows, cols), dtype=bool)
        keep[np.repeat(np.arange(rows), np.diff(pointers)), columns] = True
    else:
        if cols % SEMI_STRUCTURED_GROUP:
            raise ValueError(f"2:4 needs a multiple of 4 columns, got shape {tuple(shape)}")
        count = rows * cols // SEMI_STRUCTURED_GROUP * SEMI_STRUCTURED_KEPT
        positions = _unpack_stored(stored, "metadata", SEMI_STRUCTURED_INDEX_BITS, count)
        keep = np.zeros((rows * cols // SEMI_STRUCTURED_GROUP, SEMI_STRUCTURED_GROUP), dtype=bool)
        keep[np.repeat(np.arange(keep.shape[0]), SEMI_STRUCTURED_KEPT), positions] = True
    keep = keep.ravel()
    kept = int(keep.sum())
    if bits is None:
        values = _stored_array(stored, "values").astype(np.float64)
        if values.size != kept:
            raise ValueError(f"stored['values'] must hold the {kept} kept values, got "
                             f"{values.size}")
    else:
        lowest = grid_limits(check_bits(bits, maximum=16))[0]
        scale = _stored_array(stored, "scale")
        if scale.size != 1:
            raise ValueError(f"stored['scale'] must hold one number, got {scale.size}")
        codes = _unpack_stored(stored, "values", bits, kept) + lowest
        values = codes * check_positive(float(scale[0]), "stored['scale']")
    matrix = np.zeros(rows * cols)
    matrix[keep] = values
    return matrix.reshape(tuple(shape))


def _unpack_stored(stored: Mapping[str, torch.Tensor], name: str, bits: int,
                   count: int) -> np.ndarray:
    """``unpack_bits`` of ``stored[name]``, its errors naming the stored array."""
    try:
        return unpack_bits(_stored_array(stored, name), bits, count)
    except (TypeError, ValueError) as error:
        raise type(error)(f"stored[{name!r}]: {error}") from error


def _stored_array(stored: Mapping[str, torch.Tensor], name: str) -> np.ndarray:
    """``stored[name]`` as a flat NumPy array (unsigned widths as int64), or a clear error."""
    if name not in stored:
        raise ValueError(f"stored has no {name!r} array (it has {sorted(map(str, stored))})")
    tensor = stored[name]
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"stored[{name!r}] must be a torch.Tensor, got {type(tensor).__name__}")
    tensor = tensor.detach().cpu().ravel()
    return (tensor if tensor.dtype.is_floating_point or tensor.dtype == torch.uint8
            else tensor.to(torch.int64)).numpy()


def saved_payload_bytes(tensors: Mapping[str, torch.Tensor]) -> int:
    """Bytes of tensor data in the file ``torch.save(tensors)`` writes: the sizes of the archive's
    data records (one per tensor storage), without the pickle and zip bookkeeping."""
    buffer = io.BytesIO()
    torch.save({name: tensor.clone() for name, tensor in tensors.items()}, buffer)
    with zipfile.ZipFile(buffer) as archive:
        return sum(info.file_size for info in archive.infolist()
                   if re.fullmatch(r"[^/]+/data/\d+", info.filename))


# --- Entropy coding: the Shannon bound, and a real coder for comparison --------------------------
#
# Fixed-length codes spend b bits on every code, however unequal their frequencies. An entropy
# coder (Huffman, arithmetic coding, as in Deep Compression) spends about ``-log2 p`` bits on a
# symbol of frequency p: on average the empirical entropy ``H = -sum p log2 p``, which an
# arithmetic coder approaches on long sequences (Shannon's source coding theorem). These bounds are
# bits, not bytes of a file; ``lzma_payload_bytes`` measures what a real coder writes.


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical Shannon entropy of ``symbols`` (any hashable values), bits per symbol:
    ``-sum_v p_v log2 p_v`` with ``p_v`` the fraction of entries equal to v
    (``scipy.stats.entropy`` of the counts)."""
    from scipy.stats import entropy

    values = np.asarray(symbols).ravel()
    if values.size == 0:
        raise ValueError("symbols must not be empty")
    return float(entropy(np.unique(values, return_counts=True)[1], base=2))


def entropy_coded_bits_per_weight(codes: Weights, mask: Weights | None = None, *,
                                  scale_bits: int = SCALE_BITS) -> float:
    """Shannon bound per weight of integer ``codes`` (a tensor's grid integers) with an
    entropy-coded keep-``mask`` (True = kept; ``None``: all kept), plus one scale:

    ``H(d) + d * H(codes of kept weights) + scale_bits / n``,

    with d the fraction kept and ``H(d) = -d log2 d - (1-d) log2 (1-d)`` the mask's entropy
    (``H(0.25) = 0.81`` bit per weight at 75 % sparsity, against 1 for a bitmask).
    """
    check_weights(codes, "codes")
    values = to_numpy(codes).ravel()
    keep = np.ones(values.size, dtype=bool) if mask is None else \
        np.asarray(to_numpy(mask), dtype=bool).ravel()
    if keep.size != values.size:
        raise ValueError(f"mask must have codes' {values.size} entries, got {keep.size}")
    scale_bits = check_int(scale_bits, "scale_bits")
    density = float(keep.mean())
    kept = entropy_bits(values[keep]) if keep.any() else 0.0
    return entropy_bits(keep) + density * kept + scale_bits / values.size


def lzma_payload_bytes(tensors: Mapping[str, torch.Tensor], preset: int = 6) -> int:
    """Bytes that the standard library's LZMA coder (``lzma.compress``, an LZ77 + range coder)
    writes for the raw bytes of each array, summed: a measured size, stream headers included."""
    import lzma

    return sum(len(lzma.compress(tensor.contiguous().numpy().tobytes(), preset=preset))
               for tensor in tensors.values())
