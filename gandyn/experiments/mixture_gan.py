"""mixture-gan: alternating SGD on the 8-mode ring MLP GAN against SME-1 (estimated noise) and SVAG.

Keys: ``final_<observable>_discrete`` and ``weak_error_{sme1,svag<l>}_<observable>`` (with 95% intervals) for the
observables of ``analysis.observables.MIXTURE_OBSERVABLES``.
"""
from __future__ import annotations

import numpy as np
import torch

from analysis.compare import weak_error
from analysis.observables import MIXTURE_OBSERVABLES, curves, mixture_observables, probe_batch
from analysis.plots import band, new_figure
from analysis.svag import svag_runs
from games.errors import ConfigError
from games.mixture import MixtureGAN
from sde import integrate
from sde.estimated import estimated_sme1

from ..experiment import Experiment

PROBE = 256  # latents and target samples per run for the observables
NOISE_SAMPLES = 32  # per-sample gradients behind SME-1's noise factor
SIZES = {  # by --quick: SME-1's reference batch N, Euler–Maruyama steps per training step, SVAG's l
    True: {"reference": 512, "substeps": 1, "ls": [2]},
    False: {"reference": 2048, "substeps": 2, "ls": [2, 4]},
}


def checked_game(config, kind=MixtureGAN, entry: str = "mixture-gan"):
    game = config.game.build()
    if not isinstance(game, kind):
        raise ConfigError("game.name", f"{entry} needs the {kind.name} game, got {game.name!r}")
    if config.sga.update == "sim" or config.sga.schedule != "constant":
        raise ConfigError("sga.update", f"{entry} compares alternating training at a constant rate "
                                        f"(got update {config.sga.update!r}, schedule {config.sga.schedule!r})")
    return game


def run(config, report, quick: bool):
    game = checked_game(config)
    ensembles = sde_ensembles(config, report, game, SIZES[quick], "mixture-gan")
    rc = config.run
    probe = probe_batch(game, rc.paths, rc.seed + 99, PROBE, rc.device, rc.torch_dtype)
    summarise(report, ensembles, config.sga.steps * config.sga.lr, mixture_observables(game, probe),
              MIXTURE_OBSERVABLES, "mixture_gan")
    samples_figure(report, game, ensembles, probe[1][:1])


def sde_ensembles(config, report, game, size: dict, entry: str) -> dict:
    """K runs of training, SVAG with each l of ``size["ls"]`` and SME-1 (estimated on fresh reference batches
    of ``size["reference"]``, ``size["substeps"]`` Euler steps per training step), from the same K networks."""
    rc, steps, eta = config.run, config.sga.steps, config.sga.lr
    sga = config.sga.build(game)
    options = dict(K=rc.paths, record_every=rc.record_every, device=rc.device, dtype=rc.torch_dtype,
                   progress=not report.quiet)
    report.log(f"{entry}: {rc.paths} runs, {steps} steps of {sga.update} at η = {eta:g}; d = {game.d}")
    ensembles = {"discrete": sga.run(steps, seed=rc.seed, **options)}
    report.trajectory(ensembles["discrete"], "discrete")
    x0 = ensembles["discrete"].states[0].to(device=rc.device, dtype=rc.torch_dtype)
    for l in size["ls"]:
        ensembles[f"svag{l}"] = svag_runs(sga, [l], steps, x0=x0, seed=rc.seed + l,
                                          **{**options, "record_every": l * rc.record_every})[l]
        report.trajectory(ensembles[f"svag{l}"], f"svag{l}")
    sme1 = estimated_sme1(sga, size["reference"], rc.seed + 1, NOISE_SAMPLES)
    ensembles["sme1"] = integrate(sme1, x0, steps * eta, eta / size["substeps"],
                                  solver="euler", seed=rc.seed + 1,
                                  **{**options, "record_every": size["substeps"] * rc.record_every})
    report.trajectory(ensembles["sme1"], "sme1")
    for name, traj in ensembles.items():
        report.key(f"wall_time_{name}_s", round(traj.metadata["wall_time_s"], 2))
    return ensembles


