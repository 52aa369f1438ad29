"""lr-schedule: learning-rate schedules for each player, judged on discrete training at a fixed budget.

Keys: ``msd_<schedule>`` (E|x_N − x*|²), ``gain_vs_best_constant``, ``gain_vs_step_decay``,
``gain_fdr_vs_best_constant``, ``gain_untied_vs_best_constant`` (with 95% intervals) and
``model_gain_vs_best_constant``.
"""
from __future__ import annotations



from analysis.plots import new_figure
from analysis.tuning import (constant, distance_over_time, evaluate, evaluate_adaptive, gain, log_grid, mean_estimate, moment_prediction,
                             moment_schedule, step_decay)
from games.fdr_scheduler import FDRScheduler

from ..experiment import Experiment, game_preset

GRID = (5e-4, 0.05, 12)  # the constant rates: low, high, count (log-spaced)
RECORD = 20  # iterations between records of the distance over time


def run(config, report, quick: bool):
    game = config.game.build()
    sga, steps, K = config.sga.build(game), config.sga.steps, config.run.paths
    options = dict(runs=K, seed=config.run.seed, record_every=RECORD, device=config.run.device,
                   dtype=config.run.torch_dtype, progress=not report.quiet)
    report.log(f"lr-schedule: budget {steps} iterations, {K} runs per schedule")
    rates, predicted = moment_schedule(sga, steps, progress=not report.quiet)
    untied, _ = moment_schedule(sga, steps, tied=False, progress=not report.quiet)
    grid = {f"{lr:.3g}": constant(lr, steps) for lr in log_grid(*GRID)}
    first, first_traj = evaluate(sga, {**grid, "moment-optimised": rates, "untied": untied}, **options)
    best = min(grid, key=lambda n: float(first[n].mean()))
    decays = {f"step decay from {f}×": step_decay(f * float(best), steps) for f in (1, 2)}
    second, second_traj = evaluate(sga, decays, **options)
    fdr, fdr_traj = evaluate_adaptive(sga, lambda: FDRScheduler(2 * float(best)), steps, **options)
    decay = min(decays, key=lambda n: float(second[n].mean()))
    results = {"best constant": first[best], "step decay": second[decay], "FDR scheduler": fdr,
               "moment-optimised": first["moment-optimised"], "untied": first["untied"]}
    model_constant = min(moment_prediction(sga, steps, lr) for lr in log_grid(*GRID))
    keys(report, results, float(best), decay, predicted, model_constant, fdr_traj)
    paths = {"best constant": (first_traj, list(first).index(best)),
             "step decay": (second_traj, list(decays).index(decay)), "FDR scheduler": (fdr_traj, 0),
             "moment-optimised": (first_traj, len(grid))}
    figure(report, paths, first, grid, results, K, game)


def keys(report, results: dict, best: float, decay: str, predicted: float, model_constant: float, fdr_traj) -> None:
    for name, values in results.items():
        estimate = mean_estimate(values)
        report.interval(f"msd_{name.replace(' ', '_').replace('-', '_')}", estimate.value, *estimate.interval())
    for key, baseline, candidate in (("gain_vs_best_constant", "best constant", "moment-optimised"),
                                     ("gain_vs_step_decay", "step decay", "moment-optimised"),
                                     ("gain_fdr_vs_best_constant", "best constant", "FDR scheduler"),
                                     ("gain_untied_vs_best_constant", "best constant", "untied")):
        estimate = gain(results[baseline], results[candidate])
        report.interval(key, estimate.value, *estimate.interval())
        report.log(f"  {key}: {estimate.value:.3f} [{estimate.interval()[0]:.3f}, {estimate.interval()[1]:.3f}]")
    report.key("best_constant_lr", best)
    report.key("step_decay_start", decay)
    report.key("model_gain_vs_best_constant", model_constant / predicted)
    for who, decided in fdr_traj.metadata["schedules"].items():
        report.key(f"fdr_mean_cuts_{who}", decided["mean_cuts_per_run"])


def figure(report, paths: dict, first: dict, grid: dict, results: dict, K: int, game) -> None:
    fig, axes = new_figure(1, 3, size=(4.4, 3.4))
    for c, (name, (traj, block)) in enumerate(paths.items()):
        runs, (iterations, distance) = slice(block * K, (block + 1) * K), distance_over_time(traj, block, K, game.equilibrium())
        for w, (who, style) in enumerate((("theta", "-"), ("omega", ":"))):
            lr = traj[f"lr_{who}"][:, runs].double().median(dim=1).values
            axes[0, 0].plot(iterations, lr, style, color=f"C{c}", label=name if w == 0 else None)
        axes[0, 1].plot(iterations, distance, color=f"C{c}", label=name)
    axes[0, 0].set(yscale="log", xlabel="iteration", ylabel="rate (θ solid, ω dotted; median run)")
    axes[0, 1].set(yscale="log", xlabel="iteration", ylabel="E|x − x*|²")
    axes[0, 0].legend(fontsize=7)
    lrs = [float(n) for n in grid]
    means = [mean_estimate(first[n]) for n in grid]
    axes[0, 2].errorbar(lrs, [m.value for m in means], yerr=[1.96 * m.se for m in means], fmt="o-", color="C0",
                        ms=3, capsize=2, label="constant rates")
    for c, name in enumerate(paths):
        if name != "best constant":
            axes[0, 2].axhline(float(results[name].mean()), color=f"C{c}", ls="--", lw=1, label=name)
    axes[0, 2].set(xscale="log", yscale="log", xlabel="constant rate", ylabel="E|x_N − x*|² at the budget")
    axes[0, 2].legend(fontsize=7)
    report.figure(fig, "lr_schedule", "Schedules (left), the distance to equilibrium over training (middle) and "
                  "at the budget against the constant rate, with 95% intervals (right)")


EXPERIMENT = Experiment(
    name="lr-schedule",
    title="Learning-rate schedules per player, validated on discrete training",
    rank=10,
    run=run,
    defaults={**game_preset("gaussian", "damped"), "sga.batch_size": 4, "sga.steps": 2000, "run.paths": 4000},
    quick={"run.paths": 1000},
)
