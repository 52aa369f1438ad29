"""Comparison of two Trajectories (discrete training against an SDE, two SDEs…) on their common clock:
weak errors E φ(a) − E φ(b) of test functions φ and strong errors (E|x_a − x_b|²)^{1/2}, each with its
Monte Carlo standard error (THEORY §2)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Tuple

import numpy as np
import torch
from scipy import stats

from games.trajectory import Trajectory

TestFunction = Callable[[torch.Tensor], torch.Tensor]


def moments(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = (x_i, x_i²) [.., K, 2d]: first and second moments per coordinate."""
    return torch.cat([x, x**2], dim=-1)


def align(a: Trajectory, b: Trajectory, times=None, tol: Optional[float] = None) -> Tuple[Trajectory, Trajectory]:
    """a and b at the instants both recorded (``times``, if given, must be among them): matches are the
    nearest records within ``tol`` (default a thousandth of the finer grid's spacing, i.e. rounding of
    t = Σ η_k), so for nested grids these are the coarser grid's records in the span both cover.
    Only the observables both carry are kept.

    Args:
        a: the first Trajectory (times [T_a], states `[T_a, K_a, d]`).
        b: the second Trajectory (times [T_b], states `[T_b, K_b, d]`).
        times: the instants to keep (a sequence or tensor of times); None keeps every common record.
        tol: the largest distance between a wanted time and a record that still matches it; None for a
            thousandth of the finer grid's smallest spacing.

    Returns:
        (a, b) restricted to the common records, on the same times [T] and with the observables both carry.

    Raises:
        ValueError: if the clocks do not overlap or share no record, or a wanted time is missing from one side.
    """
    ta, tb = a.times.double().contiguous(), b.times.double().contiguous()
    if tol is None:
        tol = 1e-3 * min(_spacing(ta), _spacing(tb))
    if ta[0] > tb[-1] + tol or tb[0] > ta[-1] + tol:
        raise ValueError(f"the clocks do not overlap: a covers [{ta[0]:g}, {ta[-1]:g}], "
                         f"b covers [{tb[0]:g}, {tb[-1]:g}]")
    wanted = ta if times is None else torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    (ia, hit_a), (ib, hit_b) = _nearest(ta, wanted, tol), _nearest(tb, wanted, tol)
    if times is not None and not (hit_a & hit_b).all():
        t, who = (wanted[~hit_a][0], "a") if not hit_a.all() else (wanted[~hit_b][0], "b")
        raise ValueError(f"{who} has no record at t = {t:g} (within {tol:.1e})")
    hit = hit_a & hit_b
    if not hit.any():
        raise ValueError(f"the clocks share no record time (within {tol:.1e}): a's grid and b's do not meet")
    t = wanted[hit].to(a.times.dtype)
    return _rows(a, ia[hit], t, b.observables), _rows(b, ib[hit], t, a.observables)


def _spacing(t: torch.Tensor) -> float:
    """The smallest gap between records (1e-6 for a single record: then only rounding matches)."""
    return t.diff().min().item() if len(t) > 1 else 1e-6


def _nearest(grid: torch.Tensor, t: torch.Tensor, tol: float):
    """(index of the record of ``grid`` nearest each t, whether it is within tol)."""
    hi = torch.searchsorted(grid, t).clamp(max=len(grid) - 1)
    lo = (hi - 1).clamp(min=0)
    i = torch.where((t - grid[lo]).abs() <= (grid[hi] - t).abs(), lo, hi)
    return i, (grid[i] - t).abs() <= tol


def _rows(x: Trajectory, index: torch.Tensor, times: torch.Tensor, other: dict) -> Trajectory:
    obs = {k: v[index] for k, v in x.observables.items() if k in other}
    return Trajectory(times, x.states[index], x.p, obs, dict(x.metadata))


