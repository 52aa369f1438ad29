"""A user-defined game: the losses and the sampler are plain functions."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .base import Game
from .errors import ConfigError, check_int


class Custom(Game):
    """A game from ``losses(theta [K,p], omega [K,q], batch) -> (L_G [K], L_D [K])`` and
    ``sample(K, B, generator) -> batch`` (draw through ``generator``, a :class:`games.random.Streams`).

    Optional: ``sample_losses`` (per-sample [K, B] losses, for covariance estimates), ``init(K,
    generator) -> [K, d]`` (default: zeros) and ``x_star`` (a known equilibrium).
    """

    def __init__(self, p: int, q: int, losses: Callable, sample: Optional[Callable] = None,
                 sample_losses: Optional[Callable] = None, init: Optional[Callable] = None,
                 x_star=None, name: str = "custom"):
        """The game of the given functions.

        Args:
            p: the generator's dimension.
            q: the discriminator's dimension.
            losses: (θ [K, p], ω [K, q], batch) ↦ (L̂_G [K], L̂_D [K]), the minibatch losses.
            sample: (K, B, generator) ↦ batch, drawing through the ``games.random.Streams`` generator; None
                for a game without randomness (batch None).
            sample_losses: (θ, ω, batch) ↦ (L_G, L_D), each [K, B], or None (then no covariance estimates).
            init: (K, generator) ↦ x₀ [K, d], or None for zeros.
            x_star: a known equilibrium x* [d] (array-like), or None.
            name: the game's name in metadata and reports.
        """
        self.p, self.q = check_int("game.p", p), check_int("game.q", q)
        if not callable(losses):
            raise ConfigError("game.losses", "must be a function (theta, omega, batch) -> (L_G, L_D)")
        self._losses, self._sample, self._sample_losses = losses, sample, sample_losses
        self._init, self._x_star, self.name = init, x_star, name


    def sample(self, K, B, generator):
        return None if self._sample is None else self._sample(K, B, generator)

    def losses(self, theta, omega, batch):
        lg, ld = self._losses(theta, omega, batch)
        K = theta.shape[0]
        if lg.shape != (K,) or ld.shape != (K,):
            raise ValueError(f"losses must return two tensors of shape [K={K}], got "
                             f"{tuple(lg.shape)} and {tuple(ld.shape)}")
        return lg, ld

    def sample_losses(self, theta, omega, batch):
        if self._sample_losses is None:
            return super().sample_losses(theta, omega, batch)
        return self._sample_losses(theta, omega, batch)

    def init(self, K, generator):
        if self._init is None:
            return super().init(K, generator)
        return self._init(K, generator)

    def equilibrium(self, device="cpu", dtype=torch.float64):
        if self._x_star is None:
            return super().equilibrium(device, dtype)
        return torch.as_tensor(self._x_star, device=device, dtype=dtype)
