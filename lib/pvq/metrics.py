"""How far a compressed tensor is from the original, and how heavy its tails are."""

from __future__ import annotations

import math

import numpy as np

from pvq._validation import Weights, check_weights, to_numpy


def snr_db(w: Weights, w_hat: Weights) -> float:
    """Signal-to-noise ratio in decibels: ``10 log10(E[w^2] / E[(w - w_hat)^2])``.

    Scale free (multiplying both by a constant changes nothing); +inf when ``w_hat == w``.
    """
    check_weights(w, "w")
    check_weights(w_hat, "w_hat")
    if tuple(w.shape) != tuple(w_hat.shape):
        raise ValueError(f"w and w_hat must have the same shape, got {tuple(w.shape)} "
                         f"and {tuple(w_hat.shape)}")
    signal, estimate = to_numpy(w), to_numpy(w_hat)
    power = float(np.mean(signal**2))
    if power == 0.0:
        raise ValueError("w is all zeros: the SNR is undefined")
    noise = float(np.mean((signal - estimate) ** 2))
    return math.inf if noise == 0.0 else 10.0 * math.log10(power / noise)


def snr_db_standard_error(w: Weights, w_hat: Weights) -> float:
    """Standard error of ``snr_db(w, w_hat)`` when the entries of ``w`` are i.i.d. samples.

    Delta method on ``10 log10(mean(w^2) / mean(e^2))`` with ``e = w - w_hat``:
    ``(10 / ln 10) * std(w^2 / mean(w^2) - e^2 / mean(e^2)) / sqrt(n)``. Heavy tails in ``e^2``
    (a few clipped outliers) make it large, and make it an estimate itself.
    """
    check_weights(w, "w")
    check_weights(w_hat, "w_hat")
    if tuple(w.shape) != tuple(w_hat.shape):
        raise ValueError(f"w and w_hat must have the same shape, got {tuple(w.shape)} "
                         f"and {tuple(w_hat.shape)}")
    signal, error = to_numpy(w).ravel() ** 2, (to_numpy(w) - to_numpy(w_hat)).ravel() ** 2
    if signal.size < 2 or error.mean() == 0.0 or signal.mean() == 0.0:
        raise ValueError("need at least 2 entries, a non-zero w and a non-zero error")
    ratio = signal / signal.mean() - error / error.mean()
    return 10.0 / math.log(10.0) * float(ratio.std(ddof=1)) / math.sqrt(signal.size)


def kurtosis(w: Weights) -> float:
    """Pearson kurtosis ``E[(w - mu)^4] / sigma^4`` (normal = 3, biased moments).

    The paper's published per-tensor data reports *excess* kurtosis, Pearson - 3 (normal = 0);
    see ``excess_kurtosis``.
    """
    check_weights(w)
    values = to_numpy(w).ravel()
    centred = values - values.mean()
    variance = float(np.mean(centred**2))
    if variance <= np.finfo(float).tiny:
        raise ValueError("w is constant: its kurtosis is undefined")
    return float(np.mean(centred**4)) / variance**2


def excess_kurtosis(w: Weights) -> float:
    """Excess (Fisher) kurtosis, Pearson - 3: what the paper's model-zoo table reports."""
    return kurtosis(w) - 3.0
