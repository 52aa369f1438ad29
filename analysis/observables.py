"""Observables φ(x) [K, m] of network GANs' states, each run on its own fixed probe (real samples, latents):
the losses, the gradient norms, and what the generated samples reach (modes, distance, fdd)."""
from __future__ import annotations

import torch

from games.random import Streams

from .digits import generator_quality
from .metrics import mode_coverage, sliced_w2

MIXTURE_OBSERVABLES = {"loss_g": "L_G", "loss_d": "L_D", "grad_norm_g": "|∇_θ L_G|", "grad_norm_d": "|∇_ω L_D|",
                       "modes": "modes reached (of 8)", "sw2": "sliced W₂ to the target"}
DIGITS_OBSERVABLES = {"loss_g": "L_G", "loss_d": "L_D", "grad_norm_g": "|∇_θ L_G|", "grad_norm_d": "|∇_ω L_D|",
                      "fdd": "fdd to the held-out digits", "coverage": "classes covered (of 10)"}


def mixture_observables(game, probe, projections: int = 32):
    """φ(x) [K, 6] for states x [K, d] of ``games.MixtureGAN``: the ``MIXTURE_OBSERVABLES``, run k on its own probe.

    A mode is reached when it gets at least 1/32 of the samples within half the spacing of the modes (the
    disc that is that mode's own); the sliced W₂ takes ``projections`` directions.

    Args:
        game: the mixture GAN.
        probe: (real [K, N, 2], z [K, N, z_dim]).
        projections: the sliced W₂'s directions.

    Returns:
        φ.
    """
    real, z = probe
    modes = game.modes(real.device, real.dtype)
    radius = float(modes[0].sub(modes[1]).norm()) / 2  # half the spacing: each mode's own disc

    def phi(x: torch.Tensor) -> torch.Tensor:
        x = x.to(real)
        fields, losses = game.player_fields(*game.split(x), probe)
        with torch.no_grad():
            fake = game.generate(x, z)
            reached = mode_coverage(fake, modes, radius).covered.to(x)
            values = [losses["theta"], losses["omega"], fields["theta"].norm(dim=-1), fields["omega"].norm(dim=-1),
                      reached, sliced_w2(fake, real, n_projections=projections)]
            return torch.stack(values, dim=-1)

    return phi


def digits_observables(game, probe):
    """φ(x) [K, 6] for states x [K, d] of ``games.DigitsGAN``: the ``DIGITS_OBSERVABLES``, run k on its own probe.

    Args:
        game: the digits GAN.
        probe: (real images, z).

    Returns:
        φ.
    """
    z = probe[1]

    def phi(x: torch.Tensor) -> torch.Tensor:
        x = x.to(z)
        fields, losses = game.player_fields(*game.split(x), probe)
        fdd, covered = generator_quality(game, x.detach(), z)
        values = [losses["theta"], losses["omega"], fields["theta"].norm(dim=-1), fields["omega"].norm(dim=-1)]
        return torch.stack([v.detach().double() for v in values] + [fdd, covered.double()], dim=-1)

    return phi


def curves(traj, phi) -> torch.Tensor:
    """φ at every record of ``traj``, [T, K, m].

    Args:
        traj: the Trajectory, states `[T, K, d]`.
        phi: the observables, states [K, d] → [K, m] (as from ``mixture_observables``).

    Returns:
        The values [T, K, m], float64 on the CPU.
    """
    return torch.stack([phi(x).cpu().double() for x in traj.states])


def probe_batch(game, paths: int, seed: int, size: int, device="cpu", dtype=torch.float64):
    """Each run's fixed probe (real, z) of ``size`` samples, from the streams of ``seed``.

    Args:
        game: the game whose ``sample`` draws it.
        paths: the number of runs K.
        seed: the streams' seed.
        size: samples per run.
        device: the streams' device.
        dtype: the streams' floating dtype.

    Returns:
        (real, z).
    """
    probe_streams = Streams.from_seed(seed, paths, device=device, dtype=dtype)
    return game.sample(paths, size, probe_streams)[:2]
