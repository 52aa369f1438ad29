"""Moment equations of the linearised SME-1 under a learning-rate schedule (sde.moments, THEORY §6):
against closed forms, Monte Carlo, finite differences, the scalar problem's optimum and the SME."""
import math

import pytest
import torch

from games import SGA, BilinearGame, GaussianGame, Player
from games.linalg import psd_power
from games.linearisation import Linearisation, field_jacobian
from games.random import Streams
from sde.linear import LinearSDE
from sde.moments import (ConstantSchedule, PiecewiseSchedule, expected_sq_distance,
                         known_optimum_1d, linearise, moments, optimise)

GAUSSIAN = GaussianGame(mean=.5, std=.5, ridge=1.0, mu0=0.0, sigma0=1.0)


def stable_system(d=3, p=1, seed=0) -> Linearisation:
    """A random linearised game with a stable J (shifted spectrum) and a positive definite Σ."""
    g = torch.Generator().manual_seed(seed)
    J = torch.randn(d, d, generator=g)
    J = J - (torch.linalg.eigvals(J).real.max() + 0.5) * torch.eye(d)
    S = torch.randn(d, d, generator=g)
    return Linearisation(J, S @ S.T + 0.1 * torch.eye(d), torch.randn(d, generator=g), p)


def schedule_with(raw, steps, u_max) -> PiecewiseSchedule:
    """A PiecewiseSchedule with the given logits at its knots [2, knots]."""
    raw = torch.as_tensor(raw, dtype=torch.float64)
    schedule = PiecewiseSchedule(steps, raw.shape[1], u_max)
    with torch.no_grad():
        schedule.raw.copy_(raw)
    return schedule


def diagonal(rates, lin):
    """D_u's diagonal written out: u_θ on the first p coordinates, u_ω on the rest."""
    rates = torch.as_tensor(rates)
    lead = rates.shape[:-1]
    return torch.cat([rates[..., :1].expand(*lead, lin.p), rates[..., 1:].expand(*lead, lin.d - lin.p)], -1)


def terminal(lin, schedule, m0, P0, steps, **options) -> float:
    return expected_sq_distance(*moments(lin, schedule, m0, P0, [0, steps], **options))[-1].item()


# -- the moment equations against independent references ------------------------------------------
@pytest.mark.parametrize("system", ["random", "gaussian"])
def test_constant_schedule_matches_the_closed_form(system):
    """At constant rates the SDE is LinearSDE(A = D_u J, S = D_u Σ^½): Van Loan's closed forms, plus the
    transported initial covariance e^{At} P0 e^{Aᵀt}."""
    if system == "random":
        lin, rates, times = stable_system(), (0.3, 0.7), [0.0, 0.5, 3.0, 10.0]
    else:
        lin, rates, times = linearise(SGA(GAUSSIAN, batch_size=4)), (0.05, 0.1), [0.0, 40.0, 300.0]
    g = torch.Generator().manual_seed(1)
    m0, root = torch.randn(lin.d, generator=g), torch.randn(lin.d, lin.d, generator=g)
    P0 = 0.1 * root @ root.T
    schedule = ConstantSchedule(rates)
    D = diagonal(rates, lin)
    sde = LinearSDE(D[:, None] * lin.A, torch.zeros(lin.d), D[:, None] * psd_power(lin.sigma, 0.5)[0])
    m, P = moments(lin, schedule, m0, P0, times, step_size=0.002 / D.max())
    for k, t in enumerate(times):
        flow = torch.linalg.matrix_exp(sde.A * t)
        assert torch.allclose(m[k], sde.mean(m0, t), rtol=1e-8, atol=1e-10)
        assert torch.allclose(P[k], sde.covariance(t) + flow @ P0 @ flow.T, rtol=1e-8, atol=1e-10)
    m_default, P_default = moments(lin, schedule, m0, P0, times)  # the default step (optimise's): ~1e-3
    for coarse, fine in ((m_default, m), (P_default, P)):
        assert all((c - f).norm() < 2e-3 * f.norm() for c, f in zip(coarse, fine))


