"""Where pruning starts to win: the SNR gap over kurtosis and bit-width, in theory and in data.

The gap is ``SNR_Q(b) - SNR_P(1 - b/16)`` in dB for a truncated Student-t of a given kurtosis
(``pvq.distributions``, df = 2 by default): positive where quantization wins. The slow steps
notebook 3 takes are ``pvq.job_store.stored`` (computed once per test session).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import optimize

from pvq._validation import check_bits, check_real, check_real_sequence, check_weights
from pvq.compression import equivalent_sparsity
from pvq.distributions import DEFAULT_DF, limit_for_kurtosis, truncated_student_t
from pvq.job_store import stored
from pvq.metrics import kurtosis, snr_db
from pvq.prune import magnitude_prune
from pvq.quantize import mse_scale, quantize
from pvq.theory import pruning_snr_db, quantization_snr_db


def snr_gap_db(kurtosis: float, bits: int, df: float = DEFAULT_DF) -> float:
    """``SNR_Q - SNR_P`` at equal compression for the family member of this (Pearson) kurtosis."""
    bits = check_bits(bits)
    dist = truncated_student_t(df, limit_for_kurtosis(kurtosis, df))
    return quantization_snr_db(dist, bits) - pruning_snr_db(dist, equivalent_sparsity(bits))


@stored
def snr_gap_map(kurtoses: np.ndarray, bit_widths: Sequence[int],
                df: float = DEFAULT_DF) -> pd.DataFrame:
    """The gap for every (kurtosis, bits): rows are kurtoses, columns bit-widths, values dB."""
    kurtoses = check_real_sequence(kurtoses, "kurtoses")
    bit_widths = [check_bits(bits, "bit_widths") for bits in bit_widths]
    rows = {}
    for kurtosis in kurtoses:
        dist = truncated_student_t(df, limit_for_kurtosis(kurtosis, df))
        rows[kurtosis] = [quantization_snr_db(dist, b)
                          - pruning_snr_db(dist, equivalent_sparsity(b)) for b in bit_widths]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(bit_widths))
    table.index.name, table.columns.name = "kurtosis", "bits"
    return table


@stored
def crossover_kurtosis(bits: int, df: float = DEFAULT_DF, highest: float = 1e4) -> float:
    """The kurtosis above which pruning wins at this bit-width (``inf`` if not below ``highest``).

    The gap falls as the kurtosis grows, so the crossover is the root of ``snr_gap_db``.
    """
    bits = check_bits(bits)
    lowest = 2.0
    if not check_real(highest, "highest") > lowest:
        raise ValueError(f"highest must be above {lowest}, got {highest}")
    if snr_gap_db(highest, bits, df) > 0:
        return float("inf")
    if snr_gap_db(lowest, bits, df) < 0:
        return lowest
    return float(optimize.brentq(lambda k: snr_gap_db(k, bits, df), lowest, highest,
                                 rtol=1e-6))


def tensor_snr_table(tensors: dict[str, np.ndarray], bit_widths: Sequence[int] = range(2, 9),
                     model: str = "") -> pd.DataFrame:
    """Measure named weight tensors like the model-zoo table, with this course's definitions.

    One row per (tensor, bits): Pearson ``kurtosis``, ``quant_sqnr_db`` (b bits at
    ``mse_scale``) and ``pruning_sqnr_db`` (magnitude pruning to ``1 - b/16``).
    """
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must map names to weight arrays, got {type(tensors).__name__}")
    rows = []
    for layer, weights in tensors.items():
        tail = kurtosis(weights)
        for bits in bit_widths:
            rows.append({
                "model": model, "layer": layer, "bits": bits, "kurtosis": tail,
                "quant_sqnr_db": snr_db(weights, quantize(weights, bits, mse_scale(weights, bits))),
                "pruning_sqnr_db": snr_db(weights, magnitude_prune(weights,
                                                                   equivalent_sparsity(bits))),
            })
    return pd.DataFrame(rows)


def win_rates(table: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """Share of tensors where pruning's SNR beats quantization's, grouped by ``by``.

    ``table`` has the columns of ``pvq.data.model_zoo_sqnr`` (one row per tensor and bit-width).
    """
    wins = table.assign(pruning_wins=table.pruning_sqnr_db > table.quant_sqnr_db)
    return wins.groupby(by, observed=True).pruning_wins.agg(["mean", "size"]).rename(
        columns={"mean": "pruning wins", "size": "tensors"})


#: The model-zoo table's quirks: rows whose numbers are artefacts of the authors' FP16 arithmetic,
#: not measurements. Each maps to a test on the table (``pvq.data.model_zoo_sqnr`` columns).
ZOO_QUIRKS = {
    "infinite pruning SNR": lambda table: np.isinf(table.pruning_sqnr_db),
    "excess kurtosis exactly -3": lambda table: table.sample_kurtosis == -3,
    "infinite excess kurtosis": lambda table: np.isinf(table.sample_kurtosis),
}


def zoo_quirks(table: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per entry of ``ZOO_QUIRKS`` (a row may have several), same index."""
    return pd.DataFrame({name: test(table) for name, test in ZOO_QUIRKS.items()}, index=table.index)


