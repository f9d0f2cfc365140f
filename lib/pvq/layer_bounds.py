"""Per-layer SNR ranges: bracket quantization and pruning on a sample of a layer's chunks.

Kuzmin et al. (NeurIPS 2023, section 4 and its per-layer figure) compare the two methods on
real layers without trusting any one algorithm: for every chunk (one output channel, at most 32
inputs, ``G = X_c^T X_c``, see ``pvq.bounds``) a heuristic gives an achievable error and a
relaxation or exact search a lower bound on the best error. Summed over the chunks ``c`` of a
layer, with ``r_c = w_c^T G_c w_c`` the chunk's output energy, each end of the range is

    SNR = -10 log10(sum_c error_c / sum_c r_c)  (dB).

Quantization (b bits): ``[heuristic, SDP bound]`` at scales fixed before the search, by default
the paper's (one MSE scale for the layer's input slice ``W[:, start:stop]`` across all output
channels, as the authors' ``ptq_sqnr_bounds.py``); ``granularity`` picks another
(``pvq.metadata``). Pruning (at most k non-zeros per chunk in the paper's box): ``[exact,
certified bound]``. k matches quantization's bits per weight: ``b`` plus its scales' bits
(``count_scales``) against pruning's values plus its ``mask`` (``"none"``: the paper's rule,
``k = round(n b / 16)``). The naive baselines (round to nearest, magnitude mask with refit)
show how much of a method's apparent loss is the algorithm's.

How near the optimum the field's one-shot algorithms come: each bracketed chunk also gets the
error of GPTQ at the same scales (``pvq.obs.gptq``'s sweep on the chunk, ``H = 2 G``) and of
SparseGPT and plain magnitude pruning at the same k (``pvq.obs.sparsegpt``, ``magnitude``);
``optimality_gaps`` puts each method ``10 log10(error / bound)`` dB above the certified bound
of its problem (for pruning the exact optimum, to within ``CERTIFIED_GAP``; SparseGPT's weights
are not held to the box, so its bound is the box's that holds them).

The layer SNRs are estimates from a sample of chunks: ``snr_ranges`` puts a bootstrap interval
over chunks on each end, and ``verdict`` names a winner only when the intervals separate.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from pvq import obs, zoo
from pvq._validation import check_bits, check_real, check_weights, to_numpy
from pvq.bounds import (
    CHUNK_SIZE,
    LayerChunk,
    best_method,
    check_integer,
    prune_branch_and_bound,
    prune_search,
    pruning_box,
    quant_candidates,
    quant_sdp_relaxation,
)
from pvq.metadata import (
    PAPER_GRANULARITY,
    check_granularity,
    check_mask,
    granularity_label,
    pruning_bits_per_weight,
    pruning_k,
    scale_bits_per_weight,
)
from pvq.parallel import parallel_map
from pvq.quantize import grid_limits, mse_scale
from pvq.stats import UNDECIDED  # what ``verdict`` returns when the intervals overlap

#: the models ``layer_problem`` knows: the course's digits networks and the MiniLM real layers
MODELS = ("digits_cnn", "digits_mlp", "minilm")
#: the layers notebook 4 brackets: the digits CNN's convolutions and head, the MLP's second layer,
#: and MiniLM's attention and MLP projections in blocks 1 and 5
COURSE_LAYERS = (("digits_cnn", "conv1"), ("digits_cnn", "conv2"), ("digits_cnn", "conv3"),
                 ("digits_cnn", "fc"), ("digits_mlp", "fc2"),
                 ("minilm", "blocks.1.attn.query"), ("minilm", "blocks.1.mlp.fc2"),
                 ("minilm", "blocks.5.attn.value"), ("minilm", "blocks.5.mlp.fc1"))
#: chunks per layer that ``sweep_layer`` brackets unless told otherwise
DEFAULT_COUNT = 16
#: a pruned chunk counts as solved to optimality when branch and bound's relative gap is below
CERTIFIED_GAP = 1e-6
#: bootstrap over chunks: resamples, two-sided level and seed of ``snr_ranges``' intervals
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_LEVEL = 0.95
BOOTSTRAP_SEED = 0
#: per-chunk errors (``error_columns``) and the SNR column each one becomes in ``snr_ranges``
ERROR_COLUMNS = {
    "quant_nearest": "quant nearest (dB)", "quant_heuristic": "quant heuristic (dB)",
    "quant_bound": "quant bound (dB)", "prune_magnitude": "prune magnitude (dB)",
    "prune_heuristic": "prune heuristic (dB)", "prune_exact": "prune exact (dB)",
    "prune_bound": "prune bound (dB)",
}
#: how far above its problem's certified lower bound each method's error lies
#: (``optimality_gaps``): label -> (error column, bound column) of a ``sweep_layer`` table
GAP_METHODS = {
    "GPTQ": ("quant_gptq", "quant_bound"), "round to nearest": ("quant_nearest", "quant_bound"),
    "best heuristic": ("quant_heuristic", "quant_bound"),
    "SparseGPT": ("prune_sparsegpt", "prune_sparsegpt_bound"),
    "magnitude": ("prune_magnitude_only", "prune_bound"),
    "magnitude + refit": ("prune_magnitude", "prune_bound"),
}
#: the four ends of the two ranges, which get bootstrap intervals
RANGE_ENDS = ("quant_heuristic", "quant_bound", "prune_exact", "prune_bound")
#: how a granularity's scales are chosen: the weights' MSE, or for the chunk's output error
SCALE_FITS = ("weights", "output")
#: factors of the weights' MSE scales that ``output_fit_factor`` tries (1 among them)
SCALE_FACTORS = tuple(np.round(np.linspace(0.5, 1.5, 21), 2))

__all__ = ["BOOTSTRAP_LEVEL", "BOOTSTRAP_RESAMPLES", "CERTIFIED_GAP", "COURSE_LAYERS",
           "DEFAULT_COUNT", "ERROR_COLUMNS", "GAP_METHODS", "MODELS", "RANGE_ENDS",
           "SCALE_FACTORS", "SCALE_FITS", "UNDECIDED", "bootstrap_snr_intervals", "bracket_chunk",
           "check_fit", "chunk_scales", "layer_problem", "layer_snr_db", "optimality_gaps",
           "output_fit_allowed", "output_fit_factor", "sample_chunks", "snr_ranges",
           "sweep_layer", "sweep_layers", "verdict"]


def layer_problem(model: str, layer: str) -> zoo.LayerMatrices:
    """``(W, X)`` of a layer: ``model`` ``"digits_cnn"``/``"digits_mlp"`` (the course's trained
    networks on their calibration images) or ``"minilm"`` (a shipped all-MiniLM-L6-v2 layer)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")
    if model == "minilm":
        return zoo.real_layer(layer)
    return zoo.layer_matrices(zoo.pretrained(model), layer)


