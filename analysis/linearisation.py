"""Spectra of linearisations (``games.linearisation`` takes the Jacobians)."""
from __future__ import annotations

import torch


def eigenvalues(M: torch.Tensor) -> list:
    """Eigenvalues as Python complex numbers."""
    return torch.linalg.eigvals(M.double()).tolist()


def max_eigen_difference(a: list, b: list) -> float:
    """Largest |λ_a − λ_b| after sorting both spectra by (real, imag), rounded to match conjugates.

    Args:
        a: the first spectrum, complex numbers.
        b: the second spectrum, of the same length.

    Returns:
        The largest distance between paired eigenvalues.
    """
    key = lambda z: (round(z.real, 6), round(z.imag, 6))  # noqa: E731
    return max(abs(x - y) for x, y in zip(sorted(a, key=key), sorted(b, key=key)))


def spectral_radius(values: list) -> float:
    return max(abs(z) for z in values)
