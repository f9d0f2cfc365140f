"""Where pruning starts to win: the SNR gap over kurtosis and bit-width, in theory and in data.

The gap is ``SNR_Q(b) - SNR_P(1 - b/16)`` in dB for a truncated Student-t of a given kurtosis
(``pvq.distributions``, df = 2 by default): positive where quantization wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize

from pvq._validation import check_bits, check_real, check_real_sequence
from pvq.compression import equivalent_sparsity
from pvq.distributions import DEFAULT_DF, limit_for_kurtosis, truncated_student_t
from pvq.metrics import kurtosis, snr_db
from pvq.prune import magnitude_prune
from pvq.quantize import mse_scale, quantize
from pvq.theory import pruning_snr_db, quantization_snr_db


def snr_gap_db(kurtosis: float, bits: int, df: float = DEFAULT_DF) -> float:
    """``SNR_Q - SNR_P`` at equal compression for the family member of this (Pearson) kurtosis."""
    bits = check_bits(bits)
    dist = truncated_student_t(df, limit_for_kurtosis(kurtosis, df))
    return quantization_snr_db(dist, bits) - pruning_snr_db(dist, equivalent_sparsity(bits))


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