def _check_count(count: object, name: str) -> int:
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise ValueError(f"{name} must be a positive integer, got {count!r}")
    return int(count)


def sample_chunks(W: np.ndarray, X: np.ndarray, count: int, seed: int = 0,
                  size: int = CHUNK_SIZE) -> list[LayerChunk]:
    """``count`` chunks drawn without replacement (seeded) from the chunks of
    ``pvq.bounds.layer_chunks(W, X, size)``, in that list's order; only their ``G`` are built."""
    check_weights(W, "W")
    check_weights(X, "X")
    W, X = to_numpy(W), to_numpy(X)
    if W.ndim != 2 or X.ndim != 2 or W.shape[1] != X.shape[1]:
        raise ValueError(f"W (outputs x inputs) and X (samples x inputs) must be 2-D with the "
                         f"same number of columns, got shapes {W.shape} and {X.shape}")
    count, size = _check_count(count, "count"), _check_count(size, "size")
    outputs, blocks = W.shape[0], math.ceil(W.shape[1] / size)
    if count > outputs * blocks:
        raise ValueError(f"count must be at most the layer's {outputs * blocks} chunks, "
                         f"got {count}")
    picked = np.sort(np.random.default_rng(seed).choice(outputs * blocks, count, replace=False))
    chunks, grams = [], {}
    for index in picked:
        block, output = divmod(int(index), outputs)
        inputs = slice(block * size, min((block + 1) * size, W.shape[1]))
        if block not in grams:
            grams[block] = X[:, inputs].T @ X[:, inputs]
        chunks.append(LayerChunk(output, inputs, W[output, inputs].copy(), grams[block]))
    return chunks


