"""Paired comparisons of two classifiers on the same test examples: an interval and a test.

Both take per-example correctness (1 = right) of method A and method B on the *same* examples,
so what the examples have in common (an easy image is easy for both) cancels out:

- ``paired_bootstrap(a, b)``: the accuracy gap ``acc(A) - acc(B)`` with a percentile bootstrap
  interval. ``a`` and ``b`` may be ``(seeds, n)``: the gap is then averaged over seeds, and the
  bootstrap resamples seeds and examples independently (two-way), so the interval covers both
  the training noise and the test set's sampling error. ``groups`` names the original an example
  was made from (several distorted copies of one image are not independent): whole groups are
  resampled (cluster bootstrap), which widens the interval to what the originals support.
- ``mcnemar(a, b)``: McNemar's exact test, ``scipy.stats.binomtest`` of the discordant pairs
  (A right and B wrong: ``n_ab``; the reverse: ``n_ba``) against ``p = 1/2``. It assumes
  independent examples: with distorted copies of the same originals its p-value is too small,
  so prefer the cluster bootstrap there.
- ``interval_verdict(low, high, above, below)``: the name of the sign of a difference ``A - B``
  that its interval supports: ``above`` when ``low > 0``, ``below`` when ``high < 0``, else
  ``UNDECIDED`` (an interval that reaches zero decides nothing).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from pvq._validation import check_positive, check_real

#: what ``interval_verdict`` returns when the interval includes zero
UNDECIDED = "not decided"


class PairedGap(NamedTuple):
    """``acc(A) - acc(B)`` and its ``confidence`` interval ``[low, high]``."""

    gap: float
    low: float
    high: float
    confidence: float


class McNemar(NamedTuple):
    """Discordant pairs and the exact two-sided p-value of ``n_ab = n_ba``."""

    n_ab: int
    n_ba: int
    pvalue: float


def _as_correct(values: object, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool:
        array = array.astype(np.int8)
    if array.dtype.kind not in "iuf" or array.size == 0:
        raise TypeError(f"{name} must be a non-empty array of 0/1 or booleans")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1 (per-example correctness)")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 1-D (examples) or 2-D (seeds x examples), "
                         f"got shape {array.shape}")
    return array.astype(np.float64)


def _check_pair(a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_correct(a, "a"), _as_correct(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (paired), got {a.shape} and {b.shape}")
    return a, b


def paired_bootstrap(a: object, b: object, *, groups: object = None, confidence: float = 0.95,
                     resamples: int = 10_000, seed: int = 0) -> PairedGap:
    """The gap ``mean(a) - mean(b)`` with a percentile bootstrap interval (module docstring).

    ``a``, ``b``: correctness, shape ``(n,)`` or ``(seeds, n)``, paired by position (the same
    example in the same column, the same seed in the same row). ``groups``: optional ``(n,)``
    labels; examples with one label are resampled together.
    """
    a, b = _check_pair(a, b)
    confidence = check_positive(confidence, "confidence")
    if confidence >= 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples must be an integer >= 100, got {resamples!r}")
    n_seeds, n = a.shape
    if groups is None:
        labels = np.arange(n)
    else:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {groups.shape}")
        labels = np.unique(groups, return_inverse=True)[1]
    n_groups = labels.max() + 1
    # per seed and group: summed difference; per group: number of examples
    differences = np.zeros((n_seeds, n_groups))
    np.add.at(differences.T, labels, (a - b).T)
    sizes = np.bincount(labels, minlength=n_groups).astype(np.float64)
    rng = np.random.default_rng(seed)
    group_weights = rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups), size=resamples)
    seed_weights = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=resamples)
    # gap of one resample = sum_s sum_g w_s w_g D_sg / (n_seeds * sum_g w_g n_g)
    numerators = ((seed_weights @ differences) * group_weights).sum(axis=1)
    gaps = numerators / (n_seeds * (group_weights @ sizes))
    alpha = 1 - confidence
    low, high = np.quantile(gaps, [alpha / 2, 1 - alpha / 2])
    return PairedGap(float((a - b).mean()), float(low), float(high), confidence)


def mcnemar(a: object, b: object) -> McNemar:
    """McNemar's exact test on one pair of correctness vectors ``(n,)`` (module docstring)."""
    a, b = _check_pair(a, b)
    if a.shape[0] != 1:
        raise ValueError("mcnemar compares one run of each method: pass 1-D arrays")
    n_ab = int(((a == 1) & (b == 0)).sum())
    n_ba = int(((a == 0) & (b == 1)).sum())
    if n_ab + n_ba == 0:
        return McNemar(0, 0, 1.0)
    return McNemar(n_ab, n_ba, float(stats.binomtest(n_ab, n_ab + n_ba, 0.5).pvalue))


def interval_verdict(low: float, high: float, above: str, below: str) -> str:
    """``above`` if the interval ``[low, high]`` of a difference ``A - B`` lies above zero
    (``low > 0``), ``below`` if it lies below (``high < 0``), else ``UNDECIDED``."""
    low, high = check_real(low, "low"), check_real(high, "high")
    if low > high:
        raise ValueError(f"low must be <= high, got {low} > {high}")
    for name, label in (("above", above), ("below", below)):
        if not isinstance(label, str):
            raise TypeError(f"{name} must be a str, got {type(label).__name__} {label!r}")
    if above == below or UNDECIDED in (above, below):
        raise ValueError(f"above and below must be two names other than {UNDECIDED!r}, got "
                         f"{above!r} and {below!r}")
    return above if low > 0 else below if high < 0 else UNDECIDED
