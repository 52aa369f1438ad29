"""Comparison of two Trajectories: alignment on the common clock, weak and strong errors with their Monte
Carlo errors against closed forms, bootstrap order fits, the side-by-side figure, and a discrete run
against its SME end to end."""
import math

import numpy as np
import pytest
import torch

from analysis.compare import align, compare, strong_error, weak_error
from analysis.plots import side_by_side
from analysis.orders import _wls_slopes, fit_order, fit_order_bootstrap
from games import SGA, GaussianGame
from games.random import Streams
from games.trajectory import Trajectory
from sde import SME, coupled_chain, integrate


def labelled(times, K=3, d=2, **observables):
    """A trajectory whose state at row r is r + 10·k + 100·i (run k, coordinate i): rows identifiable."""
    times = torch.as_tensor(times, dtype=torch.float64)
    T = len(times)
    states = (torch.arange(T)[:, None, None] + 10.0 * torch.arange(K)[:, None] + 100.0 * torch.arange(d)).double()
    return Trajectory(times, states, 1, {k: v(T, K) for k, v in observables.items()})


def test_align_takes_the_coarser_grid_inside_the_common_span():
    coarse = labelled(np.cumsum([0.0] + [0.1] * 10), loss=torch.zeros)  # 0, 0.1, …, 1.0 with summation rounding
    fine = labelled(torch.arange(31) * 0.05, loss=torch.ones, other=torch.ones)  # 0, 0.05, …, 1.5
    for a, b, rows in ((coarse, fine, (slice(None), slice(0, 21, 2))), (fine, coarse, (slice(0, 21, 2), slice(None)))):
        a2, b2 = align(a, b)
        assert torch.allclose(a2.times, torch.linspace(0, 1, 11), atol=1e-12)
        assert torch.equal(a2.times, b2.times)
        assert torch.equal(a2.states, a.states[rows[0]]) and torch.equal(b2.states, b.states[rows[1]])
        assert set(a2.observables) == set(b2.observables) == {"loss"}
    a2, b2 = align(coarse, fine, times=[0.3, 1.0])
    assert torch.equal(b2.states[:, 0, 0], torch.tensor([6.0, 20.0]))
    with pytest.raises(ValueError, match="no record at t = 0.05"):
        align(coarse, fine, times=[0.05])


def test_align_raises_on_grids_that_do_not_meet():
    with pytest.raises(ValueError, match="do not overlap"):
        align(labelled(torch.linspace(0, 1, 11)), labelled(torch.linspace(2, 3, 11)))
    with pytest.raises(ValueError, match="share no record time"):
        align(labelled(0.1 + 0.2 * torch.arange(5)), labelled(0.2 * torch.arange(5)))


def gaussians(reps, K, mean, sd, generator):
    return mean + sd * torch.randn(reps, K, 1, generator=generator, dtype=torch.float64)


def test_weak_error_of_independent_ensembles_covers_the_true_difference():
    """a ~ N(0.3, 1) and b ~ N(0, 1.5²) with K = 400 and 300: E x differs by 0.3 and E x² by
    1.09 − 2.25; 2000 repetitions (a leading axis) check the 95% intervals' coverage of both."""
    g = torch.Generator().manual_seed(0)
    xa, xb = gaussians(2000, 400, 0.3, 1.0, g), gaussians(2000, 300, 0.0, 1.5, g)
    est = weak_error(xa, xb)
    truth = torch.tensor([0.3, 1.09 - 2.25])
    assert abs(est.value[0, 0] - 0.3) < 3 * est.se[0, 0]
    expected_se = torch.tensor([math.sqrt(1 / 400 + 2.25 / 300), math.sqrt(2 / 400 + 2 * 1.5**4 / 300)])
    assert torch.allclose(est.se.mean(0), expected_se, rtol=0.05)  # Var x² = 2σ⁴ for a centred b, 2σ⁴ + 4μ²σ² for a
    low, high = est.interval()
    coverage = ((low <= truth) & (truth <= high)).double().mean(0)
    assert ((0.92 <= coverage) & (coverage <= 0.98)).all(), coverage
    assert est.left_out == (0, 0)


