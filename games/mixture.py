"""Mixture-of-Gaussians GAN: MLP generator G_θ: R^{z_dim} → R², MLP discriminator D_ω: R² → R.

Targets: "ring" (8 modes on the circle of radius 2, σ = 0.02) and "grid" (5×5 modes on
{−4, −2, 0, 2, 4}², σ = 0.05). The networks are nn.Sequential architectures built on the meta device;
their parameters live flat in θ [K, p] and ω [K, q] (nn.Linear order: weight [out, in] row-major,
then bias) and K networks run as one computation with torch.func.vmap(functional_call).

Hidden activation: "tanh" by default, so that the field is smooth (C^∞) — the modified equations,
SME-2 drifts and update-map Jacobians use DV; "relu" is the common choice in the GAN literature.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .base import Game
from .errors import ConfigError, check_choice, check_int, check_positive
from .random import Streams

TARGETS = {"ring": 0.02, "grid": 0.05}  # mode standard deviations σ
LOSSES = ("gan", "ns-gan", "wgan-gp")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(sizes, activation: str) -> nn.Sequential:
    """Linear layers sizes[0] → … → sizes[-1] with the activation between them, on the meta device."""
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, device="meta"), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers[:-1])


def unflatten(flat: torch.Tensor, shapes) -> dict:
    """Split flat parameters [K, n] into {name: [K, *shape]} for ``shapes`` = [(name, shape), …]."""
    sizes = [math.prod(shape) for _, shape in shapes]
    parts = torch.split(flat, sizes, dim=-1)
    return {name: part.reshape(flat.shape[0], *shape) for (name, shape), part in zip(shapes, parts)}


def _batched(module: nn.Module, shapes, flat: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """module with run k's parameters applied to inputs[k]: [K, N, in] → [K, N, out]."""
    return vmap(lambda params, x: functional_call(module, params, (x,)))(unflatten(flat, shapes), inputs)


