"""Modified equations of an update rule (THEORY §3, §7): the flows that its deterministic iteration
x_{k+1} = Φ̄_η(x_k) on the expected field follows as η → 0.

- order "1", the rule's gradient flow ẋ = b₁(x) (V for GDA, with (V_θ, n_d V_ω) for n_d steps and the
  rate scales c_θ, c_ω; −DVᵀV for Hamiltonian descent…): the iteration stays within O(η) of it on a
  fixed horizon;
- order "2", the modified equation ẋ = b₁ + η(m₂ − ½ Db₁·b₁) (Hairer, Lubich & Wanner 2006, §IX.1;
  Rosca et al. 2021 for simultaneous and alternating two-player GD): within O(η²).

b₁ and m₂ are read off the rule's code by ``games.expansion`` (the SMEs' drifts are the same terms).
"""
from __future__ import annotations

from typing import Optional

import torch

from games.errors import check_choice
from games.expansion import Expansion
from games.sga import SGA
from games.trajectory import Trajectory

from .ode import integrate_flow

ORDERS = ("1", "2")


def modified_flow(sga: SGA, x0: torch.Tensor, t_end: float, *, order: str = "2", eta: Optional[float] = None,
                  **options) -> Trajectory:
    """The order-``order`` modified equation of ``sga`` at rate ``eta`` (default: sga's rate) from
    x0 [K, d] over [0, t_end] (``flows.ode.integrate_flow``'s options).

    Args:
        sga: the training whose deterministic iteration on the expected field is modelled.
        x0: the initial states, [K, d].
        t_end: the final time.
        order: "1" (ẋ = b₁) or "2" (ẋ = b₁ + η(m₂ − ½ Db₁·b₁)).
        eta: the learning rate η (default: sga's rate at step 0).
        **options: keywords of ``flows.ode.integrate_flow`` (n_records, method, rtol, atol…).

    Returns:
        The Trajectory: states [T, K, d] at ``n_records`` equally spaced times.
    """
    order = check_choice("flow.order", str(order), ORDERS)
    expansion = Expansion(sga, eta)
    field = expansion.leading_drift if order == "1" else expansion.modified_field
    meta = {"method": f"modified-flow-{order}", "eta": expansion.eta, "sga": sga.describe()}
    return integrate_flow(lambda t, x: field(x), x0, t_end, sga.game.p, metadata=meta, **options)