def test_paired_weak_error_has_the_standard_error_of_the_differences():
    """b = a − 0.3 + 0.1·ε: the paired se is 0.1/√K, fourteen times below the independent one."""
    g, K = torch.Generator().manual_seed(1), 500
    xa = gaussians(2000, K, 0.3, 1.0, g)
    xb = xa - 0.3 + gaussians(2000, K, 0.0, 0.1, g)
    paired, independent = weak_error(xa, xb, phi=lambda x: x, paired=True), weak_error(xa, xb, phi=lambda x: x)
    assert torch.allclose(paired.se.mean(), torch.tensor(0.1 / math.sqrt(K)), rtol=0.02)
    assert (paired.se < independent.se / 10).all()
    low, high = paired.interval()
    assert 0.92 <= ((low <= 0.3) & (0.3 <= high)).double().mean() <= 0.98
    with pytest.raises(ValueError, match="same K"):
        weak_error(xa, xb[:, :-1], paired=True)


def test_diverged_runs_are_left_out_and_counted():
    g = torch.Generator().manual_seed(2)
    xa, xb = gaussians(5, 100, 0.0, 1.0, g), gaussians(5, 100, 0.0, 1.0, g)
    broken_a, broken_b = xa.clone(), xb.clone()
    broken_a[3, [4, 7]] = math.nan
    broken_b[4, 9] = math.inf
    keep_a, keep_b = torch.ones(100, dtype=torch.bool), torch.ones(100, dtype=torch.bool)
    keep_a[[4, 7]], keep_b[9] = False, False
    est = weak_error(broken_a, broken_b)
    assert est.left_out == (2, 1)
    assert torch.allclose(est.value, weak_error(xa[:, keep_a], xb[:, keep_b]).value)
    paired = weak_error(broken_a, broken_b, paired=True)
    assert paired.left_out == (3, 3)
    assert torch.allclose(paired.value, weak_error(xa[:, keep_a & keep_b], xb[:, keep_a & keep_b], paired=True).value)


def test_strong_error_of_paths_a_known_gaussian_apart():
    """x_b = x_a + σZ, Z ~ N(0, I_d): (E|x_a − x_b|²)^{1/2} = σ√d, and its delta-method se is σ/√(2K)."""
    g, K, d, sigma = torch.Generator().manual_seed(3), 4000, 3, 0.2
    xa = torch.randn(50, K, d, generator=g, dtype=torch.float64)
    xb = xa + sigma * torch.randn(50, K, d, generator=g, dtype=torch.float64)
    est = strong_error(xa, xb)
    assert est.value.shape == (50,)
    assert (abs(est.value - sigma * math.sqrt(d)) < 4 * est.se).all()
    assert abs(est.value.mean() - sigma * math.sqrt(d)) < 3 * est.se.mean() / math.sqrt(50)
    assert torch.allclose(est.se, torch.tensor(sigma / math.sqrt(2 * K)), rtol=0.1)  # each within ~5 sd
    assert torch.allclose(est.se.mean(), torch.tensor(sigma / math.sqrt(2 * K)), rtol=0.01)
    with pytest.raises(ValueError, match="same K"):
        strong_error(xa, xb[:, :-1])


def synthetic_samples(rng, slope, steps, n, C=0.5):
    """Per-run samples at each step with mean C·hˢ and a relative standard error 3% to 10%."""
    rel = np.linspace(0.03, 0.1, len(steps))
    return [C * h**slope * (1 + r * math.sqrt(n) * rng.standard_normal(n)) for h, r in zip(steps, rel)]


@pytest.mark.parametrize("slope", [1.0, 2.0])
def test_bootstrap_order_recovers_the_slope_and_covers_it(slope):
    rng, steps = np.random.default_rng(4), [0.2, 0.1, 0.05, 0.025]
    fits = [fit_order_bootstrap(steps, synthetic_samples(rng, slope, steps, 100), n_boot=300, seed=i)
            for i in range(300)]
    assert abs(np.mean([f.slope for f in fits]) - slope) < 0.01
    covered = np.mean([f.low <= slope <= f.high for f in fits])
    assert 0.91 <= covered <= 0.985, covered
    width = np.mean([f.high - f.low for f in fits])
    assert 0.05 < width < 0.3, width  # about 2·1.96·(the slope's sd from 3–10% relative errors)