def monte_carlo_moments(lin, schedule, m0, P0, times, paths=20000, dt=0.02, seed=0):
    """Monte Carlo of dX = A(s)X ds + B(s) dW, A = D_u J, B = D_u Σ^½, X_0 ~ N(m0, P0), by the stochastic
    Heun scheme X̃ = X + A_k X dt + B ΔW, X ← X + (A_k X + A_{k+1} X̃) dt/2 + B ΔW with B at the step's
    midpoint (weak order 2 for additive noise: at dt = 0.02 its exact moment recursion is within 2e-5 of
    the moment equations here, far below the standard errors). Per time: (mean, covariance, their
    standard errors)."""
    g = torch.Generator().manual_seed(seed)
    root = psd_power(lin.sigma, 0.5)[0]
    grid = torch.arange(round(times[-1] / dt) + 1) * dt
    with torch.no_grad():
        rates, mid_rates = (diagonal(schedule(s), lin) for s in (grid, grid[:-1] + dt / 2))
        x = m0 + torch.randn(paths, lin.d, generator=g) @ torch.linalg.cholesky(P0).T
        records = []
        for k in range(len(grid) - 1):
            drift = (x @ lin.A.T) * rates[k]
            noise = math.sqrt(dt) * (torch.randn(paths, lin.d, generator=g) @ root) * mid_rates[k]
            guess = x + dt * drift + noise
            x = x + dt / 2 * (drift + (guess @ lin.A.T) * rates[k + 1]) + noise
            if any(abs(grid[k + 1] - t) < dt / 2 for t in times):
                centred = x - x.mean(0)
                products = centred[:, :, None] * centred[:, None, :]
                records.append((x.mean(0), products.mean(0), x.std(0) / paths**0.5, products.std(0) / paths**0.5))
    return records


def test_time_varying_schedule_matches_monte_carlo():
    """Mean and covariance under a schedule that rises and falls per player, against 20000 simulated paths
    within 4.5 standard errors; a constant schedule at the average rates is rejected by the same paths."""
    lin = Linearisation(torch.tensor([[-1.0, 1.5], [-1.0, -0.5]]), torch.tensor([[0.25, 0.15], [0.15, 0.25]]),
                     torch.zeros(2), p=1)
    schedule = schedule_with([[1.5, -1.0, 0.5, 2.0, -0.5], [-1.0, 1.0, 2.5, 0.0, -1.5]], steps=10, u_max=(0.6, 1.0))
    m0, P0, times = torch.tensor([1.0, -0.5]), torch.diag(torch.tensor([0.1, 0.2])), [2.5, 5.0, 10.0]
    m, P = moments(lin, schedule, m0, P0, [0.0, *times])
    simulated = monte_carlo_moments(lin, schedule, m0, P0, times)
    z = [torch.cat([((mean - m[k + 1]) / se_mean), ((cov - P[k + 1]) / se_cov).flatten()])
         for k, (mean, cov, se_mean, se_cov) in enumerate(simulated)]
    assert torch.cat(z).abs().max() < 4.5
    average = ConstantSchedule(schedule.rates().mean(1))
    m_avg, P_avg = moments(lin, average, m0, P0, [0.0, *times])
    z_wrong = [((cov - P_avg[k + 1]) / se_cov).abs().max() for k, (_, cov, _, se_cov) in enumerate(simulated)]
    assert max(z_wrong) > 10


