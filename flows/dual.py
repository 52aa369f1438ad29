"""Dual metric flows (THEORY §5): GAN training at vanishing learning rate, with the generator law
represented by N samples, written as a deterministic Game so that the flow, discrete training and
modified equations all run on the existing machinery.

These are the standard constructions (particle and parametric flows of a generator law against a
trained critic, as in Mroueh et al. 2019 "Sobolev descent", Chu, Blanchet & Glynn 2019
"probability functional descent"); Turinici 2020's exact formulation was not available to us.

Target samples Y_1..Y_M ∈ Rⁿ (fixed), generator samples X_1..X_N, critic D_ω, losses
(Mescheder et al. 2018)

    wgan     f₁(t) = t,          f₂(t) = −t,              ℓ_G(t) = −t
    gan      f₁(t) = log σ(t),   f₂(t) = log(1 − σ(t)),   ℓ_G = f₂
    ns-gan   f₁, f₂ as gan,                               ℓ_G(t) = −log σ(t)

    L_D(θ, ω) = −[(1/M) Σ_j f₁(D_ω(Y_j)) + (1/N) Σ_i f₂(D_ω(X_i))] + (λ/2)|ω|²,

that is f₁(t) = f(t), f₂(t) = f(−t) with f and ℓ_G of ``games.maths.losses``.

S2, particle generator (the Wasserstein flow of the generator law): θ = (X_1, …, X_N) ∈ R^{N·n},
L_G = Σ_i ℓ_G(D_ω(X_i)) — a sum, not a mean, so that −∇_{X_i} L_G = −∇_x ℓ_G(D_ω(X_i)) exactly:

    dX_i/dt = −∇_x ℓ_G(D_ω(X_i)),    dω/dt = −α ∇_ω L_D.

S1, parametric generator: X_i = G_θ(z_i) for fixed latents z_i, L_G = (1/N) Σ_i ℓ_G(D_ω(G_θ(z_i))),
dθ/dt = −∇_θ L_G. The samples then move with the velocity
dX_i/dt = −(1/N) Σ_j Θ(z_i, z_j) ∇_x ℓ_G(D_ω(X_j)), Θ(z, z') = J_θG(z) J_θG(z')ᵀ the generator's
neural tangent kernel: the velocity of the continuity equation of the law G_θ#P_z (tracked through
its N samples).

Critics: an MLP D_ω, or linear in fixed features, D(x) = φ(x)ᵀa (ω = a), with φ
"quadratic" (x, vec(xxᵀ)); "rbf" exp(−|x − c_j|²/(2h²)) at fixed centres c_j; "rff"
√(2/F) cos(w_jᵀx + b_j), w_j ~ N(0, I/h²), b_j ~ U[0, 2π), fixed by a seed (Rahimi & Recht 2007);
optionally a constant feature. A linear critic moves in closed form,
ȧ = α[(1/M) Σ_j f₁'(D(Y_j)) φ(Y_j) + (1/N) Σ_i f₂'(D(X_i)) φ(X_i) − λa], for WGAN
ȧ = α(E_Y φ − E_X φ − λa), whose fixed point (the best response) is a* = (E_Y φ − E_X φ)/λ.
Quadratic features, WGAN and Gaussian data give back the Gaussian game (THEORY §3).

The time-scale ratio α is not part of the game: it is the critic's rate scale c_ω (``dual_flow``,
``dual_training``). The state is x [K, d] = (θ [K, p], ω [K, q]); the target and latent samples
are shared by the K runs ([M, n], [N, k]) or given per run ([K, M, n], [K, N, k]).
"""
from __future__ import annotations

import math

import torch
from torch.func import functional_call, grad, vjp, vmap

from games.base import PLAYERS, Game
from games.errors import ConfigError, check_choice, check_int, check_positive
from games.maths.kernels import rbf
from games.maths.losses import f, f_prime, generator_loss, generator_loss_slope
from games.networks import ACTIVATIONS, batched, init_bounds, mlp, unflatten
from games.sga import SGA, Player
from games.trajectory import Trajectory

