"""Jacobians at an equilibrium, taken by autograd through the actual field and update code."""
from __future__ import annotations

import torch

from games.random import Streams
from games.sga import SGA


def field_jacobian(game, x_star: torch.Tensor) -> torch.Tensor:
    """DV(x*) [d, d] of the expected field."""
    return torch.autograd.functional.jacobian(lambda x: game.expected_field(x[None])[0], x_star)


def update_map_jacobian(sga: SGA, x_star: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """D Φ(x*) [d, d] of one SGA iteration Φ (deterministic games; k = 0, fresh optimiser state)."""

    def one_step(x):
        streams = Streams.from_seed(seed, 1, device=x.device, dtype=x.dtype)
        x_new, _, _ = sga.step(x[None], sga.init_state(x[None]), 0, streams)
        return x_new[0]

    return torch.autograd.functional.jacobian(one_step, x_star)


def eigenvalues(M: torch.Tensor) -> list:
    """Eigenvalues as Python complex numbers."""
    return torch.linalg.eigvals(M.double()).tolist()


def max_eigen_difference(a: list, b: list) -> float:
    """Largest |λ_a − λ_b| after sorting both spectra by (real, imag), rounded to match conjugates."""
    key = lambda z: (round(z.real, 6), round(z.imag, 6))  # noqa: E731
    return max(abs(x - y) for x, y in zip(sorted(a, key=key), sorted(b, key=key)))


def spectral_radius(values: list) -> float:
    return max(abs(z) for z in values)