def test_gradient_matches_central_differences():
    """d log E|X_N − x*|² / d(knot logits) by backpropagation through odeint, against central differences."""
    lin = stable_system(d=3, p=2, seed=4)
    g = torch.Generator().manual_seed(2)
    schedule = schedule_with(torch.randn(2, 5, generator=g), steps=30, u_max=(0.4, 0.8))
    m0, P0 = torch.randn(3, generator=g), 0.05 * torch.eye(3)

    def loss():
        return torch.log(expected_sq_distance(*moments(lin, schedule, m0, P0, [0, 30], step_size=0.05))[-1])

    loss().backward()
    numeric, eps = torch.zeros_like(schedule.raw), 1e-5
    with torch.no_grad():
        for index in range(schedule.raw.numel()):
            values = []
            for sign in (1, -1):
                schedule.raw.view(-1)[index] += sign * eps
                values.append(float(loss()))
                schedule.raw.view(-1)[index] -= sign * eps
            numeric.view(-1)[index] = (values[0] - values[1]) / (2 * eps)
    assert numeric.abs().max() > 0.1 and (numeric.abs() > 1e-4).sum() >= 8  # not a comparison of zeros
    assert torch.allclose(schedule.raw.grad, numeric, rtol=1e-5, atol=1e-9)


def test_adaptive_solver_agrees_with_the_fixed_step():
    """method and solver options pass through to torchdiffeq: dopri5 at tight tolerances gives rk4's moments."""
    lin = stable_system(seed=3)
    schedule = schedule_with(torch.linspace(-1, 2, 8).expand(2, 8), steps=20, u_max=0.5)
    m0, P0 = torch.ones(3), torch.eye(3)
    fixed = moments(lin, schedule, m0, P0, [0, 5, 20], step_size=0.01)
    adaptive = moments(lin, schedule, m0, P0, [0, 5, 20], method="dopri5", rtol=1e-11, atol=1e-13)
    for a, b in zip(fixed, adaptive):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-11)


# -- the schedule ----------------------------------------------------------------------------------
def test_piecewise_schedule_interpolates_logits_between_knots():
    schedule = schedule_with([[0.0, 2.0, -1.0], [1.0, 1.0, 3.0]], steps=100, u_max=(0.2, 0.5))
    u = schedule(torch.tensor([0.0, 25.0, 50.0, 100.0, 150.0]))
    logits = torch.logit(u / schedule.u_max)
    assert torch.allclose(logits, torch.tensor([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [-1.0, 3.0], [-1.0, 3.0]]))
    rates = schedule.rates()
    assert rates.shape == (2, 100) and torch.allclose(rates[:, 25], u[1])
    starts = torch.tensor([-20.0, 0.0, 10.0, 50.0, 80.0, 100.0])  # pieces within a knot interval or outside
    lengths = torch.tensor([20.0, 10.0, 40.0, 5.0, 20.0, 30.0])
    for sigma in (0.0, 0.3, 1.0):
        assert torch.allclose(schedule.along(starts, lengths)(sigma), schedule(starts + sigma * lengths))


def test_schedule_initialised_from_rates():
    constant = PiecewiseSchedule(50, knots=4, u_max=(0.1, 0.2), init=(0.02, 0.2))
    assert torch.allclose(constant.rates(), torch.tensor([[0.02], [0.2]]).expand(2, 50), rtol=1e-8)
    fitted = PiecewiseSchedule(50, knots=6, u_max=0.1, init=ConstantSchedule(0.03))
    assert torch.allclose(fitted.rates(), torch.full((2, 50), 0.03))


# -- the scalar problem ---------------------------------------------------------------------------
def scalar_problem(a, sigma2):
    """ṁ = −2a u m + u²σ² is the second moment of dX = −a u X ds + u σ dW (one player, d = 1)."""
    return Linearisation([[-a]], [[sigma2]], [0.0], p=1)


@pytest.mark.parametrize("m0, steps", [(1.0, 2000), (0.05, 500), (1.0, 15)],
                         ids=["switch-inside", "switch-at-once", "switch-never"])
def test_known_optimum_integrates_to_its_value(m0, steps):
    """The closed form against the moment equations driven by its own rate u*(s) (kink at the switch)."""
    a, sigma2, u_max = 0.5, 1.0, 0.1
    value, rate = known_optimum_1d(a, sigma2, m0, steps, u_max)
    lin = scalar_problem(a, sigma2)
    assert terminal(lin, rate, [0.0], [[m0]], steps, step_size=0.5) == pytest.approx(value, rel=1e-7)
    switch = float(rate.breaks[0])
    assert (switch == 0) == (m0 <= u_max * sigma2 / a) and (switch >= steps) == (steps == 15)