def _real_vector(values: object, name: str) -> np.ndarray:
    """``values`` as a float array, or a TypeError naming it (strings, objects, complex)."""
    if hasattr(values, "detach"):  # a torch tensor
        values = to_numpy(values)
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a sequence of real numbers, got {values!r:.60}")
    return array.astype(float)


def layer_snr_db(errors: Sequence[float] | np.ndarray, energies: Sequence[float] | np.ndarray
                 ) -> float:
    """The paper's layer SNR ``-10 log10(sum(errors) / sum(energies))``; +inf for zero error."""
    errors, energies = _real_vector(errors, "errors"), _real_vector(energies, "energies")
    if errors.shape != energies.shape or errors.ndim != 1 or errors.size == 0:
        raise ValueError(f"errors and energies must be 1-D of the same non-zero length, got "
                         f"shapes {errors.shape} and {energies.shape}")
    if not (np.all(np.isfinite(errors)) and np.all(np.isfinite(energies))) or \
            np.any(errors < 0) or np.any(energies < 0):
        raise ValueError("errors and energies must be finite and non-negative")
    total = float(energies.sum())
    if total <= 0.0:
        raise ValueError("the energies sum to 0: the SNR is undefined")
    noise = float(errors.sum())
    return math.inf if noise == 0.0 else -10.0 * math.log10(noise / total)


def _shared_scale(W: np.ndarray, rows: slice, columns: slice, bits: int, cache: dict) -> float:
    """``mse_scale(W[rows, columns], bits)``, computed once per block of weights in ``cache``."""
    key = (bits, rows.start, rows.stop, columns.start, columns.stop)
    if key not in cache:
        cache[key] = mse_scale(W[rows, columns], bits)
    return cache[key]


def _weight_fit_scales(W: np.ndarray, chunk: LayerChunk, bits: int, granularity: str | int,
                       cache: dict) -> np.ndarray:
    """Each of the chunk's weights' scale, the MSE scale of the weights that share it."""
    n = chunk.inputs.stop - chunk.inputs.start
    everything, row = slice(0, W.shape[0]), slice(chunk.output, chunk.output + 1)
    if granularity == "tensor":
        return np.full(n, _shared_scale(W, everything, slice(0, W.shape[1]), bits, cache))
    if granularity == "input slice":
        return np.full(n, _shared_scale(W, everything, chunk.inputs, bits, cache))
    if granularity == "output channel":
        return np.full(n, _shared_scale(W, row, slice(0, W.shape[1]), bits, cache))
    groups = np.arange(chunk.inputs.start, chunk.inputs.stop) // granularity
    return np.array([_shared_scale(W, row, slice(g * granularity, (g + 1) * granularity), bits,
                                   cache) for g in groups])


def output_fit_allowed(W: np.ndarray, chunk: LayerChunk, granularity: str | int) -> bool:
    """Whether the scales of ``granularity`` can be chosen for this chunk's output error: only
    when every weight sharing a scale lies in the chunk (groups that do not straddle the
    chunk's ends; one output channel that is a single chunk), since the bounds treat chunks
    independently and a scale shared with other chunks cannot be fitted to one of them."""
    if granularity == "output channel":
        return chunk.inputs.start == 0 and chunk.inputs.stop == W.shape[1]
    if isinstance(granularity, str):
        return False
    return chunk.inputs.start % granularity == 0 and (
        chunk.inputs.stop % granularity == 0 or chunk.inputs.stop == W.shape[1])


def output_fit_factor(chunk: LayerChunk, bits: int, scales: np.ndarray) -> float:
    """The factor f in ``SCALE_FACTORS`` whose round-to-nearest output error
    ``E(f s * round(w / (f s)))`` (``pvq.bounds.chunk_error``, codes clipped to the grid) is
    least; ties go to the f nearest 1 (so f = 1, the weights' MSE scales, unless another
    factor is strictly better for the output)."""
    lowest, highest = grid_limits(check_bits(bits, maximum=16))
    candidates = np.array(SCALE_FACTORS)[:, None] * scales[None, :]
    residuals = candidates * np.clip(np.round(chunk.w / candidates), lowest, highest) - chunk.w
    errors = np.einsum("ij,jk,ik->i", residuals, chunk.G, residuals)
    order = np.lexsort((np.abs(np.array(SCALE_FACTORS) - 1.0), errors))
    return float(SCALE_FACTORS[order[0]])


