"""invariant-measure: the stationary distributions of training and of its SMEs (THEORY §2, long run).

(a) Closed forms. On the bilinear game with ridge and additive noise, and on the Gaussian game
linearised at its equilibrium, the stationary covariance of each SME (continuous Lyapunov
equation) against the chain's exact one (discrete Lyapunov equation, its matrices read off the
update code): relative Frobenius error against η. THEORY §2 expects O(η) for SME-1 and SME-2 and
O(η²) for the stationary-consistent SME-2s. THEORY derives that variant for simultaneous updates;
for alternating ones the chain's one-step noise covariance has an O(η³) term Σ₃ (the first
player's noise also passes through the second player's sub-step), which SME-2s includes
(``SME.noise_propagation``): the dashed lines show it keeps O(η²) there too.

(b) Simulation. K chains of the bilinear game (simultaneous updates) from the equilibrium, run until
the covariance has settled (the linearisation's spectral radius to the power 2k below 10⁻⁴): the
sample covariance of their end states against the discrete Lyapunov solution, with the Monte Carlo
scale of that error (a bootstrap over runs), and SME-1's error at the same η for contrast.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from analysis.invariant import chain_covariance, linear_chain, relative_error, sde_covariance
from analysis.orders import fit_common_order, fit_order
from analysis.plots import new_figure, rate_axes
from games import SGA, BilinearGame, GaussianGame
from sde.sme import SME

from ..catalog import Experiment

ORDERS = ("1", "2", "2s")
UPDATES = {"sim": "sim", "alt": "alt-d"}
BOOTSTRAP = 200


def linear_games() -> dict:
    """{name: (game, x*)}: additive noise, and a nonlinear game taken at its equilibrium."""
    bilinear = BilinearGame(p=2, q=1, ridge=0.5, noise_offset=0.3, coupling=[[1.0], [0.4]], b=0.2, c=-0.1)
    gaussian = GaussianGame(mean=0.5, std=0.5, ridge=1.0)
    return {"bilinear": (bilinear, bilinear.equilibrium()), "gaussian": (gaussian, gaussian.equilibrium())}


def closed_form_errors(game, x_star, update: str, etas, batch: int) -> dict:
    """{order: [relative error of the SME's stationary covariance against the chain's, per η]}."""
    errors = {order: [] for order in ORDERS}
    for eta in etas:
        trainer = SGA(game, lr=eta, update=update, batch_size=batch)
        exact = chain_covariance(trainer, x_star)
        for order in ORDERS:
            errors[order].append(relative_error(sde_covariance(SME(trainer, order=order), x_star), exact))
    return errors


def closed_forms(report, etas, batch: int) -> None:
    """Part (a): the figure, per-game slopes, and the common slopes of the simultaneous rule."""
    games = linear_games()
    fig, axes = new_figure(1, len(games), size=(4.2, 3.4))
    simultaneous = {order: [] for order in ORDERS}
    for j, (name, (game, x_star)) in enumerate(games.items()):
        ax = axes[0, j]
        for label, update in UPDATES.items():
            errors = closed_form_errors(game, x_star, update, etas, batch)
            for k, order in enumerate(ORDERS):
                slope = fit_order(etas, errors[order]).slope
                report.key(f"slope_invariant_sme{order}_{label}_{name}", slope)
                ax.plot(etas, errors[order], "o-" if label == "sim" else "s--", color=f"C{k}", ms=4,
                        label=f"SME-{order} {label}: slope {slope:.2f}")
                if label == "sim":
                    simultaneous[order].append((etas, errors[order]))
        rate_axes(ax, etas)
        ax.set_title(f"{name}, linearised at x*", fontsize=9)
        ax.legend(fontsize=6)
    axes[0, 0].set_ylabel("relative error of the stationary covariance")
    report.figure(fig, "invariant_closed_form", "Stationary covariance of each SME against the chain's exact "
                  "(discrete Lyapunov) one, relative Frobenius error against η; solid: simultaneous, dashed: "
                  "alternating (D first)")
    for order in ORDERS:
        fit = fit_common_order(simultaneous[order])
        report.interval(f"slope_invariant_sme{order}", fit.slope, fit.low, fit.high)


def settling_steps(trainer: SGA, x_star: torch.Tensor) -> int:
    """Iterations after which the covariance from a point start is within 10⁻⁴ of stationary: ρ(M)^{2k}."""
    M, _ = linear_chain(trainer, x_star)
    radius = float(torch.linalg.eigvals(M).abs().max())
    return math.ceil(math.log(1e-4) / (2 * math.log(radius)))


def simulated_chain(report, eta: float, K: int, batch: int, seed: int) -> None:
    """Part (b): K chains against the discrete Lyapunov solution, with the Monte Carlo scale."""
    game, x_star = linear_games()["bilinear"]
    trainer = SGA(game, lr=eta, batch_size=batch)
    steps = settling_steps(trainer, x_star)
    end = trainer.run(steps, K=K, seed=seed, x0=x_star, record_every=steps).states[-1].double()
    exact = chain_covariance(trainer, x_star)
    sample = np.cov(end.numpy().T)
    generator = np.random.default_rng(seed)
    resampled = [np.cov(end.numpy()[generator.integers(0, K, K)].T) for _ in range(BOOTSTRAP)]
    scale = float(np.mean([np.linalg.norm(r - sample) for r in resampled]) / np.linalg.norm(exact))
    sme1_covariance = sde_covariance(SME(trainer, order="1"), x_star)
    sme1 = relative_error(sme1_covariance, exact)
    report.key("chain_vs_discrete_lyapunov_rel_err", relative_error(sample, exact))
    report.key("chain_vs_discrete_lyapunov_mc_scale", scale)
    report.key("sme1_vs_discrete_lyapunov_rel_err", sme1)
    report.log(f"  chain ({K} runs, {steps} steps at η = {eta:g}): relative error {relative_error(sample, exact):.3g} "
               f"(Monte Carlo scale {scale:.3g}); SME-1's closed form is off by {sme1:.3g}")
    fig, axes = new_figure(1, 1, size=(4.4, 3.4))
    entries = np.triu_indices(game.d)
    ax, labels = axes[0, 0], [f"P{i}{j}" for i, j in zip(*entries)]
    positions = np.arange(len(labels))
    ax.bar(positions - 0.25, sample[entries], 0.25, label=f"chain, {K} runs")
    ax.bar(positions, exact[entries], 0.25, label="discrete Lyapunov")
    ax.bar(positions + 0.25, sme1_covariance[entries], 0.25, label="SME-1")
    ax.set_xticks(positions, labels, fontsize=7)
    ax.legend(fontsize=7)
    report.figure(fig, "invariant_chain", f"Stationary covariance entries of the bilinear game at η = {eta:g}: "
                  "simulated chains, the exact discrete solution and SME-1's")


def run(config, report, quick: bool):
    etas = [0.08 / 2**i for i in range(4 if quick else 6)]
    batch, K = config.sga.batch_size, config.run.paths
    report.log(f"invariant-measure: closed forms at η = {', '.join(f'{e:g}' for e in etas)}; {K} chains at η = "
               f"{config.sga.lr:g}")
    closed_forms(report, etas, batch)
    simulated_chain(report, config.sga.lr, K, batch, config.run.seed)
    report.text(__doc__.split("\n", 1)[1].strip())


EXPERIMENT = Experiment(
    name="invariant-measure",
    title="Stationary distributions of training and of its SMEs",
    run=run,
    threads=1,
    defaults={"sga.lr": 0.2, "sga.batch_size": 2, "run.paths": 20_000},
    quick={"run.paths": 10_000},
)
