"""Gaussian laws: the maximum-likelihood fit and the closed-form Wasserstein-2 distance between two of them."""
from __future__ import annotations

import torch

from ..linalg import psd_power


def gaussian_fit(samples: torch.Tensor, unbiased: bool = False):
    """(mean [..., n], covariance [..., n, n]) of samples [..., N, n]: the maximum-likelihood fit (1/N), or
    with ``unbiased`` the sample covariance (1/(N − 1)).

    Args:
        samples: N points in ℝⁿ per batch entry, shape [..., N, n].
        unbiased: divide by N − 1 rather than N.

    Returns:
        (mean `[..., n]`, covariance `[..., n, n]`).
    """
    mean = samples.mean(-2)
    centred = samples - mean[..., None, :]
    return mean, centred.transpose(-1, -2) @ centred / (samples.shape[-2] - (1 if unbiased else 0))


def w2_gaussian(m1: torch.Tensor, S1: torch.Tensor, m2: torch.Tensor, S2: torch.Tensor) -> torch.Tensor:
    """W₂(N(m₁, S₁), N(m₂, S₂)) = (|m₁ − m₂|² + tr(S₁ + S₂ − 2(S₂^½ S₁ S₂^½)^½))^½ (Dowson & Landau 1982).

    Args:
        m1: the first law's mean [..., n].
        S1: its covariance [..., n, n], symmetric (each square root is taken of the nearest PSD
            matrix, ``games.linalg.psd_power``).
        m2: the second law's mean [..., n].
        S2: its covariance [..., n, n], symmetric.

    Returns:
        W₂ [...].
    """
    root, _ = psd_power(S2, 0.5)
    cross, _ = psd_power(symmetrised(root @ S1 @ root), 0.5)
    trace = (S1 + S2 - 2 * cross).diagonal(dim1=-2, dim2=-1).sum(-1)
    return ((m1 - m2).pow(2).sum(-1) + trace.clamp_min(0)).sqrt()


def symmetrised(S: torch.Tensor) -> torch.Tensor:
    """(S + Sᵀ)/2 [..., n, n]."""
    return (S + S.transpose(-1, -2)) / 2
