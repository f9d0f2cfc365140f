"""pvq.rotation: an orthogonal Hadamard matrix leaves a layer's outputs unchanged."""

import numpy as np
import pytest

from pvq.rotation import hadamard


@pytest.mark.parametrize("n", [1, 2, 4, 64])
def test_hadamard_is_orthogonal_with_equal_magnitudes(n):
    R = hadamard(n)
    np.testing.assert_allclose(R @ R.T, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(np.abs(R), 1 / np.sqrt(n))
    np.testing.assert_array_equal(R[:2 if n > 1 else 1, 0], 1 / np.sqrt(n))


def test_rotating_weights_and_inputs_keeps_the_outputs():
    rng = np.random.default_rng(0)
    W, X, R = rng.standard_normal((3, 8)), rng.standard_normal((5, 8)), hadamard(8)
    np.testing.assert_allclose((W @ R) @ (X @ R).T, W @ X.T, atol=1e-12)


@pytest.mark.parametrize("n", [0, 3, 12, 2.0, "4"])
def test_bad_sizes_name_the_argument(n):
    with pytest.raises((ValueError, TypeError), match="n"):
        hadamard(n)
