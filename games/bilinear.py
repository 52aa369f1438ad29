"""Stochastic bilinear game: L = θᵀ(A + E)ω + (b + e)ᵀθ + (c + e')ᵀω, noisy coupling and offsets.

The generator minimises L + (λ/2)|θ|², the discriminator maximises L − (λ/2)|ω|². Each sample draws
E with entries N(0, s_A²), e ~ N(0, s_b² I), e' ~ N(0, s_c² I). The field is linear:
V(x) = (−Aω − b − λθ, Aᵀθ + c − λω) = Mx + v; the noise enters linearly, so Σ_B is exact.
"""
from __future__ import annotations

import cmath
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .base import Game, gaussian_quadratic_increments
from .errors import ConfigError, check_int, check_positive


@dataclass(frozen=True)
class BilinearGame(Game):
    """Bilinear game in R^p × R^q with coupling A (identity-like by default), offsets b, c, ridge λ.

    Args:
        p: the generator's dimension.
        q: the discriminator's dimension.
        coupling: the coupling matrix A [p, q] (nested sequences), or None for ones on the diagonal.
        b: every entry of the generator's offset b.
        c: every entry of the discriminator's offset c.
        ridge: the ridge λ ≥ 0 of both players.
        noise_coupling: the standard deviation s_A ≥ 0 of each entry of the coupling's noise E.
        noise_offset: the standard deviation s_b = s_c ≥ 0 of each entry of the offsets' noise e, e'.
        x0: every coordinate of the initial state.
    """

    p: int = 1
    q: int = 1
    coupling: Optional[Sequence[Sequence[float]]] = None  # A [p, q]; default: ones on the diagonal
    b: float = 0.0
    c: float = 0.0
    ridge: float = 0.0
    noise_coupling: float = 0.0
    noise_offset: float = 0.1
    x0: float = 1.0

    name = "bilinear"
    PRESETS = {
        # two generator coordinates against one critic, with offsets, a ridge and additive noise
        "rectangular": dict(p=2, q=1, ridge=0.5, noise_offset=0.3, coupling=[[1.0], [0.4]], b=0.2, c=-0.1),
    }

    def __post_init__(self):
        check_int("game.p", self.p)
        check_int("game.q", self.q)
        for key in ("ridge", "noise_coupling", "noise_offset"):
            check_positive(f"game.{key}", getattr(self, key), allow_zero=True)
        if self.coupling is not None and torch.as_tensor(self.coupling).shape != (self.p, self.q):
            raise ConfigError("game.coupling", f"must be a {self.p}×{self.q} matrix")


    def A(self, like) -> torch.Tensor:
        if self.coupling is None:
            return torch.eye(self.p, self.q, device=like.device, dtype=like.dtype)
        return torch.as_tensor(self.coupling, device=like.device, dtype=like.dtype)

    @property
    def additive_noise(self) -> bool:
        """Without noise in the coupling the field's noise is (−e, e'), whatever x."""
        return self.noise_coupling == 0

    @property
    def noise_dim(self) -> int:
        return self.p * self.q + self.p + self.q

    def sample(self, K, B, generator):
        return generator.normal(B, self.noise_dim)

    def init(self, K, generator):
        return torch.full((K, self.d), self.x0, device=generator.device, dtype=generator.dtype)

    def sample_losses(self, theta, omega, batch):
        pq, K, B = self.p * self.q, batch.shape[0], batch.shape[1]
        E = self.noise_coupling * batch[..., :pq].reshape(K, B, self.p, self.q)
        eb = self.noise_offset * batch[..., pq : pq + self.p]
        ec = self.noise_offset * batch[..., pq + self.p :]
        A = self.A(theta) + E
        value = torch.einsum("ki,kbij,kj->kb", theta, A, omega)
        value = value + ((self.b + eb) * theta[:, None]).sum(-1) + ((self.c + ec) * omega[:, None]).sum(-1)
        lg = value + 0.5 * self.ridge * (theta**2).sum(-1, keepdim=True)
        ld = -value + 0.5 * self.ridge * (omega**2).sum(-1, keepdim=True)
        return lg, ld

    # -- closed forms ----------------------------------------------------------------------------
    def linear_field(self, like) -> tuple:
        """(M [d, d], v [d]) with V(x) = Mx + v."""
        A, lam = self.A(like), self.ridge
        top = torch.cat([-lam * torch.eye(self.p, dtype=A.dtype, device=A.device), -A], dim=1)
        bottom = torch.cat([A.T, -lam * torch.eye(self.q, dtype=A.dtype, device=A.device)], dim=1)
        v = torch.cat([torch.full((self.p,), -self.b), torch.full((self.q,), self.c)]).to(A)
        return torch.cat([top, bottom], dim=0), v

    def expected_field(self, x):
        M, v = self.linear_field(x)
        return x @ M.T + v

    def expected_field_jvp(self, x, v):
        """DV·v = Mv."""
        return v @ self.linear_field(x)[0].T

    def equilibrium(self, device="cpu", dtype=torch.float64):
        M, v = self.linear_field(torch.empty(0, device=device, dtype=dtype))
        return torch.linalg.solve(M, -v)

    def one_step_eigenvalues(self, rule, eta: float) -> list:
        """The eigenvalues of ``rule``'s one-step map with SGD at rate η (both players) for p = q = 1, coupling
        a and ridge λ, in closed form. M = [[−λ, −a], [a, −λ]] has eigenvalues μ = −λ ± ia and is normal, so
        with z = ημ: sim 1 + z; extragradient 1 + z + ρz² (tied, ρ = rho·η) or 1 + z(1 + ρμ) (fixed ρ);
        optimistic GDA the roots of ζ² − (1 + 2z)ζ + z (its augmented state (x, d_{k−1})); Hamiltonian
        1 − η|μ|²; consensus 1 + z − ηγ|μ|²; symplectic 1 + η(−λ − λ_s a² ± ia(1 − λ_s λ)); alternating
        (n_d = 1) T/2 ± √(T²/4 − (1 − ηλ)²), T = 2(1 − ηλ) − η²a²; lookahead 1 + α(ν^k − 1) over the
        inner rule's ν. (Rules: ``games.rules``; extragradient with an alternating extrapolation is not
        given.)

        Args:
            rule: the update rule, an instance of one of the rules above (``games.rules``).
            eta: the learning rate η of both players.

        Returns:
            The one-step map's eigenvalues (complex numbers, two per eigenvalue pair of M; for optimistic
            GDA the four of the augmented map).
        """
        from .rules import Alternating, Consensus, Extragradient, Hamiltonian, Lookahead, Optimistic, \
            Simultaneous, Symplectic

        if (self.p, self.q) != (1, 1):
            raise ValueError("one_step_eigenvalues is given for p = q = 1")
        a, lam = float(self.A(torch.empty(0, dtype=torch.float64))[0, 0]), self.ridge
        mus, square = [complex(-lam, a), complex(-lam, -a)], lam**2 + a**2
        if isinstance(rule, Lookahead):
            return [1 + rule.alpha * (nu**rule.k - 1) for nu in self.one_step_eigenvalues(rule.inner, eta)]
        if isinstance(rule, Simultaneous):
            return [1 + eta * mu for mu in mus]
        if isinstance(rule, Extragradient) and rule.extrapolation == "sim":
            if rule.tied:
                return [1 + eta * mu + rule.rho * (eta * mu) ** 2 for mu in mus]
            return [1 + eta * mu * (1 + rule.rho * mu) for mu in mus]
        if isinstance(rule, Optimistic):
            return [root for mu in mus for root in _quadratic_roots(1 + 2 * eta * mu, eta * mu)]
        if isinstance(rule, Hamiltonian):
            return [complex(1 - eta * square)] * 2
        if isinstance(rule, Consensus):
            return [1 + eta * mu - eta * rule.gamma * square for mu in mus]
        if isinstance(rule, Symplectic):
            return [1 + eta * complex(-lam - rule.lam * a**2, s * a * (1 - rule.lam * lam)) for s in (1, -1)]
        if isinstance(rule, Alternating) and rule.n_d == 1:
            trace = 2 * (1 - eta * lam) - (eta * a) ** 2
            return _quadratic_roots(trace, (1 - eta * lam) ** 2)
        raise ValueError(f"no closed form for {rule.label}")

    def gradient_noise_product(self, x, B, w):
        """F w `[*, K, d]` for w `[*, K, m]` (m = ``noise_dim``): a sample's field noise is (−Eω − e, Eᵀθ + e'),
        linear in its normals (E = s_A·ξ_E [p, q], e = s_b·ξ_e, e' = s_b·ξ_e'), so F w is that noise over √B
        with the normals replaced by w's blocks, exactly; ``gradient_noise_factor`` is this map on the unit
        vectors (the cubature of autograd's ``sample_fields`` is the test)."""
        pq, (theta, omega) = self.p * self.q, self.split(x)
        E = self.noise_coupling * w[..., :pq].unflatten(-1, (self.p, self.q))
        e, e_prime = self.noise_offset * w[..., pq : pq + self.p], self.noise_offset * w[..., pq + self.p :]
        noise_theta = -(E @ omega[..., None])[..., 0] - e
        noise_omega = (E.transpose(-1, -2) @ theta[..., None])[..., 0] + e_prime
        return torch.cat([noise_theta, noise_omega], dim=-1) / B**0.5

    def gradient_noise_factor(self, x, B):
        """F [K, d, m] with FFᵀ = Σ_B = Cov[one sample's field]/B: ``gradient_noise_product`` on the unit vectors."""
        m, K = self.noise_dim, x.shape[0]
        units = torch.eye(m, dtype=x.dtype, device=x.device)[:, None].expand(m, K, m)
        return self.gradient_noise_product(x, B, units).permute(1, 2, 0)

    def gradient_noise_increments(self, batch, streams):
        """√B ζ̄: the factor's Brownian increments, exact, from the minibatch's normals."""
        return gaussian_quadratic_increments(batch, streams, quadratic=False)


def _quadratic_roots(trace, determinant) -> list:
    """The roots of ζ² − trace·ζ + determinant."""
    root = cmath.sqrt(trace**2 / 4 - determinant)
    return [trace / 2 + root, trace / 2 - root]
