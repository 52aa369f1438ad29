"""Gaussian game (THEORY §3): target N(m, S) in Rⁿ, generator μ + Wz, quadratic critic vᵀx + xᵀUx.

L = E_data D − E_gen D; the generator minimises L, the critic maximises L − (λ/2)(|v|² + ‖U‖²).
For n = 1: θ = (μ, σ), ω = (a, b) and the field is μ̇ = a + 2bμ, σ̇ = 2bσ, ȧ = (m − μ) − λa,
ḃ = (m² + s² − μ² − σ²) − λb. Equilibrium μ = m, WWᵀ = S, v = U = 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .base import Game, gaussian_quadratic_increments
from .errors import check_finite, check_int, check_positive
from .maths.wasserstein import w2_gaussian


class GaussianLaw(NamedTuple):
    """N(mean, cov): mean [n], cov [n, n]."""

    mean: torch.Tensor
    cov: torch.Tensor


@dataclass(frozen=True)
class GaussianGame(Game):
    """Gaussian target, affine generator, quadratic critic with ridge λ (n-dimensional, n = 1 default).

    ``mean`` and ``std`` give the target N(mean·1, std²·I); ``mu0``, ``sigma0`` the initial generator.

    Args:
        n: the dimension of the data space Rⁿ (d = 2(n + n²)).
        mean: every coordinate of the target's mean m = mean·1.
        std: the target's standard deviation, S = std²·I; positive.
        ridge: the critic's ridge λ ≥ 0 on |v|² + ‖U‖².
        mu0: every coordinate of the initial generator mean μ₀ = mu0·1.
        sigma0: the initial generator scale, W₀ = sigma0·I; positive.
    """

    n: int = 1
    mean: float = 2.0
    std: float = 1.0
    ridge: float = 0.5
    mu0: float = 0.0
    sigma0: float = 0.5

    name = "gaussian"
    PRESETS = {
        # target N(0.5, 0.5²) and a strong ridge (its linearisation relaxes in about two time units)
        "damped": dict(mean=0.5, std=0.5, ridge=1.0, mu0=0.0, sigma0=1.0),  # a generator twice too wide
        "damped-narrow": dict(mean=0.5, std=0.5, ridge=1.0, mu0=0.0, sigma0=0.3),  # and one too narrow
        # the defaults' target and start swapped: target std 0.5 from σ₀ = 1 (also W₂ = √4.25 at t = 0)
        "swapped": dict(std=0.5, sigma0=1.0),
    }

    def __post_init__(self):
        check_int("game.n", self.n)
        check_positive("game.std", self.std)
        check_positive("game.ridge", self.ridge, allow_zero=True)
        check_positive("game.sigma0", self.sigma0)
        check_finite("game.mean", self.mean)
        check_finite("game.mu0", self.mu0)


    @property
    def p(self) -> int:
        return self.n + self.n**2

    @property
    def q(self) -> int:
        return self.n + self.n**2

    def unpack(self, x):
        """(μ [K,n], W [K,n,n], v [K,n], U [K,n,n]) from x [K, d]."""
        n, K = self.n, x.shape[0]
        mu, W = x[:, :n], x[:, n : self.p].reshape(K, n, n)
        v, U = x[:, self.p : self.p + n], x[:, self.p + n :].reshape(K, n, n)
        return mu, W, v, U

    def target(self, like):
        """(m [n], S [n, n]) of the target."""
        m = torch.full((self.n,), self.mean, device=like.device, dtype=like.dtype)
        return m, self.std**2 * torch.eye(self.n, device=like.device, dtype=like.dtype)

    def sample(self, K, B, generator):
        return generator.normal(B, self.n), generator.normal(B, self.n)  # ξ_data, z

    def init(self, K, generator):
        n = self.n
        eye = torch.eye(n, device=generator.device, dtype=generator.dtype).flatten()
        x0 = torch.cat([torch.full((n,), self.mu0, device=eye.device, dtype=eye.dtype), self.sigma0 * eye,
                        torch.zeros(n + n * n, device=eye.device, dtype=eye.dtype)])
        return x0.expand(K, -1).clone()

    @property
    def coordinate_names(self) -> tuple:
        """In one dimension: the generator's mean μ and scale σ, the critic's linear a and quadratic b."""
        return ("μ", "σ", "a", "b") if self.n == 1 else super().coordinate_names

    def target_law(self, device="cpu", dtype=torch.float64) -> GaussianLaw:
        """N(m, S): m = mean·1, S = std²·I."""
        return GaussianLaw(*self.target(torch.empty(0, device=device, dtype=dtype)))

    def target_distance(self, x: torch.Tensor) -> torch.Tensor:
        """The exact W₂ of the generator law to the target (``w2``)."""
        return self.w2(x)

    target_distance_name = "W₂(generator, target)"

    def equilibrium(self, device="cpu", dtype=torch.float64):
        like = torch.empty(0, device=device, dtype=dtype)
        m, _ = self.target(like)
        eye = torch.eye(self.n, device=device, dtype=dtype).flatten()
        return torch.cat([m, self.std * eye, torch.zeros(self.q, device=device, dtype=dtype)])

    def points(self, x, batch):
        """The batch's data points r = m + S^½ξ (S^½ = std·I) and generated points f = μ + Wz [K, B, n].

        Args:
            x: the states [K, d].
            batch: the minibatch (ξ, z) of ``sample``, each [K, B, n] standard normal.

        Returns:
            (r, f), each [K, B, n].
        """
        xi, z = batch
        mu, W, _, _ = self.unpack(x)
        m, _ = self.target(x)
        return m + self.std * xi, mu[:, None] + z @ W.transpose(1, 2)

    @staticmethod
    def critic(x, v, U):
        """D(x) = vᵀx + xᵀUx for x [K, B, n].

        Args:
            x: the points [K, B, n].
            v: the critic's linear coefficients [K, n].
            U: the critic's quadratic coefficients [K, n, n].

        Returns:
            D(x) [K, B].
        """
        return (x * v[:, None]).sum(-1) + torch.einsum("kbi,kij,kbj->kb", x, U, x)

    def sample_losses(self, theta, omega, batch):
        x = torch.cat([theta, omega], dim=-1)
        _, _, v, U = self.unpack(x)
        real, fake = self.points(x, batch)
        value = self.critic(real, v, U) - self.critic(fake, v, U)
        ridge = 0.5 * self.ridge * ((v**2).sum(-1) + (U**2).sum((-1, -2)))
        return value, -value + ridge[:, None]

    # -- closed forms ----------------------------------------------------------------------------
    def expected_losses(self, x):
        """E over u = (ξ, z) ~ N(0, I_2n) of the per-sample losses, which are quadratic in u: exactly
        the mean over the 4n cubature points ±√(2n) e_j (degree-3 exact)."""
        r, K = 2 * self.n, x.shape[0]
        points = math.sqrt(r) * torch.cat([torch.eye(r), -torch.eye(r)]).to(x).expand(K, -1, -1)
        losses = self.sample_losses(*self.split(x), (points[..., : self.n], points[..., self.n :]))
        return tuple(loss.mean(-1) for loss in losses)

    def expected_field(self, x):
        """(v + Ũμ, ŨW, m − μ − λv, S + mmᵀ − WWᵀ − μμᵀ − λU), Ũ = U + Uᵀ."""
        mu, W, v, U = self.unpack(x)
        m, S = self.target(x)
        Us = U + U.transpose(1, 2)
        v_mu = v + (Us @ mu[..., None])[..., 0]
        v_W = Us @ W
        v_v = m - mu - self.ridge * v
        second = S + torch.outer(m, m) - W @ W.transpose(1, 2) - mu[:, :, None] * mu[:, None, :]
        v_U = second - self.ridge * U
        K = x.shape[0]
        return torch.cat([v_mu, v_W.reshape(K, -1), v_v, v_U.reshape(K, -1)], dim=-1)

    def expected_field_jvp(self, x, v):
        """DV(x)·v = (V(x + v) − V(x − v))/2, exact because V is quadratic in x."""
        return (self.expected_field(x + v) - self.expected_field(x - v)) / 2

    def sample_fields(self, x, batch):
        """Per-sample fields [K, B, d] in closed form, with r = m + S^½ξ, f = μ + Wz, Ũ = U + Uᵀ:
        (v + Ũf, (v + Ũf)zᵀ, r − f − λv, rrᵀ − ffᵀ − λU) (autograd's ``Game.sample_fields`` is the check)."""
        z = batch[1]
        _, _, v, U = self.unpack(x)
        real, fake = self.points(x, batch)
        push = v[:, None] + fake @ (U + U.transpose(1, 2)).transpose(1, 2)  # ∇D(f) [K, B, n]
        outer = lambda a, b: (a[..., :, None] * b[..., None, :]).flatten(-2)  # noqa: E731
        ridge = self.ridge * x[:, None, self.p :]
        critic = torch.cat([real - fake, outer(real, real) - outer(fake, fake)], dim=-1) - ridge
        return torch.cat([push, outer(push, z), critic], dim=-1)

    def field(self, x, batch):
        """V̂: the minibatch mean of ``sample_fields``."""
        return self.sample_fields(x, batch).mean(1)

    @property
    def noise_dim(self) -> int:
        """m = 2n + 2n²: the columns of ``gradient_noise_factor`` (``gradient_noise_product``'s w)."""
        return 2 * self.n + 2 * self.n**2

    def gradient_noise_product(self, x, B, w):
        """F w `[*, K, d]` for w `[*, K, m]` (m = ``noise_dim``): the closed form of the gradient noise, from
        which ``gradient_noise_factor`` is read (F = this map on the unit vectors).

        A sample's field is quadratic in its noise u = (ξ, z) ~ N(0, I_2n) with no ξ–z cross terms, so
        its centred value is linear in (ξ, z, ξξᵀ − I, zzᵀ − I), whose entries are uncorrelated with
        variance 2 on the diagonals and 1 off them. F w is that centred field over √B with ξ, z
        replaced by w's first two n-blocks and ξξᵀ − I, zzᵀ − I by E = (Q + Qᵀ)/√2 of the next two
        n² numbers as n×n matrices Q_ξ, Q_z (same mean and covariance for w ~ N(0, I)): with r = Lξ
        (L = S^½ = std·I), f = Wz, P = ŨW, a = v + Ũμ, Ũ = U + Uᵀ, the rows (∇_μ, ∇_W, ∇_v, ∇_U) are
        (Pz, azᵀ + PE_z, r − f, rmᵀ + mrᵀ + LE_ξLᵀ − fμᵀ − μfᵀ − WE_zWᵀ). In these columns F is the
        cubature factor [J, vec(H)/√2] of ``gaussian_quadratic_factor`` without its ξ–z columns, which
        are zero (``cubature_columns``), so FFᵀ = Σ_B and ``gradient_noise_increments`` drive it."""
        n = self.n
        mu, W, v, U = self.unpack(x)
        m, _ = self.target(x)
        w_xi, w_z = w[..., :n], w[..., n : 2 * n]
        E_xi, E_z = (_symmetrised(Q.unflatten(-1, (n, n))) for Q in w[..., 2 * n :].split(n * n, dim=-1))
        Us = U + U.transpose(1, 2)
        P, a = Us @ W, v + (Us @ mu[..., None])[..., 0]
        real, fake = self.std * w_xi, (W @ w_z[..., None])[..., 0]
        outer = lambda b, c: b[..., :, None] * c[..., None, :]  # noqa: E731
        push = (P @ w_z[..., None])[..., 0]
        moment = outer(a, w_z) + P @ E_z
        second = (outer(real, m) + outer(m, real) + self.std**2 * E_xi
                  - outer(fake, mu) - outer(mu, fake) - W @ E_z @ W.transpose(-1, -2))
        return torch.cat([push, moment.flatten(-2), real - fake, second.flatten(-2)], dim=-1) / B**0.5

    def gradient_noise_factor(self, x, B):
        """F [K, d, m] with FFᵀ = Σ_B = Cov[one sample's field]/B, exact since the field is quadratic in
        the noise: ``gradient_noise_product`` on the m unit vectors, i.e. [J, vec(H)/√2]/√B, the columns
        ``cubature_columns`` of ``gaussian_quadratic_factor`` (whose cubature is the test)."""
        m, K = self.noise_dim, x.shape[0]
        units = torch.eye(m, dtype=x.dtype, device=x.device)[:, None].expand(m, K, m)
        return self.gradient_noise_product(x, B, units).permute(1, 2, 0)

    def gradient_noise_increments(self, batch, streams):
        """The minibatch (ξ, z) as Brownian increments of the factor's columns (Bartlett coupling)."""
        return gaussian_quadratic_increments(torch.cat(batch, dim=-1), streams)[..., self.cubature_columns()]

    def cubature_columns(self) -> torch.Tensor:
        """Where the factor's m columns sit among the 2n + (2n)² of ``gaussian_quadratic_factor`` in
        u = (ξ, z): J, then vec(H) of the ξξ block and of the zz block (the ξ–z blocks of H are zero)."""
        n = self.n
        hessian = torch.arange(4 * n * n).reshape(2 * n, 2 * n) + 2 * n
        return torch.cat([torch.arange(2 * n), hessian[:n, :n].flatten(), hessian[n:, n:].flatten()])

    def w2(self, x):
        """W₂ between the generator law N(μ, WWᵀ) and the target N(m, S) (``games.maths.wasserstein``)."""
        mu, W, _, _ = self.unpack(x)
        m, S = self.target(x)
        return w2_gaussian(mu, W @ W.transpose(1, 2), m, S)


def _symmetrised(Q: torch.Tensor) -> torch.Tensor:
    """(Q + Qᵀ)/√2 [*, n, n]: for Q with independent N(0, 1) entries, a symmetric matrix with the mean
    and covariance of uuᵀ − I, u ~ N(0, I_n) (variance 2 on the diagonal, 1 off it)."""
    return (Q + Q.transpose(-1, -2)) / math.sqrt(2.0)
