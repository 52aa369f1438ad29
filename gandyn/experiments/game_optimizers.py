"""game-optimizers: update rules beyond GDA against their SMEs, their modified flows and their spectra.

Keys per rule: ``slope_sme{1,2}_<rule>[_<game>]``, ``slope_{flow,modified}_<rule>``; ``eigen_max_abs_error`` of the
spectra against their closed forms; ``slope_sde_{heavy_ball,adam}`` of the optimisers with state.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import torch

from analysis.linearisation import eigenvalues, max_eigen_difference, spectral_radius
from analysis.modified import global_errors
from analysis.orders import fit_common_order
from analysis.plots import new_figure, rate_axes, weak_order_points
from analysis.weak_order import common_slope, scaling_points, slope_of, study
from games.linearisation import update_map_jacobian
from games import SGA, BilinearGame, DiracGAN, Player
from games.optim import Adam, HeavyBall
from games.oracle import Mean
from games.random import Streams
from games.rules import Consensus, Extragradient, Hamiltonian, Lookahead, Optimistic, Simultaneous, Symplectic
from sde.momentum import AdamSME, HeavyBallSME

from ..experiment import Experiment
from . import weak_order

RULES = {"eg": Extragradient(), "hgd": Hamiltonian(), "consensus": Consensus(gamma=0.5),
         "symplectic": Symplectic(lam=1.0), "ogda": Optimistic(), "lookahead": Lookahead(Simultaneous(), k=5, alpha=0.5)}
RELATIVE_ETA = {"lookahead": 0.25}  # lookahead moves αk = 2.5 times as far per iteration: its η start lower
BILINEAR = BilinearGame(coupling=[[1.0]], ridge=0.2, b=0.3, c=-0.2, noise_offset=0.5, x0=1.0)
NOISY_GAMES = {"bilinear": BILINEAR, "dirac": weak_order.DIRAC}
FLOW_GAMES = {"bilinear": (BilinearGame(coupling=[[1.0]], ridge=0.2, b=0.3, c=-0.2, noise_offset=0.0), [[1.0, 1.0]]),
              "dirac": (DiracGAN(gamma=0.5), [[1.0, 1.0], [-0.5, 0.8]])}
FLOW_HORIZON = 4.0
SPECTRUM_GAME = dict(coupling=[[1.0]], noise_offset=0.0)  # L = θω (+ the ridge of the map for hgd, ogda)
PARAMETERS = {"eg": ("rho", "ρ/η", (0.1, 2.0)), "consensus": ("gamma", "γ", (0.0, 2.0)),
              "symplectic": ("lam", "λ", (0.0, 2.0)), "lookahead": ("alpha", "α", (0.05, 1.0)),
              "hgd": (None, "ridge λ", (0.0, 1.0)), "ogda": (None, "ridge λ", (0.0, 1.0))}
BILINEAR_MOMENTUM = BilinearGame(coupling=[[1.0]], ridge=0.5, b=0.3, noise_offset=1.0, x0=1.0)
BILINEAR_ADAM = BilinearGame(coupling=[[1.0]], ridge=0.5, b=0.3, noise_offset=4.0, x0=0.5)  # noise-dominated, as
# Adam's SDE needs (the gradient's square is small beside its variance)


def rates(config, rule: str, quick: bool, quick_count: int = 4) -> list:
    """The learning rates of a convergence study: from sga.lr (lower for lookahead), ``quick_count`` falling by
    about √2 (--quick, a cheaper range) or five halving, each dividing the horizon T = 2 (and so 4) into whole steps."""
    ratio, count = (math.sqrt(2), quick_count) if quick else (2.0, 5)
    steps = weak_order.HORIZON / (RELATIVE_ETA.get(rule, 1.0) * config.sga.lr)
    return [weak_order.HORIZON / round(steps * ratio**i) for i in range(count)]


# -- SMEs -----------------------------------------------------------------------------------------------
def sme_study(config, quick: bool, report) -> dict:
    """{(rule, game): weak-order rows {order: [points]}}, as ``analysis.weak_order.study`` gives them."""
    K, batch, seed = config.run.paths, config.sga.batch_size, config.run.seed
    rows = {}
    for name, rule in RULES.items():
        etas = rates(config, name, quick)
        for label, game in NOISY_GAMES.items():
            x0 = game.init(1, Streams([0], dtype=config.run.torch_dtype))[0]
            rows[name, label] = study(game, x0, rule, ("1", "2"), etas, K, batch, seed, report.log, weak_order.HORIZON)
    return rows


def report_smes(rows, report) -> None:
    fig, axes = new_figure(2, 3, size=(3.6, 3.0))
    for i, name in enumerate(RULES):
        ax, slopes = axes[i // 3, i % 3], []
        for order in ("1", "2"):
            slope, low, high = common_slope([rows[name, label][order] for label in NOISY_GAMES])
            report.interval(f"slope_sme{order}_{name}", slope, low, high)
            slopes.append(f"SME-{order} {slope:.2f}")
            for j, label in enumerate(NOISY_GAMES):
                points = rows[name, label][order]
                report.interval(f"slope_sme{order}_{name}_{label}", *slope_of(points))
                weak_order_points(ax, points, f"SME-{order}, {label}", f"C{2 * (order == '2') + j}")
        _finish(ax, name, slopes, [p["eta"] for p in rows[name, "bilinear"]["1"]])
    for ax in axes[:, 0]:
        ax.set_ylabel(f"weak error at T = {weak_order.HORIZON:g}")
    report.figure(fig, "game_optimizers_sme", "Weak error of each rule's SME-1 and SME-2 against its chain, on the "
                  "bilinear game and Dirac-GAN, with 95% Monte Carlo intervals (hollow: dropped), crosses: bound "
                  "on the solver's bias; the slopes in the titles fit both games")


def _finish(ax, rule: str, slopes: list, etas) -> None:
    """A rule's panel of a convergence study: log–log axes on its rates, its slopes in the title."""
    rate_axes(ax, sorted(etas))
    ax.set_title(f"{rule}: slopes {', '.join(slopes)}", fontsize=9)
    ax.legend(fontsize=6)


