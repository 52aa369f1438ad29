"""Optimistic gradient descent–ascent: a step corrected by the last one."""
from __future__ import annotations

from dataclasses import dataclass

from .base import UpdateRule


@dataclass(frozen=True)
class Optimistic(UpdateRule):
    """x_{k+1} = x_k − η(2d_k − d_{k−1}), d_k the players' directions at x_k and d_{−1} = d_0 (the first
    step is plain GDA); with SGD, x_{k+1} = x_k + 2ηV(x_k) − ηV(x_{k−1}) (Daskalakis et al. 2018,
    arXiv:1711.00141; with Adam's directions, their optimistic Adam).

    A two-step method: its continuous limits are those of its underlying one-step method (Hairer, Lubich
    & Wanner 2006, §XV.2), whose past point is x − ηb₁(x) + O(η²): b₁ = V and m₂ = DV·V, as for
    extragradient (THEORY §7). A minibatch's noise enters two iterations (2ζ_k, then −ζ_k), so on the
    underlying method it loads the step once: the past direction reuses the current minibatch.
    """

    name = "ogda"
    stateful = True

    def init(self, x):
        return {"previous": None}

    def step(self, x, state, ctx):
        d = ctx.directions(ctx.gradients(x))
        previous = d if state["previous"] is None else state["previous"]
        return ctx.descend(x, {who: 2 * d[who] - previous[who] for who in d}), {"previous": d}

    def underlying_state(self, x, ctx):
        return {"previous": ctx.directions(ctx.gradients(ctx.previous(x)))}
