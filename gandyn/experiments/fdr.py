"""fdr: fluctuation–dissipation relations of training, per player (THEORY §4).

Keys: ``fdr_ratio_<player>[_alt]`` over the second half of the run, ``stationary_from_<player>_<rule>``, and
``tradeoff_ratio`` of the terms of E_μ[𝓛φ] = 0 under SME-1's invariant measure for φ = L_G.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from analysis.fdr import balance, expected_loss, fdr_ratio, generator_terms, squared_distance, stationary_from
from analysis.plots import fdr_panel, new_figure
from games.base import PLAYERS

from ..experiment import Experiment, game_preset

UPDATES = {"sim": "sim", "alt": "alt-d"}
TOLERANCE = 0.05  # the stationarity test's band around 1
SDE_HORIZON = 10.0  # five relaxation times of the default game's linearisation
SDE_WINDOW = 6  # records of the SDE's stationary window (one per time unit)


def discrete(config, report, sga) -> dict:
    """{rule: Trajectory} of K runs under each update rule."""
    runs = {}
    for label, update in UPDATES.items():
        trainer = dataclasses.replace(sga, update=update)
        runs[label] = trainer.run(config.sga.steps, K=config.run.paths, seed=config.run.seed,
                                  record_every=1, device=config.run.device, dtype=config.run.torch_dtype,
                                  progress=not report.quiet)
        report.trajectory(runs[label].runs(slice(0, 16)), f"sga_{label}")
    return runs


def ratio_keys(report, runs: dict) -> None:
    """The ratios over the second half and the first time the stationarity test passes."""
    for label, traj in runs.items():
        for who in PLAYERS:
            estimate = fdr_ratio(traj, who)
            suffix = "" if label == "sim" else f"_{label}"
            report.interval(f"fdr_ratio_{who}{suffix}", estimate.value, *estimate.interval())
            report.key(f"stationary_from_{who}_{label}", stationary_from(traj, who, TOLERANCE, every=10))
            report.log(f"  {label} {who}: ratio {estimate.value:.4f} ± {1.96 * estimate.se:.4f}")


def ratio_figure(report, runs: dict, window: int) -> None:
    fig, axes = new_figure(1, len(runs), size=(4.6, 3.4), sharey=True)
    for ax, (label, traj) in zip(axes[0], runs.items()):
        fdr_panel(ax, traj, window, {who: report.summary[f"stationary_from_{who}_{label}"] for who in PLAYERS})
        ax.set_ylim(0, 2)
        ax.set_title(f"{label}: 2E[(θ−c₀)·d] / (η E|d|²)", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    report.figure(fig, "fdr_ratio", f"Fluctuation–dissipation ratio per player over a moving window of {window} "
                  "iterations, with its 95% band; dotted: first time the stationarity test passes")


def observables(game, x_star: torch.Tensor) -> dict:
    """{name: (φ, the player whose own drift dissipates it)}."""
    return {"|θ−c₀|²": (squared_distance("theta", game.p, x_star[: game.p]), "theta"),
            "|ω−c₀|²": (squared_distance("omega", game.p, x_star[game.p :]), "omega"),
            "L_G": (expected_loss(game, "theta"), "theta"),
            "L_D": (expected_loss(game, "omega"), "omega")}


def sde_relations(config, report, sga, game, x_star: torch.Tensor) -> None:
    """The terms of E_μ[𝓛φ] = 0 at SME-1's stationary samples; the trade-off ratio."""
    from sde import SME, integrate

    sme = SME(sga, order="1")
    eta = sga.rate("theta", 0)
    record_every = round(1.0 / (eta / 2))
    sde = integrate(sme, x_star, SDE_HORIZON, eta / 2, solver="platen2", K=config.run.paths,
                    seed=config.run.seed + 1, record_every=record_every)
    stationary = sde.states[-SDE_WINDOW:]
    fig, axes = new_figure(1, 1, size=(6.0, 3.4))
    width, ax = 0.2, axes[0, 0]
    for j, (name, (phi, dissipating)) in enumerate(observables(game, x_star).items()):
        terms = generator_terms(sme, stationary, phi)
        for k, part in enumerate(("theta", "omega", "noise")):
            per_path = terms[part].mean(0)
            half = 1.96 * per_path.std().item() / np.sqrt(len(per_path))
            ax.bar(j + (k - 1) * width, per_path.mean().item(), width, yerr=half, color=f"C{k}", capsize=2,
                   label=("generator drift", "discriminator drift", "noise")[k] if j == 0 else None)
        if name == "L_G":
            estimate = balance(terms, dissipating)
            report.interval("tradeoff_ratio", estimate.value, *estimate.interval())
            report.log(f"  trade-off (φ = L_G): (injection + noise)/dissipation = {estimate.value:.3f} "
                       f"± {1.96 * estimate.se:.3f}")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(4), list(observables(game, x_star)))
    ax.legend(fontsize=7)
    report.figure(fig, "fdr_sde", f"Terms of E_μ[𝓛φ] = 0 under SME-1's invariant measure ({config.run.paths} "
                  "paths × 6 times), with 95% intervals")


def run(config, report, quick: bool):
    game = config.game.build()
    x_star = game.equilibrium(dtype=config.run.torch_dtype)
    sga = config.sga.build(game, centers=(x_star[: game.p], x_star[game.p :]))
    report.log(f"fdr: {config.run.paths} runs of {config.sga.steps} steps at η = {config.sga.lr:g}, "
               f"simultaneous and alternating")
    runs = discrete(config, report, sga)
    ratio_keys(report, runs)
    ratio_figure(report, runs, window=max(config.sga.steps // 40, 1))
    sde_relations(config, report, dataclasses.replace(sga, update="sim"), game, x_star)


EXPERIMENT = Experiment(
    name="fdr",
    title="Fluctuation–dissipation relations of training, per player",
    rank=5,
    run=run,
    defaults={**game_preset("gaussian", "damped"), "sga.lr": 0.1, "sga.batch_size": 4, "sga.steps": 2000, "run.paths": 4000},
    quick={"sga.steps": 1000, "run.paths": 2000},
)
