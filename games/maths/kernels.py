"""Kernels and the maximum mean discrepancy (Gretton et al. 2012).

A kernel is written as a function of the squared distance |x − y|² (and a bandwidth h), so that each caller
computes distances its own way: ``sq_dists`` below (Gram form, fast), or directly (no cancellation).
Shapes: points [..., A, n] × [..., B, n] → Gram matrices [..., A, B].
"""
from __future__ import annotations

import torch


def sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared distances |x_a − y_b|² = |x_a|² + |y_b|² − 2x_a·y_b (clamped at 0), → [..., A, B].

    Args:
        x: points x_a, shape [..., A, n].
        y: points y_b, shape [..., B, n].

    Returns:
        |x_a − y_b|², shape [..., A, B] (the Gram form: cancellation may lose digits for close points).
    """
    d = (x * x).sum(-1).unsqueeze(-1) + (y * y).sum(-1).unsqueeze(-2) - 2 * x @ y.transpose(-1, -2)
    return d.clamp_min(0.0)


def rbf(sq: torch.Tensor, h) -> torch.Tensor:
    """The Gaussian (RBF) kernel exp(−|x − y|²/(2h²)) of squared distances ``sq`` (Schölkopf & Smola 2002).

    Args:
        sq: squared distances |x − y|², any shape.
        h: the bandwidth h > 0 (a float, or a tensor broadcasting against ``sq``).

    Returns:
        k, shaped as ``sq``, in (0, 1].
    """
    return torch.exp(-sq / (2 * h * h))


def imq(sq: torch.Tensor, h) -> torch.Tensor:
    """The inverse multiquadric kernel (1 + |x − y|²/h²)^−½ of squared distances ``sq`` (Gorham & Mackey 2017).

    Args:
        sq: squared distances |x − y|², any shape.
        h: the scale h > 0 (a float, or a tensor broadcasting against ``sq``).

    Returns:
        k, shaped as ``sq``, in (0, 1].
    """
    return (1 + sq / (h * h)).rsqrt()


def rbf_kernel(x: torch.Tensor, y: torch.Tensor, h) -> torch.Tensor:
    """The Gaussian kernel's Gram matrix k(x_a, y_b), [..., A, n] × [..., B, n] → [..., A, B].

    Args:
        x: points x_a, shape [..., A, n].
        y: points y_b, shape [..., B, n].
        h: the bandwidth h > 0.

    Returns:
        k(x_a, y_b) = exp(−|x_a − y_b|²/(2h²)), shape [..., A, B].
    """
    return rbf(sq_dists(x, y), h)


def rbf_mean_grad(x: torch.Tensor, y: torch.Tensor, h) -> torch.Tensor:
    """(1/B) Σ_b ∇_x k(x_a, y_b) = −(1/B) Σ_b k(x_a, y_b)(x_a − y_b)/h² of the Gaussian kernel, → [..., A, n].

    Args:
        x: points x_a where the gradient is taken, shape [..., A, n].
        y: points y_b averaged over, shape [..., B, n].
        h: the bandwidth h > 0.

    Returns:
        The mean gradient at each x_a, shape [..., A, n].
    """
    k = rbf_kernel(x, y, h)
    return -(k.sum(-1, keepdim=True) * x - k @ y) / (h * h * y.shape[-2])


def pair_mean(k: torch.Tensor, unbiased: bool = False) -> torch.Tensor:
    """The mean of a Gram matrix k [..., N, N] over all pairs i, j, or over i ≠ j (``unbiased``).

    Args:
        k: a square Gram matrix k(x_i, x_j), shape [..., N, N] (N ≥ 2 when ``unbiased``).
        unbiased: leave out the diagonal i = j (the U-statistic's mean).

    Returns:
        The mean, shape [...].
    """
    N = k.shape[-1]
    if not unbiased:
        return k.mean(dim=(-1, -2))
    return (k.sum(dim=(-1, -2)) - k.diagonal(dim1=-2, dim2=-1).sum(-1)) / (N * (N - 1))


def mmd2(kxx: torch.Tensor, kyy: torch.Tensor, kxy: torch.Tensor, unbiased: bool = False) -> torch.Tensor:
    """MMD² = E k(X, X') + E k(Y, Y') − 2E k(X, Y) from the Gram matrices (Gretton et al. 2012, Lemma 6).

    Args:
        kxx: k(x_i, x_j) [..., N, N].
        kyy: k(y_i, y_j) [..., M, M].
        kxy: k(x_i, y_j) [..., N, M].
        unbiased: the U-statistic (i ≠ j in the first two means; may be negative) rather than the
            V-statistic (the MMD² of the empirical measures).

    Returns:
        MMD² [...].
    """
    return pair_mean(kxx, unbiased) + pair_mean(kyy, unbiased) - 2 * kxy.mean(dim=(-1, -2))


def mmd_witness(x: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, h) -> torch.Tensor:
    """The witness f(x) = (1/N)Σ_j k(x, X_j) − (1/M)Σ_j k(x, Y_j) of the Gaussian kernel (Gretton et al. 2012), → [..., A].

    Args:
        x: points where f is evaluated, shape [..., A, n].
        X: the first sample, shape [..., N, n].
        Y: the second sample, shape [..., M, n].
        h: the bandwidth h > 0.

    Returns:
        f at each point, shape [..., A].
    """
    return rbf_kernel(x, X, h).mean(-1) - rbf_kernel(x, Y, h).mean(-1)


def mmd_witness_grad(x: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, h) -> torch.Tensor:
    """∇f(x) of the Gaussian kernel's witness (closed form), → [..., A, n].

    Args:
        x: points where ∇f is evaluated, shape [..., A, n].
        X: the first sample, shape [..., N, n].
        Y: the second sample, shape [..., M, n].
        h: the bandwidth h > 0.

    Returns:
        ∇f at each point, shape [..., A, n].
    """
    return rbf_mean_grad(x, X, h) - rbf_mean_grad(x, Y, h)
