"""Gradient flow ẋ = (c_θ V_θ(x), c_ω V_ω(x)): the η → 0 limit of training (THEORY §3)."""
from __future__ import annotations

import torch
from torchdiffeq import odeint

from games.base import Game
from games.trajectory import Trajectory


def gradient_flow(game: Game, x0: torch.Tensor, t_end: float, *, n_records: int = 101,
                  c_theta: float = 1.0, c_omega: float = 1.0, method: str = "dopri5",
                  rtol: float = 1e-9, atol: float = 1e-11, options=None) -> Trajectory:
    """Integrate the expected field from x0 [K, d] over [0, t_end] with torchdiffeq.odeint."""
    scale = torch.cat([torch.full((game.p,), c_theta), torch.full((game.q,), c_omega)]).to(x0)

    def rhs(t, x):
        return scale * game.expected_field(x)

    times = torch.linspace(0.0, t_end, n_records, dtype=x0.dtype, device=x0.device)
    states = odeint(rhs, x0, times, method=method, rtol=rtol, atol=atol, options=options)
    meta = {"method": "gradient-flow", "solver": method, "c_theta": c_theta, "c_omega": c_omega,
            "game": game.describe()}
    return Trajectory(times.double().cpu(), states.detach().cpu(), game.p, {}, meta)
