"""Stationary covariances in closed form (analysis.invariant) against hand formulas and simulation."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from analysis.invariant import chain_covariance, linear_chain, relative_error, sde_covariance
from games import SGA, BilinearGame, Player
from games.random import Streams
from sde.sme import SME

GAME = BilinearGame(p=2, q=1, ridge=0.5, noise_offset=0.3, coupling=[[1.0], [0.4]], b=0.2, c=-0.1)
X_STAR = GAME.equilibrium()


def test_simultaneous_chain_is_the_hand_lyapunov_equation():
    """Sim: M = I + ηA and N = ηI, so P = (I + ηA)P(I + ηA)ᵀ + η²Σ_B (THEORY §2)."""
    eta = 0.05
    trainer = SGA(GAME, lr=eta, batch_size=2)
    A = GAME.linear_field(X_STAR[None])[0].numpy()
    sigma = GAME.gradient_covariance(X_STAR[None], 2)[0].numpy()
    hand = scipy.linalg.solve_discrete_lyapunov(np.eye(3) + eta * A, eta**2 * sigma)
    assert relative_error(chain_covariance(trainer, X_STAR), hand) < 1e-12


def test_alternating_chain_matrices_compose_the_substeps():
    """alt-d: ω moves first, so M = (I + ηP_θA)(I + ηP_ωA) and ω's noise also passes through θ's step."""
    eta, ct, co = 0.1, 0.7, 1.3
    trainer = SGA(GAME, lr=eta, update="alt-d", batch_size=2, gen=Player(scale=ct), disc=Player(scale=co))
    M, noise_maps = linear_chain(trainer, X_STAR)
    A = torch.as_tensor(GAME.linear_field(X_STAR[None])[0])
    P_theta, P_omega = torch.diag(torch.tensor([ct, ct, 0.0])), torch.diag(torch.tensor([0.0, 0.0, co])).double()
    P_theta = P_theta.double()
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(M, (eye + eta * P_theta @ A) @ (eye + eta * P_omega @ A))
    assert len(noise_maps) == 2  # fresh batches: ω's, then θ's
    torch.testing.assert_close(noise_maps[0], (eye + eta * P_theta @ A) @ (eta * P_omega))
    torch.testing.assert_close(noise_maps[1], eta * P_theta)


def test_simulated_chain_matches_the_discrete_lyapunov_solution_not_sme1():
    """K independent alternating chains run to stationarity: their covariance is the closed form within
    Monte Carlo error, and SME-1's stationary covariance is measurably different at this η."""
    eta, K, steps = 0.2, 20_000, 200
    trainer = SGA(GAME, lr=eta, update="alt-d", batch_size=2, gen=Player(scale=0.7))
    end = trainer.run(steps, K=K, seed=3, x0=X_STAR, record_every=steps).states[-1].double()
    c = end - end.mean(0)
    products = c[:, :, None] * c[:, None, :]
    se = products.std(0) / math.sqrt(K)
    exact = torch.as_tensor(chain_covariance(trainer, X_STAR))
    assert ((products.mean(0) - exact).abs() / se).max() < 5
    sme1 = torch.as_tensor(sde_covariance(SME(trainer, order="1"), X_STAR))
    assert ((products.mean(0) - sme1).abs() / se).max() > 8


def stationary_errors(order, etas, update="sim"):
    return [relative_error(sde_covariance(SME(SGA(GAME, lr=eta, update=update, batch_size=2), order=order), X_STAR),
                           chain_covariance(SGA(GAME, lr=eta, update=update, batch_size=2), X_STAR))
            for eta in etas]


def test_stationary_covariance_orders_on_a_linear_game():
    """THEORY §2: against the chain's Lyapunov solution SME-1 and SME-2 are off by O(η), SME-2s by O(η²)."""
    etas = [0.04, 0.02, 0.01]
    slopes = {o: np.polyfit(np.log(etas), np.log(stationary_errors(o, etas)), 1)[0] for o in ("1", "2", "2s")}
    assert abs(slopes["1"] - 1) < 0.15 and abs(slopes["2"] - 1) < 0.15 and abs(slopes["2s"] - 2) < 0.3, slopes


def test_unstable_linearisations_are_named():
    with pytest.raises(ValueError, match="spectral radius"):
        chain_covariance(SGA(GAME, lr=3.0, batch_size=2), X_STAR)
    unstable = BilinearGame(p=1, q=1, ridge=0.0, noise_offset=0.3)  # a pure rotation: not asymptotically stable
    with pytest.raises(ValueError, match="real part"):
        sde_covariance(SME(SGA(unstable, lr=0.01, batch_size=2)), unstable.equilibrium())
