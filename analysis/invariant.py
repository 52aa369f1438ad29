"""Stationary covariances of linear(ised) games in closed form (THEORY §2, "the long-run version").

Near an equilibrium x* one iteration of the chain is affine, x' − x* = M(x − x*) + Σ_g N_g ζ_g
(``games.linearisation``), so its stationary covariance solves the discrete Lyapunov equation
P = M P Mᵀ + Σ_g N_g Σ_B N_gᵀ, exactly for linear games. An SME dX = b(X) dt + √η σ dW with
b(x) ≈ Ã(x − x*) has the stationary covariance solving the continuous Lyapunov equation
Ã P + P Ãᵀ + η σσᵀ = 0. Both are solved by ``games.maths.lyapunov``; an unstable linearisation is an
error naming its spectrum.
"""
from __future__ import annotations

import numpy as np
import torch

from games.linearisation import Linearisation, jacobian_at
from games.sga import SGA


def chain_covariance(sga: SGA, x_star: torch.Tensor) -> np.ndarray:
    """The chain's stationary covariance P = MPMᵀ + Σ_g N_g Σ_B N_gᵀ at x* (discrete Lyapunov)."""
    return Linearisation.of_training(sga, x_star).chain_covariance()


def sde_covariance(sme, x_star: torch.Tensor) -> np.ndarray:
    """An SME's stationary covariance: Ã P + P Ãᵀ + η σσᵀ(x*) = 0, Ã = Db(x*) (continuous Lyapunov)."""
    x_star = x_star.reshape(-1)
    lin = Linearisation(jacobian_at(sme.drift, x_star).detach(), sme.covariance(x_star[None])[0].detach(), x_star,
                        sme.game.p)
    return lin.sde_covariance(sme.eta, what=sme.name)


def relative_error(P: np.ndarray, reference: np.ndarray) -> float:
    """‖P − P_ref‖_F / ‖P_ref‖_F."""
    return float(np.linalg.norm(P - reference) / np.linalg.norm(reference))
