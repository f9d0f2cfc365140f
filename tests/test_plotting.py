"""The shared figure helpers draw what they claim."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from pvq.plotting import error_density  # noqa: E402
from pvq.theory import optimal_scale, pruning_mse, quantization_mse  # noqa: E402


def _area(collection):
    x, y = collection.get_paths()[0].vertices.T
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))  # shoelace


@pytest.mark.parametrize("dist", [stats.norm(), stats.laplace()], ids=["normal", "laplace"])
def test_error_density_areas_are_the_mean_squared_errors(dist):
    fig, axes = plt.subplots(2, 1)
    scale = optimal_scale(dist, 3)
    x = np.linspace(-25.0, 25.0, 200_001)
    error_density(axes, dist, 3, scale, 0.6, x=x)
    pruning, quantization = axes[1].collections
    assert _area(pruning) == pytest.approx(pruning_mse(dist, 0.6), rel=1e-3)
    assert _area(quantization) == pytest.approx(quantization_mse(dist, 3, scale), rel=1e-3)
    assert len(axes[0].collections[0].get_segments()) == 2**3  # every level is in view
    plt.close(fig)