def _chunk_scales(W: np.ndarray, chunk: LayerChunk, bits: int, granularity: str | int,
                  fit: str, cache: dict) -> np.ndarray:
    scales = _weight_fit_scales(W, chunk, bits, granularity, cache)
    if fit == "weights":
        return scales
    if not output_fit_allowed(W, chunk, granularity):
        raise ValueError(f"fit='output' needs scales that lie inside the chunk (groups that "
                         f"do not straddle it, or an output channel that is one chunk), got "
                         f"granularity {granularity!r} on inputs {chunk.inputs.start}.."
                         f"{chunk.inputs.stop - 1} of {W.shape[1]}")
    return output_fit_factor(chunk, bits, scales) * scales


def check_fit(fit: object) -> str:
    """One of ``SCALE_FITS``."""
    if not isinstance(fit, str) or fit not in SCALE_FITS:
        raise ValueError(f"fit must be one of {list(SCALE_FITS)}, got {fit!r}")
    return fit


def chunk_scales(W: np.ndarray, chunk: LayerChunk, bits: int,
                 granularity: str | int = PAPER_GRANULARITY, *, fit: str = "weights"
                 ) -> np.ndarray:
    """The quantization scale of each of the chunk's weights. ``fit="weights"``: ``mse_scale``
    of the weights that share it: the whole tensor, the chunk's input slice ``W[:, inputs]``
    across all outputs (the paper's), the chunk's output channel ``W[output]``, or its group of
    g consecutive inputs in that channel (groups start at multiples of g). ``fit="output"``
    (where ``output_fit_allowed``): those scales times ``output_fit_factor``, the factor that
    minimizes the chunk's output error of round to nearest; chosen before the search, like
    the MSE scale."""
    check_weights(W, "W")
    W = to_numpy(W)
    bits, granularity = check_bits(bits, maximum=16), check_granularity(granularity)
    return _chunk_scales(W, chunk, bits, granularity, check_fit(fit), {})


def _quant_errors(chunk: LayerChunk, bits: int, scales: np.ndarray) -> dict:
    """Quantization of one chunk at per-weight scales ``S = diag(s)``: ``(S x - w)^T G
    (S x - w) = (x - S^-1 w)^T (S G S) (x - S^-1 w)``, so the one-scale machinery of
    ``pvq.bounds`` runs on ``(S G S, S^-1 w)`` at scale 1."""
    G, w = chunk.G * np.outer(scales, scales), chunk.w / scales
    relaxation = quant_sdp_relaxation(G, w, bits, 1.0)  # one SDP: bound and rounding
    quant = quant_candidates(G, w, bits, 1.0, relaxation)
    winner = best_method(quant)
    # G = X^T X is PSD, so 0 is the trivial bound quant_sdp_bound also falls back to
    return {"quant_nearest": quant["nearest"][1], "quant_heuristic": quant[winner][1],
            "quant_gptq": _gptq_error(chunk, bits, scales),
            "quant_bound": max(relaxation.bound, 0.0), "quant_winner": winner}


def _output_error(chunk: LayerChunk, w_hat: torch.Tensor) -> float:
    residual = w_hat.numpy()[0] - chunk.w
    return max(float(residual @ chunk.G @ residual), 0.0)


def _gptq_error(chunk: LayerChunk, bits: int, scales: np.ndarray) -> float:
    """``pvq.obs``'s GPTQ sweep on the chunk (``H = 2 G``, its damping) on the grid of the given
    per-weight scales, the grid the SDP bound is certified for."""
    grid = {bits: torch.from_numpy(np.array(scales, dtype=np.float64)[None, :])}
    quantized = obs.obs_compress(chunk.w[None, :], 2.0 * chunk.G, [obs.Compression(bits)],
                                 scales=grid)[0]
    return _output_error(chunk, quantized)


def _prune_errors(chunk: LayerChunk, k: int, lower: float, upper: float) -> dict:
    """Pruning of one chunk to k non-zeros: magnitude + refit, the best heuristic, the exact
    optimum and its certified bound."""
    prune, exact = prune_search(chunk.G, chunk.w, k, lower, upper)
    winner = best_method(prune)
    return {"prune_magnitude": prune.get("magnitude + refit", prune[winner])[1],
            "prune_heuristic": prune[winner][1], "prune_exact": exact.error,
            "prune_bound": exact.lower_bound, "prune_gap": exact.gap, "prune_winner": winner,
            **_one_shot_pruning_errors(chunk, k, lower, upper, exact.lower_bound)}


