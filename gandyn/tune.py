"""``gandyn tune``: recommend a learning-rate schedule per player, and validate it on discrete training.

Methods (all but ``ray`` on the configured game, judged by E|x_N − x*|² at the budget):
- ``moments``: the schedule minimising the linearised SME-1's E|X_N − x*|² (``sde.moments``);
- ``surrogate``: the best of a family of candidates (constant, step decay, inverse time, on a log grid
  of rates) trained as one batched ensemble, ``runs`` runs each;
- ``fdr``: the schedule the FDR scheduler (SASA+'s test, pooled over the runs) arrives at from twice
  the best constant rate;
- ``ray``: a Ray Tune sweep over discrete training of the mixture or the digits GAN (``gandyn.sweep``); for
  the digits GAN the winner is validated on fresh seeds against the best constant rate
  (``gain_vs_best_constant``, the ratio of their mean fdd, > 1 when the winner does better).
Each writes ``schedule.json`` (the recommendation), ``summary.json`` (its validation on fresh seeds
against the best constant rate) and ``tune.png`` (the schedules and the distance to equilibrium).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from analysis.plots import new_figure
from analysis.tuning import (constant, distance_over_time, evaluate, evaluate_adaptive, gain, inverse_time, log_grid, mean_estimate,
                             moment_schedule, step_decay)
from games.errors import ConfigError, check_choice
from games.fdr_scheduler import FDRScheduler
from games.trajectory import atomic_write

from . import rundir
from .config import Config
from .report import Report

METHODS = ("moments", "surrogate", "fdr", "ray")
GRID = (5e-4, 0.1, 14)  # the constant rates searched: low, high, count (log-spaced)
CONSTANT_GRID = (1e-3, 0.3, 6)  # --method ray on the digits GAN: the constant rates of its baseline
RECORD = 20


def tune(args, overrides: dict) -> Path:
    """Run ``gandyn tune`` for parsed ``args`` (game, budget, method, …) and configuration ``overrides``.

    Args:
        args: the parsed command line (``game``, ``budget``, ``method``, ``runs``, ``out``, ``quiet``…).
        overrides: {dotted key: value} of configuration keys.

    Returns:
        The run directory.
    """
    method = check_choice("--method", args.method, METHODS)
    out = rundir.writable(args.out or Path("runs") / f"tune-{args.game}-{method}")
    report = Report(out, f"Schedule for {args.game} by {method}", quiet=args.quiet)
    if method == "ray":
        return _ray(args, report)
    config = Config().with_overrides({"game.name": args.game, "sga.steps": args.budget, "run.paths": args.runs,
                                      **overrides})
    identity = {"entry": f"tune {method}", "quick": False, "config": config.to_dict()}
    with rundir.resumable(out, identity, config.run, getattr(args, "fresh", False), getattr(args, "address", None)):
        return _recommend(method, config, report, out)


def _recommend(method: str, config: Config, report: Report, out: Path) -> Path:
    """Search, recommend by ``method``, validate on fresh seeds, write the run directory."""
    game = config.game.build()
    sga, steps = config.sga.build(game), config.sga.steps
    options = dict(runs=config.run.paths, record_every=RECORD, device=config.run.device,
                   dtype=config.run.torch_dtype, progress=not report.quiet)
    grid = {f"constant {lr:.3g}": constant(lr, steps) for lr in log_grid(*GRID)}
    searched, _ = evaluate(sga, grid, seed=config.run.seed, **options)
    best = min(grid, key=lambda n: float(searched[n].mean()))
    recommended = RECOMMEND[method](sga, steps, float(grid[best][0, 0]), config, options, report)
    results, traj = evaluate(sga, {"recommended": recommended, "best constant": grid[best]},
                             seed=config.run.seed + 1, **options)
    estimate = gain(results["best constant"], results["recommended"])
    report.interval("gain_vs_best_constant", estimate.value, *estimate.interval())
    for name, values in results.items():
        report.interval(f"msd_{name.replace(' ', '_')}", *_triple(mean_estimate(values)))
    _write_schedule(out, method, recommended, best)
    _figure(report, traj, {"recommended": recommended, "best constant": grid[best]}, config.run.paths, game)
    report.text(f"Validated on {config.run.paths} fresh runs per schedule: E|x_N − x*|² of the best constant "
                f"rate over that of the recommended schedule is {estimate.value:.3g} "
                f"[{estimate.interval()[0]:.3g}, {estimate.interval()[1]:.3g}].")
    return report.write(config.to_dict())


def _triple(estimate) -> tuple:
    return (estimate.value, *estimate.interval())


def _by_moments(sga, steps, best, config, options, report):
    return moment_schedule(sga, steps, progress=not report.quiet)[0]


def _by_surrogate(sga, steps, best, config, options, report):
    """The best of constant, step decay and inverse-time schedules from each grid rate (one ensemble)."""
    candidates = {}
    for lr in log_grid(*GRID):
        candidates[f"constant {lr:.3g}"] = constant(lr, steps)
        candidates[f"step decay {lr:.3g}"] = step_decay(lr, steps)
        candidates[f"inverse time {lr:.3g}"] = inverse_time(lr, steps)
    results, _ = evaluate(sga, candidates, seed=config.run.seed, **options)
    name = min(candidates, key=lambda n: float(results[n].mean()))
    chosen = mean_estimate(results[name])
    report.interval("surrogate_msd", *_triple(chosen))
    report.key("surrogate_choice", name)
    return candidates[name]


def _by_fdr(sga, steps, best, config, options, report):
    """The rates the pooled FDR scheduler chose, from twice the best constant rate."""
    _, traj = evaluate_adaptive(sga, lambda: FDRScheduler(2 * best, pooled=True), steps,
                                seed=config.run.seed, **{**options, "record_every": 1})
    return torch.stack([traj[f"lr_{who}"][:steps, 0] for who in ("theta", "omega")]).double()


RECOMMEND = {"moments": _by_moments, "surrogate": _by_surrogate, "fdr": _by_fdr}


def _write_schedule(out: Path, method: str, rates: torch.Tensor, best: str) -> None:
    body = {"method": method, "best_constant": best, "rates": {"theta": rates[0].tolist(), "omega": rates[1].tolist()}}
    text = json.dumps(body)
    atomic_write(Path(out) / "schedule.json", lambda f: f.write(text.encode()))


def _figure(report, traj, schedules: dict, runs: int, game) -> None:
    fig, axes = new_figure(1, 2, size=(4.4, 3.4))
    for c, (name, rates) in enumerate(schedules.items()):
        axes[0, 0].plot(rates[0], "-", color=f"C{c}", label=f"{name} (θ)")
        axes[0, 0].plot(rates[1], ":", color=f"C{c}", label=f"{name} (ω)")
        axes[0, 1].plot(*distance_over_time(traj, c, runs, game.equilibrium()), color=f"C{c}", label=name)
    axes[0, 0].set(yscale="log", xlabel="iteration", ylabel="rate")
    axes[0, 1].set(yscale="log", xlabel="iteration", ylabel="E|x − x*|² (validation runs)")
    axes[0, 0].legend(fontsize=7)
    report.figure(fig, "tune", "The recommended schedule and the best constant rate (left), and the distance to "
                  "equilibrium of fresh runs under each (right)")


def _ray(args, report) -> Path:
    """The sweep, then the best schedule trained again on fresh seeds (the digits GAN: beside the best constant
    rate, itself the best of ``CONSTANT_GRID`` on the sweep's seed, for ``gain_vs_best_constant``)."""
    from .sweep import HIDDEN, METRICS, ray_sweep, schedules_of, trial_progress

    game = {"mixture": "mixture", "mixture-gan": "mixture", "digits": "digits"}.get(args.game)
    if game is None:
        raise ConfigError("--game", f"--method ray sweeps the mixture or the digits GAN (--game mixture or digits), "
                                    f"got {args.game!r}")
    seed, device, metric = args.seed or 0, args.device or "cpu", METRICS[game]
    records = ray_sweep(report.out, args.budget, samples=args.samples, runs=args.runs, address=args.address,
                        seed=seed, device=device, quiet=args.quiet, game=game)
    best = records[0]
    fixed = {"game": game, "budget": args.budget, "runs": args.runs, "device": device, "hidden": list(HIDDEN)}
    again = list(trial_progress({**best["config"], **fixed, "seed": seed + 7}))
    report.key("trials", len(records))
    report.key(f"best_{metric}", best[metric])
    report.key(f"validation_{metric}", again[-1][metric])
    report.key("validation_coverage" if game == "digits" else "validation_modes_covered",
               again[-1]["coverage" if game == "digits" else "modes_covered"])
    if game == "digits":
        _against_best_constant(report, again[-1]["per_run"], fixed, seed)
    schedules = schedules_of(best["config"], args.budget)
    fig, axes = new_figure(1, 2, size=(4.4, 3.4))
    for who, style in (("theta", "-"), ("omega", ":")):
        axes[0, 0].plot([schedules[who](k) for k in range(args.budget)], style, label=who)
    axes[0, 0].set(yscale="log", xlabel="iteration", ylabel="rate")
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].plot([m["step"] for m in again], [m[metric] for m in again], "o-")
    axes[0, 1].set(xlabel="iteration", ylabel={"sw2": "sliced W₂ to the target", "fdd": "fdd"}[metric] + " (validation)")
    report.figure(fig, "tune", f"The best schedule of the sweep (left) and its {metric} on fresh runs (right)")
    text = json.dumps({"method": "ray", "game": game, "config": best["config"]})
    atomic_write(report.out / "schedule.json", lambda f: f.write(text.encode()))
    return report.write({"game": game, "budget": args.budget, "samples": args.samples, "runs": args.runs})


def _against_best_constant(report, winner: list, fixed: dict, seed: int) -> None:
    """The best constant rate of ``CONSTANT_GRID`` (both players, the sweep's seed) run on the validation seeds:
    ``gain_vs_best_constant`` = its mean fdd over the winner's (paired runs), with its 95% interval."""
    from .sweep import trial_progress

    def final(lr: float, seed: int) -> list:
        config = {f"{who}_{key}": value for who in ("theta", "omega") for key, value in (("lr", lr), ("decay", "constant"))}
        return list(trial_progress({**config, **fixed, "seed": seed}))[-1]["per_run"]

    grid = log_grid(*CONSTANT_GRID)
    sweep = {lr: torch.tensor(final(lr, seed)) for lr in grid}
    best = min(grid, key=lambda lr: float(sweep[lr].nan_to_num(float("inf")).mean()))
    estimate = gain(torch.tensor(final(best, seed + 7)), torch.tensor(winner))
    report.key("best_constant_lr", best)
    report.interval("gain_vs_best_constant", float(estimate.value), *(float(v) for v in estimate.interval()))
