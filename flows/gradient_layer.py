"""Gradient-layer generator (Nitanda & Suzuki 2018): a generator grown from functional-gradient steps.

Layers. From base samples x_0 = z (latents, z ~ N(0, I)) or x_0 = G_θ(z) (a base generator),

    x_{l+1} = x_l + η ∇_x φ(D_l(x_l)),      l = 0, 1, …, L − 1,

where D_l = D_{ω_l} is the snapshot of the critic taken when layer l was added and φ is the identity
(``gan``, ``wgan``) or log σ (``ns-gan``): each layer is a step along −∇_x ℓ_G(D_l(x)). Training
alternates ``n_critic`` critic updates on real samples y ~ p against the current fake particles x_l
(the images of a fixed latent set z_1 … z_N) with appending one layer, so the generator grows by one
layer per round. The critic (an MLP with flat parameters ω [K, q]) minimises, with a ridge λ,

    gan, ns-gan:  L_D(ω) = E_p softplus(−D_ω(y)) + E_ρ softplus(D_ω(x)) + (λ/2)|ω|²,
    wgan:         L_D(ω) = E_ρ D_ω(x) − E_p D_ω(y) + (λ/2)|ω|²   (λ > 0 keeps this critic bounded).

Why it works: the best logistic critic is D* = log(p/ρ_l), so with ``gan`` the layer
x + η ∇_x log(p/ρ_l)(x) is one explicit Euler step of dX/dt = ∇_x log(p/ρ_t)(X), the Wasserstein
gradient flow of KL(ρ‖p) — the S∞ (best-response) particle limit of THEORY §5. With finitely many
critic steps per layer the critic trails the particles: the scheme is the explicit Euler
discretisation, at step η, of the S2 particle flow dX/dt = −∇_x ℓ_G(D_ω(X)), ω̇ = −α ∇_ω L_D(ω)
(time-scale ratio α ≈ n_critic·lr_critic/η). The flow time after L layers is t = Lη.

Fresh latents. ``push(z)`` applies the base and every stored snapshot: L critic input-gradient
evaluations for a stack of L layers. Training keeps the particles x_l(z_i) of its latents
(``latents``) instead, so a round costs one input gradient on N points, not l of them; pushing
``latents`` through the stack gives the particles back.

Distillation (Johnson & Zhang's CFG-GAN). With ``distill_every`` = m > 0, every m layers the MLP
generator G_θ is fitted by ``distill_steps`` Adam steps (warm-started) on
(1/N) Σ_i |G_θ(z_i) − x_l(z_i)|², then the stack restarts from it: x := G_θ(z), snapshots cleared.
Pushing fresh latents then costs one generator evaluation plus at most m − 1 layers.

Record (a Trajectory, batched over K runs): row r is taken after l_r layers, at t = l_r η, and at
the end.
- states [T, K, 2n]: the positions of the first n = ``record_particles`` particles, flattened
  (x_1, y_1, x_2, …); ``p`` = 2n (everything is "θ"; there is no ω part);
- observables [T, K]: ``loss_omega`` (critic loss at its last update before layer l_r; NaN at
  l = 0), ``step_norm`` (mean |x_l − x_{l−1}| over the particles; NaN at l = 0),
  ``critic_updates`` (n_critic·l), ``wall_s`` (seconds since the start, the same for every run) and
  ``distill_mse`` (the regression residual where a distillation just happened, else NaN).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import torch

from games.driver import Stepper, drive
from games.errors import ConfigError, check_choice, check_int, check_positive
from games.maths.losses import f
from games.mixture import MixtureGAN
from games.optim import make_optimizer
from games.random import Streams
from games.trajectory import Trajectory

LOSSES = ("gan", "ns-gan", "wgan")
Potential = Callable[[torch.Tensor], torch.Tensor]  # points [K, N, 2] -> values [K, N]


def gradient_step(x: torch.Tensor, potential: Potential, eta: float) -> torch.Tensor:
    """One gradient layer x + η ∇_x φ(x) on points [K, N, 2] (Nitanda & Suzuki 2018).

    Args:
        x: the points, [K, N, 2].
        potential: the layer's potential φ, points [K, N, 2] → values [K, N].
        eta: the layer's step η.

    Returns:
        x + η ∇_x φ(x), [K, N, 2].
    """
    y = x.detach().requires_grad_()
    with torch.enable_grad():
        g, = torch.autograd.grad(potential(y).sum(), y)
    return x + eta * g


def apply_layers(x: torch.Tensor, potentials: Sequence[Potential], eta: float) -> torch.Tensor:
    """The stack of gradient layers ``potentials`` (first layer first) applied to x [K, N, 2].

    Args:
        x: the base points x_0, [K, N, 2].
        potentials: the layers' potentials φ_l, first layer first.
        eta: the layers' step η.

    Returns:
        x_L, [K, N, 2].
    """
    for potential in potentials:
        x = gradient_step(x, potential, eta)
    return x


@dataclass
class Stack:
    """A grown generator: base G_θ (θ [K, p], or None for x_0 = z) and critic snapshots ω_l [K, q].

    Args:
        theta: the base generator's parameters θ, [K, p], or None for x_0 = z.
        snapshots: the critic snapshots ω_l of the layers, first layer first, each [K, q].
    """

    theta: Optional[torch.Tensor] = None
    snapshots: List[torch.Tensor] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.snapshots)


@dataclass
class GradientLayer:
    """Trainer of a gradient-layer generator on ``game``'s target (Nitanda & Suzuki 2018).

    ``game`` (a MixtureGAN) gives the target, the critic's architecture and, for distillation and
    base generators, the generator's; its own ``loss`` is not used. ``run`` fills ``stack``.

    Args:
        game: the MixtureGAN giving the target, the critic and the generator network.
        loss: the layers' and the critic's loss, "gan", "ns-gan" or "wgan".
        eta: the layers' step η (flow time per layer).
        n_critic: critic updates per layer.
        critic_lr: the critic's learning rate.
        critic_optimizer: the critic's optimiser (a name of ``games.optim.make_optimizer``).
        critic_options: the optimiser's options.
        ridge: the critic's ridge λ ≥ 0.
        batch_size: real and fake samples per critic update.
        particles: the number N of particles (fixed latents z_i).
        distill_every: distil the stack into G_θ every that many layers (0: never).
        distill_steps: Adam steps per distillation.
        distill_lr: Adam's rate in a distillation.
    """

    game: MixtureGAN = field(default_factory=MixtureGAN)
    loss: str = "gan"
    eta: float = 0.1
    n_critic: int = 5
    critic_lr: float = 1e-3
    critic_optimizer: str = "adam"
    critic_options: dict = field(default_factory=dict)
    ridge: float = 0.0
    batch_size: int = 128
    particles: int = 512
    distill_every: int = 0
    distill_steps: int = 100
    distill_lr: float = 1e-2

    def __post_init__(self):
        if not isinstance(self.game, MixtureGAN):
            raise ConfigError("gradient_layer.game", f"expected a MixtureGAN, got {type(self.game).__name__}")
        check_choice("gradient_layer.loss", self.loss, LOSSES)
        self.eta = check_positive("gradient_layer.eta", self.eta)
        self.n_critic = check_int("gradient_layer.n_critic", self.n_critic)
        self.critic_lr = check_positive("gradient_layer.critic_lr", self.critic_lr)
        self.optimizer = make_optimizer(self.critic_optimizer, field="gradient_layer.critic_optimizer",
                                        **self.critic_options)
        self.ridge = check_positive("gradient_layer.ridge", self.ridge, allow_zero=True)
        self.batch_size = check_int("gradient_layer.batch_size", self.batch_size)
        self.particles = check_int("gradient_layer.particles", self.particles)
        self.distill_every = check_int("gradient_layer.distill_every", self.distill_every, minimum=0)
        self.distill_steps = check_int("gradient_layer.distill_steps", self.distill_steps)
        self.distill_lr = check_positive("gradient_layer.distill_lr", self.distill_lr)
        self.stack, self.latents = Stack(), None

    # -- the layers -----------------------------------------------------------------------------
    def potential(self, omega: torch.Tensor) -> Potential:
        """x ↦ φ(D_ω(x)) [K, N]: the layer's potential, −ℓ_G(D) (identity, or log σ for ns-gan)."""
        if self.loss == "ns-gan":
            return lambda x: f(self.game.discriminate(omega, x), self.loss)
        return lambda x: self.game.discriminate(omega, x)

    def layer(self, omega: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One gradient layer with critic snapshot ω [K, q] on points x [K, N, 2].

        Args:
            omega: the critic snapshot ω_l, [K, q].
            x: the points x_l, [K, N, 2].

        Returns:
            x_{l+1} = x_l + η ∇_x φ(D_l(x_l)), [K, N, 2].
        """
        return gradient_step(x, self.potential(omega), self.eta)

    def base(self, z: torch.Tensor, stack: Optional[Stack] = None) -> torch.Tensor:
        """x_0: the latents z [K, N, z_dim] themselves, or G_θ(z) if the stack has a base generator.

        Args:
            z: the latents, [K, N, z_dim].
            stack: the stack whose base is used (default: the trained one).

        Returns:
            x_0, [K, N, 2].
        """
        stack = self.stack if stack is None else stack
        return z if stack.theta is None else self.game.generate(stack.theta, z)

    def push(self, z: torch.Tensor, stack: Optional[Stack] = None) -> torch.Tensor:
        """Fresh latents z [K, N, z_dim] through the base and every layer of ``stack`` (default: the
        trained one), [K, N, 2]: L critic input-gradient evaluations.

        Args:
            z: the latents, [K, N, z_dim].
            stack: the generator (default: the trained one).

        Returns:
            x_L, [K, N, 2], detached.
        """
        stack = self.stack if stack is None else stack
        x = self.base(z, stack).detach()
        return apply_layers(x, [self.potential(w) for w in stack.snapshots], self.eta).detach()

    # -- the critic -----------------------------------------------------------------------------
    def critic_loss(self, omega: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """L_D(ω) per run [K] on real and fake points [K, B, 2], with the ridge (λ/2)|ω|².

        Args:
            omega: the critic's parameters, [K, q].
            real: target samples, [K, B, 2].
            fake: particles, [K, B, 2].

        Returns:
            L_D(ω), [K].
        """
        d_real, d_fake = self.game.discriminate(omega, real), self.game.discriminate(omega, fake)
        loss = -(f(d_real, self.loss).mean(-1) + f(-d_fake, self.loss).mean(-1))  # −V (games.maths.losses)
        return loss + 0.5 * self.ridge * omega.square().sum(-1) if self.ridge else loss

    def critic_round(self, omega, state, count: int, x: torch.Tensor, streams: Streams):
        """``n_critic`` updates of ω against particles x [K, N, 2]: (ω, optimiser state, last loss [K]).

        Args:
            omega: the critic's parameters, [K, q].
            state: the critic optimiser's state.
            count: the number of critic updates before this round (the optimiser's step counter).
            x: the particles, [K, N, 2].
            streams: the runs' streams (real minibatches and the fake samples' indices).

        Returns:
            (ω [K, q], the optimiser's state, the loss of the last update [K]).
        """
        for i in range(self.n_critic):
            real = self.game.sample(streams.K, self.batch_size, streams)[0]
            fake = _gather(x, streams.randint(x.shape[1], self.batch_size))
            omega = omega.detach().requires_grad_()
            with torch.enable_grad():
                loss = self.critic_loss(omega, real, fake)
                g, = torch.autograd.grad(loss.sum(), omega)
            d, state = self.optimizer.direction(g, state, count + i)
            omega = (omega - self.critic_lr * d).detach()
        return omega, state, loss.detach()

    # -- distillation ----------------------------------------------------------------------------
    def distill(self, theta: torch.Tensor, z: torch.Tensor, x: torch.Tensor):
        """Fit G_θ(z) ≈ x by Adam on the mean squared error (Johnson & Zhang's CFG-GAN): (θ, mse [K]).

        Args:
            theta: the generator's parameters to start from, [K, p].
            z: the latents, [K, N, z_dim].
            x: the particles to fit, [K, N, 2].

        Returns:
            (θ [K, p], the final mean squared error [K]).
        """
        adam = make_optimizer("adam")
        state = adam.init(theta)
        for n in range(self.distill_steps):
            theta = theta.detach().requires_grad_()
            with torch.enable_grad():
                mse = (self.game.generate(theta, z) - x).square().sum(-1).mean(-1)
                g, = torch.autograd.grad(mse.sum(), theta)
            d, state = adam.direction(g, state, n)
            theta = (theta - self.distill_lr * d).detach()
        mse = (self.game.generate(theta, z) - x).square().sum(-1).mean(-1)
        return theta, mse.detach()

    # -- training ----------------------------------------------------------------------------------
    def run(self, layers: int, *, K: Optional[int] = None, seed: int = 0, streams: Optional[Streams] = None,
            base: Optional[torch.Tensor] = None, record_every: int = 1, record_particles: Optional[int] = None,
            device="cpu", dtype=torch.float64, progress: bool = False, metadata: Optional[dict] = None
            ) -> Trajectory:
        """Grow ``layers`` layers for K runs from base generator θ [K, p] (None: x_0 = z, or, with
        distillation, G_θ at the game's initial θ), recording every ``record_every`` layers the first
        ``record_particles`` particles (default min(N, 256)). Afterwards ``self.stack`` is the
        generator and ``self.latents`` [K, N, z_dim] the particles' latents. Runs under ``games.driver``
        (divergence of the particles, checkpoints); Ctrl-C stops and returns what was recorded and a last
        row of the stack as it was after the last finished layer (``interrupted``: the layer it was growing).

        Args:
            layers: the number L of layers to grow.
            K: the number of runs (without streams).
            seed: the seed of the default streams.
            streams: the runs' streams.
            base: the base generator's parameters, [K, p].
            record_every: record every that many layers (and the last).
            record_particles: the number of particles recorded (default min(N, 256)).
            device: the device (without streams).
            dtype: the dtype (without streams).
            progress: show a progress bar.
            metadata: extra entries for the Trajectory's metadata.

        Returns:
            The Trajectory at times lη: states `[T, K, 2n]` (n = ``record_particles``) and the
            observables of the module docstring.
        """
        layers = check_int("gradient_layer.layers", layers, minimum=0)
        record_every = check_int("run.record_every", record_every)
        streams = streams or Streams.from_seed(seed, check_int("run.paths", K), device=device, dtype=dtype)
        n_rec = self._check_recorded(record_particles)
        loop = _Growth(self, streams, base, n_rec)
        outcome = drive(loop, layers, record_every=record_every, progress=progress, desc="gradient layers")
        if outcome.interrupted is not None and outcome.record.steps[-1:] != [loop.n]:  # the stack's last layer
            outcome.record.add(loop.n, loop.time(), loop.row().detach().cpu(), loop.observe(loop.n))
        meta = {"layers": layers, "record_every": record_every, **outcome.metadata(),
                "interrupted": None if outcome.interrupted is None else loop.n + 1,
                "seeds": streams.seeds.tolist() if streams.K <= 64 else None, **(metadata or {}),
                "recorded_layers": list(outcome.record.steps)}
        return outcome.trajectory(2 * n_rec, {**self.describe(), **meta})

    def _start(self, streams: Streams, base):
        """Draw the particles' latents and the critic's initial ω; set the empty stack: (ω, x_0)."""
        self.latents = streams.normal(self.particles, self.game.z_dim)
        theta, omega = self.game.split(self.game.init(streams.K, streams))
        self.stack = Stack(self._base_theta(base, theta, streams))
        return omega, self.base(self.latents).detach()

    def _round(self, omega, state, x, l: int, streams: Streams):
        """Critic updates, then layer l (and a distillation if it is due): (ω, state, x, stack, obs)."""
        omega, state, loss = self.critic_round(omega, state, (l - 1) * self.n_critic, x, streams)
        new = self.layer(omega, x).detach()
        obs = {"loss_omega": loss, "step_norm": (new - x).norm(dim=-1).mean(-1)}
        if self.distill_every and l % self.distill_every == 0:
            theta, obs["distill_mse"] = self.distill(self.stack.theta, self.latents, new)
            stack = Stack(theta)
            return omega, state, self.base(self.latents, stack).detach(), stack, obs
        return omega, state, new, Stack(self.stack.theta, [*self.stack.snapshots, omega.clone()]), obs

    def _base_theta(self, base, theta0: torch.Tensor, streams: Streams):
        """θ of the base generator [K, p] (``base``, or the initial θ0 when distilling), or None for
        x_0 = z (which needs z_dim = 2)."""
        if base is not None:
            base = torch.as_tensor(base, device=streams.device, dtype=streams.dtype)
            if tuple(base.shape) != (streams.K, self.game.p):
                raise ConfigError("gradient_layer.base", f"expected θ of shape [{streams.K}, {self.game.p}], "
                                                         f"got {tuple(base.shape)}")
            return base.clone()
        if self.distill_every:
            return theta0
        if self.game.z_dim != 2:
            raise ConfigError("game.z_dim", f"x_0 = z needs z_dim = 2 (got {self.game.z_dim}); give a base "
                                            "generator or set gradient_layer.distill_every > 0")
        return None

    def _check_recorded(self, n) -> int:
        n = min(self.particles, 256) if n is None else check_int("gradient_layer.record_particles", n, minimum=0)
        if n > self.particles:
            raise ConfigError("gradient_layer.record_particles",
                              f"must be at most gradient_layer.particles = {self.particles}, got {n}")
        return n

    def describe(self) -> dict:
        """The set-up, for a Trajectory's metadata."""
        return {"method": "gradient-layer", "game": self.game.describe(), "loss": self.loss, "eta": self.eta,
                "n_critic": self.n_critic, "critic_lr": self.critic_lr, "critic_optimizer": self.critic_optimizer,
                "critic_options": self.critic_options,
                "ridge": self.ridge, "batch_size": self.batch_size, "particles": self.particles,
                "distill_every": self.distill_every, "distill_steps": self.distill_steps,
                "distill_lr": self.distill_lr, "versions": {"torch": torch.__version__}}


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[k, index[k]] for points x [K, N, 2] and indices [K, B]: [K, B, 2]."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))


class _Growth(Stepper):
    """Growing the stack as the driver's ``Stepper``: step l → l + 1 is a critic round and layer l + 1, and
    row l holds x_l with the observables of the round that made it."""

    def __init__(self, gl: GradientLayer, streams: Streams, base, n_rec: int):
        self.gl, self.streams, self.n_rec, self.K = gl, streams, n_rec, streams.K
        self.omega, self.x = gl._start(streams, base)
        self.opt_state, self.start, self.obs, self.n = gl.optimizer.init(self.omega), time.perf_counter(), {}, 0

    def time(self) -> float:
        return self.n * self.gl.eta

    def state(self) -> torch.Tensor:
        return self.x.reshape(self.K, -1)

    def row(self) -> torch.Tensor:
        return self.x[:, : self.n_rec].reshape(self.K, -1)

    def step(self, n: int, observe: bool):
        row = self.observe(n) if observe else None
        self.omega, self.opt_state, self.x, self.gl.stack, self.obs = self.gl._round(
            self.omega, self.opt_state, self.x, n + 1, self.streams)
        self.n = n + 1
        return row

    def observe(self, n: int) -> dict:
        """Row n's observables: the last round's, NaN where it had none, n·n_critic and the wall time."""
        nan = torch.full((self.K,), math.nan, dtype=torch.float64)
        obs = {k: self.obs[k].detach().double().cpu() if k in self.obs else nan
               for k in ("loss_omega", "step_norm", "distill_mse")}
        obs["critic_updates"] = torch.full_like(nan, n * self.gl.n_critic)
        obs["wall_s"] = torch.full_like(nan, time.perf_counter() - self.start)
        return obs

    def poison(self, runs: torch.Tensor) -> None:
        self.x = self.x.masked_fill(runs[:, None, None], math.nan)

    def fingerprint(self) -> dict:
        return {"particles": self.gl.particles, "n_critic": self.gl.n_critic, "eta": self.gl.eta}

    def state_dict(self) -> dict:
        return {"omega": self.omega, "opt_state": self.opt_state, "x": self.x, "stack": self.gl.stack,
                "obs": self.obs, "n": self.n, "counter": self.streams.counter,
                "wall_s": time.perf_counter() - self.start}

    def load_state_dict(self, state: dict) -> None:
        self.omega, self.opt_state, self.x, self.obs = state["omega"], state["opt_state"], state["x"], state["obs"]
        self.gl.stack, self.n, self.streams.counter = state["stack"], state["n"], state["counter"]
        self.start = time.perf_counter() - state["wall_s"]
