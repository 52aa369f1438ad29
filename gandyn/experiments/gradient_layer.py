"""gradient-layer: a generator grown from gradient layers (Nitanda & Suzuki 2018) against a parametric MLP generator.

Both learn the 8-mode ring with the same critic. Keys per method (``gradient_layer``, ``parametric``):
``mmd_final_<method>`` (with ``_lo``, ``_hi``), ``modes_covered_<method>``, ``high_quality_<method>``,
``mmd_best_<method>``, ``critic_updates_to_threshold_<method>`` and the timings.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from analysis.compare import first_below, mean_interval
from analysis.metrics import mmd2, mode_coverage
from analysis.plots import band, new_figure
from flows.gradient_layer import GradientLayer
from games.errors import ConfigError
from games.mixture import MixtureGAN
from games.random import Streams

from ..experiment import Experiment

ETA = 0.2  # layer step η
N_CRITIC = 5  # critic updates per layer
PARTICLES = 512  # the gradient layer's training particles; the points and target samples of the curves
EVAL = 2048  # fresh latents and target samples at the end
BANDWIDTH = 0.2
THRESHOLD = 1e-2  # the MMD² level whose first crossing (by the mean over runs) times each method
METHODS = {"gradient_layer": "gradient layer", "parametric": "parametric G_θ (SGA)"}


def gradient_layer_trainer(game: MixtureGAN, sga_config) -> GradientLayer:
    """The gradient-layer trainer whose critic is trained as the parametric run's is."""
    disc = sga_config.disc
    return GradientLayer(game, loss="gan", eta=ETA, n_critic=N_CRITIC, critic_lr=sga_config.lr * disc.scale,
                         critic_optimizer=disc.optimizer, critic_options=dict(disc.options),
                         ridge=disc.weight_decay, batch_size=sga_config.batch_size, particles=PARTICLES)


def curve(points, targets: torch.Tensor) -> np.ndarray:
    """MMD² [T, K] of each record's generated points [K, N, 2] against targets [K, M, 2]."""
    return np.stack([mmd2(x.to(targets), targets, bandwidth=BANDWIDTH).cpu().double().numpy()
                     for x in points])


def best(report, method: str, steps: np.ndarray, wall: np.ndarray, values: np.ndarray):
    """(lowest mean MMD² over the records, its critic updates), also as key figures."""
    mean = np.nanmean(values, axis=1)
    i = int(np.nanargmin(mean))
    report.key(f"mmd_best_{method}", float(mean[i]))
    report.key(f"critic_updates_at_best_{method}", float(steps[i]))
    return float(mean[i]), float(steps[i])