def quirk_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Rows per bit-width flagged by each quirk, by any quirk, and the clean rows left."""
    flags = zoo_quirks(table).assign(**{"any quirk": lambda f: f.any(axis=1)})
    counts = flags.groupby(table.bits).sum()
    counts["clean"] = table.groupby("bits").size() - counts["any quirk"]
    return counts


def clean_zoo(table: pd.DataFrame) -> pd.DataFrame:
    """The rows without any quirk, with the Pearson ``kurtosis`` (excess + 3) added.

    The one place where the course decides which rows of the model-zoo table it believes.
    """
    clean = table[~zoo_quirks(table).any(axis=1)]
    return clean.assign(kurtosis=clean.sample_kurtosis + 3.0)


def win_rates_by_bits(table: pd.DataFrame) -> pd.DataFrame:
    """Share of tensors where pruning wins per bit-width, over all rows and over ``clean_zoo``."""
    every, clean = win_rates(table, "bits"), win_rates(clean_zoo(table), "bits")
    return pd.concat({"all rows": every, "clean rows": clean}, axis=1)


def zoo_rms(table: pd.DataFrame) -> pd.Series:
    """Each row's weight rms, from its SNR and MSE: ``sqrt(quant_mse 10^(SNR/10))``."""
    return np.sqrt(table.quant_mse * 10 ** (table.quant_sqnr_db / 10)).rename("rms")


def _authors_quantize(t: torch.Tensor, bits: int, scale: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.round(t / scale), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1) * scale


@stored
def authors_snr_db(weights: np.ndarray, bits: int,
                   dtype: torch.dtype = torch.float16) -> tuple[float, float]:
    """``(quantization, pruning)`` SNR in dB as the authors' code measured the model-zoo table.

    Their ``quant_pruning_weights_sqnr.py`` converts the weights to FP16 and then, in torch:
    searches 100 clipping ranges ``k (max|w| + 0.5) / 100`` with the summed squared error computed
    in the weights' dtype (a 0-d float32 scale does not promote an FP16 tensor); quantizes at the
    winner with a 1-d float32 scale (which does promote, so the final error is float32); divides by
    ``mean(w^2)`` in the weights' dtype. Pruning: ``mean((w - mask w)^2)`` in the weights' dtype,
    ``int(c n)`` smallest magnitudes pruned. ``dtype=torch.float32`` runs the same steps in FP32.
    """
    check_weights(weights, "weights")
    bits = check_bits(bits)
    t = torch.as_tensor(np.asarray(weights, dtype=np.float32)).to(dtype).flatten()
    top = 2 ** (bits - 1) - 1
    step = (float(t.abs().max()) + 0.5) / 100
    losses = [float(torch.sum((t - _authors_quantize(t, bits, torch.tensor(step * k) / top)) ** 2))
              for k in range(1, 101)]
    best = 1 + int(np.argmin(losses))
    t_q = _authors_quantize(t, bits, torch.tensor([step * best], dtype=torch.float32) / top)
    power = float(torch.mean(t**2))
    quant_error = float(((t - t_q) ** 2).mean())
    mask = torch.ones_like(t)
    mask[torch.argsort(t.abs(), stable=True)[: int(equivalent_sparsity(bits) * t.numel())]] = 0
    pruning_error = float(torch.mean((t - mask * t) ** 2))
    quant_db, pruning_db = (float(10 * np.log10(power / e)) if e > 0 else float("inf")
                            for e in (quant_error, pruning_error))
    return quant_db, pruning_db
