"""SDE integrators: exact moments of linear SDEs, measured orders, pathwise agreement with torchsde,
ensemble = single paths, divergence and interruption."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torchsde

from games.errors import ConfigError
from games.execution import BLOWUP, using
from games.random import Streams
from sde.integrate import brownian_from_increments, euler_maruyama, integrate, sdeint
from sde.solvers import PlatenWeak2
from sde.linear import LinearSDE

# A non-normal drift with a rotation part, an affine term and full-rank noise (d = m = 2)
A_OU = 0.5 * torch.tensor([[-1.0, 2.0], [-2.0, -1.0]]) + torch.tensor([[0.0, 0.6], [0.0, 0.0]])
C_OU = torch.tensor([0.3, -0.2])
S_OU = torch.tensor([[0.5, 0.1], [0.2, 0.4]])
X0_OU = torch.tensor([1.0, -0.5])


def ou() -> LinearSDE:
    return LinearSDE(A_OU, C_OU, S_OU, p=1)


class Nonlinear:
    """A 2-D nonlinear Itô SDE with general noise (m = 3)."""

    noise_type, sde_type, d, m, p = "general", "ito", 2, 3, 1

    def f(self, t, y):
        y1, y2 = y[:, 0], y[:, 1]
        return torch.stack([-y1**3 + torch.sin(y2) + 0.1 * t, y1 - 0.5 * y2], dim=-1)

    def g(self, t, y):
        y1, y2 = y[:, 0], y[:, 1]
        one = torch.ones_like(y1)
        return torch.stack([torch.stack([torch.cos(y1), 0.3 * one, 0.1 * y2], -1),
                            torch.stack([0.2 * y1, 1 / (1 + y2**2), 0.5 * one], -1)], dim=1)


class GBM:
    """dX = a X dt + b X dW (geometric Brownian motion), d = m = 1."""

    noise_type, sde_type, d, m, p = "general", "ito", 1, 1, 1

    def __init__(self, a, b):
        self.a, self.b = a, b

    def f(self, t, y):
        return self.a * y

    def g(self, t, y):
        return (self.b * y)[..., None]


class Blowup:
    """dX = X² dt + s dW: from X_0 = 1 (and s = 0) the solution 1/(1 − t) blows up at t = 1."""

    noise_type, sde_type, d, m, p = "general", "ito", 1, 1, 1

    def __init__(self, s=0.0):
        self.s = s

    def f(self, t, y):
        return y * y

    def g(self, t, y):
        return torch.full((y.shape[0], 1, 1), self.s, dtype=y.dtype)


def slope(dts, errors) -> float:
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


# -- linear SDEs: closed forms -------------------------------------------------------------------------
def test_linear_sde_moments_match_independent_closed_forms():
    sde, A, c, S = ou(), A_OU.numpy(), C_OU.numpy(), S_OU.numpy()
    Ainv_c = np.linalg.solve(A, c)
    P_inf = scipy.linalg.solve_continuous_lyapunov(A, -S @ S.T)  # A P + P Aᵀ + S Sᵀ = 0
    for t in (0.0, 0.3, 1.0, 4.0):
        E = scipy.linalg.expm(A * t)
        mean = E @ (X0_OU.numpy() + Ainv_c) - Ainv_c
        cov = P_inf - E @ P_inf @ E.T  # P(t) for a stable A
        assert np.allclose(sde.mean(X0_OU, t).numpy(), mean, rtol=1e-12, atol=1e-13)
        assert np.allclose(sde.covariance(t).numpy(), cov, rtol=1e-10, atol=1e-13)
    # [K, d] starts give one mean per start
    starts = torch.stack([X0_OU, -X0_OU])
    assert torch.allclose(sde.mean(starts, 1.0)[1], sde.mean(-X0_OU, 1.0), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("solver,order", [("euler", 1), ("platen2", 2)])
def test_scheme_moments_converge_to_the_exact_ones_with_the_weak_order(solver, order):
    sde = ou()
    errs_m, errs_P = [], []
    for n in (50, 100, 200, 400):
        errs_m.append((sde.scheme_mean(X0_OU, 1.0 / n, n, solver) - sde.mean(X0_OU, 1.0)).norm().item())
        errs_P.append((sde.scheme_covariance(1.0 / n, n, solver) - sde.covariance(1.0)).norm().item())
    assert abs(slope([1 / 50, 1 / 100, 1 / 200, 1 / 400], errs_m) - order) < 0.05
    assert abs(slope([1 / 50, 1 / 100, 1 / 200, 1 / 400], errs_P) - order) < 0.05


def test_platen_step_matrices_are_those_of_the_solver():
    """One step of the PlatenWeak2 object on the OU SDE equals B x + b + C ΔW (the closed form above)."""
    sde, dt = ou(), 0.1
    x, dw = torch.randn(7, 2), torch.randn(7, 2)
    B, b, C = sde.step_matrices("platen2", dt)
    assert torch.allclose(PlatenWeak2().step(sde, 0.0, x, dt, dw), x @ B.T + b + dw @ C.T, atol=1e-14)


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_platen_realises_its_exact_moments(compile):
    """20000 OU paths of Platen's scheme at a coarse step against the scheme's exact moments, which
    differ measurably from Euler's there (so the test tells the schemes apart)."""
    sde, K, dt, n = ou(), 20000, 0.1, 10
    X = integrate(sde, X0_OU, 1.0, dt, solver="platen2", K=K, seed=4, record_every=n, compile=compile).states[-1]
    m, P = sde.scheme_mean(X0_OU, dt, n, "platen2"), sde.scheme_covariance(dt, n, "platen2")
    se = (P.diag() / K).sqrt()
    assert ((X.mean(0) - m) / se).abs().max() < 5
    assert ((torch.cov(X.T) - P).abs() / (P.diag()[:, None] * P.diag()[None]).sqrt() * math.sqrt(K / 2)).max() < 5
    assert ((sde.scheme_mean(X0_OU, dt, n, "euler") - m) / se).abs().max() > 10


