"""Stationary covariances of linear(ised) games in closed form (THEORY §2, "the long-run version").

Near an equilibrium x* one iteration of the chain is affine, x' − x* = M(x − x*) + Σ_g N_g ζ_g
(``games.linearisation``), so its stationary covariance solves the discrete Lyapunov equation
P = M P Mᵀ + Σ_g N_g Σ_B N_gᵀ, exactly for linear games. An SME dX = b(X) dt + √η σ dW with
b(x) ≈ Ã(x − x*) has the stationary covariance solving the continuous Lyapunov equation
Ã P + P Ãᵀ + η σσᵀ = 0. Both are solved by ``games.maths.lyapunov``; an unstable linearisation is an
error naming its spectrum.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from games.linearisation import Linearisation, jacobian_at, linear_chain
from games.sga import SGA
from sde.sme import SME

from .metrics import sliced_w2


def chain_covariance(sga: SGA, x_star: torch.Tensor) -> np.ndarray:
    """The chain's stationary covariance P = MPMᵀ + Σ_g N_g Σ_B N_gᵀ at x* (discrete Lyapunov).

    Args:
        sga: the training (game, rule, rates, batch size).
        x_star: the equilibrium x* [d].

    Returns:
        P [d, d].

    Raises:
        ValueError: if the chain's linearisation is unstable.
    """
    return Linearisation.of_training(sga, x_star).chain_covariance()


def sde_covariance(sme, x_star: torch.Tensor) -> np.ndarray:
    """An SME's stationary covariance: Ã P + P Ãᵀ + η σσᵀ(x*) = 0, Ã = Db(x*) (continuous Lyapunov).

    Args:
        sme: the SME, with ``drift``, ``covariance``, ``eta`` and ``game.p``.
        x_star: the equilibrium x* [d] (or [1, d]).

    Returns:
        P [d, d].

    Raises:
        ValueError: if the drift's linearisation is unstable.
    """
    x_star = x_star.reshape(-1)
    lin = Linearisation(jacobian_at(sme.drift, x_star).detach(), sme.covariance(x_star[None])[0].detach(), x_star,
                        sme.game.p)
    return lin.sde_covariance(sme.eta, what=sme.name)


def relative_error(P: np.ndarray, reference: np.ndarray) -> float:
    """‖P − P_ref‖_F / ‖P_ref‖_F.

    Args:
        P: the covariance [d, d].
        reference: the reference covariance P_ref [d, d].

    Returns:
        The relative error, a float ≥ 0.
    """
    return float(np.linalg.norm(P - reference) / np.linalg.norm(reference))


def closed_form_errors(game, x_star: torch.Tensor, update: str, etas, batch: int, orders=("1", "2", "2s")) -> dict:
    """{order: [relative error of the SME's stationary covariance against the chain's exact one, per η]}.

    Args:
        game: the game.
        x_star: its equilibrium x* [d].
        update: the update rule.
        etas: the rates.
        batch: the batch size.
        orders: the SMEs' orders.

    Returns:
        {order: [errors]}.
    """
    errors = {order: [] for order in orders}
    for eta in etas:
        trainer = SGA(game, lr=eta, update=update, batch_size=batch)
        exact = chain_covariance(trainer, x_star)
        for order in orders:
            errors[order].append(relative_error(sde_covariance(SME(trainer, order=order), x_star), exact))
    return errors


def settling_steps(trainer: SGA, x_star: torch.Tensor, tolerance: float = 1e-4) -> int:
    """Iterations after which the covariance from a point start is within ``tolerance`` of stationary: ρ(M)^{2k}.

    Args:
        trainer: the training.
        x_star: the equilibrium x* [d] at which its chain is linearised (M).
        tolerance: the relative distance to the stationary covariance.

    Returns:
        k.
    """
    M, _ = linear_chain(trainer, x_star)
    radius = float(torch.linalg.eigvals(M).abs().max())
    return math.ceil(math.log(tolerance) / (2 * math.log(radius)))


def law_distances(laws: dict, orders=("1", "2", "2s")) -> dict:
    """{name: (relative covariance error, sliced W₂)} of each SME's stationary samples against the chain's, and
    their Monte Carlo scale ("mc") from two halves of the chain's samples.

    Args:
        laws: {"chain" or order: pooled stationary samples [N, d]}.
        orders: the SMEs among them.

    Returns:
        {order or "mc": (error, sliced W₂)}.
    """
    covariance = lambda x: np.cov(x.numpy().T)  # noqa: E731
    chain = laws["chain"]
    halves = chain[0::2], chain[1::2]  # alternate records of the pooled window: runs × times interleaved
    out = {"mc": (relative_error(covariance(halves[0]), covariance(halves[1])) / math.sqrt(2),
                  sliced_w2(*halves).item() / math.sqrt(2))}
    for order in orders:
        out[order] = (relative_error(covariance(laws[order]), covariance(chain)), sliced_w2(laws[order], chain).item())
    return out


def sample_covariance(samples: torch.Tensor, reference: np.ndarray, resamples: int = 200, seed: int = 0) -> tuple:
    """(the sample covariance of samples [K, d], the Monte Carlo scale of its error relative to ``reference``): the
    mean Frobenius distance of bootstrap resamples' covariances to it, over ‖reference‖_F.

    Args:
        samples: independent states [K, d].
        reference: the covariance the error is relative to [d, d].
        resamples: bootstrap resamples over the K states.
        seed: their generator's seed.

    Returns:
        (covariance [d, d], scale).
    """
    values, K = samples.numpy(), samples.shape[0]
    sample = np.cov(values.T)
    generator = np.random.default_rng(seed)
    resampled = [np.cov(values[generator.integers(0, K, K)].T) for _ in range(resamples)]
    return sample, float(np.mean([np.linalg.norm(r - sample) for r in resampled]) / np.linalg.norm(reference))
