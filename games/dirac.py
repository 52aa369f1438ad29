"""Dirac-GAN (Mescheder, Geiger & Nowozin 2018): data δ₀, generator δ_θ, critic D_ψ(x) = ψx.

L(θ, ψ) = E f(ψ x_fake) + E f(−ψ x_real), with f(t) = −log(1 + e^{−t}) (GAN, NS-GAN) or f(t) = t
(WGAN, WGAN-GP). The discriminator maximises L; instance noise σ perturbs real and fake samples.
Closed forms of THEORY §3 live here, next to the losses they describe.
"""
from __future__ import annotations

import cmath
import math
from dataclasses import dataclass
from typing import Optional

import torch

from .base import Game, NotAvailable, gaussian_quadratic_increments
from .errors import check_choice, check_positive
from .maths.losses import f, f_prime, f_second, generator_loss, gradient_penalty, is_linear

LOSSES = ("gan", "ns-gan", "wgan", "wgan-gp")
PENALTIES = ("r1", "r2")


@dataclass(frozen=True)
class DiracGAN(Game):
    """Dirac-GAN with losses GAN, NS-GAN, WGAN (optional clipping), WGAN-GP, and an R1/R2 penalty γ.

    Args:
        loss: "gan", "ns-gan", "wgan" or "wgan-gp" (the f of the module's L).
        gamma: the penalty weight γ ≥ 0: R1/R2 (γ/2)ψ², or the WGAN-GP penalty (γ/2)(|ψ| − g₀)².
        penalty: "r1" or "r2" (the same (γ/2)ψ² here, since ∇_x D = ψ everywhere).
        gp_target: the WGAN-GP target slope g₀.
        clip: the WGAN weight clipping bound, |ψ| ≤ clip, or None for none.
        noise: the instance noise σ ≥ 0 added to real and fake samples.
        theta0: the initial generator position θ₀.
        psi0: the initial critic slope ψ₀.
    """

    loss: str = "gan"
    gamma: float = 0.0  # R1/R2 penalty (γ/2)ψ², or the WGAN-GP weight for loss = wgan-gp
    penalty: str = "r1"
    gp_target: float = 1.0  # g₀ of the WGAN-GP penalty (γ/2)(|ψ| − g₀)²
    clip: Optional[float] = None  # WGAN weight clipping |ψ| ≤ clip
    noise: float = 0.0  # instance noise σ
    theta0: float = 1.0
    psi0: float = 1.0

    name = "dirac"
    PRESETS = {
        # instance noise and R1 (Mescheder et al. 2018) on the WGAN loss: the field and its noise covariance
        # stay in closed form (linear in the instance noise), and R1 damps the rotation
        "noisy-r1": dict(loss="wgan", gamma=1.0, noise=0.5),
    }
    p = 1
    q = 1

    def __post_init__(self):
        check_choice("game.loss", self.loss, LOSSES)
        check_choice("game.penalty", self.penalty, PENALTIES)
        check_positive("game.gamma", self.gamma, allow_zero=True)
        check_positive("game.noise", self.noise, allow_zero=True)
        if self.clip is not None:
            check_positive("game.clip", self.clip)


    @property
    def fprime0(self) -> float:
        """f'(0): 1/2 for GAN and NS-GAN, 1 for WGAN."""
        return float(f_prime(torch.zeros(()), self.loss))

    @property
    def additive_noise(self) -> bool:
        """The WGAN field's instance noise (0, σ(ε_fake − ε_real)) is the same at every x (and no noise is)."""
        return self.noise == 0 or is_linear(self.loss)

    def sample(self, K, B, generator):
        """Instance noise (ε_real, ε_fake), each [K, B]; none when σ = 0."""
        if self.noise == 0:
            return None
        eps = generator.normal(2, B)
        return eps[:, 0], eps[:, 1]

    def init(self, K, generator):
        x0 = torch.tensor([self.theta0, self.psi0], device=generator.device, dtype=generator.dtype)
        return x0.expand(K, 2).clone()

    def equilibrium(self, device="cpu", dtype=torch.float64):
        return torch.zeros(2, device=device, dtype=dtype)

    def project(self, theta, omega):
        """WGAN weight clipping |ψ| ≤ clip, when set."""
        return theta, omega if self.clip is None else omega.clamp(-self.clip, self.clip)

    def sample_losses(self, theta, omega, batch):
        psi = omega  # [K, 1] broadcasts over the batch [K, B]
        real, fake = torch.zeros_like(theta), theta
        if batch is not None:
            real, fake = real + self.noise * batch[0], fake + self.noise * batch[1]
        value = f(psi * fake, self.loss) + f(-psi * real, self.loss)  # V with D(x) = −ψx
        lg = generator_loss(-psi * fake, self.loss) if self.loss == "ns-gan" else value
        return lg, -value + self.regulariser(psi)

    def regulariser(self, psi):
        """R1/R2: (γ/2)|∇_x D|² = (γ/2)ψ²; WGAN-GP: (γ/2)(|ψ| − g₀)²."""
        if self.loss == "wgan-gp":
            return 0.5 * self.gamma * gradient_penalty(psi.abs(), self.gp_target)
        return 0.5 * self.gamma * psi**2

    # -- closed forms (THEORY §3) -------------------------------------------------------------------
    def fprime(self, t):
        """f'(t) (``games.maths.losses``)."""
        return f_prime(t, self.loss)

    def fprime2(self, t):
        """f''(t) (``games.maths.losses``)."""
        return f_second(t, self.loss)

    def expected_field(self, x):
        """(−ψ f'(ψθ), θ f'(ψθ) − R'(ψ)); NS-GAN's generator term is −ψ f'(−ψθ). Needs σ = 0 unless WGAN."""
        if self.noise > 0 and not is_linear(self.loss):
            raise NotAvailable("the GAN field with instance noise has no closed form")
        theta, psi = x[:, :1], x[:, 1:]
        g_arg = -psi * theta if self.loss == "ns-gan" else psi * theta
        v_theta = -psi * self.fprime(g_arg)
        if self.loss == "wgan-gp":
            reg = self.gamma * (psi.abs() - self.gp_target) * torch.sign(psi)
        else:
            reg = self.gamma * psi
        return torch.cat([v_theta, theta * self.fprime(psi * theta) - reg], dim=-1)

    def expected_field_jvp(self, x, u):
        """DV·u in closed form: with g = sψθ (s = −1 for NS-GAN's generator, else 1) and h = ψθ,
        dV_θ = −u_ψ f'(g) − ψ f''(g) s(u_ψθ + ψu_θ), dV_ψ = u_θ f'(h) + θ f''(h)(u_ψθ + ψu_θ) − R''(ψ)u_ψ.

        Args:
            x: the states (θ, ψ) [K, 2].
            u: the directions (u_θ, u_ψ) [K, 2].

        Returns:
            DV(x)·u [K, 2].
        """
        theta, psi, u_theta, u_psi = x[:, :1], x[:, 1:], u[:, :1], u[:, 1:]
        s = -1.0 if self.loss == "ns-gan" else 1.0
        h, d_h = psi * theta, u_psi * theta + psi * u_theta  # ψθ and its derivative along u
        d_theta = -u_psi * self.fprime(s * h) - psi * self.fprime2(s * h) * s * d_h
        d_psi = u_theta * self.fprime(h) + theta * self.fprime2(h) * d_h - self.gamma * u_psi
        return torch.cat([d_theta, d_psi], dim=-1)

    def gradient_noise_factor(self, x, B):
        """F with FFᵀ = Σ_B. Without instance noise the field is deterministic: a single zero column.
        With it, the WGAN field (−ψ, fake − real − R'(ψ)) is linear in (ε_real, ε_fake), so F = J/√B
        exactly (J = (0, 0; −σ, σ)); the GAN field's covariance has no closed form."""
        if self.noise == 0:
            return torch.zeros(x.shape[0], 2, 1, dtype=x.dtype, device=x.device)
        self._check_linear_noise()
        factor = x.new_zeros(x.shape[0], 2, 2)
        factor[:, 1] = torch.tensor([-self.noise, self.noise], dtype=x.dtype, device=x.device) / B**0.5
        return factor

    def gradient_noise_increments(self, batch, streams):
        """√B (ε̄_real, ε̄_fake): the factor's Brownian increments, exact, from the minibatch's noise."""
        self._check_linear_noise()
        return gaussian_quadratic_increments(torch.stack(batch, dim=-1), streams, quadratic=False)

    def _check_linear_noise(self):
        if self.noise > 0 and not is_linear(self.loss):
            raise NotAvailable("the GAN field with instance noise has no closed-form covariance; "
                                      "use loss = wgan (linear in the noise) or sde.estimated")

    def flow_eigenvalues(self) -> list:
        """Eigenvalues of DV at the equilibrium: ±i f'(0), or −γ/2 ± √(γ²/4 − f'(0)²) with R1/R2."""
        if self.loss == "wgan-gp":
            raise NotAvailable("WGAN-GP: |ψ| is not differentiable at the equilibrium ψ = 0")
        a = self.fprime0
        root = cmath.sqrt(self.gamma**2 / 4 - a**2)
        return [-self.gamma / 2 + root, -self.gamma / 2 - root]

    def gd_eigenvalues(self, h: float, update: str, n_d: int = 1) -> list:
        """Eigenvalues of the one-step GD map at the equilibrium (THEORY §3).

        Simultaneous: 1 + hλ for λ of DV. Alternating without penalty:
        1 − a²/2 ± √((1 − a²/2)² − 1), a = √n_d · h f'(0).

        Args:
            h: the learning rate of both players.
            update: "sim" for simultaneous updates; anything else (say "alt") for alternating ones, whose
                closed form needs γ = 0.
            n_d: the discriminator steps per generator step (alternating only).

        Returns:
            The two eigenvalues (complex numbers).
        """
        if update == "sim":
            return [1 + h * lam for lam in self.flow_eigenvalues()]
        if self.gamma != 0:
            raise NotAvailable("the alternating closed form is stated without penalty")
        a = math.sqrt(n_d) * h * self.fprime0
        c = 1 - a**2 / 2
        root = cmath.sqrt(c**2 - 1)
        return [c + root, c - root]
