"""One-layer WGAN (THEORY §6; Lei, Lee, Dimakis, Daskalakis 2020): generator φ(Az), z ~ N(0, I_k),
target φ(A*z), quadratic discriminator D_V(x) = xᵀVx.

L(A, V) = E_real[D_V(x)] − E_fake[D_V(x)] − ½‖V‖²_F; the generator minimises L_G = L, the
discriminator minimises L_D = −L. θ = vec(A) (row-major, p = nk), ω = vec(V) (row-major, q = n²).

``samples`` = s > 0 gives each run a finite training set: s latents z drawn once from the run's own seed,
resampled uniformly into its minibatches (the setting of Lei et al.'s sample complexity), instead of
fresh draws (s = 0, the population game that the closed forms below describe).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Game, NotAvailable, gaussian_quadratic_factor
from .errors import ConfigError, check_choice, check_int, check_positive
from .gaussian import GaussianLaw
from .random import Streams

TRAINING_SET_SALT = 0x5EED_DA7A  # a run's training set comes from its seed xor this

ACTIVATIONS = {
    "linear": lambda h: h,
    "tanh": torch.tanh,
    "leaky_relu": lambda h: F.leaky_relu(h, 0.2),
}


def default_target(n: int, k: int) -> torch.Tensor:
    """A* = U diag(1 … ½) Vᵀ [n, k], U, V the singular vectors of a seed-0 Gaussian matrix (float64).

    Args:
        n: the data dimension (rows of A*).
        k: the latent dimension (columns of A*).

    Returns:
        A* [n, k], float64, its singular values evenly spaced from 1 down to ½.
    """
    g = torch.Generator().manual_seed(0)
    u, _, vh = torch.linalg.svd(torch.randn(n, k, generator=g, dtype=torch.float64), full_matrices=False)
    return (u * torch.linspace(1.0, 0.5, min(n, k), dtype=torch.float64)) @ vh


def _quadratic(V: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """D_V(x) = xᵀVx for V [K, n, n], x [K, B, n] → [K, B]."""
    return torch.einsum("kbi,kij,kbj->kb", x, V, x)


class OneLayerGAN(Game):
    """One-layer generator φ(Az) against a quadratic discriminator xᵀVx with −½‖V‖²_F."""

    name = "onelayer"

    def __init__(self, n: int = 2, k: int = 2, activation: str = "linear", target=None,
                 init_scale: float = 1.0, samples: int = 0):
        """The one-layer game with n-dimensional data and k-dimensional latents.

        Args:
            n: the data dimension (x ∈ Rⁿ, ω = vec(V) with q = n²).
            k: the latent dimension (z ∈ R^k, θ = vec(A) with p = nk).
            activation: the generator's φ: "linear", "tanh" or "leaky_relu" (slope 0.2); the closed forms
                need "linear".
            target: the target's A* [n, k] (array-like, finite), or None for ``default_target(n, k)``.
            init_scale: the standard deviation of the initial A's entries; positive.
            samples: the size s of each run's training set of real latents, or 0 for fresh draws (the
                population game).
        """
        self.samples = check_int("game.samples", samples, minimum=0)
        self._training_sets = {}
        self.n = check_int("game.n", n)
        self.k = check_int("game.k", k)
        self.activation = check_choice("game.activation", activation, tuple(ACTIVATIONS))
        self.init_scale = check_positive("game.init_scale", init_scale)
        self.target = default_target(self.n, self.k) if target is None else self._check_target(target)
        self.p, self.q = self.n * self.k, self.n * self.n

    def _check_target(self, target) -> torch.Tensor:
        t = torch.as_tensor(target, dtype=torch.float64).detach().cpu()
        if t.shape != (self.n, self.k) or not torch.isfinite(t).all():
            raise ConfigError("game.target",
                              f"expected a finite {self.n}×{self.k} matrix A*, got shape {tuple(t.shape)}")
        return t

    def matrices(self, x: torch.Tensor):
        """(A [K, n, k], V [K, n, n]) of states x [K, d]."""
        theta, omega = self.split(x)
        return theta.reshape(-1, self.n, self.k), omega.reshape(-1, self.n, self.n)

    def _target(self, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.target, device=like.device, dtype=like.dtype)

    def _linear_only(self, what: str):
        if self.activation != "linear":
            raise NotAvailable(f"onelayer: {what} is closed-form for activation 'linear' only")

    def _population_only(self, what: str):
        if self.samples:
            raise NotAvailable(f"onelayer: {what} is closed-form for the population game (samples = 0)")

    def sample(self, K: int, B: int, generator: Streams):
        """(z_real, z_fake), each [K, B, k] standard normal; z_real from the runs' training sets if
        ``samples`` > 0."""
        if not self.samples:
            return generator.normal(B, self.k), generator.normal(B, self.k)
        picks = generator.randint(self.samples, B)
        return torch.gather(self.training_set(generator), 1, picks[..., None].expand(-1, -1, self.k)), \
            generator.normal(B, self.k)

    def training_set(self, generator: Streams) -> torch.Tensor:
        """The runs' training latents [K, samples, k]: a function of each run's seed alone (kept for the
        last streams asked)."""
        key = (tuple(generator.seeds.tolist()), generator.device, generator.dtype)
        if key not in self._training_sets:
            own = Streams(generator.seeds ^ TRAINING_SET_SALT, device=generator.device, dtype=generator.dtype)
            self._training_sets = {key: own.normal(self.samples, self.k)}
        return self._training_sets[key]

    def empirical_target(self, generator: Streams) -> torch.Tensor:
        """Linear φ: the training sets' second moments A* Ẑ A*ᵀ [K, n, n], Ẑ = (1/s) Σ z zᵀ (the law that
        a run with a finite training set can learn at best)."""
        self._linear_only("the empirical target")
        z = self.training_set(generator)
        At = self._target(z)
        return At @ (z.transpose(1, 2) @ z / self.samples) @ At.T

    def sample_losses(self, theta, omega, batch):
        """L = D_V(φ(A*z_r)) − D_V(φ(Az_f)) − ½‖V‖²_F per sample; (L_G, L_D) = (L, −L) [K, B]."""
        z_real, z_fake = batch
        phi = ACTIVATIONS[self.activation]
        A = theta.reshape(-1, self.n, self.k)
        V = omega.reshape(-1, self.n, self.n)
        real = phi(z_real @ self._target(theta).T)
        fake = phi(z_fake @ A.transpose(1, 2))
        loss = _quadratic(V, real) - _quadratic(V, fake) - 0.5 * V.square().sum((1, 2))[:, None]
        return loss, -loss

    def init(self, K: int, generator: Streams) -> torch.Tensor:
        """A = init_scale·N(0, 1) entrywise, V = 0."""
        A = self.init_scale * generator.normal(self.p)
        return torch.cat([A, torch.zeros(K, self.q, device=A.device, dtype=A.dtype)], dim=-1)

    def equilibrium(self, device="cpu", dtype=torch.float64) -> torch.Tensor:
        """(A*, 0); A is identified only up to A → AR with R orthogonal (the target law is AAᵀ)."""
        A = self.target.to(device=device, dtype=dtype).reshape(-1)
        return torch.cat([A, torch.zeros(self.q, device=device, dtype=dtype)])

    def target_law(self, device="cpu", dtype=torch.float64) -> GaussianLaw:
        """Linear φ: N(0, A*A*ᵀ)."""
        self._linear_only("the target law")
        A = self.target.to(device=device, dtype=dtype)
        return GaussianLaw(torch.zeros(self.n, device=device, dtype=dtype), A @ A.T)

    def expected_field(self, x: torch.Tensor) -> torch.Tensor:
        """Linear φ: −∇_A L = (V + Vᵀ)A, ∇_V L = A*A*ᵀ − AAᵀ − V."""
        self._linear_only("the expected field")
        self._population_only("the expected field")
        A, V = self.matrices(x)
        At = self._target(x)
        fA = (V + V.transpose(1, 2)) @ A
        fV = At @ At.T - A @ A.transpose(1, 2) - V
        return torch.cat([fA.flatten(1), fV.flatten(1)], dim=-1)

    def gradient_noise_factor(self, x: torch.Tensor, B: int) -> torch.Tensor:
        """Linear φ: a factor of Cov[one-sample field]/B (quadratic in ξ = (z_r, z_f), Isserlis)."""
        self._linear_only("the gradient covariance")
        self._population_only("the gradient covariance")

        def one_sample_field(rows, xi):  # xi [K, P, 2k]
            A, V = self.matrices(rows)
            real = xi[..., : self.k] @ self._target(rows).T  # A*z_r [K, P, n]
            fake = xi[..., self.k :] @ A.transpose(1, 2)  # Az_f [K, P, n]
            outer = lambda a, b: (a[..., :, None] * b[..., None, :]).flatten(-2)  # noqa: E731
            fA = outer(fake @ (V + V.transpose(1, 2)).transpose(1, 2), xi[..., self.k :])  # (V + Vᵀ)A z_f z_fᵀ
            fV = outer(real, real) - outer(fake, fake) - V.flatten(1)[:, None]
            return torch.cat([fA, fV], dim=-1)

        return gaussian_quadratic_factor(one_sample_field, x, 2 * self.k) / B**0.5
