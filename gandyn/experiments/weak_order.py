"""weak-order: the weak error of the SMEs against discrete training, versus the learning rate η.

Keys: ``slope_sme<order>_<update>_<game>`` with 95% intervals, from the points that count.
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
    report.text("Games: "
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
