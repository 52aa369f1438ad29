"""GA-NTK: a kernel discriminator trained in closed form, so the generator faces a single-level objective.

THEORY §5, seed 003 (Zhang, Su, Chou, Wu, "Single-level adversarial data synthesis based on neural
tangent kernels", GA-NTK). The discriminator is a kernel machine (the NTK-GP limit of a wide
network) trained from D = 0 by gradient flow with rate η on the squared loss ½|D(P) − y|² over the
points P = [real; fake] (L = M + N points) with labels y = [1_M; 0_N]. With Gram matrix G = k(P, P),
its values on P after time t are

    Ḋ_t = η G (y − D_t),   D_0 = 0   ⇒   D_t = (I − e^{−ηtG}) y,

so D_t → y as t → ∞ when G is positive definite, and finite t is the "early-stopped" critic. The
generator then minimises a single-level loss of its points Z = fake. We implement the squared-loss
objective

    L(Z) = |1_L − D_t(X, Z)|²,

the generator wanting every point (real and fake) to be scored "real". This is our reading of the
paper's objective and of the authors' released code (its ``mse`` loss, with one-hot two-class
labels there, a single output here); their default variant applies a cross-entropy to the same
closed-form outputs and is not implemented. e^{−ηtG}y is computed by ``torch.linalg.matrix_exp``,
whose backward stays finite when eigenvalues repeat (an eigendecomposition's does not), so L is
differentiable with respect to the fake points and, through them, any generator's parameters.

Kernels: "rbf", k(x, x') = exp(−|x − x'|²/(2h²)) (a standard stand-in: any positive-definite kernel
gives the same closed form), and "ntk", the empirical (finite-width) neural tangent kernel of a
given network f(·; θ) at its current parameters, k(x, x') = ⟨∂_θ f(x), ∂_θ f(x')⟩, i.e. G = J Jᵀ
with J the per-point Jacobian (Jacot, Gabriel, Hongler 2018). The paper uses the infinite-width
NTK from neural-tangents; the empirical NTK is its finite-width counterpart. A ridge ρI may be added
to G (the authors' code adds a small diagonal regulariser).

Everything is batched over K runs: real [M, n] (shared) or [K, M, n], fake [K, N, n].
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from games.driver import Stepper, drive
from games.errors import ConfigError, check_choice, check_int, check_positive
from games.trajectory import Trajectory

from .best_response import rbf_kernel

KERNELS = ("rbf", "ntk")


# -- checks ------------------------------------------------------------------------------------
def _check_points(real, fake) -> torch.Tensor:
    """Validate real [M, n] | [K, M, n] and fake [K, N, n]; return P = [real; fake] as [K, L, n]."""
    if not isinstance(fake, torch.Tensor) or fake.ndim != 3 or not fake.is_floating_point():
        shape = tuple(fake.shape) if isinstance(fake, torch.Tensor) else type(fake).__name__
        raise ConfigError("fake", f"expected a floating tensor [K, N, n], got {shape}")
    if not isinstance(real, torch.Tensor) or real.ndim not in (2, 3):
        shape = tuple(real.shape) if isinstance(real, torch.Tensor) else type(real).__name__
        raise ConfigError("real", f"expected [M, n] or [K, M, n], got {shape}")
    real = real.unsqueeze(0) if real.ndim == 2 else real
    if real.shape[-1] != fake.shape[-1] or real.shape[0] not in (1, fake.shape[0]):
        raise ConfigError("real", f"shape {tuple(real.shape)} does not match fake {tuple(fake.shape)}")
    return torch.cat([real.to(fake).expand(fake.shape[0], -1, -1), fake], dim=1)


# -- the empirical NTK (Jacot et al. 2018) -------------------------------------------------------
def make_mlp(n_in: int, width: int = 32, depth: int = 2, *, generator: Optional[torch.Generator] = None,
             dtype: Optional[torch.dtype] = None) -> nn.Sequential:
    """A tanh MLP R^n → R with ``depth`` hidden layers, initialised from ``generator``."""
    n_in, width, depth = check_int("n_in", n_in), check_int("width", width), check_int("depth", depth)
    sizes = [n_in] + [width] * depth + [1]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, dtype=dtype), nn.Tanh()]
    net = nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for prm in net.parameters():
            scale = prm.shape[-1] ** -0.5 if prm.ndim == 2 else 1.0  # weights 1/√fan_in, biases 1
            prm.copy_(scale * torch.randn(prm.shape, generator=generator, dtype=prm.dtype))
    return net


def ntk_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-point Jacobian J = ∂_θ f(x; θ) of a scalar network, [..., A, n] → [..., A, P] (torch.func)."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, xi):
        return functional_call(model, p, (xi.unsqueeze(0),)).reshape(())

    flat = x.reshape(-1, x.shape[-1])
    jac = vmap(jacrev(f), in_dims=(None, 0))(params, flat)
    J = torch.cat([j.reshape(flat.shape[0], -1) for j in jac.values()], dim=-1)
    return J.reshape(*x.shape[:-1], J.shape[-1])


def empirical_ntk(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Empirical NTK Gram J(x) J(y)ᵀ (Jacot et al. 2018), [..., A, n] × [..., B, n] → [..., A, B]."""
    Jx = ntk_jacobian(model, x)
    Jy = Jx if y is None else ntk_jacobian(model, y)
    return Jx @ Jy.transpose(-1, -2)


