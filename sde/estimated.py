"""SME coefficients estimated from a reference batch, for games without closed forms.

Each run k draws its own reference batch of N samples. With per-sample fields g_n(x):

- E V̂(x) ≈ ḡ = (1/N) Σ_n g_n(x), computed as the field of the whole batch (one backward pass);
- Σ_B(x) ≈ F Fᵀ (``gradient_noise_factor``) with the low-rank factor F = (g_n − ḡ_M)_{n≤M} / √(B (M − 1))
  ∈ R^{d×M} over the first M ≤ N samples, unbiased for Σ_B, so a network with 10⁵ parameters never
  forms a dense d×d covariance.

Fixed batch (default): the same samples at every call, so the estimates are smooth functions of x
(common random numbers along a path; what SME-2's derivatives need). Its error is then a drift
bias fixed along each path, of size ~ 1/√N, whose effect on E φ grows like (steps·B/N) relative to
the SDE's own noise. Fresh batches (``fresh=True``): a new batch for each new state tensor, shared by
the drift and the factor evaluated at that state; the errors of successive steps are independent,
so the drift's error enters as extra noise of relative size B/N per Euler step, and E[F Fᵀ] = Σ_B
makes the noise increment F ΔW exact in covariance. For Euler–Maruyama on SME-1.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import torch

from games.base import Game
from games.errors import ConfigError, check_int
from games.random import Streams

from .sme import SME


class ReferenceBatchGame(Game):
    """``game`` with ``expected_field`` and ``gradient_noise_factor`` estimated on N reference samples
    per run (the factor on the first ``noise_samples`` of them; needs ``game.sample_losses``);
    sampling, losses and constraints are the game's own. Not ``pathwise``: run k's reference batch comes
    from the k-th stream of the ensemble's seed, so a chunk of runs would draw those of its positions."""

    pathwise = False

    def __init__(self, game: Game, samples: int = 4096, seed: int = 0, noise_samples: Optional[int] = None,
                 fresh: bool = False):
        """Wraps ``game``; its reference batches are drawn on first use.

        Args:
            game: the game whose per-sample losses define the fields g_n (``sample_losses``).
            samples: the reference batch size N ≥ 2.
            seed: the seed of the runs' reference batches.
            noise_samples: M ≤ N, the samples behind the noise factor (default N).
            fresh: a new batch for each new state tensor (else the same batch at every call).
        """
        self.game, self.samples = game, check_int("sde.reference_samples", samples, minimum=2)
        self.noise_samples = check_int("sde.noise_samples", noise_samples or samples, minimum=2)
        if self.noise_samples > self.samples:
            raise ConfigError("sde.noise_samples", f"at most sde.reference_samples = {samples}, got {noise_samples}")
        self.seed, self.fresh, self.name, self.p, self.q = seed, fresh, f"{game.name} (reference batch)", game.p, game.q
        self._streams, self._state, self._batch = None, None, None

    def sample(self, K, B, generator):
        """The game's minibatches.

        Args:
            K: the number of runs.
            B: the batch size.
            generator: the runs' streams.

        Returns:
            The game's minibatch for each run (its ``sample``).
        """
        return self.game.sample(K, B, generator)

    def sample_losses(self, theta, omega, batch):
        """The game's per-sample losses.

        Args:
            theta: the generator's parameters, [K, p].
            omega: the discriminator's parameters, [K, q].
            batch: a minibatch of the game.

        Returns:
            (L_G, L_D), each [K, B].
        """
        return self.game.sample_losses(theta, omega, batch)

    def losses(self, theta, omega, batch):
        """The game's minibatch losses.

        Args:
            theta: the generator's parameters, [K, p].
            omega: the discriminator's parameters, [K, q].
            batch: a minibatch of the game.

        Returns:
            (L̂_G, L̂_D), each [K].
        """
        return self.game.losses(theta, omega, batch)

    def init(self, K, generator):
        """The game's initial states.

        Args:
            K: the number of runs.
            generator: the runs' streams.

        Returns:
            x_0, [K, d].
        """
        return self.game.init(K, generator)

    def project(self, theta, omega):
        """The game's constraint after an update.

        Args:
            theta: the generator's parameters, [K, p].
            omega: the discriminator's parameters, [K, q].

        Returns:
            (θ, ω) projected.
        """
        return self.game.project(theta, omega)

    def equilibrium(self, device="cpu", dtype=torch.float64):
        """The game's equilibrium, where it has a known one.

        Args:
            device: the tensor's device.
            dtype: the tensor's dtype.

        Returns:
            x*, [d].
        """
        return self.game.equilibrium(device, dtype)

    def reference_batch(self, x: torch.Tensor):
        """Each run's N reference samples for the state x [K, d]: always the same ones (fixed), or new
        ones whenever x is a different tensor from the last call's (``fresh``)."""
        K = x.shape[0]
        if not self.fresh:
            streams = Streams.from_seed(self.seed, K, device=x.device, dtype=x.dtype)
            return self.game.sample(K, self.samples, streams)
        if self._streams is None or self._streams.K != K:
            self._streams = Streams.from_seed(self.seed, K, device=x.device, dtype=x.dtype)
        if self._state is not x:
            self._state, self._batch = x, self.game.sample(K, self.samples, self._streams)
        return self._batch

    def reference_fields(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample fields g_n(x) [K, M, d] on the first M = ``noise_samples`` reference samples."""
        batch = self.reference_batch(x)
        head = torch.utils._pytree.tree_map(lambda t: t[:, : self.noise_samples], batch)
        return self.game.sample_fields(x, head)

    def expected_field(self, x: torch.Tensor) -> torch.Tensor:
        """ḡ(x), the field of the whole reference batch (the mean of its per-sample fields): one forward
        pass and a pullback per player, by torch.func so that it composes with jvp (SME-2's derivatives)."""
        theta, omega, batch = *self.split(x), self.reference_batch(x)
        totals = lambda th, om: tuple(loss.sum() for loss in self.game.losses(th, om, batch))  # noqa: E731
        (loss_g, _), pullback = torch.func.vjp(totals, theta, omega)
        one, zero = torch.ones_like(loss_g), torch.zeros_like(loss_g)
        return -torch.cat([pullback((one, zero))[0], pullback((zero, one))[1]], dim=-1)

    def gradient_noise_factor(self, x: torch.Tensor, B: int) -> torch.Tensor:
        """F [K, d, M] with F Fᵀ the unbiased estimate of Σ_B(x) from M per-sample fields.

        Args:
            x: the states, [K, d].
            B: the minibatch size whose field's covariance Σ_B = Σ_1/B is estimated.

        Returns:
            F = (g_n − ḡ_M)_{n≤M} / √(B (M − 1)), [K, d, M].
        """
        g = self.reference_fields(x)
        return (g - g.mean(dim=1, keepdim=True)).transpose(1, 2) / math.sqrt(B * (self.noise_samples - 1))


def estimated_sme1(sga, reference: int, seed: int, noise_samples: int = 32):
    """SME-1 of ``sga`` with its field and noise factor estimated on fresh reference batches (``ReferenceBatchGame``).

    Args:
        sga: the training.
        reference: the reference batch's size N.
        seed: the seed of its batches.
        noise_samples: the per-sample gradients behind the low-rank noise factor.

    Returns:
        The SME.
    """
    estimated = ReferenceBatchGame(sga.game, samples=reference, noise_samples=noise_samples, seed=seed, fresh=True)
    return SME(dataclasses.replace(sga, game=estimated), order="1")
