"""weak-order: the weak error of the SMEs against discrete training, versus the learning rate η.

On the configured game (the Gaussian game by default) and on Dirac-GAN with instance noise σ = 0.5
and R1 γ = 1 (WGAN loss, whose noise is linear in the instance noise), for each η (halving), K runs
of the chain and K paths of each SME start from the same point and are compared at the horizon T
through test functions φ: first moments x_i, second moments x_i² and the bounded smooth cos(x_i). The weak error is max_φ |E φ(x_{T/η}) − E φ(X_T)| (THEORY §2: O(η)
for SME-1, O(η²) for SME-2 and SME-2s). Each SDE path is driven by its chain run's own minibatches
(``sde.coupling``: exact Brownian increments, so each side keeps its law), which makes the paired
differences φ(x) − φ(X) small and their Monte Carlo error with them. The SDEs are integrated by
Platen's weak order-2 scheme at dt = η/2; its own bias is bounded by the difference to dt = η/4 on
the same (bridged) Brownian paths. A point counts only where the 95% Monte Carlo half-width is at
most half the error and the solver bias at most a third of it; otherwise it is drawn hollow and the
report says why. Slopes are weighted least-squares fits of log error on log η, with 95% intervals
(Birge-scaled).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from analysis import compare
from analysis.orders import fit_order
from analysis.plots import new_figure, rate_axes
from games import SGA, DiracGAN
from games.random import Streams
from sde import SME, bridge, coupled_chain, integrate

from ..experiment import Experiment, game_preset

HORIZON = 2.0
UPDATES = {"sim": "sim", "alt": "alt-d"}
SOLVER = "platen2"
DIRAC = DiracGAN.preset("noisy-r1")


def test_functions(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = (x, x², cos x) [K, 3d]: first and second moments and a bounded smooth function."""
    return torch.cat([x, x**2, torch.cos(x)], dim=-1)


def weak_error(chain: torch.Tensor, sde: torch.Tensor):
    """(max_φ |E φ(chain) − E φ(sde)|, its standard error) from the paired differences of coupled paths."""
    return compare.weak_error(chain, sde, test_functions, paired=True).largest()


def solver_bias(coarse: torch.Tensor, fine: torch.Tensor) -> float:
    """max_φ |E φ(X^{dt}) − E φ(X^{dt/2})| on shared Brownian paths, plus twice the standard error of
    that paired difference: a bound on the solver's bias at dt."""
    diff = compare.weak_error(coarse, fine, test_functions, paired=True)
    return (diff.value.abs() + 2 * diff.se).max().item()


def study(game, x0, update: str, orders, etas, K: int, batch: int, seed: int, log):
    """{order: [per-η dicts with error, se, bias, kept, why]} for one update rule."""
    rows = {order: [] for order in orders}
    for eta in etas:
        smes = {order: SME(SGA(game, lr=eta, update=update, batch_size=batch), order=order) for order in orders}
        steps = round(HORIZON / eta)
        widest = max(smes.values(), key=lambda sme: sme.m)  # SME-2s: the factor's columns and d more
        chain, coupled = coupled_chain(widest, steps, x0, Streams.from_seed(seed, K), Streams.from_seed(seed + 1, K),
                                       record_every=10**9)
        chain, refined = chain.states[-1], refine(coupled, eta, Streams.from_seed(seed + 2, K))
        for order, sme in smes.items():  # each order takes its first m columns
            rows[order].append(coupled_point(chain, sme, x0, HORIZON, refined, eta, f"{update} η={eta:g} SME-{order}",
                                             log))
    return rows


def refine(coupled: torch.Tensor, step: float, bridges: Streams) -> dict:
    """{dt: increments} at dt = step/2 and step/4, the chain's increments split by Brownian bridges."""
    half = bridge(coupled, step, bridges)
    return {step / 2: half, step / 4: bridge(half, step / 2, bridges)}