class Estimate(NamedTuple):
    """A Monte Carlo estimate (a number or a tensor [..]) with its standard error, and the runs left out
    of each ensemble (of each side, for paired samples)."""

    value: torch.Tensor
    se: torch.Tensor
    left_out: Tuple[int, int]

    def interval(self, level: float = 0.95) -> Tuple[torch.Tensor, torch.Tensor]:
        """The normal-approximation interval value ∓ z·se at ``level``."""
        z = stats.norm.ppf(0.5 + level / 2)
        return self.value - z * self.se, self.value + z * self.se

    def largest(self) -> Tuple[float, float]:
        """(max_φ |value|, its standard error) over the test functions of a vector estimate [n]."""
        i = int(self.value.abs().argmax())
        return self.value[i].abs().item(), self.se[i].item()


def mean_interval(values, level: float = 0.95) -> Tuple[float, float, float]:
    """(mean, low, high) of the values of independent runs [n]: Student's t interval of the mean at ``level``
    (NaN bounds with one run).

    Args:
        values: one value per independent run [n] (anything ``numpy.asarray`` takes).
        level: the confidence level, in (0, 1).

    Returns:
        (mean, low, high) as floats; low and high are NaN when there is a single run.
    """
    values = np.asarray(values, dtype=float)
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def weak_error(xa: torch.Tensor, xb: torch.Tensor, phi: Optional[TestFunction] = None,
               paired: bool = False) -> Estimate:
    """E φ(x_a) − E φ(x_b) [.., n] from ensembles [.., K, d]. Independent ensembles: se² = Var φ(x_a)/K_a
    + Var φ(x_b)/K_b; ``paired`` (run k of each driven by the same noise): se² = Var[φ(x_a) − φ(x_b)]/K.
    A run non-finite anywhere (diverged) is left out everywhere, with its partner when paired.

    Args:
        xa: the first ensemble's states [.., K_a, d].
        xb: the second ensemble's states [.., K_b, d], of the same d (and K_b = K_a when paired).
        phi: the test function, [.., K, d] → [.., K, n]; None for ``moments`` (n = 2d).
        paired: whether run k of each ensemble is driven by the same noise.

    Returns:
        An Estimate: value and se [.., n], and the runs left out of (a, b).
    """
    phi = phi or moments
    if xa.shape[-1] != xb.shape[-1]:
        raise ValueError(f"the ensembles' states differ in dimension: {xa.shape[-1]} and {xb.shape[-1]}")
    fa, fb = phi(xa), phi(xb)
    keep_a, keep_b = _finite_runs(xa, fa), _finite_runs(xb, fb)
    if paired:
        _same_runs(xa, xb)
        keep = keep_a & keep_b
        mean, se = _mean_and_se(fa[..., keep, :] - fb[..., keep, :])
        dropped = int((~keep).sum())
        return Estimate(mean, se, (dropped, dropped))
    (ma, sa), (mb, sb) = _mean_and_se(fa[..., keep_a, :]), _mean_and_se(fb[..., keep_b, :])
    return Estimate(ma - mb, (sa**2 + sb**2).sqrt(), (int((~keep_a).sum()), int((~keep_b).sum())))


def strong_error(xa: torch.Tensor, xb: torch.Tensor) -> Estimate:
    """(E|x_a − x_b|²)^{1/2} [..] of paths sharing noise, [.., K, d] each; se by the delta method,
    se(√m) = se(m)/(2√m). Pairs with a non-finite side are left out.

    Args:
        xa: the first ensemble's paths [.., K, d].
        xb: the second ensemble's paths [.., K, d], run k driven by the same noise as xa's.

    Returns:
        An Estimate: value and se [..], and the pairs left out (the same count on both sides).
    """
    _same_runs(xa, xb)
    keep = _finite_runs(xa, xa) & _finite_runs(xb, xb)
    m, se = _mean_and_se(((xa[..., keep, :] - xb[..., keep, :]) ** 2).sum(-1, keepdim=True))
    root = m.sqrt()
    dropped = int((~keep).sum())
    return Estimate(root[..., 0], (se / (2 * root))[..., 0], (dropped, dropped))


