"""The GAN losses in one form (Mescheder, Geiger & Nowozin 2018, §2): the discriminator maximises

    V = E_p f(D(y)) + E_q f(−D(x)),   f(t) = log σ(t) = −softplus(−t) (gan, ns-gan), f(t) = t (wgan, wgan-gp),

the zero-sum generator minimises f(−D(x)) (its part of V), the non-saturating one −f(D(x)) = −log σ(D(x)).
A loss is named "gan", "ns-gan", "wgan" or "wgan-gp"; the last two share f(t) = t.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def softplus(t: torch.Tensor, one_by_one: bool = False) -> torch.Tensor:
    """log(1 + eᵗ); ``one_by_one``: as max(t, 0) + log(1 + e^{−|t|}), from ops whose CPU kernels round alike
    at every position of a tensor (torch's softplus and log1p take another path for a vector's tail), so
    that run k of an ensemble is bitwise run k alone.

    Args:
        t: any tensor.
        one_by_one: use the elementwise form, rounded alike at every position.

    Returns:
        log(1 + eᵗ), shaped as t.
    """
    return torch.relu(t) + torch.log(1 + torch.exp(-t.abs())) if one_by_one else F.softplus(t)


def is_linear(loss: str) -> bool:
    """Whether f(t) = t (wgan, wgan-gp) rather than log σ(t)."""
    return loss.startswith("wgan")


def f(t: torch.Tensor, loss: str, one_by_one: bool = False) -> torch.Tensor:
    """f(t): t (wgan) or log σ(t) = −softplus(−t) (gan, ns-gan) (Mescheder et al. 2018, §2).

    Args:
        t: the critic's values.
        loss: the loss's name.
        one_by_one: softplus rounded alike at every position (``softplus``).

    Returns:
        f(t), shaped as t.
    """
    return t if is_linear(loss) else -softplus(-t, one_by_one)


def f_prime(t: torch.Tensor, loss: str) -> torch.Tensor:
    """f'(t): 1 (wgan) or σ(−t) (gan, ns-gan).

    Args:
        t: the critic's values.
        loss: the loss's name.

    Returns:
        f'(t), shaped as t.
    """
    return torch.ones_like(t) if is_linear(loss) else torch.sigmoid(-t)


def f_second(t: torch.Tensor, loss: str) -> torch.Tensor:
    """f''(t): 0 (wgan) or −σ(t)σ(−t) (gan, ns-gan).

    Args:
        t: the critic's values.
        loss: the loss's name.

    Returns:
        f''(t), shaped as t.
    """
    return torch.zeros_like(t) if is_linear(loss) else -torch.sigmoid(t) * torch.sigmoid(-t)


def generator_loss(d_fake: torch.Tensor, loss: str, one_by_one: bool = False) -> torch.Tensor:
    """ℓ_G(D(x)): −f(D(x)) = −log σ(D(x)) (ns-gan) or f(−D(x)) (zero-sum) (Goodfellow et al. 2014, §3).

    Args:
        d_fake: the critic's values at generated samples.
        loss: the loss's name.
        one_by_one: softplus rounded alike at every position (``softplus``).

    Returns:
        ℓ_G, shaped as d_fake.
    """
    return -f(d_fake, loss, one_by_one) if loss == "ns-gan" else f(-d_fake, loss, one_by_one)


def generator_loss_slope(d_fake: torch.Tensor, loss: str) -> torch.Tensor:
    """ℓ_G'(t): −f'(t) (ns-gan) or −f'(−t) (zero-sum).

    Args:
        d_fake: the critic's values t = D(x) at generated samples.
        loss: the loss's name.

    Returns:
        dℓ_G/dt, shaped as d_fake.
    """
    return -f_prime(d_fake, loss) if loss == "ns-gan" else -f_prime(-d_fake, loss)


def gradient_penalty(slope_norm: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """(|∇_x D| − g₀)², WGAN-GP's penalty on the critic's input gradient (Gulrajani et al. 2017, eq. 3).

    Args:
        slope_norm: |∇_x D| at the penalised points.
        target: g₀ (1 in the paper).

    Returns:
        The penalty, shaped as slope_norm.
    """
    return (slope_norm - target).square()