class MixtureGAN(Game):
    """GAN on a 2-D Gaussian mixture; losses "gan" (zero-sum), "ns-gan" (non-saturating), "wgan-gp"."""

    name = "mixture"

    def __init__(self, target: str = "ring", loss: str = "ns-gan", z_dim: int = 2, hidden=(64, 64),
                 activation: str = "tanh", gp_weight: float = 10.0):
        self.target = check_choice("game.target", target, tuple(TARGETS))
        self.loss = check_choice("game.loss", loss, LOSSES)
        self.z_dim = check_int("game.z_dim", z_dim)
        self.hidden = self._check_hidden(hidden)
        self.activation = check_choice("game.activation", activation, tuple(ACTIVATIONS))
        self.gp_weight = check_positive("game.gp_weight", gp_weight, allow_zero=True)
        self.sigma = TARGETS[self.target]
        self.generator_module = mlp([self.z_dim, *self.hidden, 2], self.activation)
        self.discriminator_module = mlp([2, *self.hidden, 1], self.activation)
        self._g_shapes = [(n, w.shape) for n, w in self.generator_module.named_parameters()]
        self._d_shapes = [(n, w.shape) for n, w in self.discriminator_module.named_parameters()]
        self.p = sum(math.prod(s) for _, s in self._g_shapes)
        self.q = sum(math.prod(s) for _, s in self._d_shapes)
        self._bounds = torch.cat(
            [self._init_bounds(self.generator_module), self._init_bounds(self.discriminator_module)]
        )

    @staticmethod
    def _check_hidden(hidden) -> tuple:
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            raise ConfigError("game.hidden", f"expected a sequence of layer widths, got {hidden!r}")
        return tuple(check_int("game.hidden", h) for h in hidden)

    @staticmethod
    def _init_bounds(module: nn.Module) -> torch.Tensor:
        """1/√fan_in for every parameter entry (PyTorch's default nn.Linear init range), [n]."""
        return torch.cat(
            [torch.full((w.numel(),), layer.in_features ** -0.5, dtype=torch.float64)
             for layer in module if isinstance(layer, nn.Linear) for w in (layer.weight, layer.bias)]
        )

    def modes(self, device="cpu", dtype=torch.float64) -> torch.Tensor:
        """The mode centres [M, 2]."""
        if self.target == "ring":
            angle = torch.arange(8, device=device, dtype=dtype) * (2 * math.pi / 8)
            return 2.0 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
        axis = torch.arange(-4.0, 5.0, 2.0, device=device, dtype=dtype)
        return torch.cartesian_prod(axis, axis)

    def generate(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """G_θ(z) [K, N, 2] for states x [K, d] (or θ [K, p]) and latents z [K, N, z_dim]."""
        return _batched(self.generator_module, self._g_shapes, x[..., : self.p], z)

    def discriminate(self, omega: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """D_ω(points) [K, N] for ω [K, q] and points [K, N, 2]."""
        return _batched(self.discriminator_module, self._d_shapes, omega, points)[..., 0]

    def discriminator_input_grad(self, omega: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """∇_x D_ω(x) at each point [K, N, 2]; torch.func, so it composes with autograd and jacrev."""
        d_sum = lambda params, x: functional_call(self.discriminator_module, params, (x,)).sum()
        return vmap(grad(d_sum, argnums=1))(unflatten(omega, self._d_shapes), points)

    def sample(self, K: int, B: int, generator: Streams):
        """(real [K, B, 2], z [K, B, z_dim]) and, for wgan-gp, interpolation weights ε [K, B, 1]."""
        modes = self.modes(generator.device, generator.dtype)
        real = modes[generator.randint(len(modes), B)] + self.sigma * generator.normal(B, 2)
        z = generator.normal(B, self.z_dim)
        return (real, z, generator.uniform(B, 1)) if self.loss == "wgan-gp" else (real, z)

    def player_losses(self, theta, omega, batch, players=("theta", "omega")) -> dict:
        """As Game's, but the generator's NS-GAN and WGAN-GP losses alone need no real samples."""
        if tuple(players) != ("theta",) or self.loss == "gan":
            return super().player_losses(theta, omega, batch, players)
        d_fake = self.discriminate(omega, self.generate(theta, batch[1]))
        return {"theta": (-d_fake if self.loss == "wgan-gp" else F.softplus(-d_fake)).mean(-1)}

    def sample_losses(self, theta, omega, batch):
        """Per-sample (L_G, L_D) [K, B]; log σ via softplus: −log σ(t) = softplus(−t)."""
        real, z = batch[:2]
        fake = self.generate(theta, z)
        d_real, d_fake = self.discriminate(omega, real), self.discriminate(omega, fake)
        if self.loss == "wgan-gp":
            eps = batch[2]
            slope = self.discriminator_input_grad(omega, eps * real + (1 - eps) * fake)
            penalty = (torch.linalg.vector_norm(slope, dim=-1) - 1).square()
            return -d_fake, d_fake - d_real + self.gp_weight * penalty
        loss_d = F.softplus(-d_real) + F.softplus(d_fake)
        return (-loss_d if self.loss == "gan" else F.softplus(-d_fake)), loss_d

    def init(self, K: int, generator: Streams) -> torch.Tensor:
        """Every entry uniform on ±1/√fan_in of its layer (PyTorch's nn.Linear default range)."""
        bounds = torch.as_tensor(self._bounds, device=generator.device, dtype=generator.dtype)
        return (2 * generator.uniform(self.d) - 1) * bounds

    def _near(self, samples: torch.Tensor, radius) -> torch.Tensor:
        """[K, N, M]: sample n lies within ``radius`` (default 3σ) of mode m."""
        modes = self.modes(samples.device, samples.dtype)
        r = 3 * self.sigma if radius is None else radius
        return (samples[..., None, :] - modes).square().sum(-1) < r * r

    def mode_coverage(self, samples: torch.Tensor, radius=None) -> torch.Tensor:
        """Fraction of modes with at least one of the samples [K, N, 2] within ``radius``, [K]."""
        return self._near(samples, radius).any(1).to(samples.dtype).mean(-1)

    def quality(self, samples: torch.Tensor, radius=None) -> torch.Tensor:
        """Fraction of the samples [K, N, 2] within ``radius`` of some mode, [K]."""
        return self._near(samples, radius).any(-1).to(samples.dtype).mean(-1)
