"""How far a compressed tensor is from the original, and how heavy its tails are."""

from __future__ import annotations

import math

import numpy as np

from pvq._validation import (
    Weights,
    check_weights,
    power_of_two_exponent,
    to_numpy,
    unit_scaled,
)


def snr_db(w: Weights, w_hat: Weights) -> float:
    """Signal-to-noise ratio in decibels: ``10 log10(E[w^2] / E[(w - w_hat)^2])``.

    Scale free (multiplying both by a constant changes nothing); +inf when ``w_hat == w``.
    Computed on power-of-two rescaled copies, so any float64 magnitude works.
    """
    signal, error, exponent = _signal_and_error(w, w_hat)
    if not error.any():
        return math.inf
    (power, power_exponent), (noise, noise_exponent) = _mean_square(signal), _mean_square(error)
    # an integer number of factors 4 apart, so a power-of-two scaling of w and w_hat is exact
    factors_of_4 = power_exponent - noise_exponent - exponent
    return 10.0 * (math.log10(power / noise) + 2 * factors_of_4 * math.log10(2.0))


def snr_db_standard_error(w: Weights, w_hat: Weights) -> float:
    """Standard error of ``snr_db(w, w_hat)`` when the entries of ``w`` are i.i.d. samples.

    Delta method on ``10 log10(mean(w^2) / mean(e^2))`` with ``e = w - w_hat``:
    ``(10 / ln 10) * std(w^2 / mean(w^2) - e^2 / mean(e^2)) / sqrt(n)``. Heavy tails in ``e^2``
    (a few clipped outliers) make it large, and make it an estimate itself.
    """
    signal, error, _ = _signal_and_error(w, w_hat)
    if signal.size < 2 or not error.any():
        raise ValueError("need at least 2 entries in w and a non-zero error w - w_hat")
    signal, error = unit_scaled(signal.ravel()) ** 2, unit_scaled(error.ravel()) ** 2
    ratio = signal / signal.mean() - error / error.mean()
    return 10.0 / math.log(10.0) * float(ratio.std(ddof=1)) / math.sqrt(signal.size)


def _signal_and_error(w: Weights, w_hat: Weights) -> tuple[np.ndarray, np.ndarray, int]:
    """``w``, ``(w - w_hat) / 2^e`` and ``e``, with ``2^e`` from max(|w|, |w_hat|): the scaling
    is exact and the difference cannot overflow. A clear error for an all-zero ``w``."""
    check_weights(w, "w")
    check_weights(w_hat, "w_hat")
    if tuple(w.shape) != tuple(w_hat.shape):
        raise ValueError(f"w and w_hat must have the same shape, got {tuple(w.shape)} "
                         f"and {tuple(w_hat.shape)}")
    signal, estimate = to_numpy(w), to_numpy(w_hat)
    if not signal.any():
        raise ValueError("w is all zeros: the SNR is undefined")
    exponent = max(power_of_two_exponent(signal), power_of_two_exponent(estimate))
    return signal, np.ldexp(signal, -exponent) - np.ldexp(estimate, -exponent), exponent


def _mean_square(values: np.ndarray) -> tuple[float, int]:
    """``(m, e)`` with ``mean(values^2) = m 4^e`` and m in [1/(4n), 1) (values / 2^e squared)."""
    exponent = power_of_two_exponent(values)
    scaled = np.ldexp(values, -exponent)
    return float(np.mean(scaled * scaled)), exponent


def kurtosis(w: Weights) -> float:
    """Pearson kurtosis ``E[(w - mu)^4] / sigma^4`` (normal = 3, biased moments).

    The paper's published per-tensor data reports *excess* kurtosis, Pearson - 3 (normal = 0);
    see ``excess_kurtosis``. Scale free: computed on power-of-two rescaled values.
    """
    check_weights(w)
    values = unit_scaled(to_numpy(w).ravel())
    centred = unit_scaled(values - values.mean())
    if not centred.any():
        raise ValueError("w is constant: its kurtosis is undefined")
    squares = centred * centred
    return float(np.mean(squares * squares)) / float(np.mean(squares)) ** 2


def excess_kurtosis(w: Weights) -> float:
    """Excess (Fisher) kurtosis, Pearson - 3: what the paper's model-zoo table reports."""
    return kurtosis(w) - 3.0
