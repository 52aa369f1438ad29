"""SME coefficients estimated from a reference batch, for games without closed forms.

Each run k draws its own fixed reference batch of N samples (seeded, so the estimate is the same
function of x at every call: common random numbers along a path). With per-sample fields g_n(x):

- E V̂(x) ≈ ḡ = (1/N) Σ_n g_n(x);
- Σ_B(x) ≈ F Fᵀ (``gradient_noise_factor``) with the low-rank factor F = (g_n − ḡ)_n / √(B (N − 1)) ∈ R^{d×N}, unbiased for Σ_B, so
  a network with 10⁵ parameters never forms a dense d×d covariance.
"""
from __future__ import annotations

import math

import torch

from games.base import Game
from games.errors import check_int
from games.random import Streams


class ReferenceBatchGame(Game):
    """``game`` with ``expected_field`` and ``gradient_noise_factor`` estimated on N reference samples
    per run (needs ``game.sample_losses``); sampling, losses and constraints are the game's own."""

    def __init__(self, game: Game, samples: int = 4096, seed: int = 0):
        self.game, self.samples = game, check_int("sde.reference_samples", samples, minimum=2)
        self.seed, self.name, self.p, self.q = seed, f"{game.name} (reference batch)", game.p, game.q

    def sample(self, K, B, generator):
        return self.game.sample(K, B, generator)

    def sample_losses(self, theta, omega, batch):
        return self.game.sample_losses(theta, omega, batch)

    def losses(self, theta, omega, batch):
        return self.game.losses(theta, omega, batch)

    def init(self, K, generator):
        return self.game.init(K, generator)

    def project(self, theta, omega):
        return self.game.project(theta, omega)

    def equilibrium(self, device="cpu", dtype=torch.float64):
        return self.game.equilibrium(device, dtype)

    def reference_fields(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample fields g_n(x) [K, N, d] on each run's fixed reference batch."""
        streams = Streams.from_seed(self.seed, x.shape[0], device=x.device, dtype=x.dtype)
        return self.game.sample_fields(x, self.game.sample(x.shape[0], self.samples, streams))

    def expected_field(self, x: torch.Tensor) -> torch.Tensor:
        """ḡ(x), the reference-batch mean of the per-sample fields."""
        return self.reference_fields(x).mean(dim=1)

    def gradient_noise_factor(self, x: torch.Tensor, B: int) -> torch.Tensor:
        """F [K, d, N] with F Fᵀ the unbiased estimate of Σ_B(x)."""
        g = self.reference_fields(x)
        return (g - g.mean(dim=1, keepdim=True)).transpose(1, 2) / math.sqrt(B * (self.samples - 1))
