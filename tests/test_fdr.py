"""Fluctuation–dissipation relations: the discrete identity, its ratio and test, and the SDE generator."""
import numpy as np
import pytest
import torch

from analysis.fdr import (balance, expected_loss, fdr_ratio, generator_terms, moving_ratio, ratio, sides,
                          squared_distance, stationary_from)
from analysis.invariant import sde_covariance
from games import SGA, BilinearGame, GaussianGame
from games.base import PLAYERS
from games.sga import Player
from sde.sme import SME

GAME = GaussianGame.preset("damped")


def trainer(update: str, lr: float = 0.1) -> SGA:
    x_star = GAME.equilibrium()
    return SGA(GAME, lr=lr, update=update, batch_size=4, gen=Player(center=x_star[:2]),
               disc=Player(center=x_star[2:]))


@pytest.fixture(scope="module")
def runs():
    return {update: trainer(update).run(600, K=1000, seed=3) for update in ("sim", "alt-d")}


@pytest.mark.parametrize("update", ["sim", "alt-d"])
def test_window_sums_of_the_two_sides_telescope_to_the_change_of_the_squared_distance(runs, update):
    """Per run, Σ_k (2η(θ_k − c₀)·d_k − η²|d_k|²) = |θ_0 − c₀|² − |θ_n − c₀|² exactly: the observables are
    the two sides of the identity behind the FDR."""
    traj, x_star = runs[update], GAME.equilibrium()
    for who, part in (("theta", slice(0, 2)), ("omega", slice(2, 4))):
        lhs, rhs = sides(traj, who)
        eta = traj[f"lr_{who}"][:-1]
        summed = (eta * lhs[:-1] - eta * rhs[:-1]).sum(0)  # the last record's step is not taken
        distance = ((traj.states[:, :, part] - x_star[part]) ** 2).sum(-1)
        torch.testing.assert_close(summed, distance[0] - distance[-1], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("update", ["sim", "alt-d"])
def test_discrete_fdr_holds_at_stationarity_and_fails_in_the_transient(runs, update):
    traj = runs[update]
    for who in PLAYERS:
        stationary = fdr_ratio(traj, who, start=300)
        assert abs(stationary.value - 1) < 3.5 * stationary.se and stationary.se < 0.03, (who, stationary)
        transient = _window(traj, who, 0, 30)
        assert abs(transient.value - 1) > 10 * transient.se and abs(transient.value - 1) > 0.1, (who, transient)


def _window(traj, who, start, stop):
    lhs, rhs = sides(traj, who)
    return ratio(lhs[start:stop].mean(0), rhs[start:stop].mean(0))


def test_stationarity_test_passes_only_after_the_transient(runs):
    traj = runs["sim"]
    start = stationary_from(traj, "omega", tolerance=0.05, every=10)
    assert start is not None and 3.0 < start < 60.0
    assert stationary_from(traj.runs(slice(None)), "omega", every=10) == start
    short = _first_records(traj, 40)
    assert stationary_from(short, "omega", tolerance=0.05) is None


def _first_records(traj, n):
    from games.trajectory import Trajectory

    return Trajectory(traj.times[:n], traj.states[:n], traj.p, {k: v[:n] for k, v in traj.observables.items()})


def test_moving_ratio_matches_the_ratio_over_each_window(runs):
    traj = runs["alt-d"]
    times, values, ses = moving_ratio(traj, "omega", 50)
    assert len(times) == len(traj.times) - 49
    for i in (0, 200, len(times) - 1):
        direct = _window(traj, "omega", i, i + 50)
        assert values[i].item() == pytest.approx(direct.value, rel=1e-10)
        assert ses[i].item() == pytest.approx(direct.se, rel=1e-8)


def test_ratio_interval_covers_the_ratio_of_means_at_the_stated_rate():
    generator = torch.Generator().manual_seed(0)
    covered = 0
    for _ in range(400):
        b = 2.0 + torch.randn(200, generator=generator, dtype=torch.float64)
        a = 1.5 * b + 0.5 * torch.randn(200, generator=generator, dtype=torch.float64)
        low, high = ratio(a, b).interval()
        covered += low <= 1.5 <= high
    assert 0.92 <= covered / 400 <= 0.98


def test_generator_terms_are_the_hand_formulas_at_a_point():
    """For φ = |θ − c|²: b_θ·∇_θφ = 2(θ − c)·b_θ, noise = η tr Σ̃_θθ; for φ = L_G the discriminator's part is
    b_ω·∇_ω L_G and ∇_θ E L_G = −V_θ (the expected losses are the field's potentials)."""
    sme = SME(trainer("sim", lr=0.05), order="1")
    x = GAME.equilibrium()[None] + 0.2 * torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    center = torch.tensor([0.1, -0.2], dtype=torch.float64)
    terms = generator_terms(sme, x, squared_distance("theta", 2, center))
    drift, covariance = sme.drift(x), sme.covariance(x)
    torch.testing.assert_close(terms["theta"], 2 * ((x[:, :2] - center) * drift[:, :2]).sum(-1))
    torch.testing.assert_close(terms["omega"], torch.zeros(5, dtype=torch.float64))
    torch.testing.assert_close(terms["noise"], 0.05 * torch.diagonal(covariance[:, :2, :2], dim1=1, dim2=2).sum(-1))
    xr = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(GAME.expected_losses(xr)[0].sum(), xr)
    torch.testing.assert_close(-grad[:, :2], GAME.expected_field(x)[:, :2])
    loss_terms = generator_terms(sme, x, expected_loss(GAME, "theta"))
    torch.testing.assert_close(loss_terms["omega"], (drift[:, 2:] * grad[:, 2:]).sum(-1))


def test_sde_relation_balances_under_the_exact_invariant_measure_and_not_under_a_wrong_one():
    """Bilinear game with ridge: SME-1 is an OU process whose invariant law N(x*, P) solves the
    continuous Lyapunov equation; at samples of it the relation for |ω − c|² balances within Monte
    Carlo error, and at samples of N(x*, 1.5 P) it does not."""
    game = BilinearGame.preset("rectangular")
    x_star = game.equilibrium()
    sme = SME(SGA(game, lr=0.1, batch_size=2), order="1")
    P = torch.as_tensor(sde_covariance(sme, x_star))
    normal = torch.randn(40_000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    phi = squared_distance("omega", game.p, x_star[game.p :])
    exact = balance(generator_terms(sme, (x_star + normal @ torch.linalg.cholesky(P).T)[None], phi), "omega")
    wrong = balance(generator_terms(sme, (x_star + normal @ torch.linalg.cholesky(1.5 * P).T)[None], phi), "omega")
    assert abs(exact.value - 1) < 3.5 * exact.se
    assert abs(wrong.value - 1) > 10 * wrong.se and abs(wrong.value - 1) > 0.2


@pytest.mark.slow
def test_fdr_entry_quick(tmp_path):
    """The catalog entry at a small size writes its keys, figures and a ratio near 1 for both players."""
    import json

    from gandyn.catalog import catalog
    from gandyn.cli import main

    assert "fdr" in catalog()
    assert main(["reproduce", "fdr", "--quick", "--out", str(tmp_path), "--quiet", "--set", "run.paths=300",
                 "--set", "sga.steps=400"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for who in PLAYERS:
        assert abs(summary[f"fdr_ratio_{who}"] - 1) < 0.2  # 2E[θ·d] = ηE|d|² at stationarity (THEORY §4)
    assert np.isfinite(summary["tradeoff_ratio"])
    assert (tmp_path / "fdr_ratio.png").exists() and (tmp_path / "fdr_sde.png").exists()
