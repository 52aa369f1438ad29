"""GANs whose players are MLPs, K networks run as one computation (torch.func).

Generator G_θ: R^{z_dim} → R^n, discriminator D_ω: R^n → R. The networks are nn.Sequential
architectures built on the meta device; their parameters live flat in θ [K, p] and ω [K, q] (nn.Linear
order: weight [out, in] row-major, then bias) and K networks run as one computation with
torch.func.vmap(functional_call), so that run k of an ensemble is the same computation as a single run.

A subclass gives the data: ``n`` and ``real_samples``. Losses (Goodfellow et al. 2014; Gulrajani et al.
2017):

- "gan": the zero-sum game L_G = −L_D, L_D = −log D(x) − log(1 − D(G(z))) with D = σ(logit);
- "ns-gan": the same L_D, and the non-saturating L_G = −log σ(D(G(z)));
- "wgan-gp": L_G = −D(G(z)), L_D = D(G(z)) − D(x) + λ(|∇D(x̂)| − 1)², x̂ = εx + (1 − ε)G(z).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from .base import Game
from .errors import ConfigError, check_choice, check_int, check_positive
from .maths.losses import f, generator_loss, gradient_penalty
from .random import Streams

LOSSES = ("gan", "ns-gan", "wgan-gp")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(sizes, activation: str, output: Optional[str] = None) -> nn.Sequential:
    """Linear layers sizes[0] → … → sizes[-1] with ``activation`` between them and ``output`` (None: none)
    after the last, on the meta device.

    Args:
        sizes: the layer widths, input first and output last.
        activation: the activation between layers, a key of ``ACTIVATIONS`` ("relu", "tanh").
        output: the activation after the last layer, a key of ``ACTIVATIONS``, or None.

    Returns:
        The nn.Sequential (parameters on the meta device: an architecture, not values).
    """
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, device="meta"), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers[:-1], *([ACTIVATIONS[output]()] if output else []))


def unflatten(flat: torch.Tensor, shapes) -> dict:
    """Split flat parameters [K, n] into {name: `[K, *shape]`} for ``shapes`` = [(name, shape), …].

    Args:
        flat: the K runs' parameters [K, n], in the order of ``shapes``, each row-major.
        shapes: the parameters' names and shapes [(name, shape), …], n the total of their sizes.

    Returns:
        {name: its parameters, shape `[K, *shape]`}.
    """
    sizes = [math.prod(shape) for _, shape in shapes]
    parts = torch.split(flat, sizes, dim=-1)
    return {name: part.reshape(flat.shape[0], *shape) for (name, shape), part in zip(shapes, parts)}


def batched(module: nn.Module, shapes, flat: torch.Tensor, inputs: torch.Tensor, one_by_one: bool = False
            ) -> torch.Tensor:
    """module with run k's parameters applied to inputs[k]: [K, N, in] → [K, N, out].

    Args:
        module: the architecture (on the meta device).
        shapes: its parameters' [(name, shape), …].
        flat: the K runs' parameters [K, n].
        inputs: [K, N, in].
        one_by_one: apply the runs one after another rather than vmapped: a batched matrix product
            rounds differently from one run's (its kernel depends on K), so only this way is run k of an
            ensemble bitwise run k alone.

    Returns:
        [K, N, out].
    """
    params = unflatten(flat, shapes)
    apply = lambda p, x: functional_call(module, p, (x,))  # noqa: E731
    if not one_by_one:
        return vmap(apply)(params, inputs)
    return torch.stack([apply({name: p[k] for name, p in params.items()}, inputs[k]) for k in range(len(flat))])


def init_bounds(module: nn.Module) -> torch.Tensor:
    """1/√fan_in for every parameter entry (PyTorch's default nn.Linear init range), [n]."""
    return torch.cat([torch.full((w.numel(),), layer.in_features ** -0.5, dtype=torch.float64)
                      for layer in module if isinstance(layer, nn.Linear) for w in (layer.weight, layer.bias)])


def check_hidden(hidden) -> tuple:
    """The hidden layer widths as a tuple of positive ints; ConfigError on ``game.hidden`` otherwise."""
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise ConfigError("game.hidden", f"expected a sequence of layer widths, got {hidden!r}")
    return tuple(check_int("game.hidden", h) for h in hidden)


class NetworkGAN(Game):
    """A GAN of two MLPs on data in R^n; subclasses set ``n`` before calling this constructor and give
    ``real_samples``."""

    n: int
    one_by_one: bool = False  # runs applied one after another (``batched``): bitwise equal to single runs

    def __init__(self, loss: str, z_dim: int, hidden, activation: str, gp_weight: float,
                 generator_output: Optional[str] = None, latent_key: str = "game.z_dim"):
        """The two MLPs; the subclass sets ``n`` first.

        Args:
            loss: "gan", "ns-gan" or "wgan-gp".
            z_dim: the latent dimension of G_θ.
            hidden: the hidden layer widths of both MLPs.
            activation: the hidden activation, "relu" or "tanh".
            gp_weight: the WGAN-GP penalty weight λ ≥ 0.
            generator_output: the activation after the generator's last layer, or None.
            latent_key: the configuration key that a bad ``z_dim`` is reported under.
        """
        self.loss = check_choice("game.loss", loss, LOSSES)
        self.z_dim = check_int(latent_key, z_dim)
        self.hidden = check_hidden(hidden)
        self.activation = check_choice("game.activation", activation, tuple(ACTIVATIONS))
        self.gp_weight = check_positive("game.gp_weight", gp_weight, allow_zero=True)
        self.generator_module = mlp([self.z_dim, *self.hidden, self.n], self.activation, generator_output)
        self.discriminator_module = mlp([self.n, *self.hidden, 1], self.activation)
        self._g_shapes = [(n, w.shape) for n, w in self.generator_module.named_parameters()]
        self._d_shapes = [(n, w.shape) for n, w in self.discriminator_module.named_parameters()]
        self.p = sum(math.prod(s) for _, s in self._g_shapes)
        self.q = sum(math.prod(s) for _, s in self._d_shapes)
        self._bounds = torch.cat([init_bounds(self.generator_module), init_bounds(self.discriminator_module)])

    def real_samples(self, B: int, generator: Streams) -> torch.Tensor:
        """B samples of the data law per run, [K, B, n].

        Args:
            B: the samples per run.
            generator: the K runs' random streams.

        Returns:
            The data samples [K, B, n].
        """
        raise NotImplementedError

    def generate(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """G_θ(z) [K, N, n] for states x [K, d] (or θ [K, p]) and latents z [K, N, z_dim].

        Args:
            x: the states [K, d], or the generator's parameters θ [K, p].
            z: the latents [K, N, z_dim].

        Returns:
            The generated points [K, N, n].
        """
        return batched(self.generator_module, self._g_shapes, x[..., : self.p], z, self.one_by_one)

    def discriminate(self, omega: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """D_ω(points) [K, N] for ω [K, q] and points [K, N, n].

        Args:
            omega: the discriminator's parameters ω [K, q].
            points: the points [K, N, n].

        Returns:
            The discriminator's outputs [K, N] (logits for "gan" and "ns-gan", critic values for "wgan-gp").
        """
        return batched(self.discriminator_module, self._d_shapes, omega, points, self.one_by_one)[..., 0]

    def discriminator_input_grad(self, omega: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """∇_x D_ω(x) at each point [K, N, n]; torch.func, so it composes with autograd and jacrev.

        Args:
            omega: the discriminator's parameters ω [K, q].
            points: the points [K, N, n].

        Returns:
            The input gradients [K, N, n].
        """
        d_sum = lambda params, x: functional_call(self.discriminator_module, params, (x,)).sum()  # noqa: E731
        slope, params = grad(d_sum, argnums=1), unflatten(omega, self._d_shapes)
        if not self.one_by_one:
            return vmap(slope)(params, points)
        return torch.stack([slope({name: p[k] for name, p in params.items()}, points[k]) for k in range(len(omega))])

    def sample(self, K: int, B: int, generator: Streams):
        """(real [K, B, n], z [K, B, z_dim]) and, for wgan-gp, interpolation weights ε [K, B, 1]."""
        real = self.real_samples(B, generator)
        z = generator.normal(B, self.z_dim)
        return (real, z, generator.uniform(B, 1)) if self.loss == "wgan-gp" else (real, z)

    def player_losses(self, theta, omega, batch, players=("theta", "omega")) -> dict:
        """As Game's, but the generator's NS-GAN and WGAN-GP losses alone need no real samples."""
        if tuple(players) != ("theta",) or self.loss == "gan":
            return super().player_losses(theta, omega, batch, players)
        d_fake = self.discriminate(omega, self.generate(theta, batch[1]))
        return {"theta": generator_loss(d_fake, self.loss, self.one_by_one).mean(-1)}

    def sample_losses(self, theta, omega, batch):
        """Per-sample (L_G, L_D) [K, B]: L_D = −V (``games.maths.losses``), plus the gradient penalty for
        wgan-gp; L_G = V (gan) or ℓ_G."""
        real, z = batch[:2]
        fake = self.generate(theta, z)
        d_real, d_fake = self.discriminate(omega, real), self.discriminate(omega, fake)
        value = f(d_real, self.loss, self.one_by_one) + f(-d_fake, self.loss, self.one_by_one)
        loss_d = -value
        if self.loss == "wgan-gp":
            eps = batch[2]
            slope = self.discriminator_input_grad(omega, eps * real + (1 - eps) * fake)
            loss_d = loss_d + self.gp_weight * gradient_penalty(torch.linalg.vector_norm(slope, dim=-1))
        return (value if self.loss == "gan" else generator_loss(d_fake, self.loss, self.one_by_one)), loss_d

    def init(self, K: int, generator: Streams) -> torch.Tensor:
        """Every entry uniform on ±1/√fan_in of its layer (PyTorch's nn.Linear default range)."""
        bounds = torch.as_tensor(self._bounds, device=generator.device, dtype=generator.dtype)
        return (2 * generator.uniform(self.d) - 1) * bounds
