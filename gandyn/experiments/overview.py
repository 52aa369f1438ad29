"""overview: discrete stochastic training of the configured game (the Gaussian game by default), K runs at once,
against its continuous descriptions.

Keys: ``distance_{initial,final}_mean``, ``fdr_ratio_<player>``, ``stationary_from``, ``sme{1,2}_mean_gap``,
``flow_mean_gap`` and ``schedule_gain_model``, each where the game offers what it needs.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from analysis.fdr import fdr_ratio
from analysis.plots import band, fdr_panel, new_figure
from analysis.stationary import pooled, stationary_start
from games.base import PLAYERS
from sde import SME

from ..experiment import Experiment

MAX_RECORDED_DIM = 1000  # above this (network games) states are not recorded: K·T·d floats add up


def distance(game, traj, x_star):
    """([T, K] distances to the target, their label): the game's own where it offers one, else |x − x*|."""
    if traj.p == 0:
        return None
    if game.offered("target_distance", traj.states[0]) is not None:
        return torch.stack([game.target_distance(x) for x in traj.states]), game.target_distance_name
    if x_star is not None:
        return (traj.states - x_star.to(traj.states)).norm(dim=-1), "|x − x*|"
    return None


def parameter_figure(game, traj, report):
    t, d, names = traj.times.numpy(), traj.states.shape[-1], game.coordinate_names
    fig, axes = new_figure(1, min(d, 4))
    for i in range(min(d, 4)):
        band(axes[0, i], t, traj.states[:, :, i])
        axes[0, i].set_title(names[i])
        axes[0, i].set_xlabel("t = Σ η")
    report.figure(fig, "parameters", "Parameters over time: mean ± std over runs, and three runs")


