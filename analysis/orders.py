"""Orders of convergence: fits of log error on log step with confidence intervals."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class OrderFit:
    """error ≈ C·hˢ: the slope s with its 95% interval [low, high], and log C.

    Attributes:
        slope: the order s.
        low: the interval's lower bound.
        high: the interval's upper bound.
        log_constant: log C.
    """

    slope: float
    low: float
    high: float
    log_constant: float


def fit_order(steps: Sequence[float], errors: Sequence[float], se: Optional[Sequence[float]] = None,
              level: float = 0.95) -> OrderFit:
    """Weighted least squares of log error on log h, weights from the errors' standard errors (delta
    method: sd(log e) = se/e; equal weights without them). The slope's standard error is scaled by
    the Birge ratio √(χ²/(n − 2)) when that exceeds 1, so misfit widens the interval; the interval
    uses Student's t with n − 2 degrees of freedom (normal quantiles when the weights are known
    and the fit is consistent with them).

    Args:
        steps: the step sizes h [n], n ≥ 3, positive.
        errors: the errors at them [n], positive.
        se: the errors' standard errors [n]; None for equal weights.
        level: the interval's confidence level, in (0, 1).

    Returns:
        The OrderFit: slope s, its interval, and log C.

    Raises:
        ValueError: with fewer than three points.
    """
    h, e = np.log(np.asarray(steps, float)), np.log(np.asarray(errors, float))
    if len(h) < 3:
        raise ValueError(f"an order fit needs at least three points, got {len(h)}")
    sd = np.ones_like(h) if se is None else np.asarray(se, float) / np.exp(e)
    w = 1.0 / sd**2
    hb = (w * h).sum() / w.sum()
    sxx = (w * (h - hb) ** 2).sum()
    slope = (w * (h - hb) * (e - e.mean())).sum() / sxx
    intercept = ((w * e).sum() - slope * (w * h).sum()) / w.sum()
    chi2 = (w * (e - intercept - slope * h) ** 2).sum() / (len(h) - 2)
    if se is None:
        scale, quantile = math.sqrt(chi2), stats.t.ppf(0.5 + level / 2, len(h) - 2)
    elif chi2 > 1:
        scale, quantile = math.sqrt(chi2), stats.t.ppf(0.5 + level / 2, len(h) - 2)
    else:
        scale, quantile = 1.0, stats.norm.ppf(0.5 + level / 2)
    half = quantile * scale / math.sqrt(sxx)
    return OrderFit(float(slope), float(slope - half), float(slope + half), float(intercept))


def fit_common_order(groups: Sequence[tuple], level: float = 0.95) -> OrderFit:
    """One slope s for several systems, error_g ≈ C_g·hˢ (a least-squares fit of log error on log h
    with an intercept per group (steps, errors)); Student-t interval with n − G − 1 degrees of
    freedom. ``log_constant`` is the mean of the groups' intercepts.

    Args:
        groups: one (steps [n_g], errors [n_g]) pair per system, with more than G + 1 points in all.
        level: the interval's confidence level, in (0, 1).

    Returns:
        The OrderFit of the common slope.

    Raises:
        ValueError: with too few points for the degrees of freedom.
    """
    logs = [(np.log(np.asarray(h, float)), np.log(np.asarray(e, float))) for h, e in groups]
    n, G = sum(len(h) for h, _ in logs), len(logs)
    if n - G - 1 < 1:
        raise ValueError(f"a common order fit of {G} groups needs more than {G + 1} points, got {n}")
    centred = [(h - h.mean(), e - e.mean()) for h, e in logs]
    sxx = sum((h**2).sum() for h, _ in centred)
    slope = sum((h * e).sum() for h, e in centred) / sxx
    rss = sum(((e - slope * h) ** 2).sum() for h, e in centred)
    half = stats.t.ppf(0.5 + level / 2, n - G - 1) * math.sqrt(rss / (n - G - 1) / sxx)
    constant = float(np.mean([e.mean() - slope * h.mean() for h, e in logs]))
    return OrderFit(float(slope), float(slope - half), float(slope + half), constant)


def fit_order_bootstrap(steps: Sequence[float], samples: Sequence, n_boot: int = 1000, level: float = 0.95,
                        seed: int = 0) -> OrderFit:
    """error ≈ C·hˢ with error_i = |mean of samples[i]| (per-run paired differences or errors at step
    h_i): the point fit is ``fit_order`` weighted by the means' standard errors; the interval is the
    percentile bootstrap of the same fit, runs resampled with replacement within each step size.

    Args:
        steps: the step sizes h [n], positive.
        samples: for each step size, the per-run values [n_i], n_i ≥ 2.
        n_boot: the number of bootstrap resamples.
        level: the interval's confidence level, in (0, 1).
        seed: the resampling generator's seed.

    Returns:
        The OrderFit: the weighted point fit's slope and log C, and the bootstrap interval.

    Raises:
        ValueError: if steps and samples differ in length or a step has fewer than two runs.
    """
    samples = [np.asarray(s, float).ravel() for s in samples]
    if len(samples) != len(steps):
        raise ValueError(f"{len(steps)} step sizes but {len(samples)} sets of samples")
    if min(len(s) for s in samples) < 2:
        raise ValueError("each step size needs at least two runs for a standard error")
    point = fit_order(steps, *_error_and_se(samples))
    rng = np.random.default_rng(seed)
    boot = [s[rng.integers(0, len(s), size=(n_boot, len(s)))] for s in samples]  # [n_boot, n_i] each
    with np.errstate(divide="ignore", invalid="ignore"):  # a resample with mean 0 gives a NaN slope, left out
        slopes = _wls_slopes(np.log(np.asarray(steps, float)), *_error_and_se(boot))
    low, high = np.nanquantile(slopes, [0.5 - level / 2, 0.5 + level / 2])
    return OrderFit(point.slope, float(low), float(high), point.log_constant)


def _error_and_se(samples):
    """(|mean| [.., n], standard error [.., n]) over the last axis of each step's samples."""
    error = np.stack([np.abs(s.mean(-1)) for s in samples], -1)
    se = np.stack([s.std(-1, ddof=1) / np.sqrt(s.shape[-1]) for s in samples], -1)
    return error, se


def _wls_slopes(h, errors, se):
    """``fit_order``'s weighted slope of log error on log h, for each row of errors, se [.., n]."""
    e, w = np.log(errors), (errors / se) ** 2
    hb = (w * h).sum(-1, keepdims=True) / w.sum(-1, keepdims=True)
    return (w * (h - hb) * e).sum(-1) / (w * (h - hb) ** 2).sum(-1)
