"""Powers of symmetric positive semidefinite matrices, batched."""
from __future__ import annotations

import torch


def psd_power(sym: torch.Tensor, power: float):
    """(M₊^power, n) for symmetric M [..., n, n]: M₊ is M with negative eigenvalues set to 0 (the
    nearest PSD matrix in Frobenius norm), n the number of matrices that had any. Matrices with a
    non-finite entry (diverged paths) give NaN rather than an error."""
    ok = torch.isfinite(sym).all(dim=(-1, -2))
    vals = torch.full(sym.shape[:-1], float("nan"), dtype=sym.dtype, device=sym.device)
    vecs = torch.full_like(sym, float("nan"))
    if ok.all():
        vals, vecs = torch.linalg.eigh(sym)
    elif ok.any():
        vals[ok], vecs[ok] = torch.linalg.eigh(sym[ok])
    negative = int((vals < 0).any(dim=-1).sum())
    return (vecs * vals.clamp_min(0).pow(power)[..., None, :]) @ vecs.transpose(-1, -2), negative
