"""What the one-layer GAN (``games.OneLayerGAN``) learned: the law N(0, AAᵀ) of its generator against the target's."""
from __future__ import annotations

import torch


def learned_covariance(game, traj) -> torch.Tensor:
    """AAᵀ [K, n, n] averaged over the second half of the records (Polyak averaging: SGDA's own stationary
    noise would otherwise floor the error).

    Args:
        game: the one-layer GAN.
        traj: its training's Trajectory.

    Returns:
        [K, n, n].
    """
    A = traj.states[:, :, : game.p].reshape(len(traj.times), traj.K, game.n, game.k)
    second_half = A[len(traj.times) // 2 :]
    return (second_half @ second_half.transpose(-1, -2)).mean(0)


def frobenius(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a − b‖_F over the last two dimensions.

    Args:
        a: the matrices [..., n, m].
        b: the matrices [..., n, m] (broadcast against a).

    Returns:
        The norms [...].
    """
    return (a - b).flatten(-2).norm(dim=-1)
