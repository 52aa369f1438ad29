"""Rules that use the Hamiltonian H = ½|ξ|² of the game's gradient ξ, whose gradient is ∇H = Jᵀξ, J = Dξ."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import check_choice, check_positive
from .base import UpdateRule

SAMPLES = ("fresh", "same")


def _hamiltonian_gradient(x, ctx, sample: str):
    """(ξ, ∇H = Jᵀξ) at x; J on a minibatch independent of ξ's (``sample`` = "fresh": an unbiased ∇H) or on
    the same one."""
    xi = ctx.gradients(x, batch="field")
    return xi, ctx.jacobian_transpose_product(x, xi, batch="field" if sample == "same" else "jacobian")


def _checked_sample(field: str, sample) -> str:
    return check_choice(f"{field}.sample", sample, SAMPLES)


@dataclass(frozen=True)
class Hamiltonian(UpdateRule):
    """Hamiltonian gradient descent: x' = x − η·d(∇H), H = ½|ξ|² (Balduzzi et al. 2018, arXiv:1802.05642;
    Loizou et al. 2020, arXiv:2007.04202 for the stochastic version, unbiased with two independent
    minibatches, ``sample`` = "fresh").

    Continuous limits: b₁ = −∇½|V|² = −DVᵀV; with one minibatch (``sample`` = "same") b₁ also carries the
    noise's bias −E[Dζᵀζ], of order 1/B.

    Args:
        sample: "fresh" (ξ and J on independent minibatches) or "same" (on one).
    """

    sample: str = "fresh"

    name = "hgd"

    @classmethod
    def checked(cls, field: str, sample="fresh") -> "Hamiltonian":
        return cls(_checked_sample(field, sample))

    def step(self, x, state, ctx):
        _, grad_h = _hamiltonian_gradient(x, ctx, self.sample)
        return ctx.descend(x, ctx.directions(grad_h)), state


@dataclass(frozen=True)
class Consensus(UpdateRule):
    """Consensus optimisation: x' = x − η·d(ξ + γ∇H), i.e. x' = x + η(V − γ∇½|V|²) with SGD (Mescheder,
    Nowozin & Geiger 2017, arXiv:1705.10461). Continuous limit: b₁ = V − γDVᵀV.

    Args:
        gamma: γ ≥ 0, the weight of ∇H.
        sample: "fresh" (ξ and J on independent minibatches) or "same" (on one).
    """

    gamma: float = 0.1
    sample: str = "fresh"

    name = "consensus"

    @classmethod
    def checked(cls, field: str, gamma=0.1, sample="fresh") -> "Consensus":
        return cls(check_positive(f"{field}.gamma", gamma, allow_zero=True), _checked_sample(field, sample))

    def step(self, x, state, ctx):
        xi, grad_h = _hamiltonian_gradient(x, ctx, self.sample)
        return ctx.descend(x, ctx.directions({w: xi[w] + self.gamma * grad_h[w] for w in xi})), state


@dataclass(frozen=True)
class Symplectic(UpdateRule):
    """Symplectic gradient adjustment: x' = x − η·d(ξ + λAᵀξ), A = ½(J − Jᵀ) the antisymmetric part of J
    (Balduzzi et al. 2018, arXiv:1802.05642), Aᵀξ = ½(Jᵀξ − Jξ). Continuous limit: b₁ = V − (λ/2)(DVᵀ − DV)V.

    Args:
        lam: λ ≥ 0, the weight of the adjustment.
        sample: "fresh" (ξ and J on independent minibatches) or "same" (on one).
    """

    lam: float = 1.0
    sample: str = "fresh"

    name = "symplectic"

    @classmethod
    def checked(cls, field: str, lam=1.0, sample="fresh") -> "Symplectic":
        return cls(check_positive(f"{field}.lam", lam, allow_zero=True), _checked_sample(field, sample))

    def step(self, x, state, ctx):
        xi, transposed = _hamiltonian_gradient(x, ctx, self.sample)
        direct = ctx.jacobian_product(x, xi, batch="field" if self.sample == "same" else "jacobian")
        return ctx.descend(x, ctx.directions({w: xi[w] + self.lam / 2 * (transposed[w] - direct[w])
                                              for w in xi})), state
