"""What a CPU makes of each format: one Linear layer timed dense, INT8, sparse and row-pruned.

Every variant computes ``y = x @ weight.T`` for a batch of tokens ``x`` (tokens x in) with its own
``weight`` (out x in):

==============  ===========================================================================
``dense``       FP32 ``torch.nn.functional.linear`` (BLAS): the baseline
``int8``        ``torch.ao.quantization.quantize_dynamic``'s INT8 Linear, its weight set to the
                course's 8-bit grid at the MSE scale (``pvq.quantize``); activations are
                quantized on the fly, per batch, inside the timed call
``csr``         unstructured magnitude pruning (``pvq.prune.magnitude_mask``), weight stored as
                ``torch.sparse_csr``; computes ``W x^T`` on feature-major activations
``structured``  output-channel pruning (``pvq.prune.channel_mask``) at the same parameter count:
                a smaller dense matrix with only the kept rows
==============  ===========================================================================

Inputs are prepared in each variant's own layout before timing; only the product is timed, with
``torch.utils.benchmark.Timer`` at a fixed number of threads, in rounds that interleave the
variants (so a slow moment of a shared machine hits all of them). Absolute times depend on the
machine; ratios between variants are what carries over.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import benchmark

from pvq._validation import check_int, check_sparsity, check_weights
from pvq.prune import channel_mask, magnitude_mask
from pvq.quantize import mse_scale, quantize

#: the sparsities timed by default (unstructured CSR and structured rows alike)
SPARSITIES = (0.5, 0.75, 0.9, 0.95, 0.98, 0.99)
#: the default layer: all-MiniLM-L6-v2's ``mlp.fc2`` (1536 inputs, 384 outputs), 128 tokens
LAYER_SHAPE, TOKENS = (384, 1536), 128
INT8_BITS = 8


@dataclass(frozen=True)
class LinearVariant:
    """One way to compute a Linear layer: ``run(prepare(x))`` is the timed product.

    ``weight`` (out x in) is the matrix it effectively multiplies by (pruned or quantized);
    ``rows`` the output rows it computes (all, except for structured pruning); ``tokens_last``
    whether ``run`` returns out x tokens (CSR) instead of tokens x out.
    """

    name: str
    kind: str
    sparsity: float
    weight: torch.Tensor
    prepare: Callable[[torch.Tensor], torch.Tensor]
    run: Callable[[torch.Tensor], torch.Tensor]
    rows: torch.Tensor
    tokens_last: bool = False

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """``run``'s result as tokens x out_features, zero in the rows it does not compute."""
        y = self.run(self.prepare(x))
        y = y.T if self.tokens_last else y
        full = y.new_zeros((x.shape[0], self.weight.shape[0]))
        full[:, self.rows] = y
        return full


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


def _check_matrix(w: torch.Tensor) -> torch.Tensor:
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"w must be a torch.Tensor, got {type(w).__name__}")
    check_weights(w)
    if w.ndim != 2:
        raise ValueError(f"w must be a 2-D weight (out x in), got shape {tuple(w.shape)}")
    return w.detach().float().contiguous()


#: dense floating-point formats: torch dtype -> (name, kind); FP32 is kind "dense", the base
DENSE_DTYPES = {torch.float32: ("dense FP32", "dense"), torch.bfloat16: ("dense BF16", "bf16"),
                torch.float16: ("dense FP16", "fp16")}


def dense_variant(w: torch.Tensor, dtype: torch.dtype = torch.float32) -> LinearVariant:
    """Dense ``F.linear(x, w)`` with weight and activations in ``dtype`` (FP32, BF16 or FP16;
    the activations are cast before timing, the output stays in ``dtype``)."""
    w = _check_matrix(w)
    if dtype not in DENSE_DTYPES:
        raise ValueError(f"dtype must be one of {list(DENSE_DTYPES)}, got {dtype!r}")
    name, kind = DENSE_DTYPES[dtype]
    stored = w.to(dtype)
    return LinearVariant(name, kind, 0.0, stored.float(), lambda x: x.to(dtype),
                         lambda x: F.linear(x, stored), torch.arange(w.shape[0]))


