"""Powers of symmetric positive semidefinite matrices, batched."""
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
    nearest PSD matrix in Frobenius norm), n the number of matrices that had any."""
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