def _finite_runs(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """[K]: whether run k's states x [.., K, d] and values f [.., K, n] are finite at every index."""
    K = x.shape[-2]
    return (x.isfinite().all(-1) & f.isfinite().all(-1)).reshape(-1, K).all(0)


def _same_runs(xa: torch.Tensor, xb: torch.Tensor) -> None:
    if xa.shape != xb.shape:
        raise ValueError(f"paired comparison needs ensembles of the same K runs (and shape): "
                         f"got K = {xa.shape[-2]} and K = {xb.shape[-2]} (shapes {tuple(xa.shape)}, {tuple(xb.shape)})")


def _mean_and_se(values: torch.Tensor):
    """Means [.., n] over runs of values [.., K, n] and their standard errors."""
    K = values.shape[-2]
    if K < 2:
        raise ValueError(f"a Monte Carlo standard error needs at least two finite runs, got {K}")
    return values.mean(-2), values.std(-2) / math.sqrt(K)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Weak errors E φ(a) − E φ(b) [T, n] and their standard errors on the common times [T]; strong
    errors [T] (and se) when the paths share noise, else None; runs left out of (a, b).

    Attributes:
        times: the common times [T].
        weak: E φ(a) − E φ(b) `[T, n]`.
        weak_se: their standard errors `[T, n]`.
        strong: (E|x_a − x_b|²)^{1/2} [T] when paired, else None.
        strong_se: its standard errors [T], or None.
        left_out: the runs left out of (a, b) as non-finite.
        paired: whether the paths share their noise.
    """

    times: torch.Tensor
    weak: torch.Tensor
    weak_se: torch.Tensor
    strong: Optional[torch.Tensor]
    strong_se: Optional[torch.Tensor]
    left_out: Tuple[int, int]
    paired: bool

    def interval(self, level: float = 0.95) -> Tuple[torch.Tensor, torch.Tensor]:
        """The weak errors' normal-approximation intervals [T, n] at ``level``."""
        return Estimate(self.weak, self.weak_se, self.left_out).interval(level)

    @property
    def final_weak_error(self) -> Tuple[float, float]:
        """(max_φ |E φ(a) − E φ(b)| at the last time, its standard error)."""
        return Estimate(self.weak[-1], self.weak_se[-1], self.left_out).largest()


def compare(a: Trajectory, b: Trajectory, phi: Optional[TestFunction] = None, paired: bool = False,
            times=None) -> Comparison:
    """Weak (and, for ``paired`` paths, strong) errors of a against b on their common clock.

    Args:
        a: the first Trajectory.
        b: the second Trajectory (the reference the errors are taken against).
        phi: the test function, [.., K, d] → [.., K, n]; None for ``moments``.
        paired: whether run k of a and of b share their noise (adds strong errors).
        times: the instants to compare at; None for every record both carry (see ``align``).

    Returns:
        The Comparison on the common times.
    """
    a, b = align(a, b, times)
    weak = weak_error(a.states, b.states, phi, paired)
    strong, strong_se = strong_error(a.states, b.states)[:2] if paired else (None, None)
    return Comparison(a.times, weak.value, weak.se, strong, strong_se, weak.left_out, paired)


__all__ = ["Comparison", "Estimate", "align", "compare", "mean_interval", "moments", "strong_error", "weak_error"]


def first_below(steps: np.ndarray, wall: np.ndarray, values: np.ndarray, level: float):
    """(steps, wall seconds) at the first record where the mean over runs of values [T, K] is at most ``level``;
    NaNs if it never is.

    Args:
        steps: the records' step counts [T].
        wall: their wall times [T].
        values: the runs' values [T, K] (NaNs left out of the means).
        level: the level.

    Returns:
        (steps, seconds).
    """
    below = np.flatnonzero(np.nanmean(values, axis=1) <= level)
    return (float(steps[below[0]]), float(wall[below[0]])) if len(below) else (math.nan, math.nan)
