"""Stationary regimes of an ensemble: where one begins, and the samples it pools (THEORY §4).

An ensemble of K independent runs is stationary from record s when the law of x_t no longer moves
for t ≥ s. The test here looks at the ensemble means of the first and second moments of each
coordinate: from s on they must stay within Monte Carlo error of their values over the tail of the
run (the last quarter by default), at a Bonferroni-corrected level over all records and moments.
"""
from __future__ import annotations

import math

import torch
from scipy import stats

from analysis.compare import moments


def settled_from(traj, tail: float = 0.25, level: float = 0.05):
    """The first record index s from which the ensemble means of x_i and x_i² stay within Monte Carlo
    error of their means over the last ``tail`` of the records; None if the ensemble still moves
    there (the test's only violations are then in the tail itself).

    Args:
        traj: the ensemble's Trajectory, states `[T, K, d]`.
        tail: the fraction of the last records taken as the stationary reference, in (0, 1).
        level: the test's family-wise level, Bonferroni-corrected over the records and moments.

    Returns:
        The record index s (an int), or None.

    Raises:
        ValueError: with fewer than two finite runs or a tail of fewer than two records.
    """
    values = moments(traj.states.double())  # [T, K, 2d]
    values = values[:, values.isfinite().all(-1).all(0)]  # runs finite throughout
    T, K, n = values.shape
    end = int(T * (1 - tail))
    if end < 1 or T - end < 2 or K < 2:
        raise ValueError(f"a stationarity test needs at least two runs and a tail of two records, got K = {K}, "
                         f"T = {T}")
    tail_means = values[end:].mean(0)  # each run's time average over the tail [K, n]
    target, target_se = tail_means.mean(0), tail_means.std(0) / math.sqrt(K)
    se = values.std(1) / math.sqrt(K)  # [T, n]
    z = stats.norm.ppf(1 - level / (2 * T * n))
    moved = ((values.mean(1) - target).abs() > z * (se**2 + target_se**2).sqrt()).any(-1)  # [T]
    late = torch.nonzero(moved).flatten()
    start = 0 if len(late) == 0 else int(late[-1]) + 1
    return start if start < end else None


def pooled(traj, start: int) -> torch.Tensor:
    """The states of every run over the records ``start:``, [N, d], runs with a non-finite state left out
    (samples of the stationary law, correlated in time within each run).

    Args:
        traj: the ensemble's Trajectory, states `[T, K, d]`.
        start: the first record of the window.

    Returns:
        The pooled states [N, d], N = (T − start)·(runs kept).
    """
    window = traj.states[start:]
    keep = window.isfinite().all(-1).all(0)
    return window[:, keep].reshape(-1, window.shape[-1])


def stationary_window(traj, log=None) -> torch.Tensor:
    """The pooled stationary window of ``traj`` (``settled_from``; its second half if no start is detected).

    Args:
        traj: the ensemble.
        log: a callable told when the second half is used instead.

    Returns:
        [N, d] samples.
    """
    start = settled_from(traj)
    if start is None:
        start = len(traj.times) // 2
        if log is not None:
            log("no stationary start detected; the second half is pooled")
    return pooled(traj, start)


def stationary_start(traj):
    """The record from which the ensemble is stationary (``settled_from``); None when undetected or not testable
    (no recorded states, too few runs or records)."""
    try:
        return settled_from(traj) if traj.p else None
    except ValueError:
        return None
