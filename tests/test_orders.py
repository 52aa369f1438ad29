"""Order fits: a known slope is recovered from noisy synthetic errors, and its interval covers it."""
import numpy as np
import pytest

from analysis.orders import fit_order


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
