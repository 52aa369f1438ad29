"""Distances between two ensembles of states, path by path: discrete training against the flow it discretises
(THEORY §5)."""
from __future__ import annotations

import torch

from flows.dual import DualFlowGame, dual_flow, dual_training
from games import GaussianGame
from games.oracle import Mean

from .metrics import w2_gaussian


def generator_w2(game: GaussianGame):
    """The distance (a, b) ↦ [T, K]: the exact W₂ between the generator laws N(μ, WWᵀ) of two state tensors [T, K, d]."""
    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        mu_a, W_a, _, _ = game.unpack(a.reshape(-1, game.d))
        mu_b, W_b, _, _ = game.unpack(b.reshape(-1, game.d))
        cov = lambda W: W @ W.transpose(1, 2)  # noqa: E731
        return w2_gaussian(mu_a, cov(W_a), mu_b, cov(W_b)).reshape(a.shape[:2])
    return distance


def particle_rms(game: DualFlowGame):
    """The distance (a, b) ↦ [T, K]: (1/N Σ_i |X_i − Y_i|²)^½ between the particle sets of two state tensors
    [T, K, d], the W₂ bound of the coupling that pairs each particle with itself."""
    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (game.particles(a) - game.particles(b)).pow(2).sum(-1).mean(-1).sqrt()
    return distance


def distance_to_flow(game, x0, distance, tau: float, horizon: float, alpha: float) -> tuple:
    """(times, distance at each t = kτ ≤ T between simultaneous training at rate τ, the critic at ατ, on the
    expected field, and the flow ẋ = (V_θ, αV_ω)); the times stop where training diverged.

    Args:
        game: a game of ``flows.dual``.
        x0: the start, [1, d].
        distance: (a, b) ↦ [T, K], as ``generator_w2`` or ``particle_rms`` give.
        tau: the rate.
        horizon: T.
        alpha: the critic's time scale.

    Returns:
        (times [T'], distances [T']).
    """
    steps = round(horizon / tau)
    chain = dual_training(game, x0, tau, steps, alpha=alpha, oracle=Mean(game)).states
    flow = dual_flow(game, x0, steps * tau, alpha=alpha, n_records=steps + 1, rtol=1e-8, atol=1e-10).states
    rows = min(len(chain), len(flow))
    return torch.arange(rows) * tau, distance(chain[:rows], flow[:rows])[:, 0]
