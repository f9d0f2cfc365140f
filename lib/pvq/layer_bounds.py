"""Per-layer SNR ranges: bracket quantization and pruning on a sample of a layer's chunks.

Kuzmin et al. (NeurIPS 2023, section 4 and its per-layer figure) compare the two methods on
real layers without trusting any one algorithm: for every chunk (one output channel, at most 32
inputs, ``G = X_c^T X_c``, see ``pvq.bounds``) a heuristic gives an achievable error and a
relaxation or exact search a lower bound on the best error. Summed over the chunks ``c`` of a
layer, with ``r_c = w_c^T G_c w_c`` the chunk's output energy, each end of the range is

    SNR = -10 log10(sum_c error_c / sum_c r_c)  (dB).

Quantization (b bits, each chunk at its MSE scale): ``[heuristic, SDP bound]``. Pruning (at
most ``k = round(n b / 16)`` non-zeros in the paper's box): ``[exact, certified bound]``, one
point when branch and bound closes the gap. The naive baselines (round to nearest, magnitude
mask with refit) show how much of a method's apparent loss is the algorithm's.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pvq import zoo
from pvq._validation import check_bits, check_weights, to_numpy
from pvq.bounds import (
    CHUNK_SIZE,
    LayerChunk,
    best_method,
    equal_compression_k,
    prune_branch_and_bound,
    prune_candidates,
    pruning_box,
    quant_candidates,
    quant_sdp_relaxation,
)
from pvq.compression import equivalent_sparsity
from pvq.quantize import mse_scale

#: the models ``layer_problem`` knows: the course's digits networks and the MiniLM real layers
MODELS = ("digits_cnn", "digits_mlp", "minilm")
#: the layers notebook 4 brackets: the digits CNN's convolutions and head, the MLP's second layer,
#: and MiniLM's attention and MLP projections in blocks 1 and 5
COURSE_LAYERS = (("digits_cnn", "conv1"), ("digits_cnn", "conv2"), ("digits_cnn", "conv3"),
                 ("digits_cnn", "fc"), ("digits_mlp", "fc2"),
                 ("minilm", "blocks.1.attn.query"), ("minilm", "blocks.1.mlp.fc2"),
                 ("minilm", "blocks.5.attn.value"), ("minilm", "blocks.5.mlp.fc1"))
#: a pruned chunk counts as solved to optimality when branch and bound's relative gap is below
CERTIFIED_GAP = 1e-6
#: per-chunk errors (``error_columns``) and the SNR column each one becomes in ``snr_ranges``
ERROR_COLUMNS = {
    "quant_nearest": "quant nearest (dB)", "quant_heuristic": "quant heuristic (dB)",
    "quant_bound": "quant bound (dB)", "prune_magnitude": "prune magnitude (dB)",
    "prune_heuristic": "prune heuristic (dB)", "prune_exact": "prune exact (dB)",
    "prune_bound": "prune bound (dB)",
}

__all__ = ["CERTIFIED_GAP", "COURSE_LAYERS", "ERROR_COLUMNS", "MODELS", "bracket_chunk",
           "layer_problem", "layer_snr_db", "sample_chunks", "snr_ranges", "sweep_layer",
           "sweep_layers", "verdict"]


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


def layer_snr_db(errors: Sequence[float] | np.ndarray, energies: Sequence[float] | np.ndarray
                 ) -> float:
    """The paper's layer SNR ``-10 log10(sum(errors) / sum(energies))``; +inf for zero error."""
    errors, energies = np.asarray(errors, dtype=float), np.asarray(energies, dtype=float)
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


