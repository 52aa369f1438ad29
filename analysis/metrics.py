"""Distances between probability distributions, from samples or from closed forms.

Shapes. A point cloud is [..., N, n]: N points in ℝⁿ, with optional leading (ensemble) dimensions,
say [K], that broadcast between the two arguments; 1-D data is therefore [..., N, 1]. ``w2_1d`` is
the exception and takes [..., N] samples on the line. Every distance comes back as a tensor of the
broadcast leading shape: 0-dim for a single pair, [K] for an ensemble. Everything is differentiable
through torch except the bandwidth of the median heuristic, which is held constant.

- Wasserstein-2: W₂(μ, ν)² = min over couplings π of μ and ν of E_π |X − Y|². On the line it is
  ∫₀¹ (F⁻¹(u) − G⁻¹(u))² du, the L² distance of the quantile functions (``w2_1d``, exact for
  empirical measures of any sizes). Between Gaussians it has the Bures–Wasserstein closed form
  |m₁ − m₂|² + tr(S₁ + S₂ − 2(S₂^½ S₁ S₂^½)^½) (``w2_gaussian``). Between point clouds in ℝⁿ it is
  a linear program, solved exactly by POT's network simplex (``w2_samples``, small clouds only).
- Sliced W₂: SW₂(μ, ν)² = E_θ W₂(θ#μ, θ#ν)², θ uniform on the unit sphere, θ#μ the law of θ·X: the
  mean 1-D W₂² of the projections, estimated with random directions (``sliced_w2``).
- MMD: MMD²(μ, ν) = E k(X, X') + E k(Y, Y') − 2 E k(X, Y) for a kernel k, the squared RKHS distance
  of the kernel mean embeddings (``mmd2``).
- Energy distance: E(μ, ν) = 2 E|X − Y| − E|X − X'| − E|Y − Y'| ≥ 0, zero iff μ = ν; it is MMD² with
  the distance kernel k(x, y) = −|x − y| (``energy_distance``). It is a squared quantity: scipy's
  ``energy_distance`` is its square root.
- Total variation between Gaussians: TV(P, Q) = E_P (1 − q/p)₊, estimated by Monte Carlo from draws of
  P (``tv_gaussian``; no closed form beyond one dimension).
- Mode coverage of a mixture with known centres: which modes receive samples, and how many samples
  lie close to some mode (``mode_coverage``); a diagnostic of mode collapse, not a distance.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch

from games.errors import ConfigError, check_choice, check_int, check_positive
from games.maths import kernels, wasserstein
from games.maths.wasserstein import symmetrised

W2_SAMPLES_LIMIT = 5000  # most points per cloud for exact OT (an N×M cost matrix, network simplex)
KERNELS = ("rbf", "imq", "energy")


# ---------------------------------------------------------------------------- input checks

def _tensor(name: str, x, min_dim: int, what: str) -> torch.Tensor:
    """``x`` if it is a non-empty floating tensor with at least ``min_dim`` dimensions."""
    if not isinstance(x, torch.Tensor):
        raise ConfigError(name, f"expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ConfigError(name, f"expected a floating-point tensor, got {x.dtype}")
    if x.dim() < min_dim:
        raise ConfigError(name, f"expected {what}, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ConfigError(name, f"is empty (shape {tuple(x.shape)})")
    return x


def _leading(name: str, *shapes) -> torch.Size:
    """The broadcast of leading shapes; ``name`` is blamed if they do not broadcast."""
    try:
        return torch.broadcast_shapes(*shapes)
    except RuntimeError:
        raise ConfigError(name, f"leading (ensemble) shapes {', '.join(map(str, map(tuple, shapes)))} "
                                "do not broadcast") from None


def _pair(x, y, min_dim: int, what: str):
    """x, y checked and promoted to a common dtype; their leading shapes must broadcast."""
    x, y = _tensor("x", x, min_dim, what), _tensor("y", y, min_dim, what)
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(dtype)


def _clouds(x, y, min_points: int = 1):
    """Point clouds x [..., N, n], y [..., M, n] expanded to a common leading shape."""
    x, y = _pair(x, y, 2, "a point cloud [..., N, n]")
    if y.shape[-1] != x.shape[-1]:
        raise ConfigError("y", f"points are in ℝ^{y.shape[-1]} but x's are in ℝ^{x.shape[-1]}")
    for name, c in (("x", x), ("y", y)):
        if c.shape[-2] < min_points:
            raise ConfigError(name, f"needs at least {min_points} points, got {c.shape[-2]}")
    lead = _leading("y", x.shape[:-2], y.shape[:-2])
    return x.expand(*lead, *x.shape[-2:]), y.expand(*lead, *y.shape[-2:])


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a_i − b_j| [..., N, M], computed directly (no |a|² + |b|² − 2a·b cancellation)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


# ---------------------------------------------------------------------------- Wasserstein-2

def _w2sq_1d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∫₀¹ (F⁻¹ − G⁻¹)² du for samples x [..., N], y [..., M] (checked): the quantile functions are
    step functions with breaks at i/N and j/M, so the integral is a sum over the merged breaks."""
    N, M = x.shape[-1], y.shape[-1]
    xs, ys = x.sort(dim=-1).values, y.sort(dim=-1).values
    if N == M:
        return (xs - ys).pow(2).mean(-1)
    # left ends of the merged pieces in units of 1/(N·M), exact integers
    starts = torch.cat([torch.arange(N, device=x.device) * M, torch.arange(M, device=x.device) * N]).unique()
    widths = torch.diff(starts, append=starts.new_tensor([N * M])).to(x.dtype)
    return ((xs[..., starts // M] - ys[..., starts // N]).pow(2) * widths).sum(-1) / (N * M)


def w2_1d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """W₂ = (∫₀¹ (F⁻¹(u) − G⁻¹(u))² du)^½ of empirical measures on ℝ, x [..., N], y [..., M] →
    [...], exact for any N, M (Villani 2003, Thm 2.18).

    Args:
        x: the first samples [..., N].
        y: the second samples [..., M], leading shape broadcasting against x's.

    Returns:
        W₂ [...], the broadcast leading shape.

    Raises:
        ConfigError: if an input is not a non-empty floating tensor or the leading shapes do not broadcast.
    """
    x, y = _pair(x, y, 1, "samples [..., N]")
    _leading("y", x.shape[:-1], y.shape[:-1])
    return _w2sq_1d(x, y).sqrt()


def w2_gaussian(m1: torch.Tensor, S1: torch.Tensor, m2: torch.Tensor, S2: torch.Tensor) -> torch.Tensor:
    """``games.maths.wasserstein.w2_gaussian`` with checked inputs: means [..., n], covariances [..., n, n]
    (symmetrised, projected on the PSD cone) → [...].

    Args:
        m1: the first mean [..., n].
        S1: the first covariance [..., n, n].
        m2: the second mean [..., n].
        S2: the second covariance [..., n, n].

    Returns:
        W₂ [...], the broadcast leading shape.

    Raises:
        ConfigError: if the dimensions disagree or the leading shapes do not broadcast.
    """
    m1, m2 = _pair(m1, m2, 1, "a mean [..., n]")
    n = m1.shape[-1]
    if m2.shape[-1] != n:
        raise ConfigError("m2", f"has dimension {m2.shape[-1]} but m1 has {n}")
    S1, S2 = _tensor("S1", S1, 2, "a covariance [..., n, n]"), _tensor("S2", S2, 2, "a covariance [..., n, n]")
    for name, S in (("S1", S1), ("S2", S2)):
        if S.shape[-2:] != (n, n):
            raise ConfigError(name, f"expected a {n}×{n} covariance, got shape {tuple(S.shape)}")
    _leading("S2", m1.shape[:-1], m2.shape[:-1], S1.shape[:-2], S2.shape[:-2])
    dtype = torch.promote_types(m1.dtype, S1.dtype)
    return wasserstein.w2_gaussian(m1.to(dtype), symmetrised(S1.to(dtype)), m2.to(dtype), symmetrised(S2.to(dtype)))


def w2_samples(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """W₂ = (min_π Σ π_ij |x_i − y_j|²)^½ between uniform point clouds x [..., N, n], y [..., M, n] →
    [...], by exact OT (POT's network simplex; Bonneel et al. 2011); at most ``W2_SAMPLES_LIMIT``
    points a cloud, one linear program per ensemble member.

    Args:
        x: the first cloud [..., N, n], N ≤ ``W2_SAMPLES_LIMIT``.
        y: the second cloud [..., M, n], M ≤ ``W2_SAMPLES_LIMIT``.

    Returns:
        W₂ [...], the broadcast leading shape.

    Raises:
        ConfigError: if a cloud is too large, empty or of another dimension.
        RuntimeError: if the linear program does not reach optimality.
    """
    import ot  # POT; imported here so that the rest of the module does not need it loaded

    x, y = _clouds(x, y)
    for name, c in (("x", x), ("y", y)):
        if c.shape[-2] > W2_SAMPLES_LIMIT:
            raise ConfigError(name, f"{c.shape[-2]} points exceed the exact-OT limit of {W2_SAMPLES_LIMIT} "
                                    "(cost and time grow like N·M and faster); use sliced_w2 instead")
    lead, (N, M) = x.shape[:-2], (x.shape[-2], y.shape[-2])
    a, b = x.new_full((N,), 1.0 / N), x.new_full((M,), 1.0 / M)
    costs = []
    for xi, yi in zip(x.reshape(-1, N, x.shape[-1]), y.reshape(-1, M, y.shape[-1])):
        cost, log = ot.emd2(a, b, _distances(xi, yi).pow(2), numItermax=10**9, log=True)
        if log["result_code"] != 1:
            raise RuntimeError(f"w2_samples: exact OT did not reach optimality ({log['warning']})")
        costs.append(cost)
    return torch.stack(costs).reshape(lead).clamp_min(0).sqrt()


def sliced_w2(x: torch.Tensor, y: torch.Tensor, n_projections: int = 128,
              seed: Union[int, torch.Generator] = 0) -> torch.Tensor:
    """SW₂ = (mean over θ of W₂(θ·X, θ·Y)²)^½ with ``n_projections`` directions θ uniform on the
    sphere, x [..., N, n], y [..., M, n] → [...] (Bonneel et al. 2015). The directions come from
    ``seed`` (drawn on the CPU, so the same on every device) or from a given generator, and are
    shared by the whole ensemble.

    Args:
        x: the first cloud [..., N, n].
        y: the second cloud [..., M, n].
        n_projections: the number of random directions, a positive integer.
        seed: the directions' seed (an integer ≥ 0) or a ``torch.Generator`` to draw them from.

    Returns:
        SW₂ [...], the broadcast leading shape.
    """
    x, y = _clouds(x, y)
    n_projections = check_int("n_projections", n_projections)
    if isinstance(seed, torch.Generator):
        theta = torch.randn(n_projections, x.shape[-1], generator=seed, dtype=x.dtype, device=seed.device)
    else:
        gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        theta = torch.randn(n_projections, x.shape[-1], generator=gen, dtype=x.dtype)
    theta = (theta / theta.norm(dim=-1, keepdim=True)).to(x.device)
    px, py = (x @ theta.T).transpose(-1, -2), (y @ theta.T).transpose(-1, -2)  # [..., P, N], [..., P, M]
    return _w2sq_1d(px, py).mean(-1).sqrt()


# ---------------------------------------------------------------------------- kernel distances

def _kernel(name: str, d: torch.Tensor, h: Optional[torch.Tensor]) -> torch.Tensor:
    """k(x, y) as a function of the distance d = |x − y| and the bandwidth h."""
    if name == "energy":
        return -d
    return (kernels.rbf if name == "rbf" else kernels.imq)(d.pow(2), h)


def _median_bandwidth(dxx: torch.Tensor, dyy: torch.Tensor, dxy: torch.Tensor) -> torch.Tensor:
    """The (lower) median distance over the distinct pairs of the pooled sample, [..., 1, 1]."""
    ix, iy = (torch.triu_indices(k, k, 1, device=dxx.device) for k in (dxx.shape[-1], dyy.shape[-1]))
    pairs = torch.cat([dxx[..., ix[0], ix[1]], dyy[..., iy[0], iy[1]], dxy.flatten(-2)], dim=-1)
    h = pairs.detach().median(dim=-1).values
    if (h <= 0).any():
        raise ConfigError("bandwidth", "the median heuristic gave 0 (most points coincide); pass a bandwidth")
    return h[..., None, None]


def mmd2(x: torch.Tensor, y: torch.Tensor, kernel: str = "rbf", bandwidth: Optional[float] = None,
         unbiased: bool = True) -> torch.Tensor:
    """MMD² = E k(X,X') + E k(Y,Y') − 2E k(X,Y) (Gretton et al. 2012), x [..., N, n], y [..., M, n] →
    [...]: the U-statistic (unbiased, may be negative; needs N, M ≥ 2) or the V-statistic (biased,
    ≥ 0, the MMD² of the empirical measures). Kernels: "rbf" exp(−|x−y|²/2h²), "imq"
    (1 + |x−y|²/h²)^−½, "energy" −|x−y| (no bandwidth); h defaults to the median pairwise distance
    of the pooled sample (the median heuristic).

    Args:
        x: the first cloud [..., N, n].
        y: the second cloud [..., M, n].
        kernel: "rbf", "imq" or "energy".
        bandwidth: the kernel's h > 0; None for the median heuristic (ignored by "energy").
        unbiased: the U-statistic (True) or the V-statistic (False).

    Returns:
        MMD² [...], the broadcast leading shape.

    Raises:
        ConfigError: for an unknown kernel, a non-positive bandwidth, or too few points.
    """
    check_choice("kernel", kernel, KERNELS)
    x, y = _clouds(x, y, min_points=2 if unbiased else 1)
    dxx, dyy, dxy = _distances(x, x), _distances(y, y), _distances(x, y)
    h = None
    if kernel != "energy":
        h = (_median_bandwidth(dxx, dyy, dxy) if bandwidth is None
             else torch.tensor(check_positive("bandwidth", bandwidth), dtype=x.dtype, device=x.device))
    kxx, kyy, kxy = (_kernel(kernel, d, h) for d in (dxx, dyy, dxy))
    return kernels.mmd2(kxx, kyy, kxy, unbiased)


def energy_distance(x: torch.Tensor, y: torch.Tensor, unbiased: bool = False) -> torch.Tensor:
    """E = 2E|X−Y| − E|X−X'| − E|Y−Y'| (Székely & Rizzo 2013), x [..., N, n], y [..., M, n] → [...]:
    by default the V-statistic, the energy distance of the empirical measures (≥ 0, the square of
    scipy.stats.energy_distance in 1-D); the U-statistic with ``unbiased``.

    Args:
        x: the first cloud [..., N, n].
        y: the second cloud [..., M, n].
        unbiased: the U-statistic (True; needs N, M ≥ 2) instead of the V-statistic.

    Returns:
        E [...], the broadcast leading shape.
    """
    return mmd2(x, y, kernel="energy", unbiased=unbiased)


# ---------------------------------------------------------------------------- total variation

def tv_gaussian(S1: torch.Tensor, S2: torch.Tensor, samples: int = 4096, seed: int = 0):
    """TV(N(0, S₁), N(0, S₂)) = E_{x∼N(0,S₁)} (1 − q(x)/p(x))₊ by Monte Carlo, covariances [..., n, n]
    (positive definite) → (estimate [...], its standard error [...]).

    Args:
        S1: the first covariance.
        S2: the second covariance.
        samples: draws of N(0, S₁) per pair.
        seed: the draws' seed (the same standard normals for every pair).

    Returns:
        (estimate, standard error), each of the broadcast leading shape.
    """
    S1, S2 = _tensor("S1", S1, 2, "a covariance [..., n, n]"), _tensor("S2", S2, 2, "a covariance [..., n, n]")
    check_int("samples", samples, minimum=2)
    L1, L2 = torch.linalg.cholesky(symmetrised(S1)), torch.linalg.cholesky(symmetrised(S2))
    z = torch.randn(samples, S1.shape[-1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = z.to(L1) @ L1.transpose(-1, -2)  # [..., samples, n]
    y = torch.linalg.solve_triangular(L2, x.transpose(-1, -2), upper=False).transpose(-1, -2)
    log_det = lambda L: L.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # noqa: E731  (½ log det S)
    log_ratio = -0.5 * (y.square().sum(-1) - z.to(L1).square().sum(-1)) - (log_det(L2) - log_det(L1))[..., None]
    gap = (1 - log_ratio.exp()).clamp_min(0)
    return gap.mean(-1), gap.std(-1) / samples**0.5


# ---------------------------------------------------------------------------- mode coverage

@dataclass(frozen=True)
class ModeCoverage:
    """per_mode [..., C]: fraction of all samples that are near mode c (nearest centre c, within the
    radius); covered [...] (int64): the number of modes with per_mode ≥ threshold; high_quality
    [...]: the fraction of samples within the radius of their nearest centre (= per_mode summed).

    Attributes:
        per_mode: the fraction of all samples near each mode [..., C].
        covered: the number of covered modes [...], int64.
        high_quality: the fraction of high-quality samples [...].
        threshold: the share a mode needs to count as covered.
    """

    per_mode: torch.Tensor
    covered: torch.Tensor
    high_quality: torch.Tensor
    threshold: float


def mode_coverage(x: torch.Tensor, centers: torch.Tensor, radius: float,
                  threshold: Optional[float] = None) -> ModeCoverage:
    """Mode coverage of samples x [..., N, n] for a mixture with centres [C, n]: each sample belongs
    to its nearest centre and is high-quality if within ``radius`` of it (e.g. 3σ of the component);
    a mode is covered if it gets at least ``threshold`` of the samples, by default 1/(4C), a quarter
    of a fair share (Metz et al. 2017; Srivastava et al. 2017).

    Args:
        x: the samples [..., N, n].
        centers: the mixture's centres [C, n].
        radius: the distance to the nearest centre within which a sample is high-quality, > 0.
        threshold: the share of samples a mode needs to count as covered, > 0; None for 1/(4C).

    Returns:
        The ModeCoverage, of leading shape [...].

    Raises:
        ConfigError: if the shapes disagree or radius or threshold is not positive.
    """
    x, centers = _tensor("x", x, 2, "samples [..., N, n]"), _tensor("centers", centers, 2, "centres [C, n]")
    if centers.dim() != 2:
        raise ConfigError("centers", f"expected centres [C, n], got shape {tuple(centers.shape)}")
    if centers.shape[-1] != x.shape[-1]:
        raise ConfigError("centers", f"centres are in ℝ^{centers.shape[-1]} but samples in ℝ^{x.shape[-1]}")
    radius = check_positive("radius", radius)
    C = centers.shape[0]
    threshold = 1.0 / (4 * C) if threshold is None else check_positive("threshold", threshold)
    dtype = torch.promote_types(x.dtype, centers.dtype)
    x = x.to(dtype)
    dist, nearest = _distances(x, centers.to(dtype).expand(*x.shape[:-2], C, x.shape[-1])).min(dim=-1)
    good = (dist <= radius).to(dtype)  # [..., N]
    per_mode = (torch.nn.functional.one_hot(nearest, C).to(dtype) * good[..., None]).mean(dim=-2)
    return ModeCoverage(per_mode, (per_mode >= threshold).sum(-1), good.mean(-1), threshold)