from .gradient_flow import gradient_flow

GENERATORS = ("particles", "network")
CRITICS = ("quadratic", "rbf", "rff", "mlp")
LINEAR_CRITICS = ("quadratic", "rbf", "rff")
LOSSES = ("wgan", "gan", "ns-gan")


# -- critic features and their input gradients (points x [K, P, n], weights a [K, F]) ------------
def quadratic_features(x):
    """φ(x) = (x, vec(xxᵀ)) [..., n + n²]: D = vᵀx + xᵀUx, the Gaussian game's critic (THEORY §3)."""
    return torch.cat([x, (x[..., :, None] * x[..., None, :]).flatten(-2)], dim=-1)


def quadratic_gradient(x, a):
    """∇_x(vᵀx + xᵀUx) = v + (U + Uᵀ)x for a = (v, vec U).

    Args:
        x: the points, [K, P, n].
        a: the critic's weights (v, vec U), [K, n + n²] (further entries, such as a bias, are ignored).

    Returns:
        ∇_x D at the points, [K, P, n].
    """
    n = x.shape[-1]
    U = a[:, n:].unflatten(-1, (n, n))
    return a[:, None, :n] + x @ (U + U.transpose(1, 2))


def rbf_features(x, centres, width):
    """φ_j(x) = exp(−|x − c_j|²/(2h²)): Gaussian bumps at fixed centres c_j [F, n].

    Args:
        x: the points, [..., n].
        centres: the centres c_j, [F, n].
        width: the bandwidth h, > 0.

    Returns:
        φ(x), [..., F].
    """
    return rbf((x[..., None, :] - centres).square().sum(-1), width)


def rbf_gradient(x, a, centres, width):
    """∇_x Σ_j a_j φ_j(x) = Σ_j a_j φ_j(x)(c_j − x)/h².

    Args:
        x: the points, [K, P, n].
        a: the critic's weights a_j, [K, F].
        centres: the centres c_j, [F, n].
        width: the bandwidth h, > 0.

    Returns:
        ∇_x D at the points, [K, P, n].
    """
    weights = a[:, None, :] * rbf_features(x, centres, width)  # [K, P, F]
    return (weights @ centres - weights.sum(-1, keepdim=True) * x) / width**2


def rff_features(x, freqs, phases):
    """φ_j(x) = √(2/F) cos(w_jᵀx + b_j): random Fourier features of the Gaussian kernel
    (Rahimi & Recht 2007).

    Args:
        x: the points, [..., n].
        freqs: the frequencies w_j, [F, n] (w_j ~ N(0, I/h²) for the kernel of bandwidth h).
        phases: the phases b_j ∈ [0, 2π), [F].

    Returns:
        φ(x), [..., F].
    """
    return math.sqrt(2 / len(phases)) * torch.cos(x @ freqs.T + phases)


def rff_gradient(x, a, freqs, phases):
    """∇_x Σ_j a_j φ_j(x) = −√(2/F) Σ_j a_j sin(w_jᵀx + b_j) w_j.

    Args:
        x: the points, [K, P, n].
        a: the critic's weights a_j, [K, F].
        freqs: the frequencies w_j, [F, n].
        phases: the phases b_j, [F].

    Returns:
        ∇_x D at the points, [K, P, n].
    """
    return -math.sqrt(2 / len(phases)) * (a[:, None, :] * torch.sin(x @ freqs.T + phases)) @ freqs