def _one_shot_pruning_errors(chunk: LayerChunk, k: int, lower: float, upper: float,
                             bound: float) -> dict:
    """SparseGPT (``pvq.obs``, ``H = 2 G``) and plain magnitude pruning (the k largest |w|
    kept unchanged, so inside the box) to k non-zeros. SparseGPT's weights are not held to
    the box ``[lower, upper]``: where they leave it (``sparsegpt_in_box`` False) the box's
    ``bound`` does not apply, and ``prune_sparsegpt_bound`` is branch and bound's certified
    bound in the smallest box that holds them and the old one (else ``bound`` itself)."""
    n = chunk.w.size
    if k == 0:  # nothing kept: both give the zero vector, the only candidate
        zeros = torch.zeros((1, n), dtype=torch.float64)
        sparse, plain = zeros, zeros
    else:
        sparsity = (n - k) / n
        sparse = obs.sparsegpt(chunk.w[None, :], 2.0 * chunk.G, sparsity)
        plain = obs.magnitude(chunk.w[None, :], sparsity)
    smallest, largest = float(sparse.min()), float(sparse.max())
    in_box = lower <= smallest and largest <= upper
    if not in_box:
        bound = prune_branch_and_bound(chunk.G, chunk.w, k, min(lower, smallest),
                                       max(upper, largest)).lower_bound
    return {"prune_sparsegpt": _output_error(chunk, sparse), "prune_sparsegpt_bound": bound,
            "sparsegpt_in_box": in_box, "prune_magnitude_only": _output_error(chunk, plain)}


def bracket_chunk(chunk: LayerChunk, bits: int, lower: float, upper: float, *,
                  scales: float | np.ndarray | None = None, k: int | None = None) -> dict:
    """Every error of one chunk at b bits, as one table row.

    Quantization at ``scales`` (one number, or one per weight; default the chunk's own
    ``mse_scale``, i.e. a group of the chunk's width): round to nearest, the best heuristic
    (``pvq.bounds.quant_candidates``, the authors' procedure among them) and the certified SDP
    bound. Pruning to ``k`` non-zeros (default ``floor(n b / 16)``, the paper's model) in the box
    ``[lower, upper]``: magnitude mask + refit, the best heuristic, the exact optimum and branch
    and bound's certified lower bound. The field's one-shot algorithms on the same problems:
    GPTQ at those scales (``quant_gptq``), SparseGPT and plain magnitude pruning at that k
    (``prune_sparsegpt``, ``prune_magnitude_only``); SparseGPT's weights may leave the box
    (``sparsegpt_in_box``), and ``prune_sparsegpt_bound`` is the certified bound of the box
    that holds them.
    """
    bits = check_bits(bits, maximum=16)
    n = chunk.w.size
    scales = mse_scale(chunk.w, bits) if scales is None else scales
    scales = np.broadcast_to(np.asarray(scales, dtype=float), (n,))
    if not np.all(np.isfinite(scales) & (scales > 0)):
        raise ValueError("scales must be finite and > 0")
    k = pruning_k(n, bits) if k is None else check_integer(k, "k", minimum=0)
    return {"output": chunk.output, "start": chunk.inputs.start, "n": n, "bits": bits, "k": k,
            "energy": float(chunk.w @ chunk.G @ chunk.w), **_quant_errors(chunk, bits, scales),
            **_prune_errors(chunk, k, lower, upper)}


def _as_tuple(values: object) -> tuple:
    return tuple(values) if isinstance(values, (list, tuple)) else (values,)


