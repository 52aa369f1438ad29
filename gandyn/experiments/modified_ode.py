"""modified-ode: gradient descent against its gradient flow and its modified equation, versus η.

Keys: ``slope_{flow,modified}_{sim,alt}`` over the three systems and ``slope_{flow,modified}_{sim,alt}_<system>``,
with 95% intervals.
"""
from __future__ import annotations

import torch

from analysis.modified import global_errors
from analysis.orders import fit_common_order, fit_order
from analysis.plots import new_figure, rate_axes
from games import SGA, BilinearGame, DiracGAN, GaussianGame, Player

from ..experiment import Experiment

UPDATES = {"sim": dict(update="sim"), "alt": dict(update="alt-d")}
SCALES = dict(gen=Player(scale=1.0), disc=Player(scale=0.5))  # c_θ ≠ c_ω


def systems(dtype):
    """{name: (game, initial conditions [K, d], horizon T, largest η relative to ``sga.lr``)}: the
    Gaussian game's largest η is halved, as at sga.lr its simultaneous GD is not yet asymptotic."""
    t = lambda rows: torch.tensor(rows, dtype=dtype)  # noqa: E731
    return {
        "dirac": (DiracGAN(gamma=0.5), t([[1.0, 1.0], [-0.5, 0.8], [0.3, -1.0]]), 4.0, 1.0),
        "gaussian": (GaussianGame(mean=1.0, ridge=1.0), t([[0.5, 0.8, 0.0, 0.0], [1.5, 1.2, 0.2, -0.2]]), 2.0, 0.5),
        "rotation": (BilinearGame(coupling=[[-1.0]], ridge=0.1, noise_offset=0.0), t([[1.0, 0.0], [0.3, -0.8]]), 4.0,
                     1.0),
    }


def run(config, report, quick: bool):
    dtype = config.run.torch_dtype
    halvings = 4 if quick else 6
    report.log(f"modified-ode: {halvings} rates, halving from η = {config.sga.lr:g}")
    cases = systems(dtype)
    fig, axes = new_figure(1, len(cases), size=(3.8, 3.2))
    table, pooled = [], {}
    for j, (system, (game, x0, horizon, relative)) in enumerate(cases.items()):
        ax, etas = axes[0, j], [relative * config.sga.lr / 2**i for i in range(halvings)]
        for label, update in UPDATES.items():
            rows = [global_errors(SGA(game, lr=eta, **update, **SCALES), x0, horizon) for eta in etas]
            for name, style in (("flow", "o-"), ("modified", "s--")):
                errors = [r[name] for r in rows]
                pooled.setdefault((name, label), []).append((etas, errors))
                fit = fit_order(etas, errors)
                report.interval(f"slope_{name}_{label}_{system}", fit.slope, fit.low, fit.high)
                ax.plot(etas, errors, style, ms=4, label=f"{label} vs {name}: {fit.slope:.2f}")
                table += [f"| {system} | {label} | {name} | {eta:g} | {e:.3e} |" for eta, e in zip(etas, errors)]
            report.log(f"  {system} {label}: " + ", ".join(f"η={e:g} flow {r['flow']:.2e} modified "
                                                          f"{r['modified']:.2e}" for e, r in zip(etas, rows)))
        rate_axes(ax, etas[::-1])
        ax.set_title(f"{system} (T = {horizon:g})", fontsize=9)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("sup over t ≤ T of |GD − flow|")
    for (name, label), groups in pooled.items():
        common = fit_common_order(groups)
        report.interval(f"slope_{name}_{label}", common.slope, common.low, common.high)
    report.figure(fig, "modified_ode", "Global error of gradient descent against its gradient flow (circles) "
                  "and its modified equation (squares), simultaneous and alternating updates, c_ω = c_θ/2")
    report.text("| system | update | flow | η | error |\n|---|---|---|---|---|\n"
                + "\n".join(table))


EXPERIMENT = Experiment(
    name="modified-ode",
    title="Gradient descent against its gradient flow and its modified equation",
    rank=2,
    run=run,
    threads=1,
    defaults={"sga.lr": 0.1},
)
