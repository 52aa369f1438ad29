"""svag: SVAG's curves converge to SME-1 at a fixed rate, an independent check of the SDE model.

Keys: ``slope_svag_{sim,alt}`` (the exponent in 1/l) and ``svag_error_<update>_l<l>``.
"""
from __future__ import annotations

import dataclasses

from analysis.orders import fit_order
from analysis.plots import new_figure, rate_axes
from analysis.svag import svag_errors, svag_runs
from analysis.weak_order import SOLVER, test_functions
from games.random import Streams
from sde import SME, integrate

from ..experiment import Experiment, game_preset
from .weak_order import HORIZON, UPDATES


def run(config, report, quick: bool):
    game = config.game.build()
    eta, K = config.sga.lr, config.run.paths
    ls = [2**i for i in range(4 if quick else 5)]
    x0 = game.init(1, Streams([0], dtype=config.run.torch_dtype))[0]
    report.log(f"svag: l = {ls}, η = {eta:g}, {K} runs each, T = {HORIZON:g}")
    fig, axes = new_figure(1, 1, size=(4.6, 3.6))
    ax = axes[0, 0]
    for k, (label, update) in enumerate(UPDATES.items()):
        sga = dataclasses.replace(config.sga.build(game), update=update)
        runs = svag_runs(sga, ls, round(HORIZON / eta), K=K, x0=x0, seed=config.run.seed, record_every=10**9,
                         progress=not report.quiet)
        sme = integrate(SME(sga, order="1"), x0, HORIZON, eta / 8, solver=SOLVER, K=K, seed=config.run.seed + 1,
                        record_every=10**9)
        errors = {l: e.largest() for l, e in svag_errors(runs, sme, test_functions).items()}
        fit = fit_order([1 / l for l in ls], [e for e, _ in errors.values()], [se for _, se in errors.values()])
        report.interval(f"slope_svag_{label}", fit.slope, fit.low, fit.high)
        for l, (error, se) in errors.items():
            report.key(f"svag_error_{label}_l{l}", error)
        ax.errorbar(ls, [e for e, _ in errors.values()], yerr=[1.96 * se for _, se in errors.values()], fmt="o-",
                    color=f"C{k}", ms=4, capsize=2, label=f"{label}: slope {fit.slope:.2f} [{fit.low:.2f}, {fit.high:.2f}]")
        report.log(f"  {label}: " + ", ".join(f"l={l} {e:.2e} ± {1.96 * se:.0e}" for l, (e, se) in errors.items()))
    rate_axes(ax, ls, label="SVAG's l")
    ax.set_ylabel(f"weak error against SME-1 at T = {HORIZON:g}")
    ax.legend(fontsize=7)
    report.figure(fig, "svag", f"Weak error of SVAG training against SME-1 at η = {eta:g}, against l (95% Monte "
                  "Carlo intervals); l = 1 is plain training")


EXPERIMENT = Experiment(
    name="svag",
    title="SVAG's curves converge to SME-1 at a fixed rate",
    rank=6,
    run=run,
    defaults={**game_preset("gaussian", "damped-narrow"), "sga.lr": 0.2, "sga.batch_size": 16, "run.paths": 20_000},
    quick={"run.paths": 5_000},
)