def test_compiled_steps_give_the_eager_paths_to_rounding():
    sde = Nonlinear()
    eager = integrate(sde, [0.3, -0.2], 0.5, 0.01, solver="platen2", K=6, seed=2, block=8)
    fused = integrate(sde, [0.3, -0.2], 0.5, 0.01, solver="platen2", K=6, seed=2, block=8, compile=True)
    # the normals are float32 Box–Muller, whose log/cos/sin round differently when fused
    assert fused.metadata["compiled"] and torch.allclose(fused.states, eager.states, rtol=1e-6, atol=1e-6)
    other_seed = integrate(sde, [0.3, -0.2], 0.5, 0.01, solver="platen2", K=6, seed=3, block=8)
    assert (other_seed.states - eager.states).abs().max() > 1e-3  # the tolerance resolves the noise


def test_euler_maruyama_reproduces_the_exact_moments_of_the_scheme():
    """20000 OU paths against the exact Euler–Maruyama mean and covariance (z-scores), which are
    themselves within O(dt) of the SDE's (so the Monte Carlo check is not masked by the step bias)."""
    sde, K, dt, n = ou(), 20000, 1e-3, 1000
    traj = euler_maruyama(sde, X0_OU, 1.0, dt, K=K, seed=3, record_every=n)
    assert traj.times.tolist() == [0.0, 1.0] and traj.states.shape == (2, K, 2)
    X = traj.states[-1]
    m, P = sde.scheme_mean(X0_OU, dt, n), sde.scheme_covariance(dt, n)
    z_mean = (X.mean(0) - m) / (P.diag() / K).sqrt()
    Y = (X - m)[:, :, None] * (X - m)[:, None, :]  # products: E Y = P exactly
    z_cov = (Y.mean(0) - P) / (Y.std(0) / math.sqrt(K))
    assert z_mean.abs().max() < 5, z_mean
    assert z_cov.abs().max() < 5, z_cov
    # the scheme's bias is well below the Monte Carlo resolution here, so the SDE's own moments pass too
    assert (m - sde.mean(X0_OU, 1.0)).abs().max() < 0.5 * (P.diag() / K).sqrt().min()
    assert ((X.mean(0) - sde.mean(X0_OU, 1.0)) / (P.diag() / K).sqrt()).abs().max() < 5
    assert (P - sde.covariance(1.0)).abs().max() < 2e-3 * P.abs().max()