def test_optimised_schedule_reaches_the_known_optimum():
    """optimise() on the scalar problem ends within 2% of the closed-form optimum (and not below it: no
    schedule beats the greedy control), while the best constant rate is about twice as far off."""
    a, sigma2, m0, steps, u_max = 0.5, 1.0, 1.0, 2000, 0.1
    value, _ = known_optimum_1d(a, sigma2, m0, steps, u_max)
    lin = scalar_problem(a, sigma2)
    schedule, losses = optimise(lin, [0.0], [[m0]], steps, u_max)
    optimised = terminal(lin, schedule, [0.0], [[m0]], steps, step_size=0.5)
    assert optimised == pytest.approx(math.exp(losses[-1]), rel=1e-4)
    assert value * (1 - 1e-6) < optimised < 1.02 * value
    best_constant = min(terminal(lin, ConstantSchedule(0.002 * 2 ** (i / 4)), [0.0], [[m0]], steps)
                        for i in range(23))  # up to u_max
    assert best_constant > 1.8 * value


# -- linearising a trainer --------------------------------------------------------------------------
def test_linearise_gaussian_game_simultaneous():
    """J is the expected field's Jacobian (the ridge is in the field); Σ is SME-1's fresh-batch noise
    blockdiag(Σ_θθ, Σ_ωω), which here is all of Σ_B: at the equilibrium the critic vanishes, so the
    generator's gradient has no noise (Σ_θθ = Σ_θω = 0). The trainer's rate scales are divided out."""
    x_star = GAUSSIAN.equilibrium()
    covariance = GAUSSIAN.gradient_covariance(x_star[None], 4)[0]
    assert covariance[:2].abs().max() == 0 and covariance[2:, 2:].abs().min() > 0.1
    for gen, disc in ((Player(), Player()), (Player(scale=3.0), Player(scale=0.5))):
        lin = linearise(SGA(GAUSSIAN, lr=0.01, batch_size=4, gen=gen, disc=disc))
        assert torch.allclose(lin.A, field_jacobian(GAUSSIAN, x_star), atol=1e-12)
        assert torch.allclose(lin.sigma, covariance, atol=1e-12)
        assert torch.equal(lin.x_star, x_star) and lin.p == 2


def test_linearise_gaussian_game_alternating():
    """alt-d with n_d = 2: b₁ = (V_θ, 2V_ω), so J's ω rows double; the ω noise is drawn twice (2Σ_ωω)."""
    lin = linearise(SGA(GAUSSIAN, lr=0.01, batch_size=4, update="alt-d", n_d=2))
    x_star = GAUSSIAN.equilibrium()
    doubled = torch.tensor([1.0, 1.0, 2.0, 2.0])
    assert torch.allclose(lin.A, doubled[:, None] * field_jacobian(GAUSSIAN, x_star), atol=1e-12)
    covariance = GAUSSIAN.gradient_covariance(x_star[None], 4)[0]
    assert torch.allclose(lin.sigma, torch.block_diag(covariance[:2, :2], 2 * covariance[2:, 2:]), atol=1e-12)


def test_linearise_separates_fresh_batches():
    """Where Σ_θω ≠ 0 (a noisy bilinear coupling at a non-zero equilibrium), fresh batches give
    blockdiag(Σ_θθ, Σ_ωω) and a shared batch keeps the cross-covariance."""
    game = BilinearGame(p=1, q=2, coupling=[[1.0, 0.5]], b=0.4, c=-0.3, ridge=0.5, noise_coupling=1.0)
    x_star = game.equilibrium()
    covariance = game.gradient_covariance(x_star[None], 3)[0]
    assert covariance[:1, 1:].abs().max() > 0.01
    fresh, shared = (linearise(SGA(game, batch_size=3, shared_batch=s)) for s in (False, True))
    assert torch.allclose(fresh.sigma, torch.block_diag(covariance[:1, :1], covariance[1:, 1:]), atol=1e-12)
    assert torch.allclose(shared.sigma, covariance, atol=1e-12)