def convergence_figure(traj, dist, report):
    t = traj.times.numpy()
    fig, axes = new_figure(1, 3)
    if dist is not None:
        band(axes[0, 0], t, dist[0])
        axes[0, 0].set_yscale("log")
        axes[0, 0].set_title(dist[1])
    window = max(len(t) // 20, 1)
    fdr_panel(axes[0, 1], traj, window)
    for k, (who, label) in enumerate(zip(PLAYERS, ("generator", "discriminator"))):
        band(axes[0, 2], t, traj[f"loss_{who}"], label=label, paths=0, color=f"C{k}")
    axes[0, 1].set_ylim(-1, 3)
    axes[0, 1].set_title("FDR ratio 2E[(θ−c₀)·d] / (η E|d|²)")
    axes[0, 1].legend(fontsize=8)
    axes[0, 2].set_title("minibatch losses")
    axes[0, 2].legend(fontsize=8)
    report.figure(fig, "convergence", "Distance to the target, fluctuation–dissipation ratio (moving window, "
                  "95% band), losses")


def spread_figure(game, traj, report, x_star):
    """A two-parameter generator: every run's parameters at the end, against the equilibrium's."""
    fig, axes = new_figure(1, 1)
    final, names = traj.states[-1], game.coordinate_names
    axes[0, 0].scatter(final[:, 0], final[:, 1], s=4, alpha=0.5)
    axes[0, 0].plot([float(x_star[0])], [float(x_star[1])], "r*", ms=10, label="target")
    axes[0, 0].set_xlabel(names[0])
    axes[0, 0].set_ylabel(names[1])
    axes[0, 0].legend()
    report.figure(fig, "final_spread", "Generator parameters of all runs at the end")


def stationary_figure(game, sga, traj, start: int, report):
    """Each parameter's marginal over the ensemble and the stationary window, against the Gaussian
    laws of the linearisation at x*: the chain's (discrete Lyapunov) and SME-1's (continuous)."""
    from analysis.invariant import chain_covariance, sde_covariance

    x_star, samples = game.equilibrium(dtype=traj.states.dtype), pooled(traj, start).numpy()
    laws = {"chain, linearised": chain_covariance(sga, x_star), "SME-1, linearised": sde_covariance(SME(sga), x_star)}
    d, names = min(game.d, 4), game.coordinate_names
    fig, axes = new_figure(1, d)
    for i in range(d):
        ax = axes[0, i]
        grid = np.linspace(*np.quantile(samples[:, i], [0.001, 0.999]), 200)  # tails clipped
        ax.hist(samples[:, i], bins=60, range=(grid[0], grid[-1]), density=True, color="0.7", label="chain, pooled")
        for k, (label, covariance) in enumerate(laws.items()):
            sd = math.sqrt(covariance[i, i])
            density = np.exp(-0.5 * ((grid - x_star[i].item()) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
            ax.plot(grid, density, color=f"C{k}", lw=1.2, label=label)
        ax.set_title(names[i])
        ax.set_yticks([])
    axes[0, 0].legend(fontsize=7)
    report.figure(fig, "stationary", f"Stationary marginals: the ensemble pooled from t = {traj.times[start]:.3g} "
                  "(where its moments stop moving) against the linearisation's Gaussian laws")


SDE_STEPS = 1000  # the SDE panel covers the first SDE_STEPS iterations (the transient)


def sde_figure(game, sga, traj, config, report):
    """Discrete training against SME-1 and SME-2 (Platen, dt = η) over the first SDE_STEPS
    iterations: mean ± std of each parameter; keys sme{1,2}_mean_gap = max |E x_k − E X_t|."""
    from flows import modified_flow
    from sde import integrate

    steps = min(config.sga.steps, SDE_STEPS)
    rows = int((traj.times <= steps * config.sga.lr + 1e-9).sum())
    chain = traj.states[:rows]
    t, d, names = traj.times[:rows].numpy(), min(game.d, 4), game.coordinate_names
    fig, axes = new_figure(1, d)
    for order, color in (("1", "C1"), ("2", "C2")):
        sde = integrate(SME(sga, order=order), chain[0], steps * config.sga.lr, config.sga.lr,
                        solver="platen2", seed=config.run.seed + 1, record_every=config.run.record_every,
                        device=config.run.device, dtype=config.run.torch_dtype)
        report.trajectory(sde, f"sme{order}")
        n = min(len(sde.times), rows)
        report.key(f"sme{order}_mean_gap", (sde.states[:n].nanmean(1) - chain[:n].nanmean(1)).abs().max().item())
        for i in range(d):
            band(axes[0, i], sde.times.numpy(), sde.states[:, :, i], label=f"SME-{order}", paths=0, color=color)
    flow = modified_flow(sga, chain[0], steps * config.sga.lr, order="1", n_records=rows)
    mean_flow = flow.states.nanmean(1)
    report.key("flow_mean_gap", (mean_flow[:rows] - chain.nanmean(1)).abs().max().item())
    for i in range(d):
        axes[0, i].plot(flow.times.numpy(), mean_flow[:, i].numpy(), color="C3", ls="--", lw=1.2, label="gradient flow")
    for i in range(d):
        band(axes[0, i], t, chain[:, :, i], label="discrete", paths=0, color="k")
        axes[0, i].set_title(names[i])
        axes[0, i].set_xlabel("t = Σ η")
    axes[0, 0].legend(fontsize=8)
    report.figure(fig, "sde", "Discrete training against SME-1 and SME-2 (mean ± std over runs) and against the "
                  "rule's gradient flow ẋ = b₁ from the same starts (its mean, dashed)")


def schedule_figure(sga, config, report):
    """The schedule minimising the linearised SME-1's E|X_N − x*|² at the run's budget (``sde.moments``,
    both players on one curve), against the constant rate used; key ``schedule_gain_model`` = the
    model's E|X_N − x*|² at the constant rate over that at the schedule."""
    from analysis.tuning import moment_prediction, moment_schedule

    steps = config.sga.steps
    rates, predicted = moment_schedule(sga, steps)
    report.key("schedule_gain_model", moment_prediction(sga, steps, config.sga.lr) / predicted)
    fig, axes = new_figure(1, 1, size=(4.4, 3.0))
    axes[0, 0].plot(np.arange(steps), rates[0].numpy(), label="recommended (moment equations)")
    axes[0, 0].axhline(config.sga.lr, color="k", ls="--", lw=1, label="constant rate used")
    axes[0, 0].set(xlabel="iteration", ylabel="η", yscale="log")
    axes[0, 0].legend(fontsize=8)
    report.figure(fig, "schedule", f"A learning-rate schedule for {steps} iterations, from the moment equations of "
                  "the linearised SME-1; `gandyn tune` validates such a schedule on training")


def run(config, report, quick: bool):
    game = config.game.build()
    x_star = game.offered("equilibrium")
    centers = (0.0, 0.0) if x_star is None else (x_star[: game.p], x_star[game.p :])
    sga = config.sga.build(game, centers=centers)
    report.log(f"overview: {config.run.paths} runs of {config.sga.steps} {config.sga.update} steps on "
               f"the {game.name} game")
    traj = sga.run(config.sga.steps, K=config.run.paths, seed=config.run.seed,
                   record_every=config.run.record_every, record_states=game.d <= MAX_RECORDED_DIM,
                   device=config.run.device, dtype=config.run.torch_dtype, progress=not report.quiet)
    report.trajectory(traj, "sga")
    dist = distance(game, traj, x_star)
    if traj.p:
        parameter_figure(game, traj, report)
    convergence_figure(traj, dist, report)
    if game.p == 2 and x_star is not None and traj.p:
        spread_figure(game, traj, report, x_star)
    if SME.available(sga):
        sde_figure(game, sga, traj, config, report)
    if dist is not None:
        report.key("distance", dist[1])
        report.key("distance_initial_mean", dist[0][0].nanmean().item())
        report.key("distance_final_mean", dist[0][-1].nanmean().item())
    start = stationary_start(traj)
    report.key("stationary_from", None if start is None else traj.times[start].item())
    if start is not None and x_star is not None and SME.available(sga):
        stationary_figure(game, sga, traj, start, report)
    for who in PLAYERS:
        estimate = fdr_ratio(traj, who, start)
        report.interval(f"fdr_ratio_{who}", estimate.value, *estimate.interval())
    if x_star is not None and SME.available(sga) and config.sga.schedule == "constant":
        schedule_figure(sga, config, report)
    report.key("diverged_runs", len(traj.metadata["diverged"]))
    report.key("paths", traj.K)
    report.text(lead(report.summary, config, game), first=True)
    report.text(f"{traj.K} runs of {config.sga.update} SGD (η = {config.sga.lr}, batch "
                f"{config.sga.batch_size}) on the {game.name} game ({game.describe()}). The distance is "
                f"{'none (no known target)' if dist is None else dist[1]}. The FDR ratio "
                f"2E[(θ − c₀)·d] / (η E|d|²), d the applied direction and c₀ the equilibrium where "
                f"known (else 0), is 1 at stationarity for any update rule with a constant rate "
                f"(THEORY §4); it is taken over the stationary window (from the record where the ensemble's "
                f"moments stop moving, else the second half) as a ratio of means with a 95% batch-means "
                f"interval, and plotted over a moving window.")


def lead(summary: dict, config, game) -> str:
    """The findings in a few plain sentences, from the key figures (each clause only where computed)."""
    number = lambda key: summary.get(key) if isinstance(summary.get(key), (int, float)) else None  # noqa: E731
    parts = [f"**{summary['paths']} runs of {config.sga.update} SGD** (η = {config.sga.lr:g}, batch "
             f"{config.sga.batch_size}, {config.sga.steps} steps) on the {game.name} game."]
    if number("distance_final_mean") is not None:
        parts.append(f"The mean {summary['distance']} went from {summary['distance_initial_mean']:.3g} to "
                     f"{summary['distance_final_mean']:.3g}.")
    if number("sme1_mean_gap") is not None:
        parts.append(f"Over the transient the ensemble mean stays within {summary['sme1_mean_gap']:.2g} of SME-1's, "
                     f"{summary['sme2_mean_gap']:.2g} of SME-2's and {summary['flow_mean_gap']:.2g} of the gradient "
                     "flow (largest gap over time and parameters).")
    if number("stationary_from") is not None:
        parts.append(f"The moments stop moving from t = {summary['stationary_from']:.3g}; there the "
                     f"fluctuation–dissipation ratio is {summary['fdr_ratio_theta']:.3f} for the generator and "
                     f"{summary['fdr_ratio_omega']:.3f} for the discriminator (1 at stationarity).")
    if number("schedule_gain_model") is not None:
        parts.append(f"A schedule from the moment equations would lower E|x_N − x*|² by a factor "
                     f"{summary['schedule_gain_model']:.2g} in the linearised model (validate with `gandyn tune`).")
    return " ".join(parts)


EXPERIMENT = Experiment(
    name="overview",
    title="gandyn overview: discrete training on the Gaussian game and its continuous descriptions",
    rank=0,
    run=run,
    defaults={"game.name": "gaussian", "sga.lr": 0.01, "sga.steps": 4000, "sga.batch_size": 16,
              "run.paths": 512, "run.record_every": 10},
    quick={"run.paths": 128, "run.record_every": 20},  # the full horizon: the FDR window must be stationary
    gallery="sde",
)
