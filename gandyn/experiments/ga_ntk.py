"""ga-ntk: a generator against the closed-form NTK critic (GA-NTK), and the NTK limit behind it.

Keys: ``slope_ntk_width`` and ``ntk_gap_w<width>`` (a trained ReLU network against the closed form),
``discretization_error``, ``fdd_final_{ga_ntk,gan}`` and ``wall_time_{ga_ntk,gan}_s``.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from analysis.digits import generator_quality
from analysis.orders import fit_order_bootstrap
from analysis.plots import new_figure, rate_axes
from analysis.tuning import mean_estimate
from flows.kernel_critic import (critic_labels, critic_values, descent_critic_values, ga_ntk_generator, relu_ntk,
                                 trained_network_critic)
from games import Player, make_game
from games.errors import ConfigError
from games.random import Streams

from ..experiment import Experiment

SIZES = {  # by --quick
    True: {"widths": [64, 256, 1024], "seeds": 6, "steps": 150},
    False: {"widths": [64, 256, 1024, 4096, 16384], "seeds": 12, "steps": 1000},
}
POINTS = 32  # real digits and generator samples each, for the NTK limit
CRITIC_TIME = 1.0  # ηt of the critic
DESCENT_STEPS = 200  # gradient-descent steps of the finite network over that time
IMAGES = 256  # the training digits both generators learn
GAN_STEPS_PER_STEP = 12  # GAN steps per GA-NTK step, so that both fill about the same CPU time (both are reported)
GA_NTK_LR, GAN_LR = 3e-3, 1e-3
PROBE = 600  # latents per run for the fdd


def run(config, report, quick: bool):
    if config.game.name != "digits":
        raise ConfigError("game.name", f"ga-ntk trains the digits GAN's generator, got {config.game.name!r}")
    game = make_game("digits", **{**config.game.options, "images": IMAGES})
    size = SIZES[quick]
    report.log(f"ga-ntk: widths {size['widths']}, {size['seeds']} seeds; generators {size['steps']} GA-NTK steps "
               f"against {GAN_STEPS_PER_STEP * size['steps']} GAN steps, {config.run.paths} runs")
    ntk_limit(report, game, size, config.run.seed)
    generators(config, report, game, size["steps"])


def ntk_limit(report, game, size: dict, seed: int):
    real = game.training_images()[:POINTS]
    with torch.no_grad():
        untrained = game.init(1, Streams([seed])).float()
        fake = game.generate(untrained, Streams([seed]).normal(POINTS, game.latent).float())[0].double()
    P = torch.cat([real, fake])
    y = critic_labels(POINTS, POINTS, dtype=P.dtype)
    kernel = relu_ntk(P, P)
    closed = critic_values(kernel, y, CRITIC_TIME)
    model = descent_critic_values(kernel, y, CRITIC_TIME, DESCENT_STEPS)
    report.key("discretization_error", float((model - closed).norm() / math.sqrt(len(P))))
    gaps = {w: np.array([float((trained_network_critic(P, y, w, CRITIC_TIME, DESCENT_STEPS, seed=seed + s) - closed)
                               .norm() / math.sqrt(len(P))) for s in range(size["seeds"])])
            for w in size["widths"]}
    fit = fit_order_bootstrap(size["widths"], list(gaps.values()))
    report.interval("slope_ntk_width", fit.slope, fit.low, fit.high)
    for w, gap in gaps.items():
        report.key(f"ntk_gap_w{w}", float(gap.mean()))
        report.log(f"  width {w}: RMS gap to the closed form {gap.mean():.3g}")
    ntk_figure(report, gaps, fit.slope)


def generators(config, report, game, steps: int):
    rc, real = config.run, game.training_images()
    record = max(1, steps // 10)
    probe = Streams.from_seed(rc.seed + 99, rc.paths, dtype=torch.float32).normal(PROBE, game.latent)
    ntk = ga_ntk_generator(game, real, steps, K=rc.paths, lr=GA_NTK_LR, t=CRITIC_TIME, seed=rc.seed,
                           record_every=record, progress=not report.quiet)
    sga = dataclasses.replace(config.sga.build(game), update="alt-d", lr=GAN_LR,
                              gen=Player("adam"), disc=Player("adam"))
    gan = sga.run(GAN_STEPS_PER_STEP * steps, K=rc.paths, seed=rc.seed, record_every=GAN_STEPS_PER_STEP * record,
                  dtype=torch.float32, progress=not report.quiet)
    curves = {}
    for name, traj in (("ga_ntk", ntk), ("gan", gan)):
        fdd = torch.stack([generator_quality(game, x, probe)[0] for x in traj.states])  # [T, K]
        wall = traj.metadata["wall_time_s"]
        curves[name] = (np.linspace(0, wall, len(traj.times)), fdd.numpy())
        final = mean_estimate(fdd[-1])
        report.interval(f"fdd_final_{name}", final.value, *final.interval())
        report.key(f"wall_time_{name}_s", round(wall, 2))
        report.log(f"  {name}: fdd {float(fdd[0].mean()):.3g} → {final.value:.3g} in {wall:.1f} s")
    generator_figure(report, curves)


def ntk_figure(report, gaps: dict, slope: float):
    fig, axes = new_figure(1, 1, size=(4.4, 3.4))
    ax, widths = axes[0, 0], list(gaps)
    means = [gaps[w].mean() for w in widths]
    ax.errorbar(widths, means, yerr=[1.96 * gaps[w].std(ddof=1) / math.sqrt(len(gaps[w])) for w in widths],
                fmt="o-", ms=4, capsize=2, label=f"trained network (slope {slope:.2f})")
    ax.plot(widths, means[0] * (np.array(widths) / widths[0]) ** -0.5, ":", color="k", lw=0.8, label="w^(−½)")
    rate_axes(ax, widths, label="width w")
    ax.set_ylabel("RMS gap to the closed form (I − exp(−ηtΘ))y")
    ax.legend(fontsize=7)
    report.figure(fig, "ga_ntk_width", "A finite ReLU network trained by gradient descent against the closed-form "
                  "NTK critic, against its width (mean over seeds, 95% intervals)")


def generator_figure(report, curves: dict):
    fig, axes = new_figure(1, 1, size=(4.4, 3.4))
    ax = axes[0, 0]
    for k, (name, (wall, fdd)) in enumerate(curves.items()):
        ax.plot(wall, np.nanmean(fdd, axis=1), "o-", ms=3, color=f"C{k}",
                label={"ga_ntk": "GA-NTK (closed-form critic)", "gan": "GAN (alternating Adam)"}[name])
    ax.set(yscale="log", xlabel="wall time (s)", ylabel="fdd (mean over runs)")
    ax.legend(fontsize=7)
    report.figure(fig, "ga_ntk_generators", f"The digits generator learning {IMAGES} digits: GA-NTK against a "
                  "standard GAN over wall time")


EXPERIMENT = Experiment(
    name="ga-ntk",
    title="A generator against the closed-form NTK critic (GA-NTK), and the NTK limit behind it",
    rank=15,
    run=run,
    defaults={"game.name": "digits", "game.hidden": [64, 64], "game.latent": 8, "sga.batch_size": 32,
              "run.paths": 8},
    quick={"run.paths": 4},
    threads=1,
)
