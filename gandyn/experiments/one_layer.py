"""one-layer: SGDA learns a one-layer generator from finitely many samples (Lei et al. 2020).

Keys: ``slope_error_vs_samples[_d<d>]``, ``slope_error_vs_dim``, ``floor_d<d>`` and ``tv_d<d>``.
"""
from __future__ import annotations

import numpy as np

from analysis.compare import mean_interval
from analysis.metrics import tv_gaussian
from analysis.onelayer import frobenius, learned_covariance
from analysis.orders import fit_common_order, fit_order_bootstrap
from analysis.plots import new_figure, rate_axes
from games.errors import ConfigError
from games.onelayer import OneLayerGAN
from games.random import Streams

from ..experiment import Experiment

SIZES = {  # by --quick: the dimensions d = n = k and the training-set sizes
    True: {"dims": [2, 4, 8], "samples": [64, 256, 1024]},
    False: {"dims": [2, 4, 8], "samples": [64, 256, 1024, 4096, 16384]},
}
INIT_SCALE = 0.5


def run(config, report, quick: bool):
    if config.game.name != "onelayer" or config.game.options.get("activation", "linear") != "linear":
        raise ConfigError("game.name", "one-layer needs the onelayer game with a linear generator")
    rc, size = config.run, SIZES[quick]
    report.log(f"one-layer: d ∈ {size['dims']}, n ∈ {size['samples']}, {rc.paths} runs each, "
               f"{config.sga.steps} steps of {config.sga.update} at η = {config.sga.lr:g}")
    errors, floors, tvs = {}, {}, {}
    for i, d in enumerate(size["dims"]):
        for j, n in enumerate(size["samples"]):
            game = OneLayerGAN(n=d, k=d, samples=n, init_scale=INIT_SCALE)
            seed = rc.seed + 100 * i + j  # independent training sets for every (d, n)
            traj = config.sga.build(game).run(config.sga.steps, K=rc.paths, seed=seed, record_every=rc.record_every,
                                              dtype=rc.torch_dtype, progress=not report.quiet)
            learned = learned_covariance(game, traj).double()
            target = game.target_law().cov
            errors[d, n] = frobenius(learned, target).numpy()
            floors[d, n] = frobenius(learned, game.empirical_target(Streams.from_seed(seed, rc.paths))).numpy()
            if n == size["samples"][-1]:
                tvs[d] = tv_gaussian(learned, target.expand_as(learned))[0].numpy()
            report.log(f"  d = {d}, n = {n}: error {errors[d, n].mean():.3g}, floor {floors[d, n].mean():.2g}")
    summarise(report, size, errors, floors, tvs)


def summarise(report, size: dict, errors: dict, floors: dict, tvs: dict):
    dims, samples = size["dims"], size["samples"]
    common = fit_common_order([(samples, [errors[d, n].mean() for n in samples]) for d in dims])
    report.interval("slope_error_vs_samples", common.slope, common.low, common.high)
    for d in dims:
        fit = fit_order_bootstrap(samples, [errors[d, n] for n in samples])
        report.interval(f"slope_error_vs_samples_d{d}", fit.slope, fit.low, fit.high)
        report.key(f"floor_d{d}", float(np.mean([floors[d, n].mean() for n in samples])))
        report.interval(f"tv_d{d}", *mean_interval(tvs[d]))
    by_dim = fit_order_bootstrap(dims, [errors[d, samples[-1]] for d in dims])
    report.interval("slope_error_vs_dim", by_dim.slope, by_dim.low, by_dim.high)
    figure(report, dims, samples, errors, common.slope)


def figure(report, dims, samples, errors: dict, slope: float):
    fig, axes = new_figure(1, 2, size=(4.2, 3.4))
    left, right = axes[0]
    for k, d in enumerate(dims):
        means = np.array([errors[d, n].mean() for n in samples])
        ci = np.array([1.96 * errors[d, n].std(ddof=1) / np.sqrt(len(errors[d, n])) for n in samples])
        left.errorbar(samples, means, yerr=ci, fmt="o-", ms=4, capsize=2, color=f"C{k}", label=f"d = {d}")
        left.plot(samples, means[0] * (np.array(samples) / samples[0]) ** -0.5, ":", color=f"C{k}", lw=0.8)
    rate_axes(left, samples, label="training samples n")
    left.set_ylabel("‖AAᵀ − A*A*ᵀ‖_F")
    left.set_title(f"common slope {slope:.2f} (dotted: n^(−½))", fontsize=9)
    left.legend(fontsize=7)
    n = samples[-1]
    means = [errors[d, n].mean() for d in dims]
    right.errorbar(dims, means, yerr=[1.96 * errors[d, n].std(ddof=1) / np.sqrt(len(errors[d, n])) for d in dims],
                   fmt="o-", ms=4, capsize=2, color="C3")
    right.plot(dims, means[0] * np.array(dims) / dims[0], ":", color="C3", lw=0.8)
    rate_axes(right, dims, label="dimension d")
    right.set_title(f"n = {n} (dotted: ∝ d)", fontsize=9)
    report.figure(fig, "one_layer", "Error of the learned law against the training-set size n and the dimension d "
                  "(mean over runs, 95% intervals)")


EXPERIMENT = Experiment(
    name="one-layer",
    title="SGDA learns a one-layer generator from finitely many samples (Lei et al. 2020)",
    rank=13,
    run=run,
    defaults={"game.name": "onelayer", "game.activation": "linear", "sga.update": "sim", "sga.lr": 0.05,
              "sga.batch_size": 64, "sga.steps": 4000, "run.paths": 32, "run.record_every": 40},
    quick={"sga.steps": 1500, "run.paths": 16, "run.record_every": 25},
    threads=1,
)