def summarise(report, ensembles: dict, horizon: float, phi, names: dict, prefix: str):
    """The observables ``names`` (φ [K, len(names)] of states) over time, their weak errors at the horizon,
    and their figures ``prefix`` and ``prefix``_weak_errors."""
    values = {name: curves(traj, phi) for name, traj in ensembles.items()}
    at_end = lambda v: v  # noqa: E731  (the weak errors of the values already computed)
    errors = {name: weak_error(v[-1], values["discrete"][-1], at_end) for name, v in values.items() if name != "discrete"}
    scale = values["discrete"][-1].std(dim=0).clamp_min(1e-12).numpy()
    for i, key in enumerate(names):
        report.key(f"final_{key}_discrete", float(values["discrete"][-1, :, i].mean()))
        for name, estimate in errors.items():
            low, high = estimate.interval()
            report.interval(f"weak_error_{name}_{key}", estimate.value[i].item(), low[i].item(), high[i].item())
    observables_figure(report, ensembles, values, horizon, names, prefix)
    errors_figure(report, errors, scale, horizon, names, prefix)


def label(name: str) -> str:
    return {"discrete": "discrete (alternating SGD)", "sme1": "SME-1 (estimated σ)"}.get(
        name, f"SVAG l = {name[4:]}")


def observables_figure(report, ensembles: dict, values: dict, horizon: float, names: dict, prefix: str):
    fig, axes = new_figure(2, 3, size=(3.6, 2.8))
    for i, (key, title) in enumerate(names.items()):
        ax = axes.flat[i]
        for k, (name, traj) in enumerate(ensembles.items()):
            band(ax, traj.times.numpy(), values[name][..., i].numpy(), label=label(name), color=f"C{k}", paths=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("t = Σ η")
    axes.flat[0].legend(fontsize=7)
    report.figure(fig, prefix, f"The observables over t ≤ {horizon:g}: mean ± one standard deviation over "
                  "runs, for discrete training, SVAG and SME-1")


def errors_figure(report, errors: dict, scale: np.ndarray, horizon: float, names: dict, prefix: str):
    """Weak errors at the horizon in units of the discrete ensemble's spread of each observable."""
    fig, axes = new_figure(1, 1, size=(5.2, 3.0))
    ax, positions = axes[0, 0], np.arange(len(names))
    for k, (name, estimate) in enumerate(errors.items()):
        value, se = estimate.value.cpu().numpy() / scale, estimate.se.cpu().numpy() / scale
        ax.errorbar(positions + 0.15 * (k - (len(errors) - 1) / 2), value, yerr=1.96 * se, fmt="o", ms=4, capsize=2,
                    color=f"C{k + 1}", label=label(name))
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(positions, list(names.values()), fontsize=7, rotation=20)
    ax.set_ylabel("E φ(·) − E φ(discrete) / std")
    ax.legend(fontsize=7)
    report.figure(fig, f"{prefix}_weak_errors", f"Weak errors at t = {horizon:g} against discrete training, in "
                  "units of the runs' standard deviation of each observable (95% intervals)")


def samples_figure(report, game: MixtureGAN, ensembles: dict, z: torch.Tensor):
    fig, axes = new_figure(1, len(ensembles), size=(2.6, 2.6))
    modes = game.modes().numpy()
    for ax, (name, traj) in zip(axes[0], ensembles.items()):
        with torch.no_grad():
            points = game.generate(traj.states[-1][:1].to(z), z)[0].cpu().double().numpy()
        ax.plot(modes[:, 0], modes[:, 1], "o", mfc="none", mec="0.5", ms=10)
        ax.plot(points[:, 0], points[:, 1], ".", ms=1.5, alpha=0.5)
        ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
        ax.set_title(label(name), fontsize=8)
    report.figure(fig, "mixture_gan_samples", f"{z.shape[1]} samples of run 0 at the end (circles: the modes)")


EXPERIMENT = Experiment(
    name="mixture-gan",
    title="The 8-mode ring MLP GAN: alternating SGD against SME-1 (estimated noise) and SVAG",
    rank=11,
    run=run,
    defaults={"game.name": "mixture", "game.target": "ring", "game.loss": "ns-gan", "game.hidden": [16, 16],
              "sga.lr": 0.1, "sga.update": "alt-d", "sga.batch_size": 64, "sga.steps": 1000,
              "run.paths": 256, "run.record_every": 25, "run.dtype": "float32"},
    quick={"sga.steps": 200, "run.paths": 64, "run.record_every": 10},
    threads=1,
)