def sweep_layer(W: np.ndarray, X: np.ndarray, bit_widths: Sequence[int] = (2, 3, 4),
                count: int = DEFAULT_COUNT, seed: int = 0, size: int = CHUNK_SIZE, *,
                granularity: str | int | Sequence[str | int] = PAPER_GRANULARITY,
                count_scales: bool | Sequence[bool] = True, mask: str | Sequence[str] = "none",
                scale_fit: str | Sequence[str] = "weights") -> pd.DataFrame:
    """``bracket_chunk`` for ``count`` sampled chunks (``sample_chunks``) at every bit-width,
    scale ``granularity``, ``scale_fit`` (``chunk_scales``' ``fit``; ``"output"`` only where
    ``output_fit_allowed``, other combinations are left out), ``count_scales`` and pruning
    ``mask`` (each one value or a list); pruning's box is the paper's
    (``pvq.bounds.pruning_box(W)``). One row per chunk and setting.

    Quantization costs ``quant_bits = b + scale_bits`` per weight, ``scale_bits`` its 16-bit
    scales (``pvq.metadata.scale_bits_per_weight``) when ``count_scales``, else 0. Pruning
    keeps the most non-zeros k (``pvq.metadata.pruning_k``) whose cost ``prune_bits`` (16-bit
    values and the ``mask``) fits in ``quant_bits``: the paper's model ``k <= n b / 16`` with
    ``mask="none"`` and the paper's granularity (its 0.5 / outputs bits of scales move no k on
    the course's layers), or with ``count_scales=False`` (the paper's rule: nothing charged).
    Each shared scale is computed once, each (chunk, b, scales) quantized once (so two
    granularities that give the same scales cost one SDP), each (chunk, k) pruned once.

    Runs with one BLAS thread: the matrices are 33 x 33, where threads cost more than they save
    (and one thread makes the solver's arithmetic the same on every machine).
    """
    bit_widths = [check_bits(bits, maximum=16) for bits in _as_tuple(bit_widths)]
    granularities = [check_granularity(g) for g in _as_tuple(granularity)]
    masks = [check_mask(m) for m in _as_tuple(mask)]
    fits = [check_fit(fit) for fit in _as_tuple(scale_fit)]
    charges = list(_as_tuple(count_scales))
    if not (bit_widths and granularities and masks and charges and fits):
        raise ValueError("bit_widths, granularity, count_scales, mask and scale_fit must not "
                         "be empty")
    if not all(isinstance(charge, bool) for charge in charges):
        raise TypeError(f"count_scales must be True, False or a list of them, "
                        f"got {count_scales!r}")
    chunks = sample_chunks(W, X, count, seed, size)
    W = to_numpy(W)
    lower, upper = pruning_box(W)
    outputs, inputs = W.shape
    scale_cache: dict = {}
    quantized: dict[tuple, dict] = {}
    pruned: dict[tuple[int, int], dict] = {}
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for index, chunk in enumerate(chunks):
            n, energy = chunk.w.size, float(chunk.w @ chunk.G @ chunk.w)
            for bits, g, fit in itertools.product(bit_widths, granularities, fits):
                if fit == "output" and not output_fit_allowed(W, chunk, g):
                    continue
                scales = _chunk_scales(W, chunk, bits, g, fit, scale_cache)
                key = (index, bits, scales.tobytes())
                if key not in quantized:
                    quantized[key] = _quant_errors(chunk, bits, scales)
                for charge, m in itertools.product(charges, masks):
                    scale_bits = scale_bits_per_weight(outputs, inputs, g, size) if charge \
                        else 0.0
                    k = pruning_k(n, bits + scale_bits, m, inputs)
                    if (index, k) not in pruned:
                        pruned[index, k] = _prune_errors(chunk, k, lower, upper)
                    rows.append({
                        "output": chunk.output, "start": chunk.inputs.start, "n": n,
                        "bits": bits, "granularity": granularity_label(g), "scale_fit": fit,
                        "scales_charged": charge, "mask": m, "scale_bits": scale_bits,
                        "quant_bits": bits + scale_bits, "k": k,
                        "prune_bits": pruning_bits_per_weight(k, n, m, inputs),
                        "energy": energy, **quantized[key], **pruned[index, k]})
    return pd.DataFrame(rows)


def _sweep_named_layer(job: tuple) -> pd.DataFrame:
    (model, layer), bit_widths, count, seed, options = job
    W, X = layer_problem(model, layer)
    table = sweep_layer(W, X, bit_widths, count, seed, **options)
    total = W.shape[0] * math.ceil(W.shape[1] / CHUNK_SIZE)
    return table.assign(model=model, layer=layer, **{"chunks in layer": total})


