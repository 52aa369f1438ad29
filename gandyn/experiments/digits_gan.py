"""digits-gan: alternating SGD on the digits GAN against SME-1 (estimated noise) and SVAG, on real images.

Keys: ``final_<observable>_discrete`` and ``weak_error_{sme1,svag<l>}_<observable>`` (with 95% intervals) for the
observables of ``analysis.observables.DIGITS_OBSERVABLES``.
"""
from __future__ import annotations

import torch

from analysis.observables import DIGITS_OBSERVABLES, digits_observables, probe_batch
from analysis.plots import new_figure
from games.digits import DigitsGAN

from ..experiment import Experiment
from .mixture_gan import checked_game, label, sde_ensembles, summarise

SIZES = {  # by --quick: SME-1's reference batch, Euler–Maruyama steps per training step, SVAG's l
    True: {"reference": 256, "substeps": 1, "ls": [2]},
    False: {"reference": 512, "substeps": 1, "ls": [2, 4]},
}
PROBE = 600  # latents and training images per run (about the held-out reference's 597)


def run(config, report, quick: bool):
    game = checked_game(config, DigitsGAN, "digits-gan")
    ensembles = sde_ensembles(config, report, game, SIZES[quick], "digits-gan")
    rc = config.run
    probe = probe_batch(game, rc.paths, rc.seed + 99, PROBE, rc.device, rc.torch_dtype)
    summarise(report, ensembles, config.sga.steps * config.sga.lr, digits_observables(game, probe),
              DIGITS_OBSERVABLES, "digits_gan")
    samples_figure(report, game, ensembles, probe[1][:1, :16])


def samples_figure(report, game: DigitsGAN, ensembles: dict, z: torch.Tensor):
    """16 images of run 0 at the end of each ensemble, as 4 × 4 tiles."""
    fig, axes = new_figure(1, len(ensembles), size=(2.4, 2.4))
    for ax, (name, traj) in zip(axes[0], ensembles.items()):
        with torch.no_grad():
            images = game.generate(traj.states[-1][:1].to(z), z)[0].cpu().double()
        tiles = images.reshape(4, 4, 8, 8).permute(0, 2, 1, 3).reshape(32, 32)
        ax.imshow(tiles.numpy(), cmap="gray_r", vmin=-1, vmax=1)
        ax.set(xticks=[], yticks=[])
        ax.set_title(label(name), fontsize=8)
    report.figure(fig, "digits_gan_samples", "16 images of run 0 at the end")


EXPERIMENT = Experiment(
    name="digits-gan",
    title="The digits GAN: alternating SGD against SME-1 (estimated noise) and SVAG on real images",
    rank=16,
    run=run,
    defaults={"game.name": "digits", "game.hidden": [64, 64], "game.latent": 16, "sga.lr": 0.05,
              "sga.update": "alt-d", "sga.batch_size": 64, "sga.steps": 500, "run.paths": 32,
              "run.record_every": 25, "run.dtype": "float32"},
    quick={"game.hidden": [32, 32], "game.latent": 8, "sga.steps": 150, "run.paths": 16, "run.record_every": 15},
    threads=1,
)
