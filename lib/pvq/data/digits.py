"""Handwritten digits (scikit-learn's copy of the UCI 8x8 set, 1,797 images, ships offline) with
one fixed, stratified train / calibration / test split.

Split sizes (seed 0 by default, stratified by label so every part has all ten digits in the
dataset's proportions):

========== ====== =====================================================================
part        size  used for
========== ====== =====================================================================
train       1,181 training the baselines, fine-tuning, BatchNorm re-estimation
calibration   256 post-training choices: per-layer inputs ``X``, quantization scales
test          360 every accuracy the course reports
========== ====== =====================================================================

Images are ``float32`` arrays of shape ``(n, 1, 8, 8)`` with ``x = pixel / 16`` in ``[0, 1]``;
labels are ``int64`` in ``0..9``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

from pvq._validation import check_int

TRAIN_SIZE = 1181
CALIBRATION_SIZE = 256
TEST_SIZE = 360
#: the largest pixel value of the 8x8 digits (pixels count dark cells of a 4x4 block: 0..16)
PIXEL_MAX = 16.0


class DigitsSplit(NamedTuple):
    """The three parts of the split as NumPy arrays (images ``(n, 1, 8, 8)``, labels ``(n,)``)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_calibration: np.ndarray
    y_calibration: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class DigitsLoaders(NamedTuple):
    """The three parts as torch DataLoaders; only ``train`` shuffles."""

    train: DataLoader
    calibration: DataLoader
    test: DataLoader


def digits_split(seed: int = 0) -> DigitsSplit:
    """The split described in the module docstring; the same ``seed`` gives the same arrays."""
    seed = check_int(seed, "seed", 0)
    digits = load_digits()
    images = (digits.images / PIXEL_MAX).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(
        images, labels, test_size=TEST_SIZE, stratify=labels, random_state=seed)
    x_train, x_calibration, y_train, y_calibration = train_test_split(
        x_rest, y_rest, test_size=CALIBRATION_SIZE, stratify=y_rest, random_state=seed)
    return DigitsSplit(x_train, y_train, x_calibration, y_calibration, x_test, y_test)


def digits_loaders(batch_size: int = 32, seed: int = 0) -> DigitsLoaders:
    """DataLoaders over ``digits_split(seed)``. The training loader shuffles with its own
    generator seeded by ``seed``: a fresh call replays the same batch order.
    """
    batch_size = check_int(batch_size, "batch_size", 1)
    return make_loaders(digits_split(seed), batch_size=batch_size, seed=seed)


def make_loaders(split: DigitsSplit, *, batch_size: int, seed: int) -> DigitsLoaders:
    """DataLoaders over the parts of ``split``; only training shuffles, with its own generator
    seeded by ``seed``."""

    def loader(x: np.ndarray, y: np.ndarray, shuffle: bool) -> DataLoader:
        dataset = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)

    return DigitsLoaders(
        train=loader(split.x_train, split.y_train, shuffle=True),
        calibration=loader(split.x_calibration, split.y_calibration, shuffle=False),
        test=loader(split.x_test, split.y_test, shuffle=False),
    )