def train_gradient_layer(gl: GradientLayer, critic_updates: int, config, targets, theta0, quiet: bool):
    """Grow the layers on G_θ₀; (trajectory, critic updates [T], wall seconds [T], MMD² curve [T, K])."""
    run = config.run
    every = max(1, run.record_every * config.sga.n_d // N_CRITIC)
    traj = gl.run(critic_updates // N_CRITIC, K=run.paths, seed=run.seed, base=theta0, record_every=every,
                  record_particles=PARTICLES, device=run.device, dtype=run.torch_dtype, progress=not quiet)
    points = traj.states.reshape(*traj.states.shape[:2], -1, 2)
    return traj, traj["critic_updates"][:, 0].numpy(), traj["wall_s"][:, 0].numpy(), curve(points, targets)


def train_parametric(game: MixtureGAN, config, targets, latents, quiet: bool):
    """Alternating SGA on G_θ; (trajectory, critic updates [T], wall seconds [T], MMD² curve [T, K])."""
    run, sga = config.run, config.sga
    traj = sga.build(game).run(sga.steps, K=run.paths, seed=run.seed, record_every=run.record_every,
                               device=run.device, dtype=run.torch_dtype, progress=not quiet)
    with torch.no_grad():
        points = [game.generate(theta.to(latents), latents) for theta in traj.theta]
    iterations = np.rint(traj.times.numpy() / sga.lr)  # t = Σ η_k with the constant rate
    wall = iterations / max(sga.steps, 1) * traj.metadata["wall_time_s"]
    return traj, iterations * sga.n_d, wall, curve(points, targets)


def final_samples(gl: GradientLayer, theta: torch.Tensor, game: MixtureGAN, latents: torch.Tensor):
    """Fresh samples {method: [K, M, 2]} and the seconds pushing them through the layers took."""
    start = time.perf_counter()
    pushed = gl.push(latents)
    push_time = time.perf_counter() - start
    with torch.no_grad():
        return {"gradient_layer": pushed, "parametric": game.generate(theta.to(latents), latents)}, push_time


def mmd_figure(report, curves: dict, critic_updates: int, target: str):
    fig, axes = new_figure(1, 2, size=(4.4, 3.4))
    for i, (method, (steps, wall, values)) in enumerate(curves.items()):
        band(axes[0, 0], steps, values, label=METHODS[method], color=f"C{i}")
        band(axes[0, 1], wall, values, label=METHODS[method], color=f"C{i}")
    for ax, label in zip(axes[0], ("critic updates", "wall time (s)")):
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel(label)
        ax.set_ylabel(f"MMD² (RBF, h = {BANDWIDTH})")
        ax.legend(fontsize=8)
    report.figure(fig, "gradient_layer_mmd", f"MMD² to the {target} target against critic updates and against "
                  f"wall time, {critic_updates} critic updates: mean ± std over runs, and three runs")


def samples_figure(report, samples: dict, game: MixtureGAN):
    fig, axes = new_figure(1, 2, size=(3.4, 3.4))
    modes = game.modes().numpy()
    for ax, (method, x) in zip(axes[0], samples.items()):
        x = x[0].detach().cpu().double().numpy()
        ax.plot(modes[:, 0], modes[:, 1], "o", mfc="none", mec="0.5", ms=12)
        ax.plot(x[:, 0], x[:, 1], ".", color="C0", ms=1.5, alpha=0.4)
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
        ax.set_title(METHODS[method], fontsize=9)
    report.figure(fig, "gradient_layer_samples",
                  f"{EVAL} fresh samples of run 0 at the end (circles: the mode centres)")


def summarise(report, samples: dict, targets: torch.Tensor, game: MixtureGAN) -> dict:
    """Final MMD² with intervals, modes covered and the high-quality fraction, per method."""
    rows = {}
    for method, x in samples.items():
        final = mmd2(x.to(targets), targets, bandwidth=BANDWIDTH).cpu().double().numpy()
        mean, low, high = mean_interval(final)
        cover = mode_coverage(x, game.modes(x.device, x.dtype), 3 * game.sigma)
        rows[method] = (mean, low, high, cover.covered.double().mean().item(), cover.high_quality.mean().item())
        report.key(f"mmd_final_{method}", mean)
        report.key(f"mmd_final_{method}_lo", low)
        report.key(f"mmd_final_{method}_hi", high)
        report.key(f"modes_covered_{method}", rows[method][3])
        report.key(f"high_quality_{method}", rows[method][4])
    return rows


def run(config, report, quick: bool):
    compare(config, report)


def checked_game(config) -> MixtureGAN:
    """The mixture game, if the set-up is one this comparison is made for."""
    game = config.game.build()
    if not isinstance(game, MixtureGAN):
        raise ConfigError("game.name", f"gradient-layer needs the mixture game, got {game.name!r}")
    if game.loss not in ("gan", "ns-gan"):
        raise ConfigError("game.loss", f"gradient-layer trains a logistic critic: expected gan or ns-gan, "
                                       f"got {game.loss!r}")
    if config.sga.schedule != "constant":
        raise ConfigError("sga.schedule", f"gradient-layer trains both critics at a constant rate, got "
                                          f"{config.sga.schedule!r}")
    return game


def compare(config, report):
    """Train both generators from the same G_θ₀, then write the figures, key figures and paragraph."""
    game, rc = checked_game(config), config.run
    critic_updates = config.sga.steps * config.sga.n_d
    evaluation = Streams.from_seed(rc.seed + 1, rc.paths, device=rc.device, dtype=rc.torch_dtype)
    targets, latents = game.sample(rc.paths, PARTICLES, evaluation)[0], evaluation.normal(PARTICLES, game.z_dim)
    report.log(f"gradient-layer: {rc.paths} runs, {critic_updates} critic updates each")
    p_traj, *p_curve = train_parametric(game, config, targets, latents, report.quiet)
    report.trajectory(p_traj, "parametric")
    gl = gradient_layer_trainer(game, config.sga)
    gl_traj, *gl_curve = train_gradient_layer(gl, critic_updates, config, targets, p_traj.theta[0], report.quiet)
    report.trajectory(gl_traj, "gradient_layer")
    fresh_targets = game.sample(rc.paths, EVAL, evaluation)[0]
    samples, push_time = final_samples(gl, p_traj.theta[-1], game, evaluation.normal(EVAL, game.z_dim))
    rows = summarise(report, samples, fresh_targets, game)
    curves = {"gradient_layer": gl_curve, "parametric": p_curve}
    mmd_figure(report, curves, critic_updates, game.target)
    samples_figure(report, samples, game)
    times = {"gradient_layer": gl_traj.metadata["wall_time_s"], "parametric": p_traj.metadata["wall_time_s"]}
    crossings = timing_keys(report, curves, times, push_time)
    bests = {method: best(report, method, *c) for method, c in curves.items()}
    report.key("layers", len(gl.stack))
    report.key("critic_updates", critic_updates)
    report.key("runs", rc.paths)
    report.text(text(rows, times, crossings, bests, push_time, len(gl.stack), critic_updates, len(game.modes())))


def timing_keys(report, curves: dict, times: dict, push_time: float) -> dict:
    """Training and sampling times, and when each mean curve first reached ``THRESHOLD``."""
    crossings = {method: first_below(*c, THRESHOLD) for method, c in curves.items()}
    for method, (updates, seconds) in crossings.items():
        report.key(f"wall_time_{method}_s", round(times[method], 3))
        report.key(f"critic_updates_to_threshold_{method}", updates)
        report.key(f"wall_time_to_threshold_{method}_s", round(seconds, 3))
    report.key("push_time_gradient_layer_s", round(push_time, 3))
    report.key("mmd_threshold", THRESHOLD)
    return crossings


def text(rows: dict, times: dict, crossings: dict, bests: dict, push_time: float, layers: int,
         critic_updates: int, n_modes: int) -> str:
    """The report's paragraph: what the figure shows, with this run's numbers, then the set-up."""
    said = {m: f"MMD² {r[0]:.1e} with {r[3]:g} of {n_modes} modes covered after {times[m]:.1f} s of training "
               f"({_crossing(crossings[m])}; lowest mean on the curve {bests[m][0]:.1e}, at {bests[m][1]:.0f} "
               f"critic updates)" for m, r in rows.items()}
    table = "\n".join(f"| {METHODS[m]} | {r[0]:.2e} [{r[1]:.2e}, {r[2]:.2e}] | {r[3]:.2f} | {r[4]:.2f} |"
                      for m, r in rows.items())
    return (
        f"The first figure shows MMD² to the target against critic updates (left) and training wall time "
        f"(right), the second the fresh samples of one run. With the same critic and {critic_updates} critic "
        f"updates, and as means over runs, the gradient-layer generator ({layers} layers) reached "
        f"{said['gradient_layer']}; the parametric MLP generator reached {said['parametric']}. The "
        f"gradient layer moves the samples themselves along ∇_x D, so no network has to learn a map onto separated modes; "
        f"its price is paid at sampling time: {layers} critic gradients per fresh batch ({push_time:.1f} s "
        f"for {EVAL} latents), where G_θ takes one forward pass. MMD² is the unbiased estimate and can "
        f"dip below 0 near a match."
        + f"\n\n| generator | final MMD² (95% interval over runs) | modes covered (of {n_modes}) | "
          "fraction within 3σ |\n|---|---|---|---|\n" + table
    )


def _crossing(crossing) -> str:
    updates, seconds = crossing
    if math.isnan(updates):
        return f"its mean MMD² never fell to {THRESHOLD:g}"
    return f"mean MMD² ≤ {THRESHOLD:g} after {updates:.0f} critic updates, {seconds:.1f} s"


EXPERIMENT = Experiment(
    name="gradient-layer",
    title="Gradient-layer generator against a parametric generator (Nitanda & Suzuki 2018)",
    rank=8,
    run=run,
    threads=1,
    defaults={"game.name": "mixture", "game.target": "ring", "game.loss": "ns-gan", "game.hidden": [64, 64],
              "sga.update": "alt-d", "sga.n_d": 1, "sga.lr": 2e-3, "sga.batch_size": 128, "sga.steps": 3000,
              "sga.gen.optimizer": "adam", "sga.gen.options": {"beta1": 0.5},
              "sga.disc.optimizer": "adam", "sga.disc.options": {"beta1": 0.5},
              "run.paths": 8, "run.record_every": 50, "run.dtype": "float32"},
    quick={"sga.steps": 1000, "run.paths": 4, "run.record_every": 25},
)