def sweep_layers(layers: Sequence[tuple[str, str]], bit_widths: Sequence[int] = (2, 3, 4),
                 count: int = DEFAULT_COUNT, seed: int = 0, *,
                 per_layer: dict[tuple[str, str], dict] | None = None,
                 workers: int | None = None, **options) -> pd.DataFrame:
    """``sweep_layer`` on each ``(model, layer)`` of ``layer_problem`` (``options``: its
    ``granularity``, ``count_scales``, ``mask``, ``scale_fit``; ``per_layer[(model, layer)]``
    replaces them for that layer), with the layer's total number of chunks (``chunks in
    layer``) beside the sample. The layers run in parallel on ``pvq.parallel.worker_count``
    processes (each computes what it would alone); rows keep the order of ``layers``."""
    per_layer = per_layer or {}
    if not isinstance(per_layer, dict):
        raise TypeError(f"per_layer must be a dict of options by (model, layer), "
                        f"got {type(per_layer).__name__}")
    layers = [tuple(layer) for layer in layers]
    unknown = set(per_layer) - set(layers)
    if unknown:
        raise ValueError(f"per_layer names layers not swept: {sorted(unknown)}")
    jobs = [(layer, bit_widths, count, seed, per_layer.get(layer, options)) for layer in layers]
    # the slowest layers first, so the workers finish together
    order = sorted(range(len(jobs)), key=lambda i: layers[i] not in per_layer)
    tables = dict(zip(order, parallel_map(_sweep_named_layer, [jobs[i] for i in order],
                                          workers=workers)))
    return pd.concat([tables[i] for i in range(len(jobs))], ignore_index=True)


def _check_snr(value: object, name: str) -> float:
    """A real SNR in dB: finite or +-inf (no error, or no signal), never NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (dB), got {type(value).__name__} "
                        f"{value!r}")
    if math.isnan(float(value)):
        raise ValueError(f"{name} must not be NaN")
    return float(value)


def verdict(quant_low: float, quant_high: float, prune_low: float, prune_high: float) -> str:
    """Which method wins given both SNR ranges (or the outer ends of their intervals):
    ``"quantization"`` when its low end is above pruning's high end, ``"pruning"`` the other
    way round, else ``"not decided"``."""
    quant_low, quant_high = _check_snr(quant_low, "quant_low"), _check_snr(quant_high,
                                                                           "quant_high")
    prune_low, prune_high = _check_snr(prune_low, "prune_low"), _check_snr(prune_high,
                                                                           "prune_high")
    for method, low, high in (("quant", quant_low, quant_high),
                              ("prune", prune_low, prune_high)):
        if low > high:
            raise ValueError(f"{method}_low must be <= {method}_high, got {low} > {high}")
    if quant_low > prune_high:
        return "quantization"
    if prune_low > quant_high:
        return "pruning"
    return UNDECIDED


def bootstrap_snr_intervals(errors: pd.DataFrame, energies: Sequence[float], *,
                            resamples: int = BOOTSTRAP_RESAMPLES, level: float = BOOTSTRAP_LEVEL,
                            seed: int = BOOTSTRAP_SEED) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap over chunks of the layer SNR of each column of ``errors`` (rows:
    chunks): ``resamples`` draws of the chunks with replacement, the same draws for every
    column (so the ends of both ranges are resampled together), and the ``level`` interval of
    ``-10 log10(sum error / sum energy)`` for each column, ``(low, high)`` in dB."""
    resamples = check_integer(resamples, "resamples")
    level = check_real(level, "level")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    energies = _real_vector(energies, "energies")
    if energies.ndim != 1 or len(errors) != energies.size or energies.size == 0:
        raise ValueError("errors and energies must have one row per chunk")
    rng = np.random.default_rng(check_integer(seed, "seed", minimum=0))
    counts = rng.multinomial(energies.size, np.full(energies.size, 1.0 / energies.size),
                             resamples).astype(float)
    signal = counts @ energies
    tail = (1.0 - level) / 2.0
    intervals = {}
    with np.errstate(divide="ignore"):
        for column in errors.columns:
            ratio = counts @ _real_vector(errors[column].to_numpy(), column) / signal
            high, low = np.quantile(ratio, [tail, 1.0 - tail])  # noise ratio: low = high SNR
            intervals[column] = (float(-10.0 * np.log10(low)), float(-10.0 * np.log10(high)))
    return intervals


