"""Gradient descent–ascent: simultaneous and alternating, with n_D discriminator steps (THEORY §1)."""
from __future__ import annotations

from dataclasses import dataclass

from ..base import PLAYERS
from ..errors import check_choice, check_int
from .base import UpdateRule


@dataclass(frozen=True)
class Simultaneous(UpdateRule):
    """Simultaneous GDA: x' = x − η·d(x), both players from x_k.

    Continuous limits (THEORY §2, §3): b₁ = V, m₂ = 0; modified field V − (η/2)DV·V (Rosca et al. 2021).
    """

    name = "sim"

    def step(self, x, state, ctx):
        return ctx.descend(x, ctx.directions(ctx.gradients(x))), state


@dataclass(frozen=True)
class Alternating(UpdateRule):
    """Alternating GDA: n_d discriminator steps, then one generator step at the ω they reached (``first`` =
    "omega", alt-d), or the generator first (``first`` = "theta", alt-g); each sub-step moves from the
    point the one before reached.

    Continuous limits (THEORY §2, §3): b₁ = (V_θ, n_d V_ω); alt-d with n_d = 1 has the modified field
    b_θ = V_θ − (η/2)(J_θθV_θ − J_θωV_ω), b_ω = V_ω − (η/2)(J_ωθV_θ + J_ωωV_ω) (Rosca et al. 2021).

    Args:
        first: the player that moves first, "omega" (alt-d) or "theta" (alt-g).
        n_d: the discriminator's sub-steps per iteration (≥ 1).
    """

    first: str = "omega"
    n_d: int = 1

    @property
    def name(self) -> str:
        return "alt-d" if self.first == "omega" else "alt-g"

    @classmethod
    def checked(cls, field: str, first="omega", n_d=1) -> "Alternating":
        return cls(check_choice(f"{field}.first", first, PLAYERS), check_int(f"{field}.n_d", n_d))

    def order(self) -> list:
        """The player each sub-step moves, in order."""
        order = ["omega"] * self.n_d + ["theta"]
        return order if self.first == "omega" else order[::-1]

    def step(self, x, state, ctx):
        for s, who in enumerate(self.order()):
            x = ctx.descend(x, ctx.directions(ctx.gradients(x, (who,), batch=f"step {s}")))
        return x, state
