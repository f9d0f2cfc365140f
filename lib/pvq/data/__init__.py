"""Data that ships inside the package, so the course runs offline and on Binder.

``model_zoo_sqnr()``: the paper's per-tensor measurements on 45 torchvision models
(2,704 tensors x bit-widths 2..8); see ``NOTICE-model-zoo.md`` beside this file for provenance
and licence.

``digits_split()`` / ``digits_loaders()``: scikit-learn's 8x8 handwritten digits with a fixed,
seeded train (1,181) / calibration (256) / test (360) split, as NumPy arrays or torch DataLoaders
(see ``pvq.data.digits``).

``distorted_digits_split()`` / ``distorted_digits_loaders()``: a harder task with headroom built
from the same split, each part's originals under random affine distortion and noise, 3,600 test
images made from the 360 test originals only (see ``pvq.data.distorted``).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from pvq.data.digits import (
    CALIBRATION_SIZE,
    TEST_SIZE,
    TRAIN_SIZE,
    DigitsLoaders,
    DigitsSplit,
    digits_loaders,
    digits_split,
)
from pvq.data.distorted import DistortedSplit, distorted_digits_loaders, distorted_digits_split

__all__ = [
    "CALIBRATION_SIZE",
    "TEST_SIZE",
    "TRAIN_SIZE",
    "DigitsLoaders",
    "DigitsSplit",
    "DistortedSplit",
    "digits_loaders",
    "digits_split",
    "distorted_digits_loaders",
    "distorted_digits_split",
    "model_zoo_sqnr",
]

MODEL_ZOO_FILE = "model_zoo_weights_sqnr.csv"


def model_zoo_sqnr() -> pd.DataFrame:
    """The model-zoo table: one row per (model, layer, bits).

    Columns: model, layer, bits, sparsity (= 1 - bits/16), sample_kurtosis (*excess* kurtosis,
    normal = 0), quant_sqnr_db, pruning_sqnr_db, quant_mse, pruning_mse.
    """
    with resources.files(__name__).joinpath(MODEL_ZOO_FILE).open("r") as handle:
        return pd.read_csv(handle)
