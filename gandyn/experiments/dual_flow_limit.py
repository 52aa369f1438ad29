"""dual-flow-limit: discrete training at rate τ against its dual metric flow, versus τ (THEORY §5).

The Gaussian game and S2 particles; the error is the supremum of the distance over t ≤ T. Keys:
``slope_dual_limit`` (both systems) and ``slope_dual_limit_{gaussian,particles}``, with 95% intervals.
"""
from __future__ import annotations

import torch

from analysis.orders import fit_common_order, fit_order
from analysis.paths import distance_to_flow, generator_w2, particle_rms
from analysis.plots import new_figure, rate_axes
from flows.dual import DualFlowGame
from flows.mixtures import two_modes
from games import GaussianGame
from games.random import Streams

from ..experiment import Experiment

ALPHA = 2.0
HORIZON = 4.0


def systems(quick: bool, dtype) -> dict:
    """{name: (game, x0 [1, d], distance, largest τ relative to ``sga.lr``)}, each game played on its
    expected field (the particle game's is in closed form, faster than autograd through its losses).
    Simultaneous training of the Gaussian instance from its default start diverges at τ = sga.lr, so
    its τ start 4× lower."""
    gauss = GaussianGame(ridge=0.5)
    rng = torch.Generator().manual_seed(1)
    start = (0.3 * torch.randn(32 if quick else 128, 2, generator=rng) + torch.tensor([0.0, 1.0])).to(dtype)
    particles = DualFlowGame(two_modes(200 if quick else 800, dtype), positions=start, critic="rff",
                             n_features=32 if quick else 64, bandwidth=1.0, loss="wgan", ridge=0.5)
    streams = Streams([0], dtype=dtype)
    return {"gaussian": (gauss, gauss.init(1, streams), generator_w2(gauss), 0.25),
            "particles": (particles, particles.init(1, streams), particle_rms(particles), 1.0)}


def run(config, report, quick: bool):
    dtype = config.run.torch_dtype
    halvings = 4 if quick else 5
    report.log(f"dual-flow-limit: {halvings} rates halving from τ = {config.sga.lr:g}, α = {ALPHA}, T = {HORIZON}")
    fig, axes = new_figure(1, 3, size=(3.8, 3.2))
    groups, table, all_taus = [], [], set()
    for j, (name, (game, x0, distance, relative)) in enumerate(systems(quick, dtype).items()):
        taus, errors = [relative * config.sga.lr / 2**i for i in range(halvings)], []
        for tau in taus:
            times, dist = distance_to_flow(game, x0, distance, tau, HORIZON, ALPHA)
            errors.append(float(dist.max()) if times[-1] >= HORIZON - tau / 2 else float("nan"))
            axes[0, j + 1].plot(times, dist, lw=1, label=f"τ = {tau:g}")
            table.append(f"| {name} | {tau:g} | {errors[-1]:.3e} |")
        report.log(f"  {name}: " + ", ".join(f"τ={t:g} {e:.2e}" for t, e in zip(taus, errors)))
        if any(e != e for e in errors):
            raise RuntimeError(f"dual-flow-limit: training of {name} diverged before T at τ = "
                               f"{', '.join(f'{t:g}' for t, e in zip(taus, errors) if e != e)}; lower sga.lr")
        fit = fit_order(taus, errors)
        report.interval(f"slope_dual_limit_{name}", fit.slope, fit.low, fit.high)
        groups.append((taus, errors))
        axes[0, 0].plot(taus, errors, "o-", ms=4, label=f"{name}: slope {fit.slope:.2f}")
        all_taus.update(taus)
        axes[0, j + 1].set_title(f"{name}: distance to the flow", fontsize=9)
        axes[0, j + 1].set_xlabel("t")
        axes[0, j + 1].legend(fontsize=7)
    common = fit_common_order(groups)
    report.interval("slope_dual_limit", common.slope, common.low, common.high)
    rate_axes(axes[0, 0], sorted(all_taus), "τ")
    axes[0, 0].set_ylabel(f"sup over t ≤ {HORIZON:g} of the distance")
    axes[0, 0].legend(fontsize=7)
    report.figure(fig, "dual_flow_limit", "Discrete training at rate τ against its dual flow: the supremum of "
                  "the distance over t ≤ T (left) and the distance over time (middle, right)")
    report.text(f"α = {ALPHA}, T = {HORIZON}.\n\n| system | τ | sup error |\n"
                "|---|---|---|\n" + "\n".join(table))


EXPERIMENT = Experiment(
    name="dual-flow-limit",
    title="Discrete training against its dual metric flow",
    rank=7,
    run=run,
    threads=1,
    defaults={"sga.lr": 0.04},
)
