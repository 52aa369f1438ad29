"""Figures: ensemble bands over time, two trajectories side by side, FDR panels and phase portraits of
two-dimensional games."""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure

from analysis.compare import align, compare
from analysis.fdr import moving_ratio
from games.base import PLAYERS
from games.trajectory import Trajectory


def band(ax, times, values, label=None, color=None, paths: int = 3):
    """Mean ± one standard deviation over runs of values [T, K], with a few sample paths.

    Args:
        ax: the matplotlib axes to draw on.
        times: the record times [T].
        values: the runs' values [T, K] (NaNs left out of mean and std).
        label: the legend label of the mean line.
        color: its colour; None for the axes' next one.
        paths: how many sample paths to draw (at most K).

    Returns:
        The mean's Line2D.
    """
    times, values = np.asarray(times), np.asarray(values, dtype=float)
    mean, std = np.nanmean(values, axis=1), np.nanstd(values, axis=1)
    (line,) = ax.plot(times, mean, label=label, color=color, lw=1.8)
    ax.fill_between(times, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0)
    for k in range(min(paths, values.shape[1])):
        ax.plot(times, values[:, k], color=line.get_color(), lw=0.5, alpha=0.5)
    return line


def fdr_panel(ax, traj, window: int, starts: dict = None, labels=("generator θ", "discriminator ω")):
    """Each player's FDR ratio 2E[(θ−c₀)·d]/(η E|d|²) over a moving window of ``window`` records with its
    95% band, the line 1, and a dotted line at each player's time in ``starts`` (if not None).

    Args:
        ax: the matplotlib axes to draw on.
        traj: a discrete Trajectory recording the FDR observables (``analysis.fdr.sides``).
        window: the moving window, in records.
        starts: {"theta" or "omega": time} of the dotted lines (e.g. from ``analysis.fdr.stationary_from``);
            None for none.
        labels: the legend labels of the generator and the discriminator.
    """

    for k, (who, label) in enumerate(zip(PLAYERS, labels)):
        times, ratio, se = (v.numpy() for v in moving_ratio(traj, who, window))
        ax.plot(times, ratio, color=f"C{k}", lw=1.2, label=label)
        ax.fill_between(times, ratio - 1.96 * se, ratio + 1.96 * se, color=f"C{k}", alpha=0.25, lw=0)
        if (starts or {}).get(who) is not None:
            ax.axvline(starts[who], color=f"C{k}", ls=":", lw=1)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("t = Σ η")


def phase_portrait(ax, field, xlim, ylim, paths=(), labels=(), density: int = 21):
    """Streamlines of a 2-D field ``field(x [N, 2]) -> [N, 2]`` with trajectories [T, 2] over them.

    Args:
        ax: the matplotlib axes to draw on.
        field: the vector field, float64 points [N, 2] → velocities [N, 2].
        xlim: (low, high) of the first coordinate.
        ylim: (low, high) of the second coordinate.
        paths: trajectories to draw, each [T, 2].
        labels: their legend labels; empty for none.
        density: grid points per axis at which the field is evaluated.
    """
    xs, ys = np.linspace(*xlim, density), np.linspace(*ylim, density)
    X, Y = np.meshgrid(xs, ys)
    grid = torch.tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=torch.float64)
    with torch.no_grad():
        V = field(grid).numpy()
    ax.streamplot(X, Y, V[:, 0].reshape(X.shape), V[:, 1].reshape(X.shape), color="0.75",
                  density=0.8, linewidth=0.6, arrowsize=0.7)
    for path, label in zip(paths, labels or [None] * len(paths)):
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], lw=1.2, label=label)
        ax.plot(path[:1, 0], path[:1, 1], "k.", ms=4)
    ax.plot([0], [0], "r*", ms=7)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")


