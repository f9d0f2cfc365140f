"""The vectorised adaptive quadrature behind pvq.theory, against scipy.integrate.quad."""

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.integrate import IntegrationWarning

from pvq._quadrature import second_moments


def _quad(dist, low, high, centre):
    if not high > low:
        return 0.0
    return integrate.quad(lambda x: (x - centre) ** 2 * dist.pdf(x), low, high, epsabs=0.0,
                          epsrel=1e-13, limit=500)[0]


@pytest.mark.parametrize(
    "dist", [stats.norm(), stats.laplace(0.3), stats.t(3), stats.t(2.6), stats.uniform(-1, 2)],
    ids=["normal", "laplace kink at 0.3", "t(3)", "t(2.6)", "uniform (jumps at +-1)"],
)
def test_second_moments_agree_with_quad(dist):
    lows = np.array([-np.inf, -2.0, -0.5, 0.7, -np.inf, 1.0, -1.0])
    highs = np.array([-2.0, -0.5, 0.7, np.inf, np.inf, 1.0, 1.0])
    centres = np.array([-2.5, -1.0, 0.2, 1.1, 0.4, 0.0, 0.0])
    # as pvq.theory does: clip to the support, so that jumps fall on the ends of intervals
    lows, highs = (np.clip(ends, *dist.support()) for ends in (lows, highs))
    values = second_moments(dist.pdf, lows, highs, centres, spread=1.0)
    expected = [_quad(dist, *args) for args in zip(lows, highs, centres)]
    np.testing.assert_allclose(values, expected, rtol=1e-10, atol=1e-300)
    assert values[5] == 0.0  # an empty interval


def test_rows_are_independent_and_shapes_are_kept():
    dist = stats.laplace()
    lows = np.array([[-np.inf, 0.0], [-5.0, 1e4]])
    highs = np.array([[0.0, np.inf], [5.0, 2e4]])
    values = second_moments(dist.pdf, lows, highs, 0.0, spread=1.0)
    assert values.shape == (2, 2)
    np.testing.assert_allclose(values[0], [1.0, 1.0], rtol=1e-11)
    assert values[1, 0] == pytest.approx(_quad(dist, -5.0, 5.0, 0.0), rel=1e-11)


def test_a_cell_far_wider_than_the_density_is_resolved():
    # a huge zero cell: the mass sits in a millionth of it, and x near 0 must stay exact
    value = second_moments(stats.t(3).pdf, np.array([-4e5]), np.array([4e5]), 0.0, spread=1.0)
    assert value[0] == pytest.approx(3.0 - 2 * _quad(stats.t(3), 4e5, math.inf, 0.0), rel=1e-10)


def test_a_tail_too_heavy_for_the_map_is_reported():
    with pytest.warns(IntegrationWarning, match="did not reach"):
        value = second_moments(stats.t(2.1).pdf, np.array([1.0]), np.array([np.inf]), 0.0, 1.0)
    assert value[0] == pytest.approx(_quad(stats.t(2.1), 1.0, math.inf, 0.0), rel=1e-2)
