"""Extragradient: a gradient step from the point an extrapolation step reaches."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import check_choice, check_positive
from .base import UpdateRule

EXTRAPOLATIONS = ("sim", "alt")
SAMPLES = ("fresh", "same")


@dataclass(frozen=True)
class Extragradient(UpdateRule):
    """x̃ = x − ρ·g(x), x' = x − η·d(x̃) (Korpelevich 1976; for GANs Gidel et al. 2019, arXiv:1802.10551).

    Args:
        extrapolation: "sim" (both players from x) or "alt" (the discriminator first, then the generator
            at ω̃); the update is simultaneous, from x, with the gradients at x̃.
        sample: "fresh" (extrapolation and update on independent minibatches) or "same" (each player's
            two gradients on one minibatch).
        rho: the extrapolation's scale.
        tied: ρ_player = rho·η_player (tied; classical EG for rho = 1), or rho·c_player held
            fixed as η → 0 ("explore aggressively, update conservatively", Hsieh et al. 2020,
            arXiv:2003.10162), a different continuous limit.

    Continuous limits (THEORY §7): tied, b₁ = V and m₂ = DV·V (modified field V + (η/2)DV·V: the sign
    of GDA's correction flips; Rosca et al. 2021 give EG's drift); fixed ρ, b₁ = E V̂(x + ρV̂'(x)).
    With a stateful optimiser, the optimiser makes the update's direction; the extrapolation is a plain
    gradient step.
    """

    extrapolation: str = "sim"
    sample: str = "fresh"
    rho: float = 1.0
    tied: bool = True

    name = "eg"

    @classmethod
    def checked(cls, field: str, extrapolation="sim", sample="fresh", rho=1.0, tied=True) -> "Extragradient":
        return cls(check_choice(f"{field}.extrapolation", extrapolation, EXTRAPOLATIONS),
                   check_choice(f"{field}.sample", sample, SAMPLES), check_positive(f"{field}.rho", rho),
                   bool(tied))

    def step(self, x, state, ctx):
        batch = "update" if self.sample == "same" else "extrapolation"
        if self.extrapolation == "sim":
            lookahead = ctx.explore(x, ctx.gradients(x, batch=batch), self.rho, self.tied)
        else:
            lookahead = x
            for who in ("omega", "theta"):
                lookahead = ctx.explore(lookahead, ctx.gradients(lookahead, (who,), batch=batch), self.rho, self.tied)
        return ctx.descend(x, ctx.directions(ctx.gradients(lookahead, batch="update"))), state