# -- orders of convergence -------------------------------------------------------------------------------
def test_gbm_strong_order_one_half_and_weak_order_one():
    """GBM with the exact solution on the same Brownian path: strong error E|X_T^EM − X_T| has
    slope 1/2, weak error E X_T^EM − e^{aT} (paired with X_T, whose mean is e^{aT}) slope 1; the
    measured weak error also agrees with the exact E X_T^EM = (1 + a dt)^n within Monte Carlo error."""
    a, b, T, K, levels = 1.5, 1.0, 1.0, 20000, range(3, 8)
    fine = 2 ** max(levels)
    inc = Streams.from_seed(7, K).normal(fine, 1).transpose(0, 1) * math.sqrt(T / fine)  # [N, K, 1]
    exact = torch.exp((a - b * b / 2) * T + b * inc.sum(0)[:, 0])
    dts, strong, weak = [], [], []
    for level in levels:
        n, r = 2**level, fine // 2**level
        coarse = inc.reshape(n, r, K, 1).sum(1)
        em = euler_maruyama(GBM(a, b), [1.0], T, T / n, increments=coarse, record_every=n).states[-1, :, 0]
        diff = em - exact
        dts.append(T / n)
        strong.append(diff.abs().mean().item())
        weak.append(diff.mean().item())
        expected = (1 + a * T / n) ** n - math.exp(a * T)  # exact E X^EM − E X_T
        assert abs(weak[-1] - expected) < 5 * diff.std().item() / math.sqrt(K), (level, weak[-1], expected)
    assert all(w < 0 for w in weak)
    assert abs(slope(dts, strong) - 0.5) < 0.15, strong
    assert abs(slope(dts, [-w for w in weak]) - 1.0) < 0.15, weak


# -- pathwise agreement with torchsde ------------------------------------------------------------------
@pytest.mark.parametrize("t_end,dt,record_every", [(1.0, 2.0**-6, 1), (0.5, 0.01, 5)])
def test_pathwise_equal_to_torchsde_euler_on_the_same_increments(t_end, dt, record_every):
    sde, K = Nonlinear(), 7
    N = round(t_end / dt)
    gen = torch.Generator().manual_seed(0)
    inc = torch.randn(N, K, sde.m, generator=gen, dtype=torch.float64) * math.sqrt(dt)
    x0 = torch.randn(K, sde.d, generator=gen, dtype=torch.float64)
    ours = euler_maruyama(sde, x0, t_end, dt, increments=inc, record_every=record_every, block=16)
    ref = sdeint(sde, x0, t_end, dt, method="euler", increments=inc, record_every=record_every)
    assert torch.equal(ours.times, ref.times)
    assert (ours.states - ref.states).abs().max() < 1e-12
    assert ours.states[-1].std() > 0.1  # the paths moved
    if dt == 2.0**-6:  # a dyadic grid: straight through torchsde, with its own clock
        ts = torch.arange(N + 1, dtype=torch.float64) * dt
        ys = torchsde.sdeint(sde, x0, ts, bm=brownian_from_increments(inc, dt), dt=dt, method="euler")
        assert (ours.states - ys).abs().max() < 1e-12


