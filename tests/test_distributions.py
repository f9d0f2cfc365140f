"""The truncated Student-t family against scipy's Student-t, quadrature and Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from pvq.distributions import kurtosis_of, limit_for_kurtosis, truncated_student_t
from pvq.metrics import kurtosis
from pvq.prune import magnitude_threshold


@pytest.mark.parametrize("df, limit", [(2, 0.5), (2, 10), (1, 50), (5, 3)])
def test_density_is_the_renormalised_student_t(df, limit):
    dist = truncated_student_t(df, limit)
    total, _ = integrate.quad(dist.pdf, -limit, limit, limit=200)
    assert total == pytest.approx(1.0, abs=1e-9)
    x = np.linspace(-limit, limit, 7)
    mass = stats.t.cdf(limit, df) - stats.t.cdf(-limit, df)
    np.testing.assert_allclose(dist.pdf(x), stats.t.pdf(x, df) / mass, rtol=1e-12)
    np.testing.assert_allclose(dist.cdf(dist.ppf([0.001, 0.3, 0.5, 0.9, 0.999])),
                               [0.001, 0.3, 0.5, 0.9, 0.999], rtol=1e-9)
    assert dist.pdf(limit * 1.01) == 0 and dist.cdf(limit) == pytest.approx(1.0)


@pytest.mark.parametrize("df, limit", [(1, 0.3), (2, 10), (3, 40), (6, 5), (30, 2)])
def test_closed_form_moments_agree_with_quadrature(df, limit):
    dist = truncated_student_t(df, limit)
    for n in (2, 4):
        direct, _ = integrate.quad(lambda x: x**n * dist.pdf(x), -limit, limit, limit=200,
                                   epsrel=1e-12)
        assert dist.moment(n) == pytest.approx(direct, rel=1e-8)


def test_moments_agree_with_a_large_sample():
    dist = truncated_student_t(2, 10)
    sample = dist.rvs(size=1_000_000, random_state=0)
    assert kurtosis(sample) == pytest.approx(kurtosis_of(dist), rel=0.02)
    assert sample.var() == pytest.approx(dist.var(), rel=0.01)


def test_limits_of_the_family():
    assert kurtosis_of(truncated_student_t(2, 1e-3)) == pytest.approx(1.8, abs=1e-4)
    assert kurtosis_of(truncated_student_t(10, math.inf)) == pytest.approx(3 + 6 / 6, rel=1e-8)
    assert kurtosis_of(truncated_student_t(1e6, 40)) == pytest.approx(3.0, abs=1e-4)
    kurtoses = [kurtosis_of(truncated_student_t(2, limit)) for limit in (1, 3, 10, 30, 100)]
    assert all(a < b for a, b in zip(kurtoses, kurtoses[1:]))


@pytest.mark.parametrize("target", [2.0, 3.0, 10.0, 100.0])
def test_limit_for_kurtosis_inverts_the_kurtosis(target):
    limit = limit_for_kurtosis(target)
    assert kurtosis_of(truncated_student_t(2, limit)) == pytest.approx(target, rel=1e-9)


def test_the_pruning_threshold_works_on_the_family():
    dist = truncated_student_t(2, 10)
    tau = magnitude_threshold(dist, 0.75)
    assert dist.cdf(tau) - dist.cdf(-tau) == pytest.approx(0.75, abs=1e-12)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: truncated_student_t(0, 1), ValueError, "df"),
        (lambda: truncated_student_t(2, -1), ValueError, "limit"),
        (lambda: truncated_student_t(3, math.inf), ValueError, "limit"),
        (lambda: truncated_student_t("2", 1), TypeError, "df"),
        (lambda: limit_for_kurtosis(1.5), ValueError, "kurtosis"),
        (lambda: limit_for_kurtosis(5.0, df=10), ValueError, "kurtosis"),
        (lambda: kurtosis_of([1, 2]), TypeError, "dist"),
    ],
)
def test_bad_input_is_refused(call, error, words):
    with pytest.raises(error, match=words):
        call()


@pytest.mark.parametrize("df, limit", [(1, 5), (2, 10), (2, 300), (3, 40), (7, 3)])
def test_closed_form_cell_errors_agree_with_quadrature(df, limit):
    dist = truncated_student_t(df, limit)
    lows = np.array([-np.inf, -2.0, -0.3, 0.1, 4.0])
    highs = np.array([-2.0, -0.3, 0.1, 4.0, np.inf])
    centres = np.array([-2.5, -1.0, 0.0, 1.5, 4.5])
    ours = dist.dist.cell_second_moments(lows, highs, centres, *dist.args)
    for low, high, centre, value in zip(lows, highs, centres, ours):
        direct, _ = integrate.quad(lambda x: (x - centre) ** 2 * dist.pdf(x), max(low, -limit),
                                   min(high, limit), epsrel=1e-12, limit=200)
        assert value == pytest.approx(direct, rel=1e-10)
