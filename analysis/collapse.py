"""Mode collapse against critic damping (THEORY §3, §5): the Gaussian game's W₂ along its gradient flow, and
the coverage of a mixture by particles flowing from one blob."""
from __future__ import annotations

import torch

from flows import gradient_flow
from flows.dual import DualFlowGame, dual_flow
from flows.mixtures import blob_particles
from games import GaussianGame
from games.random import Streams

from .metrics import mmd2, mode_coverage


def gaussian_w2(ridge: float, alpha: float = 1.0, t_end: float = 40.0, n_records: int = 201, **game_options):
    """(times [T], W₂ [T], σ [T]) of the Gaussian game's gradient flow (dopri5, rtol 1e-8) with ridge λ and c_ω = α.

    Args:
        ridge: the critic's ridge λ.
        alpha: the critic's time scale c_ω.
        t_end: the horizon.
        n_records: records over [0, t_end].
        game_options: other options of ``GaussianGame``.

    Returns:
        (times, W₂ to the target, |σ|).
    """
    game = GaussianGame(ridge=ridge, **game_options)
    x0 = game.init(1, Streams.from_seed(0, 1))
    flow = gradient_flow(game, x0, t_end, c_omega=alpha, n_records=n_records, rtol=1e-8, atol=1e-10)
    states = flow.states[:, 0]
    return flow.times, game.w2(states), states[:, 1].abs()


def best_ridge(finals: dict) -> float:
    """The λ with the smallest final W₂ in {λ: W₂}."""
    return min(finals, key=finals.get)


def coverage(game: DualFlowGame, states: torch.Tensor, modes: torch.Tensor, target: torch.Tensor,
             radius: float = 0.25, bandwidth: float = 0.5) -> dict:
    """Modes covered, high-quality fraction and MMD² [T] of the particles in states [T, d] (``analysis.metrics``).

    Args:
        game: the particle game.
        states: its states [T, d].
        modes: the mode centres [C, 2].
        target: the target samples [M, 2].
        radius: a particle within it of its nearest mode is of high quality.
        bandwidth: the RBF kernel's of the MMD² (V-statistic).

    Returns:
        {"covered", "quality", "mmd2"}: [T] each; "particles": the last ones [N, 2].
    """
    points = game.particles(states.to(target))
    cov = mode_coverage(points, modes, radius)
    mmd = mmd2(points, target, bandwidth=bandwidth, unbiased=False)
    return {"covered": cov.covered.cpu(), "quality": cov.high_quality.cpu(), "mmd2": mmd.cpu(),
            "particles": points[-1].cpu()}


def mixture_flow(name: str, alpha: float, ridge: float, particles: int, t_end: float, n_records: int = 26,
                 seed: int = 0, dtype=torch.float64, device="cpu") -> dict:
    """One S2 flow of ``flows.mixtures.blob_particles`` (dopri5, rtol 1e-4): its trajectory, times and ``coverage``.

    Args:
        name: the mixture (``flows.mixtures.MODES``).
        alpha: the critic's time scale α.
        ridge: its ridge λ.
        particles: N.
        t_end: the horizon.
        n_records: the number of records over it.
        seed: the seed of targets and blob.
        dtype: the tensors' floating dtype.
        device: the tensors' device.

    Returns:
        {"trajectory", "times", "modes", "target", and ``coverage``'s series}.
    """
    game, modes, target = blob_particles(name, ridge, particles, seed, dtype, device)
    x0 = game.init(1, Streams.from_seed(seed, 1, device=device, dtype=dtype))
    flow = dual_flow(game, x0, t_end, alpha=alpha, n_records=n_records, rtol=1e-4, atol=1e-6)
    return {"trajectory": flow, "times": flow.times, "modes": modes, "target": target.cpu(),
            **coverage(game, flow.states[:, 0], modes, target)}
