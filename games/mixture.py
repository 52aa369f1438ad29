"""Mixture-of-Gaussians GAN: MLP generator G_θ: R^{z_dim} → R², MLP discriminator D_ω: R² → R
(``games.networks``).

Targets: "ring" (8 modes on the circle of radius 2, σ = 0.02) and "grid" (5×5 modes on
{−4, −2, 0, 2, 4}², σ = 0.05).

Hidden activation: "tanh" by default, so that the field is smooth (C^∞) — the modified equations,
SME-2 drifts and update-map Jacobians use DV; "relu" is the common choice in the GAN literature.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .errors import check_choice
from .networks import NetworkGAN
from .random import Streams

TARGETS = {"ring": 0.02, "grid": 0.05}  # mode standard deviations σ


class MixtureLaw(NamedTuple):
    """An equal-weight mixture of N(mode, std²·I) over the rows of ``modes`` [M, n]."""

    modes: torch.Tensor
    std: float


class MixtureGAN(NetworkGAN):
    """GAN on a 2-D Gaussian mixture; losses "gan" (zero-sum), "ns-gan" (non-saturating), "wgan-gp"."""

    name = "mixture"
    n = 2

    def __init__(self, target: str = "ring", loss: str = "ns-gan", z_dim: int = 2, hidden=(64, 64),
                 activation: str = "tanh", gp_weight: float = 10.0):
        """The mixture GAN on ``target``.

        Args:
            target: "ring" or "grid" (``TARGETS``).
            loss: "gan", "ns-gan" or "wgan-gp" (``games.networks``).
            z_dim: the latent dimension of G_θ.
            hidden: the hidden layer widths of both MLPs.
            activation: the hidden activation, "tanh" or "relu".
            gp_weight: the WGAN-GP penalty weight λ ≥ 0.
        """
        self.target = check_choice("game.target", target, tuple(TARGETS))
        self.sigma = TARGETS[self.target]
        super().__init__(loss, z_dim, hidden, activation, gp_weight)

    def modes(self, device="cpu", dtype=torch.float64) -> torch.Tensor:
        """The mode centres [M, 2].

        Args:
            device: the device of the result.
            dtype: the floating dtype of the result.

        Returns:
            The M mode centres [M, 2] (M = 8 for "ring", 25 for "grid").
        """
        if self.target == "ring":
            angle = torch.arange(8, device=device, dtype=dtype) * (2 * math.pi / 8)
            return 2.0 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
        axis = torch.arange(-4.0, 5.0, 2.0, device=device, dtype=dtype)
        return torch.cartesian_prod(axis, axis)

    def target_law(self, device="cpu", dtype=torch.float64) -> MixtureLaw:
        """The modes, equally weighted, each N(mode, σ²I)."""
        return MixtureLaw(self.modes(device, dtype), self.sigma)

    def real_samples(self, B: int, generator: Streams) -> torch.Tensor:
        """A mode drawn uniformly, plus σ·N(0, I), [K, B, 2].

        Args:
            B: the samples per run.
            generator: the K runs' random streams.

        Returns:
            The data samples [K, B, 2].
        """
        modes = self.modes(generator.device, generator.dtype)
        return modes[generator.randint(len(modes), B)] + self.sigma * generator.normal(B, 2)

    def _near(self, samples: torch.Tensor, radius) -> torch.Tensor:
        """[K, N, M]: sample n lies within ``radius`` (default 3σ) of mode m."""
        modes = self.modes(samples.device, samples.dtype)
        r = 3 * self.sigma if radius is None else radius
        return (samples[..., None, :] - modes).square().sum(-1) < r * r

    def mode_coverage(self, samples: torch.Tensor, radius=None) -> torch.Tensor:
        """Fraction of modes with at least one of the samples [K, N, 2] within ``radius``, [K].

        Args:
            samples: N generated points per run [K, N, 2].
            radius: the distance within which a point covers a mode, or None for 3σ.

        Returns:
            The fraction of covered modes [K], in [0, 1].
        """
        return self._near(samples, radius).any(1).to(samples.dtype).mean(-1)

    def quality(self, samples: torch.Tensor, radius=None) -> torch.Tensor:
        """Fraction of the samples [K, N, 2] within ``radius`` of some mode, [K].

        Args:
            samples: N generated points per run [K, N, 2].
            radius: the distance to a mode's centre within which a point counts, or None for 3σ.

        Returns:
            The fraction of points near a mode [K], in [0, 1].
        """
        return self._near(samples, radius).any(-1).to(samples.dtype).mean(-1)