# -- the game ------------------------------------------------------------------------------------
class DualFlowGame(Game):
    """A generator law of N samples against a critic: S2 (``generator="particles"``: θ = the
    particles ``positions`` [N, n], flattened) or S1 (``generator="network"``: θ = the flat
    parameters of G_θ = MLP [k, *generator_hidden, n] applied to the fixed ``latent`` [N, k];
    ``generator_hidden=()`` is the affine G_θ(z) = Wz + b, θ = (vec W, b)).

    The game is deterministic: ``sample`` gives None and ``expected_field`` is the exact field.
    """

    name = "dual-flow"

    def __init__(self, target, *, generator="particles", positions=None, latent=None, generator_hidden=(),
                 critic="rff", loss="wgan", ridge=0.0, n_features=64, bandwidth=1.0, centres=None,
                 bias=False, hidden=(32,), activation="tanh", seed=0):
        """Checks the options and lays out θ and ω.

        Args:
            target: the target samples Y_j, [M, n] (shared by the runs) or [K, M, n].
            generator: "particles" (S2) or "network" (S1).
            positions: the initial particles of S2, [N, n] or [K, N, n].
            latent: the fixed latents z_i of S1, [N, k] or [K, N, k].
            generator_hidden: the hidden widths of G_θ (S1; () for the affine G_θ(z) = Wz + b).
            critic: "quadratic", "rbf", "rff" (linear in features) or "mlp".
            loss: "wgan", "gan" or "ns-gan".
            ridge: the critic's ridge λ ≥ 0.
            n_features: the number F of rbf centres drawn from the target or of rff features.
            bandwidth: the rbf and rff features' bandwidth h, > 0.
            centres: the rbf centres c_j, [F, n] (default: ``n_features`` target samples chosen by ``seed``).
            bias: append a constant feature to a linear critic.
            hidden: the MLP critic's hidden widths.
            activation: the networks' activation (a key of ``games.networks.ACTIVATIONS``).
            seed: the seed of the rff features and of the drawn rbf centres.
        """
        self.target = _samples("game.target", target)
        self.n, self.M = self.target.shape[-1], self.target.shape[-2]
        self.generator = check_choice("game.generator", generator, GENERATORS)
        self.critic = check_choice("game.critic", critic, CRITICS)
        self.loss = check_choice("game.loss", loss, LOSSES)
        self.ridge = check_positive("game.ridge", ridge, allow_zero=True)
        self.bandwidth = check_positive("game.bandwidth", bandwidth)
        self.bias, self.seed = bool(bias), check_int("game.seed", seed, minimum=0)
        self.activation = check_choice("game.activation", activation, tuple(ACTIVATIONS))
        self.hidden = _widths("game.hidden", hidden)
        self.generator_hidden = _widths("game.generator_hidden", generator_hidden)
        self._make_generator(positions, latent)
        self._make_critic(check_int("game.n_features", n_features), centres)

    def _make_generator(self, positions, latent):
        """θ's layout: the particles (S2) or the generator network's flat parameters (S1)."""
        if self.generator == "particles":
            if latent is not None:
                raise ConfigError("game.latent", "a particle generator takes no latent samples")
            self.positions, self.latent = _samples("game.positions", positions, self.n), None
            self.N, self.generator_module = self.positions.shape[-2], None
            self.p = self.N * self.n
            return
        if positions is not None:
            raise ConfigError("game.positions", "a network generator takes latent samples, not positions")
        self.latent, self.positions = _samples("game.latent", latent), None
        self.N = self.latent.shape[-2]
        self.generator_module = mlp([self.latent.shape[-1], *self.generator_hidden, self.n], self.activation)
        self._g_shapes = [(k, w.shape) for k, w in self.generator_module.named_parameters()]
        self.p = sum(math.prod(s) for _, s in self._g_shapes)

    def _make_critic(self, n_features, centres):
        """ω's layout, and the fixed centres (rbf) or frequencies and phases (rff, from ``seed``)."""
        rng = torch.Generator().manual_seed(self.seed)
        self.critic_module, self._fixed = None, {}
        if self.critic == "mlp":
            self.critic_module = mlp([self.n, *self.hidden, 1], self.activation)
            self._d_shapes = [(k, w.shape) for k, w in self.critic_module.named_parameters()]
            self.q = sum(math.prod(s) for _, s in self._d_shapes)
            return
        if self.critic == "rbf":
            self._fixed["centres"] = self._centres(centres, n_features, rng)
        elif self.critic == "rff":
            self._fixed["freqs"] = torch.randn(n_features, self.n, generator=rng, dtype=torch.float64) / self.bandwidth
            self._fixed["phases"] = 2 * math.pi * torch.rand(n_features, generator=rng, dtype=torch.float64)
        sizes = {"quadratic": self.n + self.n**2, "rbf": len(self._fixed.get("centres", ())), "rff": n_features}
        self.n_features = sizes[self.critic]
        self.q = self.n_features + self.bias

    def _centres(self, centres, n_features, rng):
        """The rbf centres: as given [F, n], or ``n_features`` target samples chosen by ``seed``."""
        if centres is not None:
            return _samples("game.centres", centres, self.n, ndims=(2,))
        rows = self.target.reshape(-1, self.n)
        if n_features > len(rows):
            raise ConfigError("game.n_features", f"rbf centres are drawn from the {len(rows)} target "
                                                 f"samples; got {n_features}")
        return rows[torch.randperm(len(rows), generator=rng)[:n_features]]

    def describe(self) -> dict:
        """The options and sizes (the sample tensors themselves are not metadata)."""
        return {"name": self.name, "generator": self.generator, "critic": self.critic, "loss": self.loss,
                "ridge": self.ridge, "n": self.n, "M": self.M, "N": self.N, "p": self.p, "q": self.q,
                "bandwidth": self.bandwidth, "bias": self.bias, "seed": self.seed, "hidden": self.hidden,
                "generator_hidden": self.generator_hidden, "activation": self.activation}

    # -- samples --------------------------------------------------------------------------------
    def particles(self, x):
        """The generator law's N samples [..., N, n] of states x [..., d] (or θ [..., p]): a view
        of θ (S2) or G_θ(z_i) (S1)."""
        theta = x[..., : self.p]
        if self.generator == "particles":
            return theta.unflatten(-1, (self.N, self.n))
        lead, flat = theta.shape[:-1], theta.reshape(-1, self.p)
        z = torch.broadcast_to(self.latent.to(flat), (*lead, *self.latent.shape[-2:]))
        return self.generate(flat, z.reshape(len(flat), self.N, -1)).reshape(*lead, self.N, self.n)

    def generate(self, theta, z):
        """G_θ(z) [K, N, n] for θ [K, p] and latents z [K, N, k] (S1).

        Args:
            theta: the generator network's flat parameters, [K, p].
            z: the latents, [K, N, k].

        Returns:
            G_θ(z), [K, N, n].
        """
        return batched(self.generator_module, self._g_shapes, theta, z)

    def targets(self, like):
        """The target samples Y [K, M, n] for the K runs of ``like`` [K, ·]."""
        return torch.broadcast_to(self.target.to(like), (like.shape[0], self.M, self.n))

    # -- the critic -------------------------------------------------------------------------------
    def features(self, points):
        """φ(points) [K, P, F (+1)] of a linear critic, the constant feature last with ``bias``."""
        fixed = {k: v.to(points) for k, v in self._fixed.items()}
        if self.critic == "quadratic":
            phi = quadratic_features(points)
        elif self.critic == "rbf":
            phi = rbf_features(points, fixed["centres"], self.bandwidth)
        else:
            phi = rff_features(points, fixed["freqs"], fixed["phases"])
        return torch.cat([phi, torch.ones_like(phi[..., :1])], dim=-1) if self.bias else phi

    def discriminate(self, omega, points):
        """D_ω(points) [K, P] for ω [K, q] and points [K, P, n].

        Args:
            omega: the critic's parameters, [K, q].
            points: the points, [K, P, n].

        Returns:
            The critic's values, [K, P].
        """
        if self.critic == "mlp":
            return batched(self.critic_module, self._d_shapes, omega, points)[..., 0]
        return (self.features(points) @ omega[..., None])[..., 0]

    def critic_gradient(self, omega, points):
        """∇_x D_ω at each point [K, P, n]: closed form for linear critics, torch.func for the MLP.

        Args:
            omega: the critic's parameters, [K, q].
            points: the points, [K, P, n].

        Returns:
            ∇_x D_ω(points), [K, P, n].
        """
        if self.critic == "mlp":
            d_sum = lambda params, x: functional_call(self.critic_module, params, (x,)).sum()  # noqa: E731
            return vmap(grad(d_sum, argnums=1))(unflatten(omega, self._d_shapes), points)
        a, fixed = omega[:, : self.n_features], {k: v.to(points) for k, v in self._fixed.items()}
        if self.critic == "quadratic":
            return quadratic_gradient(points, a)
        if self.critic == "rbf":
            return rbf_gradient(points, a, fixed["centres"], self.bandwidth)
        return rff_gradient(points, a, fixed["freqs"], fixed["phases"])

    def velocity(self, x):
        """The force on each generator sample, −∇_x ℓ_G(D_ω(X_i)) [K, N, n]: S2's particle velocity
        (Mroueh et al. 2019; Chu, Blanchet & Glynn 2019)."""
        return self.force(x[:, self.p :], self.particles(x))

    def force(self, omega, points):
        """−∇_x ℓ_G(D_ω(x)) = −ℓ_G'(D_ω(x)) ∇_x D_ω(x) at points [K, P, n].

        Args:
            omega: the critic's parameters, [K, q].
            points: the points, [K, P, n].

        Returns:
            The force at each point, [K, P, n].
        """
        slope = generator_loss_slope(self.discriminate(omega, points), self.loss)
        return -slope[..., None] * self.critic_gradient(omega, points)

    # -- losses -------------------------------------------------------------------------------------
    def generator_loss(self, theta, omega):
        """L_G [K]: Σ_i ℓ_G(D(X_i)) (S2, a sum: each particle feels its own force) or
        (1/N) Σ_i ℓ_G(D(G_θ(z_i))) (S1).

        Args:
            theta: the generator's parameters (flat particles or network), [K, p].
            omega: the critic's parameters, [K, q].

        Returns:
            L_G, [K].
        """
        terms = generator_loss(self.discriminate(omega, self.particles(theta)), self.loss)
        return terms.sum(-1) if self.generator == "particles" else terms.mean(-1)

    def critic_loss(self, theta, omega):
        """L_D [K] = −[(1/M) Σ_j f₁(D(Y_j)) + (1/N) Σ_i f₂(D(X_i))] + (λ/2)|ω|².

        Args:
            theta: the generator's parameters, [K, p].
            omega: the critic's parameters, [K, q].

        Returns:
            L_D, [K].
        """
        real = f(self.discriminate(omega, self.targets(omega)), self.loss).mean(-1)
        fake = f(-self.discriminate(omega, self.particles(theta)), self.loss).mean(-1)
        return -(real + fake) + 0.5 * self.ridge * omega.square().sum(-1)

    def losses(self, theta, omega, batch=None):
        """(L_G, L_D) [K]; ``batch`` is ignored (the game is deterministic).

        Args:
            theta: the generator's parameters, [K, p].
            omega: the critic's parameters, [K, q].
            batch: ignored.

        Returns:
            (L_G, L_D), each [K].
        """
        return self.generator_loss(theta, omega), self.critic_loss(theta, omega)

    def player_losses(self, theta, omega, batch=None, players=PLAYERS) -> dict:
        """Only the requested players' losses.

        Args:
            theta: the generator's parameters, [K, p].
            omega: the critic's parameters, [K, q].
            batch: ignored.
            players: the players wanted, among "theta" (L_G) and "omega" (L_D).

        Returns:
            {player: its loss [K]}.
        """
        loss_of = {"theta": self.generator_loss, "omega": self.critic_loss}
        return {who: loss_of[who](theta, omega) for who in players}

    def sample(self, K, B, generator):
        """No minibatch: the expected field is the exact one.

        Args:
            K: the number of runs (unused).
            B: the batch size (unused).
            generator: the runs' streams (unused).
        """
        return None

    # -- fields -------------------------------------------------------------------------------------
    def expected_field(self, x):
        """The exact field V(x) [K, d]: ``linear_critic_field`` for linear critics, else ``autograd_field``."""
        return self.linear_critic_field(x) if self.critic in LINEAR_CRITICS else self.autograd_field(x)

    def autograd_field(self, x):
        """V(x) = (−∇_θ L_G, −∇_ω L_D) [K, d] by torch.func.grad (composes with jvp, vmap, jacrev)."""
        theta, omega = self.split(x)
        g_theta = grad(lambda th: self.generator_loss(th, omega).sum())(theta)
        g_omega = grad(lambda om: self.critic_loss(theta, om).sum())(omega)
        return -torch.cat([g_theta, g_omega], dim=-1)

    def linear_critic_field(self, x):
        """V(x) in closed form for a linear critic D = φᵀa: θ̇ = the forces (S2) or Jᵀ(forces)/N (S1);
        ȧ = (1/M) Σ_j f₁'(D(Y_j)) φ(Y_j) + (1/N) Σ_i f₂'(D(X_i)) φ(X_i) − λa (WGAN: E_Y φ − E_X φ − λa)."""
        self._require_linear("game.critic", "the closed-form field")
        theta, a = self.split(x)
        if self.generator == "particles":
            points = self.particles(theta)
            v_theta = self.force(a, points).flatten(1)
        else:
            points, pull_back = vjp(self.particles, theta)
            (v_theta,) = pull_back(self.force(a, points) / self.N)
        real = _slope_mean(self.features(self.targets(a)), a, lambda t: f_prime(t, self.loss))
        fake = _slope_mean(self.features(points), a, lambda t: -f_prime(-t, self.loss))
        return torch.cat([v_theta, real + fake - self.ridge * a], dim=-1)

    def best_response(self, x):
        """The WGAN linear critic's best response a* = (E_Y φ − E_X φ)/λ [K, q] (ȧ = 0)."""
        self._require_linear("game.critic", "the best response")
        if self.loss != "wgan" or self.ridge == 0:
            raise ConfigError("game.loss", "the closed-form best response needs loss = wgan and ridge > 0")
        theta, a = self.split(x)
        real, fake = self.features(self.targets(a)).mean(-2), self.features(self.particles(theta)).mean(-2)
        return (real - fake) / self.ridge

    def gradient_noise_factor(self, x, B):
        """Σ_B = 0: the game is deterministic (a zero factor [K, d, 1]).

        Args:
            x: the states, [K, d].
            B: the batch size (unused).

        Returns:
            Zeros, [K, d, 1].
        """
        return torch.zeros(x.shape[0], self.d, 1, dtype=x.dtype, device=x.device)

    def _require_linear(self, field, what):
        if self.critic not in LINEAR_CRITICS:
            raise ConfigError(field, f"{what} needs a linear critic ({', '.join(LINEAR_CRITICS)}), "
                                     f"got {self.critic!r}")

    # -- initial states ----------------------------------------------------------------------------
    def init(self, K, generator):
        """[K, d]: the given particles (S2) or PyTorch's default uniform init of G_θ (S1); a linear
        critic at zero, an MLP critic at PyTorch's default init (U(±1/√fan_in)).

        Args:
            K: the number of runs.
            generator: the runs' streams (of the networks' uniform draws; also the device and dtype).

        Returns:
            x_0, [K, d].
        """
        bounds = self._init_bounds().to(device=generator.device, dtype=generator.dtype)
        x = (2 * generator.uniform(self.d) - 1) * bounds if bounds.any() else bounds.expand(K, -1).clone()
        if self.generator == "particles":
            x[:, : self.p] = torch.broadcast_to(self.positions.to(x), (K, self.N, self.n)).flatten(1)
        return x

    def _init_bounds(self):
        """1/√fan_in for the network parameters, 0 for particles and linear critics, [d]."""
        parts = [torch.zeros(self.p, dtype=torch.float64) if self.generator_module is None
                 else init_bounds(self.generator_module),
                 torch.zeros(self.q, dtype=torch.float64) if self.critic_module is None
                 else init_bounds(self.critic_module)]
        return torch.cat(parts)


