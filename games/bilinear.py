"""Stochastic bilinear game: L = θᵀ(A + E)ω + (b + e)ᵀθ + (c + e')ᵀω, noisy coupling and offsets.

The generator minimises L + (λ/2)|θ|², the discriminator maximises L − (λ/2)|ω|². Each sample draws
E with entries N(0, s_A²), e ~ N(0, s_b² I), e' ~ N(0, s_c² I). The field is linear:
V(x) = (−Aω − b − λθ, Aᵀθ + c − λω) = Mx + v; the noise enters linearly, so Σ_B is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .base import Game, gaussian_quadratic_factor, gaussian_quadratic_increments
from .errors import ConfigError, check_int, check_positive


@dataclass(frozen=True)
class BilinearGame(Game):
    """Bilinear game in R^p × R^q with coupling A (identity-like by default), offsets b, c, ridge λ."""

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

    def gradient_noise_factor(self, x, B):
        """F with FFᵀ = Σ_B = Cov[one sample's field]/B (exact: the field is linear in the noise)."""
        return gaussian_quadratic_factor(self.sample_fields, x, self.noise_dim, quadratic=False) / B**0.5

    def gradient_noise_increments(self, batch, streams):
        """√B ζ̄: the factor's Brownian increments, exact, from the minibatch's normals."""
        return gaussian_quadratic_increments(batch, streams, quadratic=False)
