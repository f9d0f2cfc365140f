"""A harder digits task with headroom: the 8x8 digits under random affine distortion and noise.

Built only from what ships (``pvq.data.digits_split``): every image of a part is a distorted copy
of an original *of that part*, so the test set is made from the 360 held-out test originals only,
and no test original (nor a distortion of it) is ever trained or calibrated on.

Each copy: a random rotation (uniform in +-``ROTATION_DEGREES``), scaling (uniform in
``1 +- SCALE``) and shift (uniform in +-``SHIFT_PIXELS`` per axis) about the image centre,
bilinear (``scipy.ndimage.affine_transform``, zeros outside), then Gaussian pixel noise of standard
deviation ``NOISE``, clipped to ``[0, 1]``. At 8x8 a rotation by 15 degrees already moves the
corner pixels by one cell: the task loses the clean digits' near-perfect separability, so a small
network stays clearly below 100 % and compression has room to cost accuracy.

========== ====================== =======
part        originals x copies     images
========== ====================== =======
train       1,181 x 4              4,724
calibration   256 x 4              1,024
test          360 x 10             3,600
========== ====================== =======

``test_source[i]`` is the index (into ``digits_split().x_test``) of the original test image ``i``
was made from: copies of one original are not independent, so intervals resample originals
(``pvq.stats.paired_bootstrap(..., groups=test_source)``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from pvq._validation import check_int
from pvq.data.digits import DigitsLoaders, DigitsSplit, digits_split, make_loaders

ROTATION_DEGREES = 15.0
SCALE = 0.1
SHIFT_PIXELS = 1.0
NOISE = 0.15
#: distorted copies of each original, per part
COPIES = {"train": 4, "calibration": 4, "test": 10}


class DistortedSplit(NamedTuple):
    """The distorted parts (images ``(n, 1, 8, 8)`` float32, labels int64) and, per test image,
    the index of its original in ``digits_split().x_test``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_calibration: np.ndarray
    y_calibration: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_source: np.ndarray


def distort(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random distortion (module docstring) of each image of ``images`` ``(n, 1, h, w)``."""
    n, _, height, width = images.shape
    angles = np.deg2rad(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES, n))
    scales = rng.uniform(1 - SCALE, 1 + SCALE, n)
    shifts = rng.uniform(-SHIFT_PIXELS, SHIFT_PIXELS, (n, 2))
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    out = np.empty_like(images)
    for i in range(n):
        cos, sin = np.cos(angles[i]), np.sin(angles[i])
        # affine_transform maps output coordinates to input ones: the inverse transformation
        inverse = np.array([[cos, -sin], [sin, cos]]) / scales[i]
        offset = centre - inverse @ (centre + shifts[i])
        out[i, 0] = ndimage.affine_transform(images[i, 0], inverse, offset=offset, order=1)
    noisy = out + rng.normal(0.0, NOISE, out.shape).astype(images.dtype)
    return np.clip(noisy, 0.0, 1.0)


def _copies(images: np.ndarray, labels: np.ndarray, copies: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate([distort(images, rng) for _ in range(copies)])
    return x, np.tile(labels, copies), np.tile(np.arange(len(labels)), copies)


def distorted_digits_split(seed: int = 0) -> DistortedSplit:
    """The distorted task over ``digits_split(seed)``; each part has its own random stream
    (seeded by ``seed`` and the part), so the same ``seed`` gives the same arrays."""
    seed = check_int(seed, "seed", 0)
    clean = digits_split(seed)
    parts = {}
    for index, part in enumerate(COPIES):
        rng = np.random.default_rng([seed, index])
        parts[part] = _copies(getattr(clean, f"x_{part}"), getattr(clean, f"y_{part}"),
                              COPIES[part], rng)
    return DistortedSplit(*parts["train"][:2], *parts["calibration"][:2], *parts["test"][:2],
                          test_source=parts["test"][2])


def distorted_digits_loaders(batch_size: int = 64, seed: int = 0) -> DigitsLoaders:
    """DataLoaders over ``distorted_digits_split(seed)`` (training shuffles with its own
    generator seeded by ``seed``, as ``pvq.data.digits_loaders``)."""
    batch_size = check_int(batch_size, "batch_size", 1)
    split = distorted_digits_split(seed)
    return make_loaders(DigitsSplit(*split[:6]), batch_size=batch_size, seed=seed)
