"""Order fits: a known slope is recovered from noisy synthetic errors, and its interval covers it."""
import numpy as np
import pytest

from analysis.orders import fit_common_order, fit_order


def synthetic(rng, slope, rel_sd, steps):
    """errors C·hˢ with independent relative noise of known standard deviation."""
    exact = 0.3 * np.asarray(steps) ** slope
    return exact * (1 + rel_sd * rng.standard_normal(len(steps))), rel_sd * exact


@pytest.mark.parametrize("slope", [1.0, 2.0])
def test_interval_covers_the_true_slope_at_the_stated_rate(slope):
    rng, steps = np.random.default_rng(0), [0.2, 0.1, 0.05, 0.025, 0.0125]
    fits = [fit_order(steps, *synthetic(rng, slope, 0.05, steps)) for _ in range(400)]
    covered = np.mean([f.low <= slope <= f.high for f in fits])
    assert 0.92 <= covered <= 0.985, covered
    assert abs(np.mean([f.slope for f in fits]) - slope) < 0.01


def test_fit_detects_a_wrong_order_and_needs_three_points():
    rng, steps = np.random.default_rng(1), [0.2, 0.1, 0.05, 0.025]
    fit = fit_order(steps, *synthetic(rng, 2.0, 0.02, steps))
    assert not fit.low <= 1.0 <= fit.high
    with pytest.raises(ValueError, match="three points"):
        fit_order([0.1, 0.05], [1.0, 0.5])


def test_common_order_covers_the_slope_of_groups_with_different_constants():
    """Three systems with constants 0.1, 1 and 30 share slope 2: the common fit's 95% interval covers
    it at about the stated rate, where a single-intercept fit on the pooled points would be useless."""
    rng, steps = np.random.default_rng(2), np.array([0.1, 0.05, 0.025, 0.0125])
    fits = []
    for _ in range(400):
        groups = [(steps, c * steps**2 * np.exp(0.05 * rng.standard_normal(4))) for c in (0.1, 1.0, 30.0)]
        fits.append(fit_common_order(groups))
    covered = np.mean([f.low <= 2.0 <= f.high for f in fits])
    assert 0.92 <= covered <= 0.985, covered
    assert abs(np.mean([f.slope for f in fits]) - 2.0) < 0.01
    with pytest.raises(ValueError, match="more than"):
        fit_common_order([(steps[:1], steps[:1]), (steps[:1], steps[:1])])