def test_brownian_from_increments_interface():
    inc = torch.arange(12, dtype=torch.float64).reshape(4, 3, 1)  # N = 4, K = 3, m = 1
    bm = brownian_from_increments(inc, 0.25, t0=1.0)
    assert tuple(bm.shape) == (3, 1) and bm.dtype == torch.float64 and bm.levy_area_approximation == "none"
    one = bm(1.25, 1.5)  # one step: the increment itself, not a difference of sums
    assert torch.equal(one, inc[1]) and one.data_ptr() == inc[1].data_ptr()
    assert torch.equal(bm(1.25, 2.0), inc[1:].sum(0))
    assert torch.equal(bm(torch.tensor(1.5)), inc[:2].sum(0))  # W(t) − W(t0)
    with pytest.raises(ValueError, match="not on the grid"):
        bm(1.0, 1.1)
    with pytest.raises(ValueError, match="not on the grid"):
        bm(1.0, 2.25)
    with pytest.raises(ValueError, match="Lévy area"):
        bm(1.0, 1.25, return_U=True)


def test_sdeint_with_torchsde_brownian_motion_has_the_right_law():
    sde, K, dt, n = ou(), 4000, 2.0**-5, 32
    traj = sdeint(sde, X0_OU, 1.0, dt, K=K, seed=2, record_every=8)
    assert traj.times.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    again = sdeint(sde, X0_OU, 1.0, dt, K=K, seed=2, record_every=8)
    assert torch.equal(traj.states, again.states)
    m, P = sde.scheme_mean(X0_OU, dt, n), sde.scheme_covariance(dt, n)
    z = (traj.states[-1].mean(0) - m) / (P.diag() / K).sqrt()
    assert z.abs().max() < 5, z
    var = traj.states[-1].var(0)
    assert ((var / P.diag() - 1).abs() < 5 * math.sqrt(2 / K)).all(), (var, P.diag())


# -- randomness: ensembles, seeds, blocks -----------------------------------------------------------------
@pytest.mark.parametrize("make", [Nonlinear, ou])
def test_ensemble_equals_single_paths_and_same_seed_same_trajectory(make):
    sde = make()
    x0 = torch.tensor([0.3, -0.2])
    ens = euler_maruyama(sde, x0, 50 * 0.02, 0.02, K=5, seed=11, record_every=3, block=8)
    assert ens.metadata["block"] == 8 and len(ens.metadata["seeds"]) == 5
    for k, seed in enumerate(ens.metadata["seeds"]):
        single = euler_maruyama(sde, x0, 1.0, 0.02, streams=Streams([seed]), record_every=3, block=8)
        assert torch.equal(single.states[:, 0], ens.states[:, k])
    a, b, c = (euler_maruyama(sde, x0, 1.0, 0.02, K=3, seed=s, block=8) for s in (5, 5, 6))
    assert torch.equal(a.states, b.states) and not torch.equal(a.states, c.states)
    # record_every does not change the numbers, and a shorter run is a prefix of a longer one
    assert torch.equal(a.states[::3], euler_maruyama(sde, x0, 1.0, 0.02, K=3, seed=5, block=8,
                                                     record_every=3).states[:-1])
    short = euler_maruyama(sde, x0, 0.3, 0.02, K=3, seed=5, block=8)
    assert torch.equal(short.states, a.states[:16])
    # the block size is part of what fixes the numbers (documented)
    assert not torch.equal(a.states, euler_maruyama(sde, x0, 1.0, 0.02, K=3, seed=5, block=4).states)


# -- divergence, interruption, validation ------------------------------------------------------------------
def _blowup_step(x, dt, steps, s=0.0, dws=None, bound=math.inf):
    """First n with |x_n| > bound or x_n non-finite, for x ← x + x²dt + s ΔW in Python floats (None if
    it stays inside)."""
    for n in range(steps):
        x = (x * x) * dt + x + (s * dws[n] if dws is not None else 0.0)
        if not math.isfinite(x) or abs(x) > bound:
            return n + 1
    return None


