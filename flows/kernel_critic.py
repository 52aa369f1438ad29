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
closed-form outputs and is not implemented. e^{−ηtG}y is computed from matrix–vector products
(``games.linalg.symmetric_expm_multiply``), whose backward stays finite when eigenvalues repeat (an
eigendecomposition's does not), so L is differentiable with respect to the fake points and, through them,
any generator's parameters.

Kernels: "rbf", k(x, x') = exp(−|x − x'|²/(2h²)) (a standard stand-in: any positive-definite kernel
gives the same closed form); "relu-ntk", the infinite-width NTK of a one-hidden-layer ReLU network in the
NTK parameterisation (``relu_ntk``: the limit the paper's critic is); and "ntk", the empirical (finite-width) neural tangent kernel of a
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
from games.linalg import symmetric_expm_multiply
from games.maths.kernels import rbf_kernel
from games.optim import Adam
from games.random import Streams
from games.trajectory import Trajectory

KERNELS = ("rbf", "ntk", "relu-ntk")


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
    """A tanh MLP R^n → R with ``depth`` hidden layers, initialised from ``generator``.

    Args:
        n_in: the input dimension n.
        width: the hidden layers' width.
        depth: the number of hidden layers.
        generator: the generator of the N(0, 1/fan_in) weights and N(0, 1) biases.
        dtype: the parameters' dtype.

    Returns:
        The network, an ``nn.Sequential`` mapping `[..., n]` to `[..., 1]`.
    """
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
    """Per-point Jacobian J = ∂_θ f(x; θ) of a scalar network, [..., A, n] → [..., A, P] (torch.func).

    Args:
        model: the scalar network f(·; θ), with P parameters.
        x: the points, [..., A, n].

    Returns:
        J, [..., A, P].
    """
    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, xi):
        return functional_call(model, p, (xi.unsqueeze(0),)).reshape(())

    flat = x.reshape(-1, x.shape[-1])
    jac = vmap(jacrev(f), in_dims=(None, 0))(params, flat)
    J = torch.cat([j.reshape(flat.shape[0], -1) for j in jac.values()], dim=-1)
    return J.reshape(*x.shape[:-1], J.shape[-1])


def empirical_ntk(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Empirical NTK Gram J(x) J(y)ᵀ (Jacot et al. 2018), [..., A, n] × [..., B, n] → [..., A, B].

    Args:
        model: the scalar network f(·; θ) at its current parameters.
        x: the first points, [..., A, n].
        y: the second points, [..., B, n] (default x).

    Returns:
        The Gram matrix, [..., A, B].
    """
    Jx = ntk_jacobian(model, x)
    Jy = Jx if y is None else ntk_jacobian(model, y)
    return Jx @ Jy.transpose(-1, -2)


def relu_ntk(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Θ(x, y) = E[φ(uᵀx/√n) φ(uᵀy/√n)] + (xᵀy/n) E[φ'(uᵀx/√n) φ'(uᵀy/√n)], φ = ReLU, u ∼ N(0, I_n): the
    NTK of f(x) = w^{−½} Σ_j a_j φ(u_jᵀx/√n) as w → ∞ (Jacot et al. 2018), by the arc-cosine kernels
    (Cho & Saul 2009): with s = |x||y|/n and cos θ = xᵀy/(|x||y|), Θ = s(sin θ + (π − θ) cos θ)/(2π) +
    s cos θ (π − θ)/(2π). [..., A, n] × [..., B, n] → [..., A, B].

    Args:
        x: the first points, [..., A, n].
        y: the second points, [..., B, n].

    Returns:
        Θ(x_a, y_b), [..., A, B].
    """
    n = x.shape[-1]
    inner = x @ y.transpose(-1, -2) / n
    norms = (x.norm(dim=-1)[..., :, None] * y.norm(dim=-1)[..., None, :]) / n
    edge = 1 - 4 * torch.finfo(x.dtype).eps  # Θ has a cusp at x ∥ y (θ ~ |x − y|): keep arccos' finite there
    cos = (inner / norms.clamp_min(torch.finfo(x.dtype).tiny)).clamp(-edge, edge)
    theta = torch.arccos(cos)
    return (norms * (torch.sin(theta) + (math.pi - theta) * cos) + inner * (math.pi - theta)) / (2 * math.pi)


class ReLUNetwork(nn.Module):
    """f(x) = w^{−½} Σ_j a_j φ(u_jᵀx/√n) − (the same at its initial parameters): the one-hidden-layer ReLU
    network of ``relu_ntk`` in the NTK parameterisation, centred so that f = 0 at initialisation (the
    closed-form critic starts from D₀ = 0); a, u ∼ N(0, 1) from ``seed``."""

    def __init__(self, n: int, width: int, seed: int = 0, dtype=torch.float64):
        """Draws u and a and keeps a copy of them (the centring).

        Args:
            n: the input dimension.
            width: the number w of hidden units.
            seed: the seed of u [w, n] and a [w].
            dtype: the parameters' dtype.
        """
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.u = nn.Parameter(torch.randn(width, n, generator=g, dtype=dtype))
        self.a = nn.Parameter(torch.randn(width, generator=g, dtype=dtype))
        self.register_buffer("u0", self.u.detach().clone())
        self.register_buffer("a0", self.a.detach().clone())

    def _raw(self, x, u, a):
        return torch.relu(x @ u.T / math.sqrt(x.shape[-1])) @ a / math.sqrt(len(a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._raw(x, self.u, self.a) - self._raw(x, self.u0, self.a0)


def trained_network_critic(P: torch.Tensor, y: torch.Tensor, width: int, t: float, steps: int, eta: float = 1.0,
                           seed: int = 0) -> torch.Tensor:
    """The finite-width counterpart of ``critic_values`` with the "relu-ntk" kernel: ``ReLUNetwork`` of
    ``width`` trained by gradient descent (``steps`` steps of ηt/steps) on ½|f(P) − y|² from f = 0;
    its values on the points P [L, n] → [L], which tend to (I − e^{−ηtΘ})y like width^{−½}.

    Args:
        P: the points, [L, n].
        y: the labels, [L].
        width: the network's hidden width.
        t: the training time t ≥ 0.
        steps: the number of gradient-descent steps.
        eta: the rate η.
        seed: the seed of the network's initialisation.

    Returns:
        The trained network's values f(P), [L].
    """
    net = ReLUNetwork(P.shape[-1], check_int("width", width), seed, P.dtype)
    h = eta * check_positive("t", t) / check_int("steps", steps)
    for _ in range(steps):
        net.zero_grad()
        (0.5 * (net(P) - y).square().sum()).backward()
        with torch.no_grad():
            for prm in net.parameters():
                prm -= h * prm.grad
    with torch.no_grad():
        return net(P)


# -- the closed-form critic ------------------------------------------------------------------------
def critic_labels(n_real: int, n_fake: int, *, dtype=None, device=None) -> torch.Tensor:
    """Labels y = [1_M; 0_N] of the points [real; fake].

    Args:
        n_real: the number M of real points.
        n_fake: the number N of fake points.
        dtype: the labels' dtype.
        device: the labels' device.

    Returns:
        y, [M + N].
    """
    return torch.cat([torch.ones(n_real, dtype=dtype, device=device),
                      torch.zeros(n_fake, dtype=dtype, device=device)])


def gram(P: torch.Tensor, kernel: str = "rbf", *, bandwidth: Optional[float] = None,
         model: Optional[nn.Module] = None, ridge: float = 0.0) -> torch.Tensor:
    """Gram matrix k(P, P) + ρI of the points P [K, L, n] → [K, L, L].

    Args:
        P: the points, [K, L, n].
        kernel: "rbf", "relu-ntk" or "ntk" (the empirical NTK of ``model``).
        bandwidth: the rbf kernel's bandwidth h (required for "rbf").
        model: the scalar network of the "ntk" kernel.
        ridge: the ridge ρ ≥ 0 added to the Gram matrix.

    Returns:
        k(P, P) + ρI, [K, L, L].
    """
    check_choice("kernel", kernel, KERNELS)
    ridge = check_positive("ridge", ridge, allow_zero=True)
    if kernel == "rbf":
        G = rbf_kernel(P, P, check_positive("bandwidth", bandwidth))
    elif kernel == "relu-ntk":
        G = relu_ntk(P, P)
    else:
        if not isinstance(model, nn.Module):
            raise ConfigError("model", "kernel='ntk' needs a network (nn.Module with a scalar output)")
        G = empirical_ntk(model, P)
    return G + ridge * torch.eye(G.shape[-1], dtype=G.dtype, device=G.device)


def critic_values(G: torch.Tensor, y: torch.Tensor, eta_t: float) -> torch.Tensor:
    """GA-NTK critic on P after training time t: D_t = (I − e^{−ηtG}) y, [K, L, L] × [L] → [K, L].

    Args:
        G: the Gram matrices, [K, L, L] (symmetric).
        y: the labels, [L].
        eta_t: the training time ηt ≥ 0.

    Returns:
        D_t on the points, [K, L].
    """
    return y - symmetric_expm_multiply(-eta_t * G, y.expand(*G.shape[:-1]))


def descent_critic_values(G: torch.Tensor, y: torch.Tensor, eta_t: float, steps: int) -> torch.Tensor:
    """The critic of ``steps`` gradient-descent steps of size ηt/steps on the kernel model from D₀ = 0:
    D = y − (I − (ηt/steps)G)^steps y, [L, L] × [L] → [L] (→ ``critic_values`` as steps grow).

    Args:
        G: the kernel [L, L].
        y: the labels [L].
        eta_t: the training time ηt.
        steps: the descent steps.

    Returns:
        [L].
    """
    h = eta_t / steps
    return y - torch.linalg.matrix_power(torch.eye(len(G), dtype=G.dtype) - h * G, steps) @ y


def critic_rate(G: torch.Tensor, y: torch.Tensor, D: torch.Tensor, eta: float) -> torch.Tensor:
    """Kernel gradient flow of the squared loss, Ḋ = ηG(y − D), → [K, L].

    Args:
        G: the Gram matrices, [K, L, L].
        y: the labels, [L].
        D: the critic's values, [K, L].
        eta: the rate η.

    Returns:
        Ḋ, [K, L].
    """
    return eta * (G @ (y - D).unsqueeze(-1)).squeeze(-1)


def ga_ntk_loss(D: torch.Tensor) -> torch.Tensor:
    """GA-NTK generator loss |1 − D_t|² summed over the L points (Zhang et al., seed 003), → [K]."""
    return ((1 - D) ** 2).sum(-1)


def ga_ntk(real: torch.Tensor, fake: torch.Tensor, *, t: float, eta: float = 1.0, kernel: str = "rbf",
           bandwidth: Optional[float] = None, model: Optional[nn.Module] = None, ridge: float = 0.0):
    """Critic values D_t [K, M+N] on [real; fake] and generator loss [K], differentiable in ``fake``.

    Args:
        real: the real points, [M, n] (shared) or [K, M, n].
        fake: the generator's points, [K, N, n].
        t: the critic's training time t ≥ 0.
        eta: the critic's rate η > 0.
        kernel: "rbf", "relu-ntk" or "ntk" (the empirical NTK of ``model``).
        bandwidth: the rbf kernel's bandwidth h (required for "rbf").
        model: the scalar network of the "ntk" kernel.
        ridge: the ridge ρ ≥ 0 added to the Gram matrix.

    Returns:
        (D_t `[K, M + N]`, the loss |1 − D_t|² [K]).
    """
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
    [T, K, N·n].

    Args:
        real: the real points, [M, n] (shared) or [K, M, n].
        fake0: the initial fake points Z_0, [K, N, n].
        lr: the step lr > 0.
        steps: the number of steps.
        t: the critic's training time t ≥ 0.
        eta: the critic's rate η > 0.
        kernel: "rbf", "relu-ntk" or "ntk" (the empirical NTK of ``model``).
        bandwidth: the rbf kernel's bandwidth h (required for "rbf").
        model: the scalar network of the "ntk" kernel.
        ridge: the ridge ρ ≥ 0 added to the Gram matrix.
        record_every: record every that many steps (and the last).

    Returns:
        The Trajectory at times k·lr: states [T, K, N·n] and the observable ``loss`` [T, K].
    """
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


# -- a parametric generator against the closed-form critic ------------------------------------------------
def ga_ntk_generator(game, real: torch.Tensor, steps: int, *, K: int, lr: float = 1e-3, t: float = 1.0,
                     fakes: int = 32, kernel: str = "relu-ntk", bandwidth: Optional[float] = None, seed: int = 0,
                     record_every: int = 1, dtype=torch.float32, progress: bool = False) -> Trajectory:
    """GA-NTK with a network generator: K runs of ``game``'s generator (a ``games.networks.NetworkGAN``) trained
    by Adam on the single-level loss L(θ) = |1 − D_t|² of its ``fakes`` samples against ``real`` [M, n],
    under ``games.driver``.

    Args:
        game: gives the generator G_θ and its initialisation (its discriminator is not used).
        real: the real points [M, n] (shared by the runs).
        steps: Adam steps.
        K: runs, each with its own stream (``Streams.from_seed(seed, K)``) of initial θ and latents.
        lr: Adam's rate.
        t: the critic's training time (η = 1).
        kernel: the critic's kernel (``gram``).
        bandwidth: the kernel's bandwidth.
        fakes: generator samples per step.
        seed: the seed of the runs' streams.
        record_every: rows every that many steps.
        dtype: the floating dtype of the parameters and streams.
        progress: whether to show a progress bar.

    Returns:
        The Trajectory of θ [T, K, p], with the loss as an observable.
    """
    streams = Streams.from_seed(seed, check_int("run.paths", K), dtype=dtype)
    theta = game.init(K, streams)[:, : game.p]
    critic = dict(t=check_positive("t", t), kernel=kernel, bandwidth=bandwidth)
    loop = _GeneratorDescent(game, real.to(dtype), theta, streams, check_positive("lr", lr),
                             check_int("fakes", fakes), critic, Adam())
    outcome = drive(loop, check_int("steps", steps), record_every=check_int("record_every", record_every),
                    progress=progress, desc="GA-NTK")
    meta = {"method": "ga-ntk-generator", "lr": lr, "t": t, "kernel": kernel, "fakes": fakes,
            "seeds": streams.seeds.tolist(), "steps": steps, "record_every": record_every, **outcome.metadata()}
    return outcome.trajectory(game.p, meta)


class _GeneratorDescent(Stepper):
    """Adam on a generator's GA-NTK loss as the driver's ``Stepper``: row k holds θ_k and the loss of step k."""

    def __init__(self, game, real, theta, streams, lr, fakes, critic, optimizer):
        self.game, self.real, self.theta, self.streams = game, real, theta, streams
        self.lr, self.fakes, self.critic, self.optimizer = lr, fakes, critic, optimizer
        self.opt_state, self.K, self.n = optimizer.init(theta), theta.shape[0], 0

    def time(self) -> float:
        return self.n * self.lr

    def state(self) -> torch.Tensor:
        return self.theta

    def loss(self, theta: torch.Tensor, streams=None) -> torch.Tensor:
        """L(θ) [K] on the next latents of ``streams`` (default: the loop's own, advanced)."""
        z = (streams or self.streams).normal(self.fakes, self.game.z_dim)
        fake = self.game.generate(theta, z)
        return ga_ntk(self.real, fake.to(torch.float64), **self.critic)[1]

    def step(self, n: int, observe: bool):
        theta = self.theta.detach().requires_grad_(True)
        loss = self.loss(theta)
        (grad,) = torch.autograd.grad(loss.sum(), theta)  # the runs are independent: Σ_K keeps them apart
        direction, self.opt_state = self.optimizer.direction(grad, self.opt_state, n)
        self.theta, self.n = (self.theta - self.lr * direction).detach(), n + 1
        return {"loss": loss.detach()} if observe else None

    def observe(self, n: int) -> dict:
        """The last row's loss, on the latents the next step would draw (the loop's streams left where they are)."""
        with torch.no_grad():
            return {"loss": self.loss(self.theta, self.streams.subset(slice(None)))}

    def poison(self, runs: torch.Tensor) -> None:
        self.theta = self.theta.masked_fill(runs[:, None], math.nan)

    def work(self) -> int:
        return self.K * (self.game.p + (len(self.real) + self.fakes) ** 2)

    def state_dict(self) -> dict:
        return {"theta": self.theta, "n": self.n, "optimizer": self.opt_state, "counter": self.streams.counter}

    def load_state_dict(self, state: dict) -> None:
        self.theta, self.n, self.opt_state = state["theta"].to(self.theta), state["n"], state["optimizer"]
        self.streams.counter = state["counter"]
