"""invariant-measure: the stationary distributions of training and of its SMEs (THEORY §2, long run).

Keys: ``slope_invariant_sme<order>[_<update>_<game>]`` of the closed forms, ``chain_vs_discrete_lyapunov_*`` of
simulated chains, ``stationary_{cov_err,sw2}_<sme or mc>_<η>`` on the nonlinear Gaussian game.
"""
from __future__ import annotations

import numpy as np

from analysis.invariant import (chain_covariance, closed_form_errors, law_distances, relative_error,
                                sample_covariance, sde_covariance, settling_steps)
from analysis.orders import fit_common_order, fit_order
from analysis.plots import new_figure, rate_axes
from analysis.stationary import stationary_window
from games import SGA, BilinearGame, GaussianGame
from sde import integrate
from sde.sme import SME

from ..experiment import Experiment

ORDERS = ("1", "2", "2s")
UPDATES = {"sim": "sim", "alt": "alt-d"}
BOOTSTRAP = 200


def linear_games() -> dict:
    """{name: (game, x*)}: additive noise, and a nonlinear game taken at its equilibrium."""
    bilinear, gaussian = BilinearGame.preset("rectangular"), GaussianGame.preset("damped")
    return {"bilinear": (bilinear, bilinear.equilibrium()), "gaussian": (gaussian, gaussian.equilibrium())}


def closed_forms(report, etas, batch: int) -> None:
    """Part (a): the figure, per-game slopes, and the common slopes of the simultaneous rule."""
    games = linear_games()
    fig, axes = new_figure(1, len(games), size=(4.2, 3.4))
    simultaneous = {order: [] for order in ORDERS}
    for j, (name, (game, x_star)) in enumerate(games.items()):
        ax = axes[0, j]
        for label, update in UPDATES.items():
            errors = closed_form_errors(game, x_star, update, etas, batch, ORDERS)
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


def simulated_chain(report, eta: float, K: int, batch: int, seed: int) -> None:
    """Part (b): K chains against the discrete Lyapunov solution, with the Monte Carlo scale."""
    game, x_star = linear_games()["bilinear"]
    trainer = SGA(game, lr=eta, batch_size=batch)
    steps = settling_steps(trainer, x_star)
    end = trainer.run(steps, K=K, seed=seed, x0=x_star, record_every=steps).states[-1].double()
    exact = chain_covariance(trainer, x_star)
    sample, scale = sample_covariance(end, exact, BOOTSTRAP, seed)
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


SIMULATED_HORIZON = 15.0  # about seven relaxation times of the Gaussian game's linearisation
MARGINALS = {1: "σ", 3: "b"}  # the coordinates whose stationary marginals are drawn


def stationary_laws(eta: float, K: int, batch: int, seed: int, log) -> dict:
    """{"chain" or order: pooled stationary samples [N, d]} on the Gaussian game at rate η."""
    game, x_star = linear_games()["gaussian"]
    trainer = SGA(game, lr=eta, batch_size=batch)
    every = max(1, round(0.5 / eta))
    chain = trainer.run(round(SIMULATED_HORIZON / eta), K=K, x0=x_star, seed=seed, record_every=every)
    laws = {"chain": stationary_window(chain, lambda line: log(f"  chain at η = {eta:g}: {line}"))}
    for order in ORDERS:
        sde = integrate(SME(trainer, order=order), x_star, SIMULATED_HORIZON, eta / 2, solver="platen2", K=K,
                        seed=seed + 1, record_every=2 * every)
        laws[order] = stationary_window(sde, lambda line: log(f"  SME-{order} at η = {eta:g}: {line}"))
    return laws


def simulated_game(report, etas, K: int, batch: int, seed: int) -> None:
    """Part (c): the figure of marginals and distances, keys per rate."""
    fig, axes = new_figure(1, len(MARGINALS) * len(etas) + 1, size=(3.0, 3.0))
    distances = {}
    for i, eta in enumerate(etas):
        laws = stationary_laws(eta, K, batch, seed + 10 * i, report.log)
        distances[eta] = law_distances(laws, ORDERS)
        for name, (cov_err, sw2) in distances[eta].items():
            label = "mc" if name == "mc" else f"sme{name}"
            report.key(f"stationary_cov_err_{label}_{eta:g}", cov_err)
            report.key(f"stationary_sw2_{label}_{eta:g}", sw2)
        for j, (coordinate, symbol) in enumerate(MARGINALS.items()):
            ax = axes[0, len(MARGINALS) * i + j]
            shown = np.quantile(laws["chain"][:, coordinate].numpy(), [0.001, 0.999])  # tails clipped
            for k, (name, samples) in enumerate(laws.items()):
                ax.hist(samples[:, coordinate].numpy(), bins=60, range=tuple(shown), density=True, histtype="step",
                        color="k" if name == "chain" else f"C{k - 1}", label=name if name == "chain" else f"SME-{name}")
            ax.set_title(f"{symbol} at η = {eta:g}", fontsize=9)
            ax.set_yticks([])
    axes[0, 0].legend(fontsize=6)
    ax = axes[0, -1]
    for k, name in enumerate(ORDERS):
        ax.plot(etas, [distances[eta][name][0] for eta in etas], "o-", color=f"C{k}", ms=4, label=f"SME-{name}")
    ax.plot(etas, [distances[eta]["mc"][0] for eta in etas], "k:", label="Monte Carlo scale")
    rate_axes(ax, etas)
    ax.set_title("covariance, relative error", fontsize=9)
    ax.legend(fontsize=6)
    report.figure(fig, "invariant_simulated", "Gaussian game: stationary marginals of the chain and of each SME "
                  f"({K} runs each, pooled over the stationary window), and the relative error of each SME's "
                  "stationary covariance against the chain's")
    for eta in etas:
        report.log(f"  η = {eta:g}: covariance errors " + ", ".join(
            f"SME-{o} {distances[eta][o][0]:.3f}" for o in ORDERS) + f" (Monte Carlo {distances[eta]['mc'][0]:.3f})")


def run(config, report, quick: bool):
    etas = [0.08 / 2**i for i in range(4 if quick else 6)]
    batch, K = config.sga.batch_size, config.run.paths
    report.log(f"invariant-measure: closed forms at η = {', '.join(f'{e:g}' for e in etas)}; {K} chains at η = "
               f"{config.sga.lr:g}")
    closed_forms(report, etas, batch)
    simulated_chain(report, config.sga.lr, K, batch, config.run.seed)
    simulated_game(report, [0.1, 0.05] if quick else [0.1, 0.05, 0.025], K // 10, batch, config.run.seed)


EXPERIMENT = Experiment(
    name="invariant-measure",
    title="Stationary distributions of training and of its SMEs",
    rank=4,
    run=run,
    threads=1,
    defaults={"sga.lr": 0.2, "sga.batch_size": 2, "run.paths": 20_000},
    quick={"run.paths": 10_000},
)
