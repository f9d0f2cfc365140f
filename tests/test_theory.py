"""Expected quantization and pruning error of a distribution: exact values, quad, Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from pvq.distributions import truncated_student_t
from pvq.metrics import snr_db, snr_db_standard_error
from pvq.prune import magnitude_prune, magnitude_threshold
from pvq.quantize import grid_limits, quantize
from pvq.theory import (
    cell_error,
    optimal_scale,
    pruning_mse,
    pruning_snr_db,
    quantization_mse,
    quantization_mse_parts,
    quantization_snr_db,
    signal_power,
)

STANDARD_NORMAL = stats.norm()
BITS = range(2, 9)
#: the exact values for N(0, 1) on the grid -2^(b-1) .. 2^(b-1)-1, rounded to 0.01 dB
QUANTIZATION_DB = [8.26, 13.91, 19.26, 24.53, 29.82, 35.16, 40.57]
#: pruning to sparsity 1 - b/16
PRUNING_DB = [3.03, 4.30, 5.58, 6.91, 8.31, 9.82, 11.47]


class _Wrapped(stats.rv_continuous):
    """A distribution given only by pdf, cdf and support: forces the quadrature path."""

    def _argcheck(self, family_id):
        return family_id >= 0

    def _get_support(self, family_id):
        return _FAMILIES[int(np.ravel(family_id)[0])].support()

    def _pdf(self, x, family_id):
        return _FAMILIES[int(family_id[0])].pdf(x)

    def _cdf(self, x, family_id):
        return _FAMILIES[int(family_id[0])].cdf(x)

    def _ppf(self, q, family_id):
        return _FAMILIES[int(family_id[0])].ppf(q)


_FAMILIES = [stats.norm(), stats.laplace(), truncated_student_t(2, 10.0)]
_wrapped = _Wrapped(name="wrapped", shapes="family_id")


class _ScaleMixture(stats.rv_continuous):
    """(1 - w) N(0, 1) + w N(0, r^2): core and rare wide weights of similar energy."""

    def _pdf(self, x, w, r):
        return (1 - w) * stats.norm.pdf(x) + w * stats.norm.pdf(x / r) / r

    def _cdf(self, x, w, r):
        return (1 - w) * stats.norm.cdf(x) + w * stats.norm.cdf(x / r)

    def _stats(self, w, r):
        # closed-form moments: scipy would otherwise integrate x^2 over the ppf (half a minute)
        return 0.0, (1 - w) + w * r**2, 0.0, 3 * ((1 - w) + w * r**4) / ((1 - w) + w * r**2) ** 2 - 3


GENERIC = {
    "t(3)": stats.t(3),
    "laplace": stats.laplace(),
    "truncated t(2, 10)": truncated_student_t(2, 10.0),
    "truncated t(1, 50)": truncated_student_t(1, 50.0),
}


def _quad_mse(dist, bits, scale, symmetric=False):
    """The same sum of cell integrals with scipy.integrate.quad, one cell at a time."""
    lowest, highest = grid_limits(bits, symmetric=symmetric)
    low, high = dist.support()
    total = 0.0
    for level in range(lowest, highest + 1):
        a = -math.inf if level == lowest else (level - 0.5) * scale
        b = math.inf if level == highest else (level + 0.5) * scale
        a, b = max(a, low), min(b, high)
        if b > a:
            points = [0.0] if a < 0 < b and math.isfinite(a) and math.isfinite(b) else None
            total += integrate.quad(lambda x: (x - level * scale) ** 2 * dist.pdf(x), a, b,
                                    points=points, epsabs=0.0, epsrel=1e-12, limit=500)[0]
    return total


@pytest.mark.parametrize("bits, expected", list(zip(BITS, QUANTIZATION_DB)))
def test_exact_normal_quantization_snr(bits, expected):
    assert quantization_snr_db(STANDARD_NORMAL, bits) == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize("bits, expected", list(zip(BITS, PRUNING_DB)))
def test_exact_normal_pruning_snr(bits, expected):
    assert pruning_snr_db(STANDARD_NORMAL, 1 - bits / 16) == pytest.approx(expected, abs=0.005)


def test_restricted_symmetric_grid_loses_a_third_of_a_db_at_4_bits():
    restricted = quantization_snr_db(STANDARD_NORMAL, 4, symmetric=True)
    assert restricted == pytest.approx(18.90, abs=0.005)
    assert optimal_scale(STANDARD_NORMAL, 4, symmetric=True) > optimal_scale(STANDARD_NORMAL, 4)


def test_pruning_closed_form_is_the_chi_square_identity():
    # E[Z^2; Z^2 < t] = P(chi2_3 < t): an independent closed form of the normal's pruning error
    for sparsity in (0.1, 0.5, 0.75, 0.99):
        tau = stats.norm.ppf(0.5 + sparsity / 2)
        assert pruning_mse(STANDARD_NORMAL, sparsity) == pytest.approx(
            stats.chi2(3).cdf(tau**2), rel=1e-12)
    assert pruning_snr_db(STANDARD_NORMAL, 0.0) == math.inf


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("symmetric", [False, True])
def test_normal_closed_form_agrees_with_quad(bits, symmetric):
    if symmetric and bits == 1:
        return
    dist = stats.norm(0.3, 1.7)
    for scale in (0.01, 0.4, optimal_scale(dist, bits, symmetric=symmetric), 3.0):
        assert quantization_mse(dist, bits, scale, symmetric=symmetric) == pytest.approx(
            _quad_mse(dist, bits, scale, symmetric), rel=1e-9)


@pytest.mark.parametrize("name", GENERIC)
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_generic_path_agrees_with_quad(name, bits):
    dist = GENERIC[name]
    scale = optimal_scale(dist, bits)
    for factor in (0.5, 1.0, 2.0) if bits < 8 else (1.0,):
        assert quantization_mse(dist, bits, factor * scale) == pytest.approx(
            _quad_mse(dist, bits, factor * scale), rel=1e-9)


@pytest.mark.parametrize("family_id", [0, 1, 2], ids=["normal", "laplace", "truncated t"])
def test_quadrature_path_reproduces_closed_forms(family_id):
    wrapped, original = _wrapped(family_id), _FAMILIES[family_id]
    assert signal_power(wrapped) == pytest.approx(signal_power(original), rel=1e-10)
    assert pruning_mse(wrapped, 0.75) == pytest.approx(pruning_mse(original, 0.75), rel=1e-10)
    scales = np.geomspace(0.01, 2.0, 5)
    np.testing.assert_allclose(quantization_mse(wrapped, 4, scales),
                               quantization_mse(original, 4, scales), rtol=1e-10)


def test_a_closed_form_of_the_distribution_is_used_with_loc_and_scale(monkeypatch):
    family = type(truncated_student_t(2, 10.0).dist)  # freezing makes a new instance
    calls, original = [], family.cell_second_moments
    monkeypatch.setattr(family, "cell_second_moments",
                        lambda self, *args: calls.append(args) or original(self, *args))
    shifted = truncated_student_t(2, 10.0).dist(2.0, 10.0, loc=0.5, scale=3.0)
    for bits, scale in ((2, 4.0), (4, 1.5), (8, 0.2)):
        assert quantization_mse(shifted, bits, scale) == pytest.approx(
            _quad_mse(shifted, bits, scale), rel=1e-9)
    assert len(calls) == 3


def test_laplace_pruning_has_a_closed_form_too():
    # E[W^2; |W| < tau] for a Laplace(1): 2 - e^-tau (tau^2 + 2 tau + 2)
    tau = magnitude_threshold(stats.laplace(), 0.75)
    assert pruning_mse(stats.laplace(), 0.75) == pytest.approx(
        2 - math.exp(-tau) * (tau**2 + 2 * tau + 2), rel=1e-10)


@pytest.mark.parametrize(
    "sigma, family",
    [(sigma, stats.norm) for sigma in (1e-3, 0.02, 40.0)]
    + [(1e-3, stats.laplace), (40.0, lambda scale: stats.t(3, 0, scale))],
)
def test_scale_equivariance(sigma, family):
    unit, scaled = family(scale=1.0), family(scale=sigma)
    for bits in (2, 4, 8):
        assert optimal_scale(scaled, bits) == pytest.approx(sigma * optimal_scale(unit, bits),
                                                            rel=1e-6)
        assert quantization_snr_db(scaled, bits) == pytest.approx(
            quantization_snr_db(unit, bits), abs=1e-8)
        assert quantization_mse(scaled, bits, 0.3 * sigma) == pytest.approx(
            sigma**2 * quantization_mse(unit, bits, 0.3), rel=1e-9)
    assert pruning_snr_db(scaled, 0.6) == pytest.approx(pruning_snr_db(unit, 0.6), abs=1e-9)


def test_optimal_scale_survives_a_second_valley():
    # core and rare wide weights compete: two local minima of the error in the scale
    dist = _ScaleMixture(name="mixture")(0.01, 10.0)
    scales = np.geomspace(0.05, 30.0, 4000)
    errors = quantization_mse(dist, 2, scales)
    inner = np.arange(1, scales.size - 1)
    valleys = inner[(errors[inner] < errors[inner - 1]) & (errors[inner] < errors[inner + 1])]
    assert valleys.size == 2
    local = optimize.minimize_scalar(lambda s: quantization_mse(dist, 2, s),
                                     bounds=(scales[0], scales[-1]), method="bounded")
    best = optimal_scale(dist, 2)
    assert quantization_mse(dist, 2, best) <= errors.min() * (1 + 1e-12)
    assert quantization_mse(dist, 2, best) < 0.9 * local.fun  # a plain local search is fooled
    assert best == pytest.approx(scales[valleys[np.argmin(errors[valleys])]], rel=1e-2)


@pytest.mark.parametrize("bits", [2, 3, 8])
def test_optimal_scale_is_a_minimum(bits):
    for dist in (STANDARD_NORMAL, stats.laplace(), truncated_student_t(2, 10.0)):
        best = optimal_scale(dist, bits)
        around = quantization_mse(dist, bits, best * np.array([0.999, 1.0, 1.001]))
        assert around[1] <= around.min() * (1 + 1e-12)


def test_parts_add_up_and_trade_off():
    scales = np.geomspace(0.05, 2.0, 30)
    granular, clipping = quantization_mse_parts(STANDARD_NORMAL, 4, scales)
    np.testing.assert_allclose(granular + clipping, quantization_mse(STANDARD_NORMAL, 4, scales),
                               rtol=1e-12)
    assert np.all(np.diff(granular) > 0) and np.all(np.diff(clipping) < 0)
    # a fine grid that covers +-6.4 sigma: granular error -> s^2 / 12 (uniform rounding error)
    granular, clipping = quantization_mse_parts(STANDARD_NORMAL, 8, 0.05)
    assert granular == pytest.approx(0.05**2 / 12, rel=1e-6) and clipping < 1e-10


def _monte_carlo(dist, samples, bits, sparsity, symmetric=False):
    """(SNR, its standard error) of the samples quantized at the analytic scale, and pruned."""
    scale = optimal_scale(dist, bits, symmetric=symmetric)
    quantized = quantize(samples, bits, scale, symmetric=symmetric)
    pruned = magnitude_prune(samples, sparsity)
    return ((snr_db(samples, quantized), snr_db_standard_error(samples, quantized)),
            (snr_db(samples, pruned), snr_db_standard_error(samples, pruned)))


@pytest.mark.parametrize("name", ["laplace", "t(3)", "truncated t(2, 10)"])
def test_monte_carlo_through_the_quantizer_and_the_pruner(name):
    # within 4 standard errors; t(3) has no fourth moment, so its SE is large and itself noisy
    dist, rng = GENERIC[name], np.random.default_rng(7)
    if name.startswith("truncated"):
        samples = stats.t(2).rvs(size=600_000, random_state=rng)
        samples = samples[np.abs(samples) <= 10.0][:400_000]
    else:
        samples = dist.rvs(size=400_000, random_state=rng)
    for bits in (2, 4):
        (quantized, q_error), (pruned, p_error) = _monte_carlo(dist, samples, bits, 1 - bits / 16)
        assert quantized == pytest.approx(quantization_snr_db(dist, bits), abs=4 * q_error)
        assert pruned == pytest.approx(pruning_snr_db(dist, 1 - bits / 16), abs=4 * p_error)
        assert max(q_error, p_error) < 0.6


def test_quantile_sample_matches_the_normal_table():
    n = 200_000
    samples = STANDARD_NORMAL.ppf((np.arange(n) + 0.5) / n)
    for bits, sym in ((3, False), (4, True), (6, False)):
        (quantized, _), (pruned, _) = _monte_carlo(STANDARD_NORMAL, samples, bits, 0.3,
                                                   symmetric=sym)
        assert quantized == pytest.approx(quantization_snr_db(STANDARD_NORMAL, bits,
                                                              symmetric=sym), abs=0.01)
        assert pruned == pytest.approx(pruning_snr_db(STANDARD_NORMAL, 0.3), abs=0.001)


def test_mse_accepts_an_array_of_scales():
    scales = np.array([[0.1, 0.2], [0.4, 0.8]])
    errors = quantization_mse(stats.laplace(), 3, scales)
    assert errors.shape == (2, 2)
    assert errors[1, 0] == pytest.approx(quantization_mse(stats.laplace(), 3, 0.4), rel=1e-12)
    assert isinstance(quantization_mse(STANDARD_NORMAL, 3, 0.4), float)


def test_signal_power_of_finite_and_infinite_supports():
    assert signal_power(stats.norm(1.0, 2.0)) == pytest.approx(5.0)
    assert signal_power(stats.t(3)) == pytest.approx(3.0, rel=1e-10)
    assert signal_power(stats.uniform(-1, 2)) == pytest.approx(1 / 3, rel=1e-12)
    assert signal_power(truncated_student_t(2, 10.0)) == pytest.approx(
        truncated_student_t(2, 10.0).moment(2), rel=1e-9)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: quantization_snr_db(stats.norm, 4), TypeError, "frozen"),
        (lambda: quantization_snr_db(np.ones(3), 4), TypeError, "dist"),
        (lambda: quantization_snr_db(stats.poisson(3), 4), TypeError, "continuous"),
        (lambda: quantization_snr_db(STANDARD_NORMAL, 0), ValueError, "bits"),
        (lambda: quantization_snr_db(STANDARD_NORMAL, 17), ValueError, "bits"),
        (lambda: quantization_snr_db(STANDARD_NORMAL, 2.5), TypeError, "bits"),
        (lambda: quantization_snr_db(STANDARD_NORMAL, 1, symmetric=True), ValueError, "bits"),
        (lambda: quantization_snr_db(STANDARD_NORMAL, 4, symmetric="yes"), TypeError,
         "symmetric"),
        (lambda: quantization_mse(STANDARD_NORMAL, 4, 0.0), ValueError, "scale"),
        (lambda: quantization_mse(STANDARD_NORMAL, 4, [0.1, math.nan]), ValueError, "scale"),
        (lambda: quantization_mse(STANDARD_NORMAL, 4, "big"), TypeError, "scale"),
        (lambda: quantization_mse(STANDARD_NORMAL, 4, True), TypeError, "scale"),
        (lambda: pruning_snr_db(STANDARD_NORMAL, 1.0), ValueError, "sparsity"),
        (lambda: pruning_snr_db(STANDARD_NORMAL, -0.1), ValueError, "sparsity"),
        (lambda: pruning_snr_db(stats.norm(1.0), 0.5), ValueError, "symmetric"),
        (lambda: optimal_scale(stats.uniform(10, 1), 1), ValueError, "edge"),
        (lambda: signal_power(stats.t(-1)), ValueError, "invalid"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


@pytest.mark.parametrize("dist", [stats.norm(0.1, 2.0), stats.laplace(scale=0.7),
                                  truncated_student_t(2, 10.0)], ids=["normal", "laplace", "t"])
def test_cell_error_is_the_integral_of_the_squared_error_over_the_cell(dist):
    low, high = dist.support()
    for a, b, c in [(-np.inf, -1.5, -2.0), (-0.5, 0.5, 0.0), (0.3, 1.4, 1.0), (1.5, np.inf, 2.0)]:
        expected = integrate.quad(lambda x: (x - c) ** 2 * dist.pdf(x), max(a, low),
                                  min(b, high), epsrel=1e-11)[0]
        assert cell_error(dist, a, b, c) == pytest.approx(expected, rel=1e-7)
    assert cell_error(dist, 1.0, 1.0, 0.0) == 0.0


def test_cell_error_refuses_bad_input():
    with pytest.raises(TypeError, match="low"):
        cell_error(stats.norm(), "0", 1.0, 0.0)
    with pytest.raises(ValueError, match="low must be <= high"):
        cell_error(stats.norm(), 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="centre"):
        cell_error(stats.norm(), 0.0, 1.0, np.inf)