def int8_linear(w: torch.Tensor, scale: float) -> nn.Module:
    """torch's dynamically quantized INT8 Linear (``quantize_dynamic``) holding the codes of
    ``pvq.quantize.quantize(w, 8, scale)`` (per-tensor, zero point 0, no bias)."""
    w = _check_matrix(w)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        quantized = torch.ao.quantization.quantize_dynamic(
            nn.Sequential(layer), {nn.Linear}, dtype=torch.qint8)[0]
        quantized.set_weight_bias(
            torch.quantize_per_tensor(w, float(scale), 0, torch.qint8), None)
    return quantized


def int8_variant(w: torch.Tensor) -> LinearVariant:
    """``int8_linear`` at the MSE scale of ``w``."""
    w = _check_matrix(w)
    scale = mse_scale(w, INT8_BITS)
    layer = int8_linear(w, scale)
    return LinearVariant("INT8 dynamic", "int8", 0.0, quantize(w, INT8_BITS, scale), _same,
                         layer, torch.arange(w.shape[0]))


def csr_variant(w: torch.Tensor, sparsity: float) -> LinearVariant:
    """``w`` magnitude-pruned to ``sparsity`` and stored as CSR; ``W_csr @ x^T`` with the
    activations stored feature-major (in x tokens), the layout sparse kernels read fastest."""
    w = _check_matrix(w)
    sparsity = check_sparsity(sparsity)
    pruned = torch.where(magnitude_mask(w, sparsity), w, torch.zeros_like(w))
    with warnings.catch_warnings():  # torch calls its sparse CSR support beta
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        matrix = pruned.to_sparse_csr()
    return LinearVariant(f"CSR {sparsity:.0%}", "csr", sparsity, pruned,
                         lambda x: x.T.contiguous(), lambda xt: torch.mm(matrix, xt),
                         torch.arange(w.shape[0]), tokens_last=True)


def structured_variant(w: torch.Tensor, sparsity: float) -> LinearVariant:
    """Output-channel pruning that keeps as many weights as ``sparsity`` unstructured does:
    the ``rows - round(sparsity * rows)`` rows of largest norm, as a smaller dense matrix."""
    w = _check_matrix(w)
    keep = channel_mask(w, sparsity)
    rows = torch.nonzero(keep[:, 0]).flatten()
    smaller = w[rows].contiguous()
    return LinearVariant(f"structured {sparsity:.0%}", "structured", sparsity,
                         torch.where(keep, w, torch.zeros_like(w)), _same,
                         lambda x: F.linear(x, smaller), rows)


def linear_variants(w: torch.Tensor, sparsities: Iterable[float] = SPARSITIES
                    ) -> list[LinearVariant]:
    """Dense FP32, INT8, then CSR and structured pruning at every sparsity."""
    variants = [dense_variant(w), int8_variant(w)]
    for sparsity in sparsities:
        variants += [csr_variant(w, sparsity), structured_variant(w, sparsity)]
    return variants


def time_variants(variants: Sequence[LinearVariant], x: torch.Tensor, *, rounds: int = 3,
                  min_run_time: float = 0.05, threads: int = 1) -> pd.DataFrame:
    """Time ``run(prepare(x))`` of each variant with ``torch.utils.benchmark.Timer`` on
    ``threads`` threads: ``rounds`` rounds, each giving every variant a ``blocked_autorange`` of
    at least ``min_run_time`` seconds. Returns one row per variant: name, kind, sparsity,
    ``median_us``, ``q1_us``, ``q3_us``, ``iqr_us`` over all measured blocks (per call, in
    microseconds), and ``blocks`` (how many).
    """
    rounds, threads = check_int(rounds, "rounds", 1), check_int(threads, "threads", 1)
    if not min_run_time > 0:
        raise ValueError(f"min_run_time must be > 0, got {min_run_time!r}")
    timers = [benchmark.Timer(stmt="run(inputs)", globals={"run": v.run, "inputs": v.prepare(x)},
                              num_threads=threads, label=v.name) for v in variants]
    times: list[list[float]] = [[] for _ in variants]
    with torch.no_grad():
        for _ in range(rounds):
            for index, timer in enumerate(timers):
                times[index] += timer.blocked_autorange(min_run_time=min_run_time).times
    rows = []
    for variant, measured in zip(variants, times):
        q1, median, q3 = 1e6 * np.percentile(measured, [25, 50, 75])
        low, high = median_interval(measured)
        rows.append({"name": variant.name, "kind": variant.kind, "sparsity": variant.sparsity,
                     "median_us": median, "q1_us": q1, "q3_us": q3, "iqr_us": q3 - q1,
                     "ci_low_us": 1e6 * low, "ci_high_us": 1e6 * high,
                     "blocks": len(measured)})
    return pd.DataFrame(rows)


