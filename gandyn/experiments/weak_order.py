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

from analysis.plots import new_figure, rate_axes, weak_order_points
from analysis.weak_order import slope_of, study
from games import DiracGAN
from games.random import Streams

from ..experiment import Experiment, game_preset

HORIZON = 2.0
UPDATES = {"sim": "sim", "alt": "alt-d"}
DIRAC = DiracGAN.preset("noisy-r1")


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
            rows = study(game, x0, update, orders, etas, K, batch, seed, report.log, HORIZON)
            ax = axes[i, j]
            for order, points in rows.items():
                slope, low, high = slope_of(points)
                report.interval(f"slope_sme{order}_{label}_{game.name}", slope, low, high)
                weak_order_points(ax, points, f"SME-{order}: slope {slope:.2f} [{low:.2f}, {high:.2f}]", colors[order])
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