# -- modified flows ----------------------------------------------------------------------------------------
def flow_study(config, quick: bool) -> dict:
    """{(rule, game): {"etas", "flow", "modified"}}: sup_t |x_k − X(kη)| of full-batch training against the
    gradient flow and the modified flow, the largest over the initial conditions. The errors are deterministic,
    so that --quick fits their orders on the three largest rates (the smallest costs the most steps)."""
    out = {}
    for name, rule in RULES.items():
        for label, (game, starts) in FLOW_GAMES.items():
            x0 = torch.tensor(starts, dtype=config.run.torch_dtype)
            etas = rates(config, name, quick, quick_count=3)
            rows = [global_errors(SGA(game, lr=eta, update=rule), x0, FLOW_HORIZON) for eta in etas]
            out[name, label] = {"etas": etas, **{key: [r[key] for r in rows] for key in ("flow", "modified")}}
    return out


def report_flows(results, report) -> None:
    fig, axes = new_figure(2, 3, size=(3.6, 3.0))
    for i, name in enumerate(RULES):
        ax, slopes = axes[i // 3, i % 3], []
        for key, marker in (("flow", "o-"), ("modified", "s--")):
            groups = [(results[name, label]["etas"], results[name, label][key]) for label in FLOW_GAMES]
            fit = fit_common_order(groups)
            report.interval(f"slope_{key}_{name}", fit.slope, fit.low, fit.high)
            slopes.append(f"{key} {fit.slope:.2f}")
            for j, (label, (etas, errors)) in enumerate(zip(FLOW_GAMES, groups)):
                ax.plot(etas, errors, marker, ms=3, color=f"C{2 * (key == 'modified') + j}", label=f"{key}, {label}")
        _finish(ax, name, slopes, results[name, "bilinear"]["etas"])
    for ax in axes[:, 0]:
        ax.set_ylabel(f"sup over t ≤ {FLOW_HORIZON:g} of the error")
    report.figure(fig, "game_optimizers_flows", "Full-batch training by each rule against its gradient flow "
                  "(circles) and its modified flow (squares): global error against η on the bilinear game "
                  "and Dirac-GAN with R1; the slopes in the titles fit both games")


# -- spectra -------------------------------------------------------------------------------------------------
def spectrum_study(quick: bool) -> dict:
    """{rule: (etas, parameters, radius [P, E], largest eigenvalue difference)} over the grid."""
    n = 10 if quick else 24
    etas = np.linspace(0.05, 1.5, n)
    out = {}
    for name, rule in RULES.items():
        option, _, (low, high) = PARAMETERS[name]
        values = np.linspace(low, high, n)
        radius, worst = np.zeros((n, n)), 0.0
        for i, value in enumerate(values):
            game = BilinearGame(ridge=0.0 if option else float(value), **SPECTRUM_GAME)
            varied = replace(rule, **{option: float(value)}) if option else rule
            for j, eta in enumerate(etas):
                sga = SGA(game, lr=float(eta), update=varied)
                auto = eigenvalues(update_map_jacobian(sga, game.equilibrium(), oracle=Mean(game)))
                exact = game.one_step_eigenvalues(sga.rule, float(eta))
                worst = max(worst, max_eigen_difference(auto, exact))
                radius[i, j] = spectral_radius(auto)
        out[name] = (etas, values, radius, worst)
    return out


def report_spectra(results, report) -> None:
    fig, axes = new_figure(2, 3, size=(3.6, 3.0))
    for i, (name, (etas, values, radius, worst)) in enumerate(results.items()):
        ax = axes[i // 3, i % 3]
        mesh = ax.pcolormesh(etas, values, np.log10(radius), cmap="RdBu_r", vmin=-1, vmax=1, shading="auto")
        ax.contour(etas, values, radius, levels=[1.0], colors="k", linewidths=1)
        ax.set_xlabel("η")
        ax.set_ylabel(PARAMETERS[name][1])
        ax.set_title(f"{name}: log₁₀ spectral radius", fontsize=9)
        fig.colorbar(mesh, ax=ax)
    worst = max(r[3] for r in results.values())
    report.key("eigen_max_abs_error", worst)
    report.figure(fig, "game_optimizers_spectra", "Spectral radius of each rule's one-step map at the equilibrium "
                  "of L = θω, by autograd through the update code (blue: converges; the black line is radius 1); "
                  f"largest difference to the closed forms over the grid {worst:.1e}")


# -- optimisers with state ------------------------------------------------------------------------------
def scaling_study(config, quick: bool, report) -> dict:
    """{name: points}: heavy ball (h = 0.2, γ = 1, T = 2) and Adam (η = 0.2, β = (0.9, 0.99), ε = 10⁻³, T = 1)
    on the bilinear game, the chains with ℓ = 1, 2, 4(, 8) against their SDEs."""
    K = 4_000 if quick else 16_000
    h, gamma = 0.2, 1.0
    heavy = HeavyBallSME(SGA(BILINEAR_MOMENTUM, lr=gamma * h * h, batch_size=1,
                             gen=Player(HeavyBall(1 - gamma * h)), disc=Player(HeavyBall(1 - gamma * h))))
    adam = AdamSME(SGA(BILINEAR_ADAM, lr=0.2, batch_size=1, gen=Player(Adam(0.9, 0.99, 1e-3)),
                       disc=Player(Adam(0.9, 0.99, 1e-3))))
    cases = {"heavy_ball": (heavy, BILINEAR_MOMENTUM, 2.0, [1, 2, 4, 8]),
             "adam": (adam, BILINEAR_ADAM, 1.0, [1, 2, 4])}
    out = {}
    for name, (sde, game, horizon, ls) in cases.items():
        x0 = game.init(1, Streams([0], dtype=config.run.torch_dtype))[0]
        out[name] = scaling_points(sde, x0, horizon, ls, K, config.run.seed, report.log)
    return out


def report_scaling(results, report) -> None:
    fig, axes = new_figure(1, 2, size=(3.8, 3.2))
    for ax, (name, points) in zip(axes[0], results.items()):
        slope, low, high = slope_of(points)
        report.interval(f"slope_sde_{name}", slope, low, high)
        weak_order_points(ax, points, f"slope {slope:.2f} [{low:.2f}, {high:.2f}]", "C0")
        rate_axes(ax, [p["eta"] for p in points][::-1], "h/ℓ" if name == "heavy_ball" else "η/ℓ")
        ax.set_title(f"{name.replace('_', ' ')}: chain against its SDE", fontsize=9)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("weak error at the horizon")
    report.figure(fig, "game_optimizers_scaling", "SVAG-style checks of the SDEs of optimisers with state: the "
                  "chain with parameter ℓ against the SDE (coupled paths), weak error with 95% Monte Carlo "
                  "intervals (hollow: dropped), crosses: bound on the solver's bias")


def run(config, report, quick: bool):
    report.log(f"game-optimizers: {len(RULES)} rules, {config.run.paths} paths, η from {config.sga.lr:g}")
    start = time.perf_counter()
    for part, show in ((lambda: sme_study(config, quick, report), report_smes),
                        (lambda: flow_study(config, quick), report_flows), (lambda: spectrum_study(quick), report_spectra),
                        (lambda: scaling_study(config, quick, report), report_scaling)):
        show(part(), report)
        report.log(f"  ({time.perf_counter() - start:.0f} s)")
    report.key("paths", config.run.paths)


EXPERIMENT = Experiment(
    name="game-optimizers",
    title="Update rules beyond GDA: their SMEs, modified flows and spectra, read off their code",
    rank=12,
    run=run,
    threads=1,
    defaults={"sga.lr": 0.2, "sga.batch_size": 16, "run.paths": 6_000},
    quick={"run.paths": 1_500},
    gallery="game_optimizers_spectra",
)
