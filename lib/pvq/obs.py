"""One Optimal Brain Surgeon core for GPTQ and SparseGPT, and their naive counterparts.

A linear layer ``Y = X W^T`` (W: outputs x inputs, X: samples x inputs) is compressed row by row
against the layer-wise loss ``||X (W_hat - W)^T||^2``, whose Hessian in each row is the same

    H = 2 X^T X  (``hessian``),  damped by ``lambda = damping * mean(diag H)`` (``DAMPING``).

Optimal Brain Surgeon (Hassibi & Stork 1993): fixing weight ``j`` of a row to a value ``q``
costs ``(w_j - q)^2 / [H^-1]_jj`` of loss at best, and the remaining weights absorb it with

    delta = -(w_j - q) / [H^-1]_jj * H^-1[:, j]   (``obs_update``).

Optimal Brain Compression / GPTQ (Frantar et al. 2022) fix the columns in a fixed order
``0 .. n-1``; then every step needs only the row ``j`` of the upper Cholesky factor ``U`` of
``H^-1`` (``H^-1 = U^T U``): with ``d = U_jj`` the error ``e = (w_j - q) / d`` moves the later
columns by ``-e U[j, j:]`` (``obs_sweep``). What differs is ``q``:

- GPTQ (``gptq``): ``q`` = the column rounded to nearest on the b-bit grid of ``pvq.quantize``
  with fixed scales (one per output channel or per group of inputs, chosen before the sweep);
- SparseGPT (Frantar & Alistarh 2023, ``sparsegpt``): ``q = 0`` for the weights a mask removes,
  ``q = w`` otherwise; the mask is chosen block by block (``BLOCK`` columns) from the OBS
  saliency ``w^2 / d^2`` of the current weights, unstructured or N:M (2:4);
- both at once, in two orders. Prune then quantize (``sparsegpt(..., bits=b)``, SparseGPT's
  joint mode): in each block the mask is chosen from the current, unrounded weights, then
  ``q = 0`` for the removed and ``q`` = the rounded column for the kept ones, all in one sweep.
  Quantize then prune (``quantize_then_prune``): GPTQ first gives ``Q``; a second sweep, from
  ``Q`` against the same ``H``, removes the weights of least saliency ``q^2 / U_jj^2`` and
  re-rounds the kept ones, moved by the feedback, on ``Q``'s own grid (the same scales). Both
  store the same: b-bit codes of the kept weights, the mask, one scale per output channel.

The naive counterparts change each weight on its own, without feedback: round to nearest
(``round_to_nearest``, ``pvq.quantize``) and magnitude pruning (``magnitude``, ``pvq.prune``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch

from pvq._validation import check_bits, check_int, check_real, check_sparsity, check_weights
from pvq.metadata import check_granularity
from pvq.prune import magnitude_mask, semi_structured_mask
from pvq.quantize import grid_limits

#: damping of H as a fraction of its mean diagonal (GPTQ's and SparseGPT's ``percdamp``)
DAMPING = 0.01
#: clipping ranges that ``row_scales`` tries per group (the authors' search uses 100; the
#: best of 32 is within a few hundredths of a dB of it, and the search costs a third)
SCALE_CANDIDATES = 32
#: columns per block: SparseGPT chooses its mask for this many columns at a time
BLOCK = 128
#: columns whose errors reach the later columns together (GPTQ's lazy batch updates)
LAZY_BLOCK = 32

__all__ = ["BLOCK", "Compression", "DAMPING", "gptq", "hessian", "inverse_hessian_factor", "layer_output_snr_db",
           "magnitude", "obs_compress", "obs_saliency", "obs_sweep", "obs_update",
           "quantize_then_prune", "round_to_nearest", "row_scales", "sparsegpt",
           "SCALE_CANDIDATES"]


def _matrix(value: object, name: str) -> torch.Tensor:
    check_weights(value, name)
    tensor = torch.as_tensor(value).detach().cpu().to(torch.float64)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(tensor.shape)}")
    return tensor


def _layer(W: object, H: object) -> tuple[torch.Tensor, torch.Tensor]:
    W, H = _matrix(W, "W"), _matrix(H, "H")
    if H.shape != (W.shape[1], W.shape[1]):
        raise ValueError(f"H must be inputs x inputs = {W.shape[1]} x {W.shape[1]} for W of shape "
                         f"{tuple(W.shape)}, got {tuple(H.shape)}")
    if not torch.allclose(H, H.T, rtol=1e-6, atol=1e-12 * float(H.abs().max())):
        raise ValueError("H must be symmetric (2 X^T X)")
    return W, H


def hessian(X: object) -> torch.Tensor:
    """``H = 2 X^T X`` (float64) of the inputs ``X`` (samples x inputs) of a linear layer."""
    X = _matrix(X, "X")
    return 2.0 * X.T @ X


def inverse_hessian_factor(H: object, damping: float = DAMPING) -> torch.Tensor:
    """The upper Cholesky factor ``U`` of ``(H + lambda I)^-1 = U^T U``, ``lambda = damping *
    mean(diag H)``. Inputs that never fire (``H_jj = 0``) get ``H_jj = 1`` first, as in GPTQ."""
    H = _matrix(H, "H").clone()
    if H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be square, got shape {tuple(H.shape)}")
    damping = check_real(damping, "damping")
    if damping < 0:
        raise ValueError(f"damping must be >= 0, got {damping}")
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1.0
    H += damping * float(torch.diagonal(H).mean()) * torch.eye(H.shape[0], dtype=H.dtype)
    lower, info = torch.linalg.cholesky_ex(H)
    if int(info) != 0:
        raise ValueError("H + damping * mean(diag H) I is not positive definite: raise damping")
    return torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)


def obs_update(w: np.ndarray, H_inv: np.ndarray, j: int, q: float = 0.0) -> np.ndarray:
    """One OBS step on a row ``w``: set ``w_j`` to ``q`` and move the others optimally,
    ``w - (w_j - q) / [H^-1]_jj * H^-1[:, j]`` (entry j becomes exactly q)."""
    w, H_inv = np.asarray(w, dtype=np.float64), np.asarray(H_inv, dtype=np.float64)
    if w.ndim != 1 or H_inv.shape != (w.size, w.size):
        raise ValueError(f"w must be 1-D and H_inv {w.size} x {w.size}, got shapes {w.shape} "
                         f"and {H_inv.shape}")
    j = check_int(j, "j", 0, w.size - 1)
    updated = w - (w[j] - check_real(q, "q")) / H_inv[j, j] * H_inv[:, j]
    updated[j] = q
    return updated


def obs_saliency(w: np.ndarray, H_inv: np.ndarray) -> np.ndarray:
    """The loss of removing each weight alone, with the others re-fitted: ``w_j^2 / [H^-1]_jj``
    (half the increase of ``(w_hat - w)^T H (w_hat - w)``, with ``H = 2 X^T X``)."""
    w, H_inv = np.asarray(w, dtype=np.float64), np.asarray(H_inv, dtype=np.float64)
    if w.ndim != 1 or H_inv.shape != (w.size, w.size):
        raise ValueError(f"w must be 1-D and H_inv {w.size} x {w.size}, got shapes {w.shape} "
                         f"and {H_inv.shape}")
    return w**2 / np.diagonal(H_inv)


Rounder = Callable[[int, np.ndarray], np.ndarray]
MaskChooser = Callable[[np.ndarray, np.ndarray], np.ndarray]


def obs_sweep(W: torch.Tensor, U: torch.Tensor, rounder: Rounder | None = None,
              choose_mask: MaskChooser | None = None, block: int = BLOCK,
              lazy: int = LAZY_BLOCK) -> torch.Tensor:
    """The OBC/GPTQ column sweep (module docstring). ``rounder(j, column)`` gives the value of
    column j (identity if None); ``choose_mask(W_block, U_block)`` the keep-mask of each block
    of ``block`` columns from their current weights (all kept if None). Lazy updates as in
    GPTQ: the errors of ``lazy`` columns reach the later columns in one matrix product, the
    same arithmetic reordered. Runs in NumPy float64 (a column step is a few small operations:
    NumPy's overhead per call is the smaller)."""
    # columns as rows (transposed, contiguous): every step reads and updates whole rows
    Wt, U = np.ascontiguousarray(W.numpy().T), U.numpy()
    result = np.zeros_like(Wt)
    columns = Wt.shape[0]
    keep = None
    for start in range(0, columns, lazy):
        stop = min(start + lazy, columns)
        if choose_mask is not None and start % block == 0:
            end = min(start + block, columns)
            keep = np.asarray(choose_mask(Wt[start:end].T, U[start:end, start:end])).T
        part, U_part = Wt[start:stop].copy(), U[start:stop, start:stop]
        errors = np.zeros_like(part)
        for i in range(stop - start):
            column = part[i]
            q = column if rounder is None else rounder(start + i, column)
            if keep is not None:
                q = np.where(keep[(start + i) % block], q, 0.0)
            result[start + i] = q
            errors[i] = (column - q) / U_part[i, i]
            part[i:] -= np.outer(U_part[i, i:], errors[i])
        Wt[stop:] -= U[start:stop, stop:].T @ errors
    return torch.from_numpy(np.ascontiguousarray(result.T))


def row_scales(W: object, bits: int, granularity: str | int = "output channel",
               candidates: int = SCALE_CANDIDATES) -> torch.Tensor:
    """Scales of shape ``W.shape``, one per output channel (``"output channel"``), per group of
    g consecutive inputs in a channel (an integer g) or per tensor (``"tensor"``), each repeated
    over the weights it covers. Each is the best of the clipping ranges ``k max|w| / K``
    (k = 1..K, K = ``candidates``; scale ``range / (2^(b-1) - 1)``) for the squared rounding
    error of its own weights, the authors' search (``pvq.quantize.paper_search_scale``) run on
    all groups at once."""
    W = _matrix(W, "W")
    bits = check_bits(bits, maximum=16)
    candidates = check_int(candidates, "candidates", 1, 10_000)
    granularity = check_granularity(granularity)
    if granularity == "input slice":
        raise ValueError("granularity 'input slice' is not one scale per weight group of a row; "
                         "use 'tensor', 'output channel' or an integer group size")
    width = {"tensor": W.numel(), "output channel": W.shape[1]}.get(granularity, granularity)
    if W.shape[1] % width and granularity != "tensor":
        raise ValueError(f"the group size must divide the inputs {W.shape[1]}, got {width}")
    groups = W.reshape(-1, width).float()  # the search in float32: half the memory traffic
    lowest, highest = grid_limits(bits)
    largest = groups.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
    best_scale, best_error = largest / max(highest, 1), torch.full_like(largest, math.inf)
    for k in range(1, candidates + 1):
        scale = largest * k / candidates / max(highest, 1)
        # s clip(round(w / s)) - w, squared and summed, in place (the arithmetic of pvq.quantize)
        error = torch.div(groups, scale[:, None]).round_().clamp_(lowest, highest).mul_(
            scale[:, None]).sub_(groups).square_().sum(dim=1)
        better = error < best_error
        best_scale, best_error = torch.where(better, scale, best_scale), torch.minimum(error,
                                                                                      best_error)
    return best_scale.double()[:, None].expand(-1, width).reshape(W.shape).clone()


class Compression(NamedTuple):
    """One configuration of the OBS sweep: round to ``bits`` (None: keep values), remove a
    ``sparsity`` fraction or the ``n_m`` = (kept, group) pattern (both None: remove nothing).
    With both, the order: prune then quantize in one sweep (default), or ``quantize_first``:
    GPTQ at ``bits``, then the removal sweep from the quantized weights on their grid."""

    bits: int | None = None
    sparsity: float | None = None
    n_m: tuple[int, int] | None = None
    quantize_first: bool = False


def _check_compression(config: object, block: int) -> Compression:
    if not isinstance(config, Compression):
        raise TypeError(f"configs must hold pvq.obs.Compression tuples, got {config!r}")
    bits = None if config.bits is None else check_bits(config.bits, maximum=16)
    if config.sparsity is not None or config.n_m is not None:
        _sparsity_choice(config.sparsity, config.n_m)
    if config.n_m is not None and block % config.n_m[1]:
        raise ValueError(f"block must be a multiple of the group n_m[1] = {config.n_m[1]}, "
                         f"got {block}")
    if not isinstance(config.quantize_first, bool):
        raise TypeError(f"quantize_first must be a bool, got {config.quantize_first!r}")
    if config.quantize_first and (bits is None or (config.sparsity, config.n_m) == (None, None)):
        raise ValueError("quantize_first needs bits and one of sparsity and n_m, got "
                         f"{config!r}")
    return Compression(bits, config.sparsity, config.n_m, config.quantize_first)


def _block_mask(config: Compression, W_block: np.ndarray, U_block: np.ndarray) -> np.ndarray:
    """SparseGPT's keep-mask of a block: the smallest saliencies ``w^2 / U_jj^2`` go (over the
    whole block, or within each run of the N:M pattern)."""
    saliency = W_block**2 / np.diagonal(U_block)[None, :] ** 2
    if config.n_m is not None:
        return semi_structured_mask(saliency, *config.n_m)
    if config.sparsity is not None:
        return magnitude_mask(saliency, config.sparsity)
    return np.ones(W_block.shape, dtype=bool)


def obs_compress(W: object, H: object, configs: Sequence[Compression],
                 granularity: str | int = "output channel", *, damping: float = DAMPING,
                 block: int = BLOCK, scales: Mapping[int, torch.Tensor] | None = None
                 ) -> list[torch.Tensor]:
    """Every configuration of ``configs`` on the layer ``W`` in one sweep (rows are
    independent, so the copies of ``W`` share the factor of ``H^-1`` and the Python loop);
    the ``quantize_first`` ones in a second sweep from their GPTQ result (shared with a plain
    ``Compression(bits)`` of ``configs`` if there is one). ``scales``: the ``row_scales`` of
    each bit-width, if already computed."""
    W, H = _layer(W, H)
    block = check_int(block, "block", 1)
    if isinstance(configs, Compression) or not isinstance(configs, Sequence) or not configs:
        raise TypeError(f"configs must be a non-empty sequence of Compression, got {configs!r}")
    configs = [_check_compression(config, block) for config in configs]
    U = inverse_hessian_factor(H, damping)
    W = torch.where(torch.diagonal(H)[None, :] == 0, torch.zeros_like(W), W)
    scales = dict(scales or {})
    for bits in {config.bits for config in configs} - {None} - set(scales):
        scales[bits] = row_scales(W, bits, granularity)
    first = [c for c in configs if not c.quantize_first]
    first += [c for c in dict.fromkeys(Compression(c.bits) for c in configs if c.quantize_first)
              if c not in first]
    swept = dict(zip(first, _sweep(W.repeat(len(first), 1), U, first, scales, block)))
    later = [c for c in configs if c.quantize_first]
    if later:
        start = torch.cat([swept[Compression(c.bits)] for c in later])
        swept.update(zip(later, _sweep(start, U, [c._replace(quantize_first=False) for c in later],
                                       scales, block)))
    return [swept[c] for c in configs]


def _sweep(stacked: torch.Tensor, U: torch.Tensor, configs: list[Compression],
           scales: Mapping[int, torch.Tensor], block: int) -> list[torch.Tensor]:
    """``obs_sweep`` of ``stacked`` (one copy of the rows per configuration), each copy rounded
    on its own grid and masked by its own rule."""
    rows = stacked.shape[0] // len(configs)
    no_grid = np.full((stacked.shape[1], rows), np.inf)
    # row j: the grid steps of column j in every configuration's rows
    step = np.concatenate([no_grid if c.bits is None else scales[c.bits].numpy().T
                           for c in configs], axis=1)
    limits = [grid_limits(c.bits) if c.bits is not None else (-np.inf, np.inf) for c in configs]
    lowest = np.repeat([low for low, _ in limits], rows)
    highest = np.repeat([high for _, high in limits], rows)
    rounded = np.repeat([c.bits is not None for c in configs], rows)

    def rounder(j: int, column: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            grid = step[j] * np.clip(np.round(column / step[j]), lowest, highest)
        return np.where(rounded, grid, column)

    def choose_mask(W_block: np.ndarray, U_block: np.ndarray) -> np.ndarray:
        return np.concatenate([_block_mask(c, W_block[i * rows : (i + 1) * rows], U_block)
                               for i, c in enumerate(configs)])

    return list(obs_sweep(stacked, U, rounder, choose_mask, block,
                          math.gcd(block, LAZY_BLOCK)).split(rows))


def round_to_nearest(W: object, bits: int, granularity: str | int = "output channel", *,
                     scales: torch.Tensor | None = None) -> torch.Tensor:
    """Each weight rounded on its own: ``s * clip(round(w / s))`` with ``row_scales`` (or the
    ``scales`` given, of ``W``'s shape)."""
    W = _matrix(W, "W")
    scales = row_scales(W, bits, granularity) if scales is None else scales
    lowest, highest = grid_limits(bits)
    return scales * torch.clamp(torch.round(W / scales), lowest, highest)


def magnitude(W: object, sparsity: float | None = None, *, n_m: tuple[int, int] | None = None
              ) -> torch.Tensor:
    """Magnitude pruning of the whole layer (``pvq.prune.magnitude_mask``: exactly
    ``round(sparsity * W.size)`` zeros) or N:M along the inputs (``n_m=(2, 4)``)."""
    W = _matrix(W, "W")
    keep = _sparsity_choice(sparsity, n_m)
    mask = magnitude_mask(W, keep) if n_m is None else semi_structured_mask(W, *n_m)
    return torch.where(mask, W, torch.zeros_like(W))


def _sparsity_choice(sparsity: object, n_m: object) -> float | None:
    if (sparsity is None) == (n_m is None):
        raise ValueError("give exactly one of sparsity and n_m")
    if n_m is not None:
        if not (isinstance(n_m, tuple) and len(n_m) == 2):
            raise TypeError(f"n_m must be a tuple (kept, group) such as (2, 4), got {n_m!r}")
        kept, group = check_int(n_m[0], "n_m[0]", 1), check_int(n_m[1], "n_m[1]", 1)
        if kept > group:
            raise ValueError(f"n_m must keep at most its group, got {n_m!r}")
        return None
    return check_sparsity(sparsity)


def gptq(W: object, H: object, bits: int, granularity: str | int = "output channel", *,
         damping: float = DAMPING, block: int = BLOCK) -> torch.Tensor:
    """GPTQ: round column by column on the grid of ``row_scales`` (scales fixed from ``W``
    before the sweep), each rounding error fed back to the later columns through ``H^-1``."""
    return obs_compress(W, H, [Compression(bits=check_bits(bits, maximum=16))], granularity,
                        damping=damping, block=block)[0]


def sparsegpt(W: object, H: object, sparsity: float | None = None, *,
              n_m: tuple[int, int] | None = None, bits: int | None = None,
              granularity: str | int = "output channel", damping: float = DAMPING,
              block: int = BLOCK) -> torch.Tensor:
    """SparseGPT: per block of ``block`` columns, remove the ``sparsity`` fraction of weights
    with the smallest OBS saliency ``w^2 / U_jj^2`` (or the N:M pattern ``n_m``), then sweep
    the columns, each removal's error fed back through ``H^-1``. With ``bits``, the kept
    weights are also rounded (GPTQ on what remains; scales from the dense ``W``)."""
    _sparsity_choice(sparsity, n_m)
    return obs_compress(W, H, [Compression(bits, sparsity, n_m)], granularity, damping=damping,
                        block=block)[0]


def quantize_then_prune(W: object, H: object, bits: int, sparsity: float | None = None, *,
                        n_m: tuple[int, int] | None = None,
                        granularity: str | int = "output channel", damping: float = DAMPING,
                        block: int = BLOCK) -> torch.Tensor:
    """The other order of ``sparsegpt(..., bits=b)``: ``Q = gptq(W, H, bits)``, then SparseGPT
    on ``Q`` (the loss ``||X (W_hat - Q)^T||^2``, the same ``H``): per block the weights of
    least saliency ``w^2 / U_jj^2`` of the current weights go, the others absorb the removals
    and are rounded again on ``Q``'s grid (the scales of ``W``), so the survivors stay b-bit
    codes. Exactly the ``sparsity`` fraction (or the ``n_m`` pattern) is removed;
    a kept weight may still round to the code 0."""
    _sparsity_choice(sparsity, n_m)
    return obs_compress(W, H, [Compression(check_bits(bits, maximum=16), sparsity, n_m, True)],
                        granularity, damping=damping, block=block)[0]


def layer_output_snr_db(W: object, W_hat: object, X: object) -> float:
    """``10 log10(||X W^T||^2 / ||X (W_hat - W)^T||^2)``: the layer's output SNR (bias aside)."""
    W, W_hat, X = _matrix(W, "W"), _matrix(W_hat, "W_hat"), _matrix(X, "X")
    if W_hat.shape != W.shape or X.shape[1] != W.shape[1]:
        raise ValueError(f"W_hat must have W's shape {tuple(W.shape)} and X {W.shape[1]} "
                         f"columns, got {tuple(W_hat.shape)} and {tuple(X.shape)}")
    noise = float(((X @ (W_hat - W).T) ** 2).sum())
    signal = float(((X @ W.T) ** 2).sum())
    return math.inf if noise == 0 else 10.0 * math.log10(signal / noise)