# -- the closed-form critic ------------------------------------------------------------------------
def critic_labels(n_real: int, n_fake: int, *, dtype=None, device=None) -> torch.Tensor:
    """Labels y = [1_M; 0_N] of the points [real; fake]."""
    return torch.cat([torch.ones(n_real, dtype=dtype, device=device),
                      torch.zeros(n_fake, dtype=dtype, device=device)])


def gram(P: torch.Tensor, kernel: str = "rbf", *, bandwidth: Optional[float] = None,
         model: Optional[nn.Module] = None, ridge: float = 0.0) -> torch.Tensor:
    """Gram matrix k(P, P) + ρI of the points P [K, L, n] → [K, L, L]."""
    check_choice("kernel", kernel, KERNELS)
    ridge = check_positive("ridge", ridge, allow_zero=True)
    if kernel == "rbf":
        G = rbf_kernel(P, P, check_positive("bandwidth", bandwidth))
    else:
        if not isinstance(model, nn.Module):
            raise ConfigError("model", "kernel='ntk' needs a network (nn.Module with a scalar output)")
        G = empirical_ntk(model, P)
    return G + ridge * torch.eye(G.shape[-1], dtype=G.dtype, device=G.device)


def critic_values(G: torch.Tensor, y: torch.Tensor, eta_t: float) -> torch.Tensor:
    """GA-NTK critic on P after training time t: D_t = (I − e^{−ηtG}) y, [K, L, L] × [L] → [K, L]."""
    return y - (torch.linalg.matrix_exp(-eta_t * G) @ y.unsqueeze(-1)).squeeze(-1)


def critic_rate(G: torch.Tensor, y: torch.Tensor, D: torch.Tensor, eta: float) -> torch.Tensor:
    """Kernel gradient flow of the squared loss, Ḋ = ηG(y − D), → [K, L]."""
    return eta * (G @ (y - D).unsqueeze(-1)).squeeze(-1)


def ga_ntk_loss(D: torch.Tensor) -> torch.Tensor:
    """GA-NTK generator loss |1 − D_t|² summed over the L points (Zhang et al., seed 003), → [K]."""
    return ((1 - D) ** 2).sum(-1)


def ga_ntk(real: torch.Tensor, fake: torch.Tensor, *, t: float, eta: float = 1.0, kernel: str = "rbf",
           bandwidth: Optional[float] = None, model: Optional[nn.Module] = None, ridge: float = 0.0):
    """Critic values D_t [K, M+N] on [real; fake] and generator loss [K], differentiable in ``fake``."""
    t = check_positive("t", t, allow_zero=True)
    eta = check_positive("eta", eta)
    P = _check_points(real, fake)
    G = gram(P, kernel, bandwidth=bandwidth, model=model, ridge=ridge)
    y = critic_labels(P.shape[1] - fake.shape[1], fake.shape[1], dtype=P.dtype, device=P.device)
    D = critic_values(G, y, eta * t)
    return D, ga_ntk_loss(D)


def ga_ntk_descent(real: torch.Tensor, fake0: torch.Tensor, *, lr: float, steps: int, t: float,
                   eta: float = 1.0, kernel: str = "rbf", bandwidth: Optional[float] = None,
                   model: Optional[nn.Module] = None, ridge: float = 0.0,
                   record_every: int = 1) -> Trajectory:
    """Particle gradient descent Z ← Z − lr ∇_Z L(Z) on the GA-NTK loss under ``games.driver``; states
    [T, K, N·n]."""
    lr, steps = check_positive("lr", lr), check_int("steps", steps)
    record_every = check_int("record_every", record_every)
    opts = dict(t=t, eta=eta, kernel=kernel, bandwidth=bandwidth, model=model, ridge=ridge)
    outcome = drive(_Descent(real, fake0, lr, opts), steps, record_every=record_every)
    N, n = fake0.shape[1:]
    meta = {"method": "ga-ntk-descent", "lr": lr, "t": t, "eta": eta, "kernel": kernel,
            "bandwidth": bandwidth, "ridge": ridge, "N": N, "n": n, **outcome.metadata()}
    return outcome.trajectory(N * n, meta)


class _Descent(Stepper):
    """Particle gradient descent Z ← Z − lr ∇_Z L(Z) on the GA-NTK loss as the driver's ``Stepper``: row k
    holds Z_k and L(Z_k), at t_k = k·lr."""

    def __init__(self, real: torch.Tensor, fake0: torch.Tensor, lr: float, opts: dict):
        self.real, self.Z, self.lr, self.opts = real, fake0.detach().clone(), lr, opts
        self.K, self.n = fake0.shape[0], 0

    def time(self) -> float:
        return self.n * self.lr

    def state(self) -> torch.Tensor:
        return self.Z.reshape(self.K, -1)

    def loss(self) -> torch.Tensor:
        """L(Z) [K], with Z requiring its gradient."""
        return ga_ntk(self.real, self.Z.requires_grad_(True), **self.opts)[1]

    def step(self, n: int, observe: bool):
        loss = self.loss()
        (grad,) = torch.autograd.grad(loss.sum(), self.Z)  # runs are independent: Σ_K keeps them apart
        self.Z, self.n = (self.Z - self.lr * grad).detach(), n + 1
        return {"loss": loss.detach()} if observe else None

    def observe(self, n: int) -> dict:
        return {"loss": self.loss().detach()}

    def poison(self, runs: torch.Tensor) -> None:
        self.Z = self.Z.detach().masked_fill(runs[:, None, None], math.nan)

    def state_dict(self) -> dict:
        return {"Z": self.Z.detach(), "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.Z, self.n = state["Z"].to(self.Z), state["n"]