def coupled_point(chain: torch.Tensor, sde, start, horizon: float, refined: dict, eta: float, label: str, log) -> dict:
    """One point of a weak-order study: the chain's end states [K, d] against ``sde`` from ``start`` driven by
    the ``refined`` increments (its first m columns) at the finer steps, compared on the chain's d
    coordinates: error, standard error, the solver's bias (the two steps' difference) and whether it
    counts."""
    ends = [integrate(sde, start, horizon, dt, solver=SOLVER, increments=inc[..., : sde.m],
                      record_every=10**9).states[-1][:, : chain.shape[-1]] for dt, inc in refined.items()]
    error, se = weak_error(chain, ends[0])
    bias = solver_bias(*ends)
    why = _why_dropped(error, se, bias)
    log(f"  {label}: error {error:.2e} ± {1.96 * se:.1e}, solver bias ≤ {bias:.1e}"
        f"{'' if why is None else f' (dropped: {why})'}")
    return {"eta": eta, "error": error, "se": se, "bias": bias, "kept": why is None, "why": why}


def _why_dropped(error: float, se: float, bias: float):
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


def draw(ax, points, label, color):
    etas = np.array([p["eta"] for p in points])
    err = np.array([p["error"] for p in points])
    half = 1.96 * np.array([p["se"] for p in points])
    kept = np.array([p["kept"] for p in points])
    ax.errorbar(etas[kept], err[kept], yerr=np.minimum(half[kept], 0.99 * err[kept]), fmt="o-", color=color,
                label=label, ms=4, capsize=2)
    ax.plot(etas[~kept], err[~kept], "o", mfc="none", color=color, ms=5)
    ax.plot(etas, [p["bias"] for p in points], "x:", color=color, ms=4, lw=0.8)


def run(config, report, quick: bool):
    games = (config.game.build(), DIRAC)
    etas = [config.sga.lr / 2**i for i in range(4 if quick else 5)]
    orders = ("1", "2") if quick else ("1", "2", "2s")
    K, batch, seed = config.run.paths, config.sga.batch_size, config.run.seed
    report.log(f"weak-order: {K} paths per point, η = {', '.join(f'{e:g}' for e in etas)}, T = {HORIZON}")
    fig, axes = new_figure(len(games), len(UPDATES), size=(4.2, 3.4))
    colors = {"1": "C0", "2": "C1", "2s": "C2"}
    table = []
    for i, game in enumerate(games):
        x0 = game.init(1, Streams([0], dtype=config.run.torch_dtype))[0]
        for j, (label, update) in enumerate(UPDATES.items()):
            rows = study(game, x0, update, orders, etas, K, batch, seed, report.log)
            ax = axes[i, j]
            for order, points in rows.items():
                slope, low, high = slope_of(points)
                report.interval(f"slope_sme{order}_{label}_{game.name}", slope, low, high)
                draw(ax, points, f"SME-{order}: slope {slope:.2f} [{low:.2f}, {high:.2f}]", colors[order])
                table += [f"| {game.name} | {label} | SME-{order} | {p['eta']:g} | {p['error']:.3e} | "
                          f"{1.96 * p['se']:.1e} | {p['bias']:.1e} | {'yes' if p['kept'] else p['why']} |"
                          for p in points]
            rate_axes(ax, etas)
            ax.set_title(f"{game.name}, {label} updates", fontsize=9)
            ax.legend(fontsize=7)
        axes[i, 0].set_ylabel("weak error at T = 2")
    report.figure(fig, "weak_order", "Weak error against η: points with 95% Monte Carlo intervals "
                  "(hollow: dropped), crosses: bound on the solver's bias at dt = η/2")
    report.key("paths", K)
    report.text(__doc__.split("\n", 1)[1].strip() + "\n\nGames: "
                + "; ".join(str(game.describe()) for game in games) + f", batch {batch}.\n\n"
                "| game | update | SDE | η | weak error | 95% MC | solver bias | kept |\n|---|---|---|---|---|---|---|---|\n"
                + "\n".join(table))


EXPERIMENT = Experiment(
    name="weak-order",
    title="Weak order of the stochastic modified equations",
    rank=3,
    run=run,
    defaults={**game_preset("gaussian", "damped-narrow"), "sga.lr": 0.2, "sga.batch_size": 64, "run.paths": 20_000},
    quick={"run.paths": 3_000},
)
