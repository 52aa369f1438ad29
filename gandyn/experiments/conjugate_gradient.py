"""conjugate-gradient: conjugate-gradient GAN training (Naganuma & Iiduka 2023) against SGD, momentum and Adam.

Each optimiser, at its best constant rate of a sweep and under η/√(n + 1), on the Gaussian game (distance to
x*) and the digits GAN (Fréchet digits distance). Keys: ``distance_final[_decay]_<optimizer>``,
``fdd_best_<optimizer>``, ``fdd_mean_<optimizer>``, ``coverage_<optimizer>``, ``best_lr_{gaussian,digits}_<optimizer>``,
and ``claim_*`` for each of the paper's claims.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from analysis.digits import generator_quality
from analysis.plots import new_figure
from analysis.tuning import (constant, distance_over_time, evaluate, inverse_sqrt, log_grid, mean_estimate,
                             train_candidates, with_optimizer)
from games import DigitsGAN, GaussianGame
from games.errors import ConfigError
from games.optim import CG_BETAS
from games.random import Streams

from ..experiment import Experiment

OPTIMIZERS = {**{f"cg_{beta.lower()}": ("cg", {"beta": beta}) for beta in CG_BETAS},
              "sgd": ("sgd", {}), "momentum": ("heavy_ball", {"momentum": 0.9}), "adam": ("adam", {})}
GAUSSIAN_RATES = (1e-3, 0.1, 6)  # the sweep's log grid: low, high, count (Adam's: a tenth)
DIGITS_RATES = (0.01, 0.1, 3)
GAUSSIAN_SIZES = {True: {"steps": 250, "runs": 64}, False: {"steps": 2000, "runs": 256}}  # by --quick
PROBE = 600  # latents per run for the fdd (about the held-out reference's 597 images)
RECORDS = 20  # records over a run


def trainer(base, name: str, update: str):
    """``base`` with both players on optimiser ``name`` of ``OPTIMIZERS`` and the update rule ``update``."""
    kind, options = OPTIMIZERS[name]
    return dataclasses.replace(with_optimizer(base, kind, **options), update=update)


def grid(name: str, rates: tuple) -> list:
    """The sweep's constant rates of optimiser ``name`` (Adam's a tenth of the others')."""
    low, high, count = rates
    scale = 0.1 if name == "adam" else 1.0
    return log_grid(scale * low, scale * high, count)


def run(config, report, quick: bool):
    size = GAUSSIAN_SIZES[quick]
    report.log(f"conjugate-gradient: {len(OPTIMIZERS)} optimisers; Gaussian game {size['steps']} steps, "
               f"digits GAN {config.sga.steps} steps")
    distances = gaussian_part(config, report, size)
    quality = digits_part(config, report)
    claims(report, distances, quality)


