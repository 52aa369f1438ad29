"""Weak-order studies: a chain's end states against its SDE driven by the chain's own minibatches
(``sde.coupling``), at falling rates, each point with its Monte Carlo error and the solver's bias (THEORY §2)."""
from __future__ import annotations

import math

import torch

from games import SGA
from games.random import Streams
from sde import SME, bridge, coupled_chain, integrate

from . import compare
from .orders import fit_common_order, fit_order

SOLVER = "platen2"  # the SDEs' scheme: weak order 2, so its bias is small beside the SMEs' errors


def test_functions(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = (x, x², cos x) [K, 3d]: first and second moments and a bounded smooth function."""
    return torch.cat([x, x**2, torch.cos(x)], dim=-1)


def weak_error(chain: torch.Tensor, sde: torch.Tensor):
    """(max_φ |E φ(chain) − E φ(sde)|, its standard error) from the paired differences of coupled paths.

    Args:
        chain: the chain's end states [K, d].
        sde: the coupled SDE paths' end states [K, d].

    Returns:
        (the largest error over ``test_functions``, its standard error).
    """
    return compare.weak_error(chain, sde, test_functions, paired=True).largest()


def solver_bias(coarse: torch.Tensor, fine: torch.Tensor) -> float:
    """max_φ |E φ(X^{dt}) − E φ(X^{dt/2})| on shared Brownian paths, plus twice the standard error of
    that paired difference: a bound on the solver's bias at dt.

    Args:
        coarse: end states [K, d] at step dt.
        fine: end states [K, d] at dt/2 on the same Brownian paths.

    Returns:
        The bound.
    """
    diff = compare.weak_error(coarse, fine, test_functions, paired=True)
    return (diff.value.abs() + 2 * diff.se).max().item()


def study(game, x0, update, orders, etas, K: int, batch: int, seed: int, log, horizon: float = 2.0):
    """{order: [per-η points (``coupled_point``)]} of the SMEs ``orders`` of one update rule at the rates ``etas``.

    Args:
        game: the game.
        x0: the common start [d].
        update: the update rule (a name or a rule object).
        orders: the SME orders ("1", "2", "2s").
        etas: the rates.
        K: the chain's runs.
        batch: the batch size.
        seed: the streams' seed (the coupled noise uses seed + 1).
        log: a callable taking a line of progress.
        horizon: the time T of the comparison.

    Returns:
        {order: [points]}.
    """
    rows = {order: [] for order in orders}
    for eta in etas:
        smes = {order: SME(SGA(game, lr=eta, update=update, batch_size=batch), order=order) for order in orders}
        steps = round(horizon / eta)
        widest = max(smes.values(), key=lambda sme: sme.m)  # SME-2s: the factor's columns and d more
        chain, coupled = coupled_chain(widest, steps, x0, Streams.from_seed(seed, K), Streams.from_seed(seed + 1, K),
                                       record_every=10**9)
        chain, refined = chain.states[-1], refine(coupled, eta, Streams.from_seed(seed + 2, K))
        for order, sme in smes.items():  # each order takes its first m columns
            rows[order].append(coupled_point(chain, sme, x0, horizon, refined, eta, f"{update} η={eta:g} SME-{order}",
                                             log))
    return rows


def refine(coupled: torch.Tensor, step: float, bridges: Streams) -> dict:
    """{dt: increments} at dt = step/2 and step/4, the chain's increments split by Brownian bridges.

    Args:
        coupled: the chain's Brownian increments at ``step``.
        step: their time step.
        bridges: the streams of the bridges.

    Returns:
        {dt: increments}.
    """
    half = bridge(coupled, step, bridges)
    return {step / 2: half, step / 4: bridge(half, step / 2, bridges)}


def coupled_point(chain: torch.Tensor, sde, start, horizon: float, refined: dict, eta: float, label: str, log) -> dict:
    """One point of a weak-order study: the chain's end states [K, d] against ``sde`` from ``start`` driven by
    the ``refined`` increments (its first m columns) at the finer steps, compared on the chain's d coordinates.

    Args:
        chain: the chain's end states [K, d].
        sde: the SDE.
        start: its initial state.
        horizon: the time of the comparison.
        refined: ``refine``'s increments.
        eta: the point's rate.
        label: the point's name in the progress line.
        log: a callable taking that line.

    Returns:
        {"eta", "error", "se", "bias", "kept", "why"}: the error, its standard error, the solver's bias (the two
        steps' difference), whether the point counts and why not.
    """
    ends = [integrate(sde, start, horizon, dt, solver=SOLVER, increments=inc[..., : sde.m],
                      record_every=10**9).states[-1][:, : chain.shape[-1]] for dt, inc in refined.items()]
    error, se = weak_error(chain, ends[0])
    bias = solver_bias(*ends)
    why = why_dropped(error, se, bias)
    log(f"  {label}: error {error:.2e} ± {1.96 * se:.1e}, solver bias ≤ {bias:.1e}"
        f"{'' if why is None else f' (dropped: {why})'}")
    return {"eta": eta, "error": error, "se": se, "bias": bias, "kept": why is None, "why": why}


def why_dropped(error: float, se: float, bias: float):
    """Why a point does not count (its 95% half-width above half its error, or the solver's bias above a third
    of it), or None where it counts.

    Args:
        error: the point's weak error.
        se: its Monte Carlo standard error.
        bias: the solver's bias at the point.

    Returns:
        The reason, or None.
    """
    if not math.isfinite(error):
        return "non-finite"
    if 1.96 * se > error / 2:
        return "Monte Carlo half-width above half the error"
    if bias > error / 3:
        return "solver bias above a third of the error"
    return None


def slope_of(points):
    """(slope, low, high) from the kept points, or NaNs with fewer than three."""
    kept = [p for p in points if p["kept"]]
    if len(kept) < 3:
        return math.nan, math.nan, math.nan
    fit = fit_order([p["eta"] for p in kept], [p["error"] for p in kept], [p["se"] for p in kept])
    return fit.slope, fit.low, fit.high


def common_slope(groups):
    """(slope, low, high) fitted to the kept points of several games at once (an intercept each); NaNs
    where fewer than three points are kept in every game."""
    kept = [[p for p in points if p["kept"]] for points in groups]
    usable = [([p["eta"] for p in k], [p["error"] for p in k]) for k in kept if len(k) >= 3]
    if not usable:
        return math.nan, math.nan, math.nan
    fit = fit_common_order(usable) if len(usable) > 1 else fit_order(*usable[0])
    return fit.slope, fit.low, fit.high


def scaling_points(sde, x0, horizon: float, ls, K: int, seed: int, log) -> list:
    """Weak error at ``horizon`` of the SVAG-style chain with each ℓ against its SDE, each SDE path driven by
    its chain run's own minibatches (``sde.coupling``) and integrated at half the chain's step (its bias
    bounded against a quarter), as ``study`` does for the SMEs.

    Args:
        sde: an SDE of an optimiser with state (``sde.momentum``).
        x0: the start.
        horizon: the time of the comparison.
        ls: the chain's parameters ℓ.
        K: the runs per ℓ.
        seed: the streams' base seed (offset by ℓ).
        log: a callable taking a line of progress.

    Returns:
        [points], one per ℓ (``coupled_point``).
    """
    points = []
    for l in ls:
        step = sde.iteration_time(l)
        chain, dw = coupled_chain(sde, round(horizon / step), x0, Streams.from_seed(seed + l, K),
                                  Streams.from_seed(seed + 100 + l, K), sga=sde.svag_trainer(l), step_time=step,
                                  record_every=10**9)
        refined = refine(dw, step, Streams.from_seed(seed + 200 + l, K))
        points.append(coupled_point(chain.states[-1], sde, sde.initial(x0), horizon, refined, sde.rate(l),
                                    f"{sde.name} ℓ={l}", log))
    return points