def snr_ranges(chunks: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, layer, bits[, granularity, scale_fit, scales_charged, mask]) of a
    ``sweep_layers`` table: the layer SNR (``layer_snr_db``) of every error column, a bootstrap
    interval over chunks (``bootstrap_snr_intervals``) on each of the four ends (columns
    ``... low (dB)`` and ``... high (dB)``), each side's bits per weight, pruning's real
    sparsity ``1 - sum k / sum n``, the sample size, whether every pruned chunk was certified
    optimal (gap < ``CERTIFIED_GAP``) and the ``verdict`` of the intervals' outer ends."""
    keys = ["model", "layer", "bits"] + [key for key in ("granularity", "scale_fit",
                                                         "scales_charged", "mask")
                                         if key in chunks.columns]
    missing = {"model", "layer", "bits", "k", "n"} | set(ERROR_COLUMNS) | {"energy", "prune_gap"}
    missing -= set(chunks.columns)
    if missing:
        raise ValueError(f"chunks lacks the columns {sorted(missing)}")
    rows = []
    for values, group in chunks.groupby(keys, sort=False):
        row = dict(zip(keys, values))
        if "quant_bits" in group:
            row["quant bits"] = float(group["quant_bits"].mean())
            row["prune bits"] = float(group["prune_bits"].mean())
        row["sparsity"] = 1.0 - group["k"].sum() / group["n"].sum()
        row["chunks"] = len(group)
        for column, label in ERROR_COLUMNS.items():
            row[label] = layer_snr_db(group[column], group["energy"])
        intervals = bootstrap_snr_intervals(group[list(RANGE_ENDS)], group["energy"])
        for column, (low, high) in intervals.items():
            label = ERROR_COLUMNS[column].removesuffix(" (dB)")
            row[f"{label} low (dB)"], row[f"{label} high (dB)"] = low, high
        row["certified"] = bool((group["prune_gap"] < CERTIFIED_GAP).all())
        row["verdict"] = verdict(row["quant heuristic low (dB)"], row["quant bound high (dB)"],
                                 row["prune exact low (dB)"], row["prune bound high (dB)"])
        rows.append(row)
    return pd.DataFrame(rows)


def _gap_db(errors: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """``10 log10(error / bound)``: 0 dB when both are 0, +inf for an error above a 0 bound."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bounds > 0, errors / np.where(bounds > 0, bounds, 1.0),
                         np.where(errors > 0, np.inf, 1.0))
        return 10.0 * np.log10(ratio)


def optimality_gaps(chunks: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """How far above the certified lower bound of its own problem each method of
    ``GAP_METHODS`` lands, in dB: ``10 log10(error / bound)`` per chunk (rows of a
    ``sweep_layer`` table, ``by=None``), or ``10 log10(sum error / sum bound)`` over the chunks
    of each group of the columns ``by`` (for a layer: its SNR at the bound minus its SNR with
    the method). Quantization's bound is the SDP's at the same scales, so a gap is at most
    the distance to the best grid point (the ``best heuristic`` row shows how much of it may
    be the bound's slack); pruning's is branch and bound's, the exact optimum to within
    ``CERTIFIED_GAP`` (for SparseGPT in the widened box where its weights leave the paper's,
    ``sparsegpt_in_box``). 0 dB when error and bound are both 0, +inf for an error above a
    zero bound."""
    if not isinstance(chunks, pd.DataFrame):
        raise TypeError(f"chunks must be a pandas DataFrame (a sweep_layer table), "
                        f"got {type(chunks).__name__}")
    by = [] if by is None else [by] if isinstance(by, str) else list(by)
    columns = {column for pair in GAP_METHODS.values() for column in pair}
    missing = (columns | set(by)) - set(chunks.columns)
    if missing:
        raise ValueError(f"chunks lacks the columns {sorted(missing)}")
    if chunks.empty:
        raise ValueError("chunks must have at least one row")
    values = {column: _real_vector(chunks[column].to_numpy(), column) for column in columns}
    if not all(np.all(np.isfinite(v) & (v >= 0)) for v in values.values()):
        raise ValueError("chunks' errors and bounds must be finite and non-negative")
    sums = pd.DataFrame(values, index=chunks.index)
    if by:
        sums = sums.groupby([chunks[key] for key in by], sort=False).sum()
    return pd.DataFrame({label: _gap_db(sums[error].to_numpy(), sums[bound].to_numpy())
                         for label, (error, bound) in GAP_METHODS.items()}, index=sums.index)
