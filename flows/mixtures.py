"""Particle flows on Gaussian mixtures (THEORY §5, S2): mixture targets, their samples, and a dual flow
of particles started as one blob against a WGAN critic of RBF features."""
from __future__ import annotations

import torch

from games import MixtureGAN
from games.mixture import TARGETS

from .dual import DualFlowGame

MODE_STD = TARGETS["ring"]  # each mode's standard deviation
MODES = {  # name: the mode centres [C, 2] on (device, dtype)
    "mix2": lambda device, dtype: torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=dtype, device=device),
    "ring8": lambda device, dtype: MixtureGAN("ring").modes(device, dtype),
}


def mixture_modes(name: str, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """The mode centres [C, 2] of ``MODES``' mixture ``name``: "mix2" (±1, 0), "ring8" the ring of games.mixture.

    Args:
        name: a key of ``MODES``.
        dtype: the tensor's dtype.
        device: the tensor's device.

    Returns:
        [C, 2].
    """
    return MODES[name](device, dtype)


def mixture_samples(modes: torch.Tensor, M: int, seed: int, std: float = MODE_STD) -> torch.Tensor:
    """M target samples [M, 2], sample j from mode j mod C with std ``std`` (the modes equally weighted).

    Args:
        modes: the mode centres [C, 2].
        M: the number of samples.
        seed: the seed of their noise.
        std: each mode's standard deviation.

    Returns:
        [M, 2] on the modes' device and dtype.
    """
    noise = torch.randn(M, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return modes[torch.arange(M, device=modes.device) % len(modes)] + std * noise.to(modes)


def blob_particles(name: str, ridge: float, particles: int, seed: int = 0, dtype=torch.float64, device="cpu",
                   bandwidth: float = 0.7, centres_per_mode: int = 4, blob: float = 0.1):
    """(DualFlowGame, modes [C, 2], targets [M, 2]): N particles in a blob N(mode₀, blob² I) on the first mode,
    M = 2N target samples, a WGAN critic linear in RBF features centred on the first ``centres_per_mode``
    targets of each mode, with a ridge.

    Args:
        name: the mixture (``MODES``).
        ridge: the critic's ridge λ.
        particles: N.
        seed: the seed of the targets (and seed + 1 of the blob).
        dtype: the tensors' dtype.
        device: the tensors' device.
        bandwidth: the RBF features' bandwidth h.
        centres_per_mode: feature centres per mode.
        blob: the blob's standard deviation.

    Returns:
        (game, modes, targets).
    """
    modes = mixture_modes(name, dtype, device)
    target = mixture_samples(modes, 2 * particles, seed)
    start = torch.randn(particles, 2, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    game = DualFlowGame(target, positions=modes[0] + blob * start.to(modes), critic="rbf", loss="wgan",
                        ridge=ridge, bandwidth=bandwidth, centres=target[: centres_per_mode * len(modes)])
    return game, modes, target


def two_modes(points: int, dtype, centre: float = 2.0, std: float = 0.3, seed: int = 0) -> torch.Tensor:
    """[points, 2] samples of ½N((−c, 0), std²I) + ½N((c, 0), std²I), alternating between the modes.

    Args:
        points: how many.
        dtype: theirs.
        centre: c.
        std: each mode's standard deviation.
        seed: the seed of their noise.

    Returns:
        [points, 2].
    """
    rng = torch.Generator().manual_seed(seed)
    sign = torch.where(torch.arange(points) % 2 == 0, -1.0, 1.0)
    centres = torch.stack([centre * sign, torch.zeros(points)], dim=-1)
    return (centres + std * torch.randn(points, 2, generator=rng)).to(dtype)