def test_bootstrap_order_uses_fit_orders_estimator():
    rng, steps = np.random.default_rng(5), [0.2, 0.1, 0.05, 0.025, 0.0125]
    samples = synthetic_samples(rng, 1.5, steps, 40)
    errors = [abs(s.mean()) for s in samples]
    se = [s.std(ddof=1) / math.sqrt(len(s)) for s in samples]
    fit = fit_order_bootstrap(steps, samples, n_boot=200, seed=7)
    assert fit.slope == fit_order(steps, errors, se).slope
    assert _wls_slopes(np.log(steps), np.array(errors), np.array(se)) == pytest.approx(fit.slope, rel=1e-12)
    assert fit == fit_order_bootstrap(steps, samples, n_boot=200, seed=7)
    assert fit.low < fit.slope < fit.high
    with pytest.raises(ValueError, match="step sizes"):
        fit_order_bootstrap(steps[:3], samples)


def test_side_by_side_has_two_rows_per_coordinate():
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(6)
    times = torch.linspace(0, 1, 11)
    a = Trajectory(times, torch.randn(11, 20, 4, generator=g, dtype=torch.float64), 2)
    b = Trajectory(times[::2], torch.randn(6, 30, 4, generator=g, dtype=torch.float64), 2)
    fig = side_by_side(a, b, coords=[0, 2, 3])
    try:
        assert len(fig.axes) == 6
        assert len(fig.axes[3].collections) == 1  # the difference's 95% band
    finally:
        plt.close(fig)


def test_discrete_training_against_its_sme_end_to_end():
    """SGA on the Gaussian game (η = 0.05, 40 steps) against SME-1 and SME-2 by Platen's scheme at dt = η,
    run independently and driven by the chain's own minibatches (sde.coupling). The coupled comparison's
    se is far smaller, which resolves SME-1's O(η) weak error; SME-2's (O(η²)) is several times smaller."""
    game, eta, K, steps = GaussianGame.preset("damped-narrow"), 0.05, 1000, 40
    x0 = game.init(1, Streams([0]))[0]
    paired = {}
    for order in ("1", "2"):
        sme = SME(SGA(game, lr=eta, batch_size=8), order=order)
        chain, increments = coupled_chain(sme, steps, x0, Streams.from_seed(0, K), Streams.from_seed(1, K),
                                          record_every=10)
        coupled = integrate(sme, x0, steps * eta, eta, solver="platen2", increments=increments, record_every=5)
        apart, paired[order] = compare(chain, integrate(sme, x0, steps * eta, eta, solver="platen2", K=K, seed=2,
                                                        record_every=5)), compare(chain, coupled, paired=True)
        for c in (apart, paired[order]):
            assert torch.allclose(c.times, torch.linspace(0, 2, 5), atol=1e-12)
            assert c.weak.shape == c.weak_se.shape == (5, 2 * game.d)
            assert c.left_out == (0, 0)
            error, se = c.final_weak_error
            assert error < 4 * se + eta, (order, error, se)
        assert apart.strong is None and paired[order].strong.shape == (5,)
        assert paired[order].strong[0] == 0 and (paired[order].strong[1:] > 0).all()
        assert (paired[order].weak_se[1:] < apart.weak_se[1:] / 3).all()
    error, se = paired["1"].final_weak_error
    assert error > 10 * se
    assert paired["2"].final_weak_error[0] < error / 4


def test_mean_interval_is_scipys_student_t_interval():
    import numpy as np
    import scipy.stats

    from analysis.compare import mean_interval

    values = np.random.default_rng(0).normal(2.0, 3.0, size=7)
    mean, low, high = mean_interval(values, level=0.9)
    expected = scipy.stats.t.interval(0.9, 6, loc=values.mean(), scale=scipy.stats.sem(values))
    assert mean == pytest.approx(values.mean()) and (low, high) == pytest.approx(expected, rel=1e-12)
    assert all(map(np.isnan, mean_interval([1.5])[1:]))


def test_first_below_finds_the_first_record_of_the_mean_at_the_level():
    from analysis.compare import first_below

    steps, wall = np.array([0, 10, 20, 30]), np.array([0.0, 1.0, 2.0, 3.0])
    values = np.array([[3.0, 1.0], [1.5, 0.7], [0.5, 1.5], [0.2, np.nan]])  # means 2, 1.1, 1, 0.2
    assert first_below(steps, wall, values, 1.0) == (20.0, 2.0)
    assert all(math.isnan(v) for v in first_below(steps, wall, values, 0.1))
