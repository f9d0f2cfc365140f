"""Paired comparisons (pvq.stats): known cases, a cross-check with scipy.stats.bootstrap, and the
cluster bootstrap that refuses to count copies of one image as independent evidence."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from hypothesis import given, settings
from hypothesis import strategies as st

from pvq.stats import UNDECIDED, interval_verdict, mcnemar, paired_bootstrap


def test_identical_methods_have_no_gap():
    correct = np.random.default_rng(0).integers(0, 2, 500)
    gap = paired_bootstrap(correct, correct)
    assert (gap.gap, gap.low, gap.high) == (0.0, 0.0, 0.0)
    assert mcnemar(correct, correct) == (0, 0, 1.0)


def test_mcnemar_exact_known_case():
    # A right on 10 examples B gets wrong, never the reverse: p = 2 * 0.5^10
    a, b = np.ones(1000, dtype=int), np.ones(1000, dtype=int)
    b[:10] = 0
    result = mcnemar(a, b)
    assert (result.n_ab, result.n_ba) == (10, 0)
    assert result.pvalue == pytest.approx(2 * 0.5 ** 10, rel=1e-12)
    # symmetric: swapping the methods swaps the counts, not the p-value
    assert mcnemar(b, a) == (0, 10, result.pvalue)
    # 60 against 40 discordant pairs: the binomial tail, two-sided
    a, b = np.zeros(200, dtype=int), np.zeros(200, dtype=int)
    a[:60], b[60:100] = 1, 1
    expected = 2 * scipy_stats.binom.cdf(40, 100, 0.5)
    assert mcnemar(a, b).pvalue == pytest.approx(expected, rel=1e-9)


def test_bootstrap_interval_matches_the_normal_approximation():
    # 2,000 independent examples, 100 discordant pairs for A and 60 for B: the gap is 0.02 and
    # its standard error sqrt(d - gap^2 n) / n with d = 160 discordant pairs
    n, a, b = 2000, np.zeros(2000, dtype=int), np.zeros(2000, dtype=int)
    a[:100], b[100:160] = 1, 1
    gap = paired_bootstrap(a, b)
    assert gap.gap == pytest.approx(0.02)
    half_width = 1.96 * np.sqrt(160 - 0.02 ** 2 * n ** 2 / n) / n
    assert gap.high - gap.low == pytest.approx(2 * half_width, rel=0.05)
    assert gap.low < 0.02 < gap.high and gap.low > 0


def test_bootstrap_agrees_with_scipy_paired_bootstrap():
    rng = np.random.default_rng(1)
    a = (rng.random(800) < 0.8).astype(int)
    b = np.where(rng.random(800) < 0.85, a, 1 - a)
    ours = paired_bootstrap(a, b, resamples=20_000)
    theirs = scipy_stats.bootstrap((a, b), lambda x, y, axis: x.mean(axis) - y.mean(axis),
                                   paired=True, vectorized=True, method="percentile",
                                   n_resamples=20_000, random_state=0).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.003)
    assert ours.high == pytest.approx(theirs.high, abs=0.003)


def test_copies_of_one_image_are_not_independent_evidence():
    # each of 300 originals copied 10 times with the same outcome: the ungrouped interval
    # pretends to have 3,000 examples (sqrt(10) narrower); grouped, it is the originals' own
    rng = np.random.default_rng(2)
    a0 = (rng.random(300) < 0.8).astype(int)
    b0 = np.where(rng.random(300) < 0.8, a0, 1 - a0)
    a, b, groups = np.repeat(a0, 10), np.repeat(b0, 10), np.repeat(np.arange(300), 10)
    originals = paired_bootstrap(a0, b0)
    grouped = paired_bootstrap(a, b, groups=groups)
    naive = paired_bootstrap(a, b)
    width = originals.high - originals.low
    assert grouped.high - grouped.low == pytest.approx(width, rel=0.1)
    assert naive.high - naive.low == pytest.approx(width / np.sqrt(10), rel=0.1)


def test_seeds_widen_the_interval_when_they_disagree():
    # two seeds of B: one as good as A, one 10 points worse; with one example set of 4,000
    # the two-way bootstrap must cover both (gap 0.05 averaged), not the test noise alone
    n = 4000
    a = np.ones((2, n), dtype=int)
    b = np.ones((2, n), dtype=int)
    b[1, :400] = 0
    gap = paired_bootstrap(a, b)
    assert gap.gap == pytest.approx(0.05)
    assert gap.low <= 0.001 and gap.high >= 0.099  # resampled seeds: both 0 and 0.1 possible


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="0 and 1"):
        paired_bootstrap(np.full(3, 2), np.ones(3))
    with pytest.raises(TypeError, match="a must"):
        paired_bootstrap(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(np.ones(3), np.ones(3), confidence=1.5)
    with pytest.raises(ValueError, match="groups"):
        paired_bootstrap(np.ones(3), np.ones(3), groups=np.arange(4))
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap(np.ones(3), np.ones(3), resamples=10)
    with pytest.raises(ValueError, match="1-D"):
        mcnemar(np.ones((2, 3)), np.ones((2, 3)))


def test_an_interval_names_a_sign_only_when_it_excludes_zero():
    assert interval_verdict(0.01, 0.2, "helps", "hurts") == "helps"
    assert interval_verdict(-0.3, -1e-9, "helps", "hurts") == "hurts"
    # an interval that reaches zero, or a point at zero, decides nothing
    for low, high in [(-0.1, 0.1), (0.0, 0.5), (-0.5, 0.0), (0.0, 0.0)]:
        assert interval_verdict(low, high, "helps", "hurts") == UNDECIDED == "not decided"
    # NumPy scalars, and the ends of a paired_bootstrap interval
    gap = paired_bootstrap(np.ones(200, dtype=int), np.r_[np.zeros(50), np.ones(150)])
    assert interval_verdict(gap.low, gap.high, "A", "B") == "A"
    assert interval_verdict(np.float32(-2), np.int64(-1), "A", "B") == "B"


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e300, 1e300), st.floats(-1e300, 1e300))
def test_the_verdict_is_the_sign_of_both_ends(a, b):
    low, high = min(a, b), max(a, b)
    named = interval_verdict(low, high, "above", "below")
    assert named == ("above" if low > 0 else "below" if high < 0 else UNDECIDED)
    # swapping the difference's sides swaps the names
    assert interval_verdict(-high, -low, "below", "above") == named


@pytest.mark.parametrize("call, error, name", [
    (lambda: interval_verdict(0.2, 0.1, "a", "b"), ValueError, "low"),
    (lambda: interval_verdict(math.nan, 0.1, "a", "b"), ValueError, "low"),
    (lambda: interval_verdict(0.0, math.inf, "a", "b"), ValueError, "high"),
    (lambda: interval_verdict("0", 1.0, "a", "b"), TypeError, "low"),
    (lambda: interval_verdict(0.0, True, "a", "b"), TypeError, "high"),
    (lambda: interval_verdict(0.0, 1.0, None, "b"), TypeError, "above"),
    (lambda: interval_verdict(0.0, 1.0, "a", 3), TypeError, "below"),
    (lambda: interval_verdict(0.0, 1.0, "a", "a"), ValueError, "above and below"),
    (lambda: interval_verdict(0.0, 1.0, "a", UNDECIDED), ValueError, "above and below"),
])
def test_bad_verdict_input_names_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()