def test_divergence_is_reported_per_path_with_its_step():
    dt, T, K = 2.0**-8, 4.0, 4
    N = round(T / dt)
    x0 = torch.tensor([[1.0], [0.5], [-1.0], [0.0]])
    gen = torch.Generator().manual_seed(1)
    inc = torch.randn(N, K, 1, generator=gen, dtype=torch.float64) * math.sqrt(dt)
    with using(blowup=math.inf):  # no bound: divergence is overflow
        traj = euler_maruyama(Blowup(0.1), x0, T, dt, increments=inc, block=64)
    expected = {k: _blowup_step(x0[k, 0].item(), dt, N, 0.1, inc[:, k, 0].tolist()) for k in range(K)}
    expected = {k: n for k, n in expected.items() if n is not None}
    assert traj.metadata["diverged"] == expected and set(expected) >= {0, 1}
    for k, n in expected.items():  # the record is kept up to the blow-up, and is non-finite after it
        assert torch.isfinite(traj.states[:n, k]).all() and not torch.isfinite(traj.states[n:, k]).any()
    assert len(traj.times) == N + 1 and traj.times[-1] == T

    # without noise, from 1: the Euler chain lags the blow-up at t = 1 a little
    with using(blowup=math.inf):
        single = euler_maruyama(Blowup(), [1.0], T, dt, K=1, block=64)
    n = single.metadata["diverged"][0]
    assert n == _blowup_step(1.0, dt, N) and 1.0 < n * dt < 1.15
    # every path has diverged: the run stops at the end of that block, its last row non-finite
    assert single.times[-1] == math.ceil(n / 64) * 64 * dt < T
    assert torch.isfinite(single.states[:n]).all() and not torch.isfinite(single.states[-1]).any()


def test_a_finite_explosion_is_flagged_at_its_step_and_set_to_nan():
    """The default bound, 1e6 · max(1, max|x_0|), catches the blow-up long before it overflows; the record
    is kept up to the step and the run ends non-finite (NaN once screened, if not inf before), left out of ensemble means."""
    dt, T, K = 2.0**-8, 4.0, 4
    N = round(T / dt)
    x0 = torch.tensor([[1.0], [0.5], [-1.0], [0.0]])
    inc = torch.randn(N, K, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * math.sqrt(dt)
    traj = euler_maruyama(Blowup(0.1), x0, T, dt, increments=inc, block=64)
    bound = BLOWUP * 1.0
    expected = {k: _blowup_step(x0[k, 0].item(), dt, N, 0.1, inc[:, k, 0].tolist(), bound) for k in range(K)}
    expected = {k: n for k, n in expected.items() if n is not None}
    assert traj.metadata["diverged"] == expected and set(expected) >= {0, 1}
    with using(blowup=math.inf):
        overflow = euler_maruyama(Blowup(0.1), x0, T, dt, increments=inc, block=64).metadata["diverged"]
    for k, n in expected.items():
        assert n < overflow[k] and (traj.states[:n, k].abs() <= bound).all() and not torch.isfinite(traj.states[-1, k]).any()


def test_interrupt_keeps_the_record():
    class Interrupted(Nonlinear):
        def f(self, t, y):
            if t >= 0.5:
                raise KeyboardInterrupt
            return super().f(t, y)

    traj = euler_maruyama(Interrupted(), [0.1, 0.2], 1.0, 2.0**-6, K=3, record_every=4, block=16)
    assert traj.metadata["interrupted"] == 32
    assert traj.times[-1] == 0.5 and len(traj.times) == 9 and torch.isfinite(traj.states).all()


def test_invalid_arguments_are_named():
    sde = ou()
    with pytest.raises(ConfigError, match="dt"):
        euler_maruyama(sde, X0_OU, 1.0, 0.3)
    with pytest.raises(ConfigError, match="dt"):
        sdeint(sde, X0_OU, 1.0, 0.3)
    with pytest.raises(ConfigError, match="increments"):
        euler_maruyama(sde, X0_OU, 1.0, 0.25, increments=torch.zeros(3, 2, 2))
    with pytest.raises(ConfigError, match="K"):
        euler_maruyama(sde, torch.zeros(3, 2), 1.0, 0.25, K=4)
    assert euler_maruyama(sde, X0_OU, 1.0, 0.1, K=2).states.shape == (11, 2, 2)  # 1/0.1 is 10 within 1e-9
