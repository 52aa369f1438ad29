"""Powers and exponentials of symmetric (positive semidefinite) matrices, batched."""
from __future__ import annotations

import torch

RANGE_TOLERANCE = 1e-10  # eigenvalues below this fraction of the largest count as zero in ``range_root``


def _eigh(sym: torch.Tensor):
    """torch.linalg.eigh, with NaN eigenpairs for matrices that have a non-finite entry (diverged
    paths) rather than an error."""
    ok = torch.isfinite(sym).all(dim=(-1, -2))
    if ok.all():
        return torch.linalg.eigh(sym)
    vals = torch.full(sym.shape[:-1], float("nan"), dtype=sym.dtype, device=sym.device)
    vecs = torch.full_like(sym, float("nan"))
    if ok.any():
        vals[ok], vecs[ok] = torch.linalg.eigh(sym[ok])
    return vals, vecs


def psd_power(sym: torch.Tensor, power: float):
    """(M₊^power, n) for symmetric M [..., n, n]: M₊ is M with negative eigenvalues set to 0 (the
    nearest PSD matrix in Frobenius norm), n the number of matrices that had any.

    Args:
        sym: symmetric matrices M, shape `[..., n, n]`; a matrix with a non-finite entry gives NaN.
        power: the exponent applied to the clamped eigenvalues (½: the PSD square root).

    Returns:
        (M₊^power `[..., n, n]`, the number of matrices of the batch with a negative eigenvalue).
    """
    vals, vecs = _eigh(sym)
    negative = int((vals < 0).any(dim=-1).sum())
    return (vecs * vals.clamp_min(0).pow(power)[..., None, :]) @ vecs.transpose(-1, -2), negative


def range_root(psd: torch.Tensor):
    """(S^{+½}, P) for PSD S [..., n, n]: the pseudo-inverse square root and the orthogonal projection
    onto the range of S (eigenvalues below ``RANGE_TOLERANCE`` of the largest taken as zero)."""
    vals, vecs = _eigh(psd)
    kept = vals > RANGE_TOLERANCE * vals.amax(-1, keepdim=True).clamp_min(torch.finfo(psd.dtype).tiny)
    inverse_root = torch.where(kept, vals, 1.0).rsqrt().where(kept, 0.0)
    return ((vecs * inverse_root[..., None, :]) @ vecs.transpose(-1, -2),
            (vecs * kept[..., None, :].to(vecs)) @ vecs.transpose(-1, -2))


def symmetric_expm_multiply(A: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """e^A v [..., n] for symmetric A [..., n, n] and v [..., n], through one eigendecomposition A = QΛQᵀ:
    e^A v = Q e^Λ Qᵀv. Its backward is the Daleckii–Krein formula, ∂⟨g, e^A v⟩/∂A = Q (Φ ∘ ĝv̂ᵀ) Qᵀ with
    ĝ = Qᵀg, v̂ = Qᵀv and Φ_ij the divided difference (e^{λ_i} − e^{λ_j})/(λ_i − λ_j) = e^m sinh(δ)/δ,
    m, δ the mean and half-difference of λ_i, λ_j, finite when eigenvalues repeat (autograd through
    eigh divides by λ_i − λ_j). O(n³) once, where ``torch.linalg.matrix_exp``'s backward exponentiates a
    2n × 2n matrix.

    Args:
        A: symmetric matrices, shape `[..., n, n]`.
        v: vectors, shape `[..., n]`.

    Returns:
        e^A v, shape `[..., n]`, differentiable in A and v.
    """
    return _ExpmMultiply.apply(A, v)


class _ExpmMultiply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, v):
        vals, vecs = torch.linalg.eigh(A)
        v_hat = (vecs.transpose(-1, -2) @ v[..., None])[..., 0]
        ctx.save_for_backward(vals, vecs, v_hat)
        return (vecs @ (vals.exp() * v_hat)[..., None])[..., 0]

    @staticmethod
    def backward(ctx, g):
        vals, vecs, v_hat = ctx.saved_tensors
        g_hat = (vecs.transpose(-1, -2) @ g[..., None])[..., 0]
        grad_v = (vecs @ (vals.exp() * g_hat)[..., None])[..., 0]  # e^A g (A symmetric)
        mean = (vals[..., :, None] + vals[..., None, :]) / 2
        half = (vals[..., :, None] - vals[..., None, :]) / 2
        small = half.abs() < 1e-4
        sinhc = torch.where(small, 1 + half.square() / 6, torch.sinh(half) / torch.where(small, 1.0, half))
        inner = mean.exp() * sinhc * (g_hat[..., :, None] * v_hat[..., None, :])
        grad_A = vecs @ inner @ vecs.transpose(-1, -2)
        return (grad_A + grad_A.transpose(-1, -2)) / 2, grad_v
