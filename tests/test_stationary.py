"""Stationarity detection and pooling on ensembles whose law is known at every time."""
import math

import pytest
import torch

from analysis.stationary import pooled, settled_from
from games.trajectory import Trajectory


def ar1(T: int, K: int, a: float, x0: float, seed: int = 0) -> Trajectory:
    """x_{t+1} = a x_t + √(1 − a²) ξ_t from x0: mean x0·aᵗ, variance 1 − a²ᵗ → N(0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    x, rows = torch.full((K, 1), x0, dtype=torch.float64), []
    for _ in range(T):
        rows.append(x)
        x = a * x + math.sqrt(1 - a * a) * torch.randn(K, 1, generator=generator, dtype=torch.float64)
    return Trajectory(torch.arange(T, dtype=torch.float64), torch.stack(rows), 1)


def test_the_start_lies_where_the_mean_and_variance_reach_monte_carlo_error():
    """With K = 2000 the standard error of the mean is about 0.022: records with x0·aᵗ > 0.3 (14 se) are
    transient for sure, records with x0·aᵗ and a²ᵗ below 0.01 (half an se) are not detectably so."""
    a, x0, K = 0.9, 5.0, 2000
    start = settled_from(ar1(300, K, a, x0))
    surely_moving = math.log(0.3 / x0) / math.log(a)  # about 27
    settled = math.log(0.01 / x0) / math.log(a)  # about 59
    assert surely_moving < start < settled, start


def test_a_drifting_ensemble_has_no_stationary_window():
    traj = ar1(200, 500, 0.9, 0.0)
    drifting = Trajectory(traj.times, traj.states + 0.02 * traj.times[:, None, None], 1)
    assert settled_from(drifting) is None
    assert settled_from(traj) is not None


def test_pooled_keeps_finite_runs_over_the_window():
    traj = ar1(50, 10, 0.5, 0.0)
    traj.states[30, 3, 0] = math.nan
    samples = pooled(traj, 20)
    assert samples.shape == (30 * 9, 1) and samples.isfinite().all()
    with pytest.raises(ValueError, match="two runs"):
        settled_from(ar1(10, 1, 0.5, 0.0))


def test_a_window_falls_back_to_the_second_half_and_an_untestable_ensemble_has_no_start():
    """A drifting ensemble pools its second half (and says so); one run is too few to test."""
    from analysis.stationary import stationary_start, stationary_window

    traj = ar1(200, 500, 0.9, 0.0)
    drifting = Trajectory(traj.times, traj.states + 0.02 * traj.times[:, None, None], 1)
    said = []
    window = stationary_window(drifting, said.append)
    assert window.shape == (100 * 500, 1) and len(said) == 1
    torch.testing.assert_close(window, pooled(drifting, 100))
    assert stationary_start(ar1(200, 1, 0.9, 0.0)) is None
    assert stationary_start(traj) == settled_from(traj)
