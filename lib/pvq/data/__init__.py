"""Data that ships inside the package, so the course runs offline and on Binder.

``model_zoo_sqnr()``: the paper's per-tensor measurements on 45 torchvision models
(2,704 tensors x bit-widths 2..8); see ``NOTICE-model-zoo.md`` beside this file for provenance
and licence.

``digits_split()`` / ``digits_loaders()``: scikit-learn's 8x8 handwritten digits with a fixed,
seeded train (1,181) / calibration (256) / test (360) split, as NumPy arrays or torch DataLoaders
(see ``pvq.data.digits``).
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

__all__ = [
    "CALIBRATION_SIZE",
    "TEST_SIZE",
    "TRAIN_SIZE",
    "DigitsLoaders",
    "DigitsSplit",
    "digits_loaders",
    "digits_split",
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