# -- errors ----------------------------------------------------------------------------------------
LIN = Linearisation(torch.eye(2) * -1.0, torch.eye(2), torch.zeros(2), 1)
BAD = {
    "A not square": (lambda: Linearisation(torch.zeros(2, 3), torch.eye(2), torch.zeros(2), 1), "A must be square"),
    "sigma shape": (lambda: Linearisation(-torch.eye(2), torch.eye(3), torch.zeros(2), 1), "sigma must have shape"),
    "p out of range": (lambda: Linearisation(-torch.eye(2), torch.eye(2), torch.zeros(2), 3), "p must be"),
    "m0 shape": (lambda: moments(LIN, ConstantSchedule(0.1), torch.zeros(3), torch.eye(2), [0, 1]), "m0 must"),
    "P0 shape": (lambda: moments(LIN, ConstantSchedule(0.1), torch.zeros(2), torch.eye(3), [0, 1]), "P0 must"),
    "times": (lambda: moments(LIN, ConstantSchedule(0.1), torch.zeros(2), torch.eye(2), [0, 2, 1]), "times must"),
    "no u_max": (lambda: moments(LIN, lambda s: torch.ones(2), torch.zeros(2), torch.eye(2), [0, 1]), "no u_max"),
    "u_max": (lambda: PiecewiseSchedule(10, u_max=0.0), "u_max"),
    "steps": (lambda: PiecewiseSchedule(0), "steps"),
    "knots": (lambda: PiecewiseSchedule(10, knots=1), "knots"),
    "init": (lambda: PiecewiseSchedule(10, u_max=0.1, init=0.2), "initial rates"),
    "optimum": (lambda: known_optimum_1d(1.0, 1.0, 1.0, 10, -0.1), "u_max"),
    "not an equilibrium": (lambda: linearise(SGA(GAUSSIAN), torch.zeros(4)), "not an equilibrium"),
}


@pytest.mark.parametrize("make, message", BAD.values(), ids=BAD.keys())
def test_bad_inputs_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- the Gaussian game's optimal schedule -----------------------------------------------------------
def test_optimised_schedule_beats_constant_rates_on_the_gaussian_game():
    """sim, batch 4, a 2000-step budget, u ≤ 0.1 for both players, from the game's initial state: the
    optimised schedule ends well below the best constant rate of the grid 0.002·2^(i/2) (≈ 2.6× here)."""
    lin = linearise(SGA(GAUSSIAN, lr=0.01, batch_size=4))
    m0, P0, steps = GAUSSIAN.init(1, Streams([0]))[0] - lin.x_star, torch.zeros(4, 4), 2000
    schedule, losses = optimise(lin, m0, P0, steps, u_max=0.1, progress=True)
    optimised = terminal(lin, schedule, m0, P0, steps)
    best_constant = min(terminal(lin, ConstantSchedule(0.002 * 2 ** (i / 2)), m0, P0, steps) for i in range(16))
    assert optimised == pytest.approx(math.exp(losses[-1]), rel=1e-10)
    assert best_constant / optimised > 2
    rates = schedule.rates()
    assert rates.shape == (2, steps) and bool((rates > 0).all()) and bool((rates <= 0.1).all())


def test_a_tied_schedule_keeps_the_rate_ratio_and_has_one_curve():
    schedule = PiecewiseSchedule(100, knots=5, u_max=(0.2, 0.1), init=(0.05, 0.025), tied=True)
    assert schedule.raw.shape == (1, 5)
    with torch.no_grad():
        schedule.raw.copy_(torch.linspace(-2, 2, 5)[None])
    rates = schedule.rates()
    torch.testing.assert_close(rates[0], 2 * rates[1])
    assert rates[0, 0] < rates[0, -1]  # it follows the (increasing) logits
