"""Gradient flow ẋ = (c_θ V_θ(x), c_ω V_ω(x)): the η → 0 limit of training (THEORY §3)."""
from __future__ import annotations

import torch

from games.base import Game
from games.trajectory import Trajectory

from .ode import integrate_flow


def gradient_flow(game: Game, x0: torch.Tensor, t_end: float, *, c_theta: float = 1.0, c_omega: float = 1.0,
                  **options) -> Trajectory:
    """Integrate the expected field from x0 [K, d] over [0, t_end] (``integrate_flow``'s options).

    Args:
        game: the game, whose ``expected_field`` V gives the flow.
        x0: the initial states, [K, d].
        t_end: the final time.
        c_theta: the generator's rate scale c_θ.
        c_omega: the discriminator's rate scale c_ω.
        **options: keywords of ``flows.ode.integrate_flow`` (n_records, method, rtol, atol…).

    Returns:
        The Trajectory: states [T, K, d] at ``n_records`` equally spaced times.
    """
    scale = torch.cat([torch.full((game.p,), c_theta), torch.full((game.q,), c_omega)]).to(x0)

    def rhs(t, x):
        return scale * game.expected_field(x)

    meta = {"method": "gradient-flow", "c_theta": c_theta, "c_omega": c_omega, "game": game.describe()}
    return integrate_flow(rhs, x0, t_end, game.p, metadata=meta, **options)