def gaussian_part(config, report, size: dict) -> dict:
    game = GaussianGame.preset("damped")  # the lr-schedule game
    base, steps, runs, x_star = config.sga.build(game), size["steps"], size["runs"], game.equilibrium()
    options = dict(runs=runs, device=config.run.device, dtype=config.run.torch_dtype)
    curves, finals = {}, {}
    for name in OPTIMIZERS:
        sga = trainer(base, name, "sim")
        sweep, _ = evaluate(sga, {lr: constant(lr, steps) for lr in grid(name, GAUSSIAN_RATES)}, seed=config.run.seed,
                            **options)
        best = min(sweep, key=lambda lr: float(sweep[lr].mean()))
        candidates = {"constant": constant(best, steps), "decay": inverse_sqrt(best, steps)}
        traj = train_candidates(sga, candidates, seed=config.run.seed + 1, record_every=max(1, steps // RECORDS),
                                **options)
        for block, schedule in enumerate(candidates):
            iterations, msd = distance_over_time(traj, block, runs, x_star)
            curves[name, schedule] = (iterations, msd.sqrt())
            end = (traj.states[-1, block * runs:(block + 1) * runs].double() - x_star).norm(dim=-1)
            finals[name, schedule] = mean_estimate(end)
            key = f"distance_final_{name}" if schedule == "constant" else f"distance_final_decay_{name}"
            report.interval(key, finals[name, schedule].value, *finals[name, schedule].interval())
        report.key(f"best_lr_gaussian_{name}", best)
        report.log(f"  Gaussian, {name}: best constant rate {best:.3g}, |x_N − x*| = {finals[name, 'constant'].value:.3g}")
    start = float((game.init(1, Streams([config.run.seed + 1]))[0].double() - x_star).norm())
    report.key("distance_start", start)
    gaussian_figure(report, curves)
    return {"finals": finals, "start": start}


def digits_part(config, report) -> dict:
    game = config.game.build()
    if not isinstance(game, DigitsGAN):
        raise ConfigError("game.name", f"conjugate-gradient trains the digits GAN, got {game.name!r}")
    base, steps, runs = config.sga.build(game), config.sga.steps, config.run.paths
    options = dict(runs=runs, device=config.run.device, dtype=torch.float32)
    probe = Streams.from_seed(config.run.seed + 99, 2 * runs, dtype=torch.float32).normal(PROBE, game.latent)
    untrained = generator_quality(game, game.init(runs, Streams.from_seed(config.run.seed + 1, runs)), probe[:runs])[0]
    report.key("fdd_untrained", float(untrained.mean()))
    curves, results = {}, {}
    for name in OPTIMIZERS:
        sga = trainer(base, name, "alt-d")
        rates = grid(name, DIGITS_RATES)
        sweep = train_candidates(sga, {lr: constant(lr, steps) for lr in rates}, seed=config.run.seed, **options)
        final = torch.stack([generator_quality(game, sweep.states[-1, i * runs:(i + 1) * runs], probe[:runs])[0]
                             for i in range(len(rates))])  # [rates, runs]
        best = rates[int(final.nan_to_num(math.inf).mean(1).argmin())]
        candidates = {"constant": constant(best, steps), "decay": inverse_sqrt(best, steps)}
        traj = train_candidates(sga, candidates, seed=config.run.seed + 1, record_every=max(1, steps // RECORDS),
                                **options)
        values = [generator_quality(game, states, probe) for states in traj.states]  # per record: [2·runs] each
        fdd, covered = torch.stack([v[0] for v in values]), torch.stack([v[1] for v in values]).double()
        for block, schedule in enumerate(candidates):
            runs_of = slice(block * runs, (block + 1) * runs)
            curves[name, schedule] = (traj.times.numpy() / traj.times[-1].item() * steps, fdd[:, runs_of].numpy())
        results[name] = {"final": fdd[-1, :runs], "coverage": covered[-1, :runs], "decay": fdd[-1, runs:]}
        digits_keys(report, name, results[name], best)
    digits_figure(report, curves)
    return results


def digits_keys(report, name: str, result: dict, best: float) -> None:
    mean = mean_estimate(result["final"])
    report.key(f"fdd_best_{name}", float(result["final"].nan_to_num(math.inf).min()))
    report.interval(f"fdd_mean_{name}", mean.value, *mean.interval())
    report.key(f"fdd_mean_decay_{name}", float(result["decay"].mean()))
    report.key(f"coverage_{name}", float(result["coverage"].mean()))
    report.key(f"best_lr_digits_{name}", best)
    report.log(f"  digits, {name}: best constant rate {best:.3g}, fdd mean {mean.value:.3g}, "
               f"best {float(result['final'].nan_to_num(math.inf).min()):.3g}, "
               f"coverage {float(result['coverage'].mean()):.1f}")


def claims(report, distances: dict, quality: dict) -> None:
    cg = [name for name in OPTIMIZERS if name.startswith("cg_")]
    closer = [name for name in cg if distances["finals"][name, "constant"].value < distances["start"]]
    report.key("claim_constant_rate_converges", closer == cg)
    report.key("cg_converging", ",".join(closer))
    best_cg = min(float(quality[name]["final"].nan_to_num(math.inf).min()) for name in cg)
    for rival in ("sgd", "momentum"):
        report.key(f"claim_best_fdd_vs_{rival}", best_cg < float(quality[rival]["final"].nan_to_num(math.inf).min()))
    leader = min(cg, key=lambda name: mean_estimate(quality[name]["final"]).value)
    ours, adam = mean_estimate(quality[leader]["final"]), mean_estimate(quality["adam"]["final"])
    report.key("claim_mean_fdd_vs_adam", bool(ours.value + 1.96 * math.hypot(ours.se, adam.se) < adam.value))
    report.key("best_cg_by_mean_fdd", leader)


def gaussian_figure(report, curves: dict) -> None:
    fig, axes = new_figure(1, 2, size=(4.4, 3.4), sharey=True)
    for k, name in enumerate(OPTIMIZERS):
        for ax, schedule in zip(axes[0], ("constant", "decay")):
            iterations, distance = curves[name, schedule]
            ax.plot(iterations, distance, color=f"C{k}", ls="-" if name.startswith("cg_") else "--", label=name)
    axes[0, 0].set(yscale="log", xlabel="iteration", ylabel="(E|x − x*|²)^½", title="best constant rate")
    axes[0, 1].set(xlabel="iteration", title="η/√(n + 1) from it")
    axes[0, 0].legend(fontsize=6, ncol=2)
    report.figure(fig, "conjugate_gradient_gaussian", "Distance to the equilibrium of the Gaussian game over "
                  "iterations, each optimiser at its best constant rate (left) and under the decaying rate (right)")


def digits_figure(report, curves: dict) -> None:
    fig, axes = new_figure(1, 2, size=(4.4, 3.4), sharey=True)
    for k, name in enumerate(OPTIMIZERS):
        for ax, schedule in zip(axes[0], ("constant", "decay")):
            iterations, fdd = curves[name, schedule]
            ax.plot(iterations, np.nanmean(fdd, axis=1), color=f"C{k}", ls="-" if name.startswith("cg_") else "--",
                    label=name)
    axes[0, 0].set(yscale="log", xlabel="iteration", ylabel="fdd (mean over runs)", title="best constant rate")
    axes[0, 1].set(xlabel="iteration", title="η/√(n + 1) from it")
    axes[0, 0].legend(fontsize=6, ncol=2)
    report.figure(fig, "conjugate_gradient_digits", "Fréchet digits distance of the digits GAN's samples over "
                  "iterations, each optimiser at its best constant rate (left) and under the decaying rate (right)")


EXPERIMENT = Experiment(
    name="conjugate-gradient",
    title="Conjugate-gradient GAN training against SGD, momentum and Adam (Naganuma & Iiduka 2023)",
    rank=14,
    run=run,
    defaults={"game.name": "digits", "sga.batch_size": 16, "sga.steps": 2000, "run.paths": 8},
    quick={"game.hidden": [32, 32], "game.latent": 8, "sga.steps": 300, "run.paths": 4},
    threads=1,
)