def median_interval(times: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free ``confidence`` interval of the median of ``times`` (order statistics,
    ``scipy.stats.quantile_test``); NaN bounds when too few times give one."""
    from scipy.stats import quantile_test

    values = np.asarray(times, dtype=float)
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError("times must be a non-empty 1-D sequence of finite numbers")
    interval = quantile_test(values, q=float(np.median(values))).confidence_interval(confidence)
    return float(interval.low), float(interval.high)


def speedups(table: pd.DataFrame, base: str = "dense") -> pd.Series:
    """Each variant's speed-up over the variant of kind ``base`` (default dense FP32): base
    median time / its median time."""
    dense = table.loc[table["kind"] == base, "median_us"]
    if len(dense) != 1:
        raise ValueError(f"table must hold exactly one variant of kind {base!r}")
    return pd.Series(float(dense.iloc[0]) / table["median_us"].to_numpy(), index=table["name"],
                     name="speed-up")


def break_even_sparsity(table: pd.DataFrame, kind: str = "csr") -> float:
    """The lowest timed sparsity from which every ``kind`` variant is faster than dense FP32
    (median against median); NaN if even the sparsest is not."""
    faster = pd.Series(speedups(table).to_numpy() > 1.0, index=table.index)
    rows = table[table["kind"] == kind].sort_values("sparsity")
    if rows.empty:
        raise ValueError(f"table holds no {kind} variant")
    wins = faster[rows.index].to_numpy()
    losing = np.flatnonzero(~wins)
    first = 0 if losing.size == 0 else losing[-1] + 1
    return float(rows["sparsity"].iloc[first]) if first < len(rows) else math.nan


def layer_input(tokens: int = TOKENS, features: int = LAYER_SHAPE[1], seed: int = 0
                ) -> torch.Tensor:
    """A seeded batch of ``tokens`` standard-normal activations (tokens x features)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tokens, features, generator=generator)


def interpolated_break_even(table: pd.DataFrame, kind: str = "csr", base: str = "dense"
                            ) -> float:
    """The sparsity at which ``kind`` becomes as fast as ``base``, by linear interpolation of
    ``log(time / base time)`` between the last timed sparsity where ``kind`` is slower and the
    next one (faster). NaN if the sparsest is still slower; the lowest timed sparsity if every
    one is faster (the break-even lies at or below it)."""
    ratio = pd.Series(1.0 / speedups(table, base).to_numpy(), index=table.index)
    rows = table[table["kind"] == kind].sort_values("sparsity")
    if rows.empty:
        raise ValueError(f"table holds no {kind} variant")
    sparsity, log_ratio = rows["sparsity"].to_numpy(), np.log(ratio[rows.index].to_numpy())
    losing = np.flatnonzero(log_ratio >= 0)
    if losing.size == 0:
        return float(sparsity[0])
    last = losing[-1]
    if last == len(rows) - 1:
        return math.nan
    fraction = log_ratio[last] / (log_ratio[last] - log_ratio[last + 1])
    return float(sparsity[last] + fraction * (sparsity[last + 1] - sparsity[last]))


#: /proc/cpuinfo flags of native BF16 arithmetic (x86 AVX512-BF16, AMX; Arm BF16 extension)
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU announces native BF16 arithmetic among its ``/proc/cpuinfo`` flags
    (``BF16_FLAGS``); False where there is no ``/proc/cpuinfo``. Without it, torch computes a
    BF16 matmul by converting to FP32, which is slower than FP32 itself."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    flags = {flag for line in cpuinfo.splitlines()
             if line.split(":", 1)[0].strip() in ("flags", "Features")
             for flag in line.split(":", 1)[1].split()}
    return any(flag in flags for flag in BF16_FLAGS)