def new_figure(rows: int = 1, cols: int = 1, size=(4.0, 3.2), **kwargs):
    """(figure, axes [rows, cols]) of panels ``size`` inches each: a bare ``Figure``, outside pyplot, so that
    making one neither needs nor changes the user's matplotlib backend.

    Args:
        rows: the number of rows of panels.
        cols: the number of columns.
        size: (width, height) of one panel in inches.
        **kwargs: passed to ``Figure.subplots`` (sharex, sharey…).

    Returns:
        (Figure, axes as a numpy array of shape [rows, cols]).
    """
    fig = Figure(figsize=(size[0] * cols, size[1] * rows))
    return fig, fig.subplots(rows, cols, squeeze=False, **kwargs)


def rate_axes(ax, rates, label: str = "η"):
    """Log–log axes with the rates of a convergence study as the only x ticks.

    Args:
        ax: the matplotlib axes to set up.
        rates: the step sizes, positive, used as the x ticks.
        label: the x axis label.
    """
    ax.set_xscale("log")
    ax.set_yscale("log")
    labels = [str(int(r)) if float(r).is_integer() else f"{r:.3g}" for r in rates]  # 1024, not 1.02e+03
    ax.set_xticks(rates, labels, minor=False, fontsize=7 if len(rates) > 4 else None)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel(label)


def side_by_side(a: Trajectory, b: Trajectory, labels=("discrete", "SDE"), coords: Optional[Sequence[int]] = None,
                 paths: int = 3, paired: bool = False):
    """One column per coordinate: above, mean ± std of each (with ``paths`` sample paths); below, the
    difference of means E x_a − E x_b with its 95% Monte Carlo band.

    Args:
        a: the first Trajectory.
        b: the second Trajectory (differences are a − b).
        labels: the legend labels of a and b.
        coords: the state coordinates to show; None for the first four at most.
        paths: sample paths drawn per side and coordinate.
        paired: whether run k of a and b share their noise (paired standard errors).

    Returns:
        The Figure, two rows by one column per coordinate.
    """
    a, b = align(a, b)
    coords = list(range(min(a.states.shape[-1], 4)) if coords is None else coords)
    diff = compare(a, b, phi=lambda x: x[..., coords], paired=paired)
    low, high = diff.interval()
    t = a.times.numpy()
    fig, axes = new_figure(2, len(coords), sharex=True)
    for j, i in enumerate(coords):
        for traj, label, color in ((a, labels[0], "k"), (b, labels[1], "C1")):
            band(axes[0, j], t, traj.states[:, :, i], label=label, color=color, paths=paths)
        axes[0, j].set_title(f"x{i}")
        axes[1, j].plot(t, diff.weak[:, j].numpy(), color="C3", lw=1.5)
        axes[1, j].fill_between(t, low[:, j].numpy(), high[:, j].numpy(), color="C3", alpha=0.2, lw=0)
        axes[1, j].axhline(0.0, color="0.5", lw=0.6)
        axes[1, j].set_xlabel("t = Σ η")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].set_ylabel(f"{labels[0]} − {labels[1]} (95% MC)")
    return fig


def weak_order_points(ax, points, label, color):
    """A weak-order study's points (``analysis.weak_order``): kept ones with 95% bars, dropped ones hollow,
    the solver's bias as crosses.

    Args:
        ax: the axes.
        points: the study's points.
        label: the line's legend label.
        color: the line's colour.
    """
    etas = np.array([p["eta"] for p in points])
    err = np.array([p["error"] for p in points])
    half = 1.96 * np.array([p["se"] for p in points])
    kept = np.array([p["kept"] for p in points])
    ax.errorbar(etas[kept], err[kept], yerr=np.minimum(half[kept], 0.99 * err[kept]), fmt="o-", color=color,
                label=label, ms=4, capsize=2)
    ax.plot(etas[~kept], err[~kept], "o", mfc="none", color=color, ms=5)
    ax.plot(etas, [p["bias"] for p in points], "x:", color=color, ms=4, lw=0.8)