def bracket_chunk(chunk: LayerChunk, bits: int, lower: float, upper: float) -> dict:
    """Every error of one chunk at b bits and its equal-compression k, as one table row.

    Quantization at the chunk's ``mse_scale``: round to nearest, the best heuristic (the SDP's
    randomized rounding competing, see ``pvq.bounds.quant_candidates``) and the certified SDP
    bound. Pruning in the box ``[lower, upper]``: magnitude mask + refit, the best heuristic,
    the exact optimum and branch and bound's certified lower bound.
    """
    bits = check_bits(bits, maximum=16)
    G, w = chunk.G, chunk.w
    scale, k = mse_scale(w, bits), equal_compression_k(w.size, bits)
    # one SDP feeds both the bound and the randomized rounding (quant_sdp_bound would solve it
    # again); G = X^T X is PSD, so 0 is the trivial bound quant_sdp_bound also falls back to
    relaxation = quant_sdp_relaxation(G, w, bits, scale)
    quant = quant_candidates(G, w, bits, scale, relaxation)
    prune = prune_candidates(G, w, k, lower, upper)
    exact = prune_branch_and_bound(G, w, k, lower, upper)
    quant_best, prune_best = best_method(quant), best_method(prune)
    return {
        "output": chunk.output, "start": chunk.inputs.start, "n": w.size, "bits": bits, "k": k,
        "energy": float(w @ G @ w),
        "quant_nearest": quant["nearest"][1], "quant_heuristic": quant[quant_best][1],
        "quant_bound": max(relaxation.bound, 0.0), "quant_winner": quant_best,
        "prune_magnitude": prune.get("magnitude + refit", prune[prune_best])[1],
        "prune_heuristic": prune[prune_best][1], "prune_exact": exact.error,
        "prune_bound": exact.lower_bound, "prune_gap": exact.gap, "prune_winner": prune_best,
    }


def sweep_layer(W: np.ndarray, X: np.ndarray, bit_widths: Sequence[int] = (2, 3, 4),
                count: int = 3, seed: int = 0, size: int = CHUNK_SIZE) -> pd.DataFrame:
    """``bracket_chunk`` for ``count`` sampled chunks (``sample_chunks``) at every bit-width;
    pruning's box is the paper's (``pvq.bounds.pruning_box(W)``). One row per chunk and b.

    Runs with one BLAS thread: the matrices are 33 x 33, where threads cost more than they save
    (and one thread makes the solver's arithmetic the same on every machine).
    """
    bit_widths = [check_bits(bits, maximum=16) for bits in bit_widths]
    if not bit_widths:
        raise ValueError("bit_widths must not be empty")
    chunks = sample_chunks(W, X, count, seed, size)
    lower, upper = pruning_box(W)
    with threadpool_limits(limits=1, user_api="blas"):
        rows = [bracket_chunk(chunk, bits, lower, upper)
                for chunk in chunks for bits in bit_widths]
    return pd.DataFrame(rows)


def sweep_layers(layers: Sequence[tuple[str, str]], bit_widths: Sequence[int] = (2, 3, 4),
                 count: int = 3, seed: int = 0) -> pd.DataFrame:
    """``sweep_layer`` on each ``(model, layer)`` of ``layer_problem``, with the layer's total
    number of chunks (``chunks in layer``) beside the sample."""
    tables = []
    for model, layer in layers:
        W, X = layer_problem(model, layer)
        table = sweep_layer(W, X, bit_widths, count, seed)
        total = W.shape[0] * math.ceil(W.shape[1] / CHUNK_SIZE)
        tables.append(table.assign(model=model, layer=layer, **{"chunks in layer": total}))
    return pd.concat(tables, ignore_index=True)


def verdict(quant_low: float, quant_high: float, prune_low: float, prune_high: float) -> str:
    """Which method wins given both SNR ranges: ``"quantization"`` when its achieved SNR beats
    pruning's bound, ``"pruning"`` the other way round, else ``"overlap"`` (not decided)."""
    if quant_low > prune_high:
        return "quantization"
    if prune_low > quant_high:
        return "pruning"
    return "overlap"


def snr_ranges(chunks: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, layer, bits) of a ``sweep_layers`` table: the layer SNR
    (``layer_snr_db``) of every error column, the sparsity, the sample size, whether every
    pruned chunk was certified optimal (gap < ``CERTIFIED_GAP``) and the ``verdict``."""
    keys = ["model", "layer", "bits"]
    missing = set(keys) | set(ERROR_COLUMNS) | {"energy", "prune_gap"}
    missing -= set(chunks.columns)
    if missing:
        raise ValueError(f"chunks lacks the columns {sorted(missing)}")
    rows = []
    for (model, layer, bits), group in chunks.groupby(keys, sort=False):
        row = {"model": model, "layer": layer, "bits": bits,
               "sparsity": equivalent_sparsity(int(bits)), "chunks": len(group)}
        for column, label in ERROR_COLUMNS.items():
            row[label] = layer_snr_db(group[column], group["energy"])
        row["certified"] = bool((group["prune_gap"] < CERTIFIED_GAP).all())
        row["verdict"] = verdict(row["quant heuristic (dB)"], row["quant bound (dB)"],
                                 row["prune exact (dB)"], row["prune bound (dB)"])
        rows.append(row)
    return pd.DataFrame(rows)