def _slope_mean(phi, a, slope):
    """(1/P) Σ_i slope(φ(x_i)ᵀa) φ(x_i) [K, F] for features φ [K, P, F]."""
    return (slope((phi @ a[..., None])[..., 0])[..., None] * phi).mean(-2)


def _samples(field, value, n=None, ndims=(2, 3)):
    """``value`` as a floating tensor of samples [P, n] (or [K, P, n]), checked."""
    if value is None:
        raise ConfigError(field, "samples are required")
    t = torch.as_tensor(value)
    t = t if t.is_floating_point() else t.double()
    if t.ndim not in ndims or t.shape[-2] == 0 or (n is not None and t.shape[-1] != n):
        want = " or ".join(f"[{'K, ' * (d - 2)}P, {n or 'n'}]" for d in ndims)
        raise ConfigError(field, f"expected samples {want}, got shape {tuple(t.shape)}")
    return t


def _widths(field, widths) -> tuple:
    """Hidden layer widths: a (possibly empty) sequence of positive integers."""
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise ConfigError(field, f"expected a sequence of layer widths, got {widths!r}")
    return tuple(check_int(field, w) for w in widths)


# -- thin wrappers ---------------------------------------------------------------------------------
def dual_flow(game: DualFlowGame, x0, t_end, alpha=1.0, **options) -> Trajectory:
    """The dual flow ẋ = (V_θ, α V_ω) from x0 [K, d] over [0, t_end]: ``gradient_flow`` with c_ω = α.

    Args:
        game: the dual flow game.
        x0: the initial states, [K, d].
        t_end: the final time.
        alpha: the time-scale ratio α > 0 (the critic's rate scale).
        **options: keywords of ``flows.ode.integrate_flow`` (n_records, method, rtol, atol…).

    Returns:
        The Trajectory: states [T, K, d].
    """
    check_positive("flow.alpha", alpha)
    return gradient_flow(game, x0, t_end, c_omega=alpha, **options)


def dual_training(game: DualFlowGame, x0, tau, steps, alpha=1.0, update="sim", n_d=1,
                  **run_options) -> Trajectory:
    """Discrete training at rate τ (critic rate ατ) from x0 [K, d]: SGA with plain SGD for ``steps``
    iterations (``run_options``: ``SGA.run``'s keywords, e.g. record_every).

    Args:
        game: the dual flow game.
        x0: the initial states, [K, d].
        tau: the generator's learning rate τ.
        steps: the number of iterations.
        alpha: the critic's rate scale α (its rate is ατ).
        update: the update rule (``SGA``'s ``update``: "sim", "alt-d", "alt-g", "eg", …).
        n_d: critic steps per generator step (alternating updates).
        **run_options: keywords of ``SGA.run`` (record_every, …).

    Returns:
        The Trajectory of the iterates: states [T, K, d].
    """
    sga = SGA(game, lr=tau, update=update, n_d=n_d, disc=Player("sgd", scale=alpha))
    return sga.run(steps, K=x0.shape[0], x0=x0, device=x0.device, dtype=x0.dtype, **run_options)
