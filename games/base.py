"""Game: two players with flat parameter vectors, their minibatch losses, and the vector field.

State x has shape [K, d] with d = p + q: θ = x[:, :p] (generator), ω = x[:, p:] (discriminator).
The field is V(x) = (−∇_θ L_G, −∇_ω L_D) (THEORY §1); the learning-rate ratios c_θ, c_ω are applied
by the training and SDE layers, not here.
"""
from __future__ import annotations

import copy
import inspect
import math
from typing import Any, Tuple

import torch

from .errors import ConfigError
from .random import Streams

Batch = Any  # a tensor or a tuple of tensors, each with leading dimensions [K, B]
PLAYERS = ("theta", "omega")  # the generator θ and the discriminator ω


class NotAvailable(NotImplementedError):
    """What a game does not offer: a known equilibrium, a closed-form target law, a distance to it."""


def _requires_grad(obj) -> bool:
    if isinstance(obj, torch.Tensor):
        return obj.requires_grad
    if isinstance(obj, (tuple, list)):
        return any(_requires_grad(o) for o in obj)
    return False


class Game:
    """A two-player game, batched over K independent runs.

    Subclasses define ``p``, ``q``, ``sample`` and either ``sample_losses`` (per-sample losses
    [K, B], which covariance estimates need) or ``losses`` (minibatch means [K]).
    """

    name = "game"
    p: int
    q: int
    PRESETS: dict = {}  # {preset name: constructor options}: the set-ups that entries, notebooks and tests share

    @classmethod
    def preset(cls, name: str, **changes) -> "Game":
        """The game of preset ``name`` (``PRESETS``), with ``changes`` to its options.

        Args:
            name: a key of ``PRESETS``.
            changes: constructor options that replace the preset's.

        Returns:
            The game.
        """
        return cls(**{**cls.preset_options(name), **changes})

    @classmethod
    def preset_options(cls, name: str) -> dict:
        """The constructor options of preset ``name``; ConfigError names an unknown one."""
        if name not in cls.PRESETS:
            raise ConfigError("game.preset", f"unknown preset {name!r} of {cls.name}; expected one of "
                                             f"{', '.join(cls.PRESETS) or 'none'}")
        return copy.deepcopy(cls.PRESETS[name])

    @property
    def d(self) -> int:
        return self.p + self.q

    def split(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return x[..., : self.p], x[..., self.p :]

    def join(self, theta: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """The state x = (θ, ω), the inverse of ``split``.

        Args:
            theta: the generator's parameters θ, shape `[*, p]`.
            omega: the discriminator's parameters ω, shape `[*, q]`.

        Returns:
            x, shape `[*, d]` with d = p + q.
        """
        return torch.cat([theta, omega], dim=-1)

    # -- what a game defines ------------------------------------------------------------------
    def sample(self, K: int, B: int, generator: Streams) -> Batch:
        """A minibatch of size B for each of the K runs, drawn from their streams.

        Args:
            K: the number of independent runs.
            B: the minibatch size (samples per run).
            generator: the K runs' random streams; every draw has leading dimension K, run k's from its
                own stream.

        Returns:
            The minibatch: a tensor or a tuple of tensors, each with leading dimensions `[K, B]` (None for a
            game without randomness).
        """
        raise NotImplementedError

    def sample_losses(self, theta, omega, batch) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-sample losses (L_G, L_D), each [K, B].

        Args:
            theta: the generator's parameters θ [K, p].
            omega: the discriminator's parameters ω [K, q].
            batch: a minibatch of ``sample``, leading dimensions `[K, B]`.

        Returns:
            (L_G, L_D), each [K, B]: sample b's loss of the generator (which θ minimises) and of the
            discriminator (which ω minimises) in run k.
        """
        raise NotAvailable(f"{self.name} gives minibatch losses only")

    def losses(self, theta, omega, batch) -> Tuple[torch.Tensor, torch.Tensor]:
        """Minibatch losses (L̂_G, L̂_D), each [K].

        Args:
            theta: the generator's parameters θ [K, p].
            omega: the discriminator's parameters ω [K, q].
            batch: a minibatch of ``sample``, leading dimensions `[K, B]`.

        Returns:
            (L̂_G, L̂_D), each [K]: the minibatch means of ``sample_losses`` (by default).
        """
        lg, ld = self.sample_losses(theta, omega, batch)
        return lg.mean(-1), ld.mean(-1)

    def init(self, K: int, generator: Streams) -> torch.Tensor:
        """Initial states [K, d].

        Args:
            K: the number of independent runs.
            generator: the K runs' random streams (a random initialisation draws from them); they also
                give the result's device and dtype.

        Returns:
            x₀ [K, d] (zeros by default).
        """
        return torch.zeros(K, self.d, device=generator.device, dtype=generator.dtype)

    def project(self, theta: torch.Tensor, omega: torch.Tensor):
        """Constraint applied after each update (e.g. weight clipping); identity by default.

        Args:
            theta: the generator's parameters θ [K, p] after the update.
            omega: the discriminator's parameters ω [K, q] after the update.

        Returns:
            (θ, ω) projected onto the constraint set, same shapes.
        """
        return theta, omega

    @property
    def coordinate_names(self) -> tuple:
        """A name for each coordinate of x (default x0, x1, …), for figures."""
        return tuple(f"x{i}" for i in range(self.d))

    def describe(self) -> dict:
        """The game's name and constructor options (for metadata and reports)."""
        names = inspect.signature(type(self)).parameters
        options = {k: getattr(self, k, None) for k in names}
        return {"name": self.name, **{k: v for k, v in options.items() if v is not None and not callable(v)}}

    @property
    def additive_noise(self) -> bool:
        """Whether the minibatch noise's law is the same at every x (its factor F is constant), which the
        SME-2 of a rule with memory needs. False unless a game knows better."""
        return False

    # -- what a game offers, where it knows it (``NotAvailable`` otherwise) ---------------------------
    def equilibrium(self, device="cpu", dtype=torch.float64) -> torch.Tensor:
        """The equilibrium x* [d], where the game has a known one (NotAvailable otherwise).

        Args:
            device: the device of the result.
            dtype: the floating dtype of the result.

        Returns:
            x* [d], a zero of the expected field: V(x*) = 0.
        """
        raise NotAvailable(f"{self.name} has no known equilibrium")

    def target_law(self, device="cpu", dtype=torch.float64):
        """The law the generator learns, where the game knows it in closed form (NotAvailable otherwise).

        Args:
            device: the device of the law's tensors.
            dtype: the floating dtype of the law's tensors.

        Returns:
            The target law, a record of its parameters (``GaussianLaw``, ``MixtureLaw``, …).
        """
        raise NotAvailable(f"{self.name} has no closed-form target law")

    def target_distance(self, x: torch.Tensor) -> torch.Tensor:
        """The distance [K] from the generator law at x [K, d] to the target (named by ``target_distance_name``)."""
        raise NotAvailable(f"{self.name} has no closed-form distance to its target")

    target_distance_name = "distance to the target"

    def offered(self, what: str, *args, **kwargs):
        """``what(*args, **kwargs)`` of this game (say "equilibrium"), or None where the game does not offer it.

        Args:
            what: the name of one of the game's declarations.
            *args: its positional arguments.
            **kwargs: its keyword arguments.

        Returns:
            Its value, or None.
        """
        try:
            return getattr(self, what)(*args, **kwargs)
        except NotAvailable:  # not a bare NotImplementedError: a missing implementation is a bug, not an absence
            return None

    # -- closed forms, where a game has them ---------------------------------------------------
    def expected_losses(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The exact expected losses (E L̂_G(x), E L̂_D(x)), each [K]."""
        raise NotAvailable(f"{self.name} has no closed-form expected losses")

    def expected_field(self, x: torch.Tensor) -> torch.Tensor:
        """The exact expected field E V̂(x) [K, d]."""
        raise NotAvailable(f"{self.name} has no closed-form field")

    def expected_field_jvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """DV(x)·v [K, d]: the derivative of ``expected_field`` along v (forward-mode autograd).

        Args:
            x: the states [K, d] at which V is differentiated.
            v: the directions [K, d], one per run.

        Returns:
            DV(x)·v [K, d], row k the Jacobian of V at x_k applied to v_k.
        """
        return torch.func.jvp(self.expected_field, (x,), (v,))[1]

    def gradient_noise_factor(self, x: torch.Tensor, B: int) -> torch.Tensor:
        """A factor F [K, d, m] of the minibatch field's covariance: F Fᵀ = Σ_B(x) = Cov[V̂(x)].

        Args:
            x: the states [K, d].
            B: the minibatch size; Σ_B = Σ₁/B, so F scales as 1/√B.

        Returns:
            F [K, d, m], m the game's number of noise columns (F is not unique: any F with F Fᵀ = Σ_B).
        """
        raise NotAvailable(f"{self.name} has no closed-form gradient covariance")

    def gradient_noise_product(self, x: torch.Tensor, B: int, w: torch.Tensor) -> torch.Tensor:
        """F w for w of shape `[*, K, m]`, F = ``gradient_noise_factor``: the minibatch field's noise driven
        by w. A game with a closed form for the product may give it instead (and read its factor off
        it), so that a step needs no [K, d, m] factor.

        Args:
            x: the states [K, d].
            B: the minibatch size.
            w: the driving numbers, shape `[*, K, m]` (N(0, I_m) for noise with covariance Σ_B(x)), with
                any leading dimensions.

        Returns:
            F(x) w, shape `[*, K, d]`.
        """
        return (self.gradient_noise_factor(x, B) @ w[..., None])[..., 0]

    def gradient_noise_increments(self, batch: Batch, streams: Streams) -> torch.Tensor:
        """Exact N(0, I_m) numbers w [K, m] made of a minibatch (and of fresh draws from ``streams``)
        with F w ≈ √B (V̂ − E V̂) for F = ``gradient_noise_factor``·√B: the chain's noise as
        Brownian increments, to couple it with its SME (``sde.coupling``).

        Args:
            batch: a minibatch of ``sample``, leading dimensions `[K, B]`.
            streams: the K runs' streams, for the fresh draws the construction needs beyond the batch.

        Returns:
            w [K, m], in the columns of ``gradient_noise_factor``.
        """
        raise NotAvailable(f"{self.name} cannot turn its minibatches into Brownian increments")

    def gradient_covariance(self, x: torch.Tensor, B: int) -> torch.Tensor:
        """Σ_B(x) = F Fᵀ [K, d, d] (dense: for small games, tests and Lyapunov equations).

        Args:
            x: the states [K, d].
            B: the minibatch size.

        Returns:
            Σ_B(x) [K, d, d], the covariance of V̂(x): symmetric positive semi-definite.
        """
        factor = self.gradient_noise_factor(x, B)
        return factor @ factor.transpose(1, 2)

    # -- derived by autograd --------------------------------------------------------------------
    def field(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Minibatch field V̂(x) = (−∇_θ L̂_G, −∇_ω L̂_D) [K, d], by autograd.

        Differentiable in x and in the batch when they require grad (for Jacobians of update maps).

        Args:
            x: the states [K, d].
            batch: a minibatch of ``sample``, leading dimensions `[K, B]`.

        Returns:
            V̂(x) [K, d]: the generator's block −∇_θ L̂_G [K, p], then the discriminator's
            −∇_ω L̂_D [K, q].
        """
        fields, _ = self.player_fields(*self.split(x), batch)
        return torch.cat([fields["theta"], fields["omega"]], dim=-1)

    def player_losses(self, theta, omega, batch, players=PLAYERS) -> dict:
        """{player: its minibatch loss [K]} for the requested players ("theta" → L̂_G, "omega" → L̂_D).

        Games may override this to skip work that the other player's loss alone needs.

        Args:
            theta: the generator's parameters θ [K, p].
            omega: the discriminator's parameters ω [K, q].
            batch: a minibatch of ``sample``, leading dimensions `[K, B]`.
            players: the players whose losses are needed, among "theta" and "omega".

        Returns:
            {player: minibatch loss [K]}, for at least the requested players.
        """
        return dict(zip(PLAYERS, self.losses(theta, omega, batch)))

    def player_fields(self, theta, omega, batch, players=PLAYERS):
        """({player: field [K, p] or [K, q]}, {player: minibatch loss [K]}) for the requested players.

        Args:
            theta: the generator's parameters θ [K, p].
            omega: the discriminator's parameters ω [K, q].
            batch: a minibatch of ``sample``, leading dimensions `[K, B]`.
            players: the players whose fields are needed, among "theta" and "omega".

        Returns:
            (fields, losses): fields["theta"] = −∇_θ L̂_G [K, p], fields["omega"] = −∇_ω L̂_D [K, q], and
            each player's minibatch loss [K].
        """
        grads, losses = self.player_grads(theta, omega, batch, players)
        return {who: -g for who, g in grads.items()}, losses

    def player_grads(self, theta, omega, batch, players=PLAYERS, player_losses=None):
        """({player: gradient of its own loss}, {player: loss}): −field, as training uses it.

        ``player_losses`` may replace the method of that name (a compiled version, say); it is not
        used inside a differentiation of the gradients themselves.

        Args:
            theta: the generator's parameters θ [K, p].
            omega: the discriminator's parameters ω [K, q].
            batch: a minibatch of ``sample``, leading dimensions `[K, B]`.
            players: the players whose gradients are needed, among "theta" and "omega".
            player_losses: a replacement for ``self.player_losses`` (same signature), or None.

        Returns:
            (grads, losses): grads["theta"] = ∇_θ L̂_G [K, p], grads["omega"] = ∇_ω L̂_D [K, q], each the
            partial derivative of the player's own loss in its own parameters (with a graph when the
            inputs require grad), and each player's minibatch loss [K], detached.
        """
        nested = _requires_grad((theta, omega, batch))
        losses_of = self.player_losses if nested or player_losses is None else player_losses
        with torch.enable_grad():
            params = {who: _leaf(t, nested, who in players) for who, t in zip(PLAYERS, (theta, omega))}
            losses = losses_of(params["theta"], params["omega"], batch, players)
            grads = {}
            for who in players:
                (grads[who],) = torch.autograd.grad(losses[who].sum(), params[who], create_graph=nested,
                                                    retain_graph=True)
        return grads, {who: losses[who].detach() for who in players}

    def sample_fields(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Per-sample fields [K, B, d]: torch.func.vmap over the samples of the gradient of each
        one-sample loss (memory linear in B; composable with jvp).

        Args:
            x: the states [K, d].
            batch: a minibatch of ``sample``, leading dimensions `[K, B]`.

        Returns:
            The fields [K, B, d] of the B one-sample losses (``sample_losses``), whose mean over B is V̂(x).
        """
        theta, omega = self.split(x)

        def one_sample(th, om, sample, who):
            single = torch.utils._pytree.tree_map(lambda t: t.unsqueeze(1), sample)  # a batch of size 1
            return self.sample_losses(th, om, single)[who].sum()  # runs are independent

        g_theta = torch.func.vmap(torch.func.grad(lambda th, s: one_sample(th, omega, s, 0)),
                                  in_dims=(None, 1))(theta, batch)  # [B, K, p]
        g_omega = torch.func.vmap(torch.func.grad(lambda om, s: one_sample(theta, om, s, 1)),
                                  in_dims=(None, 1))(omega, batch)  # [B, K, q]
        return -torch.cat([g_theta, g_omega], dim=-1).transpose(0, 1)


def _leaf(t: torch.Tensor, nested: bool, wanted: bool) -> torch.Tensor:
    """A fresh node for t, so that gradients are partial derivatives at this point (even when,
    inside a nested differentiation, ω itself depends on θ); tracked only where needed."""
    if nested:
        return t.view_as(t) if t.requires_grad else t.detach().requires_grad_()
    return t.detach().requires_grad_(wanted)


def gaussian_quadratic_factor(g, x: torch.Tensor, r: int, quadratic: bool = True) -> torch.Tensor:
    """A factor F of Cov g(x, ξ), ξ ~ N(0, I_r), for per-sample fields g(x [K, d], ξ [K, P, r]) → [K, P, d]
    quadratic in ξ.

    With g = g₀ + Jξ + ½ξᵀH_iξ, Isserlis gives Cov = JJᵀ + ½ tr(H_i H_j) = F Fᵀ, F_i = [J_i, vec(H_i)/√2]
    (only J when ``quadratic`` is False). Since g is quadratic, J and H are exact central differences
    with unit steps: J_j = (g(e_j) − g(−e_j))/2, H_jj = g(e_j) + g(−e_j) − 2g₀,
    H_jl = (g(e_j+e_l) − g(e_j−e_l) − g(−e_j+e_l) + g(−e_j−e_l))/4, all P points in one evaluation.

    Args:
        g: the per-sample field, (x [K, d], ξ [K, P, r]) ↦ [K, P, d], a polynomial of degree ≤ 2 in ξ.
        x: the states [K, d].
        r: the dimension of the noise ξ.
        quadratic: False for g affine in ξ (only J; fewer evaluation points).

    Returns:
        F [K, d, r + r²] (`[K, d, r]` without ``quadratic``): the columns J, then vec(H)/√2, with
        F Fᵀ = Cov g(x, ξ) exactly.
    """
    K, eye = x.shape[0], torch.eye(r, dtype=x.dtype, device=x.device)
    pairs = [(j, l) for j in range(r) for l in range(j + 1, r)] if quadratic else []
    points = [torch.zeros(r, dtype=x.dtype, device=x.device)] + [s * eye[j] for j in range(r) for s in (1, -1)]
    points += [s * eye[j] + t * eye[l] for j, l in pairs for s in (1, -1) for t in (1, -1)]
    out = g(x, torch.stack(points).expand(K, -1, -1))  # [K, P, d]
    g0, plus, minus = out[:, 0], out[:, 1 : 2 * r + 1 : 2], out[:, 2 : 2 * r + 1 : 2]  # [K, r, d]
    jac = ((plus - minus) / 2).transpose(1, 2)  # [K, d, r]
    if not quadratic:
        return jac
    second = {(j, j): plus[:, j] + minus[:, j] - 2 * g0 for j in range(r)}  # each [K, d]
    for i, (j, l) in enumerate(pairs):
        pp, pm, mp, mm = out[:, 2 * r + 1 + 4 * i : 2 * r + 5 + 4 * i].unbind(1)
        second[j, l] = second[l, j] = (pp - pm - mp + mm) / 4
    hess = torch.stack([second[j, l] for j in range(r) for l in range(r)], dim=-1)  # vec(H) [K, d, r²]
    return torch.cat([jac, hess / math.sqrt(2)], dim=-1)


def gaussian_quadratic_increments(zeta: torch.Tensor, streams: Streams, quadratic: bool = True) -> torch.Tensor:
    """Exact N(0, I) numbers w [K, r + r²] (r without ``quadratic``) from a minibatch ζ [K, B, r] of
    N(0, I_r) draws, matched to the columns of ``gaussian_quadratic_factor``: F w ≈ √B (ĝ − E g).

    The mean ζ̄ ~ N(0, I/B) is independent of the scatter C = Σ_i (ζ_i − ζ̄)(ζ_i − ζ̄)ᵀ ~ W_r(B − 1, I),
    whose Cholesky factor has independent entries L_jj² ~ χ²_{B−j}, L_jl ~ N(0, 1) for j > l
    (Bartlett's decomposition). So w_J = √B ζ̄ (exact), w_jj = Φ⁻¹(F_{χ²_{B−j}}(L_jj²)) ≈ (C_jj − B)/√(2B),
    and (w_jl, w_lj) = (L_jl ± ν)/√2 with a fresh ν ~ N(0, 1), whose sum meets H_jl = H_lj.

    Args:
        zeta: the minibatch's standard normal draws ζ [K, B, r]; with ``quadratic``, B > r.
        streams: the K runs' streams, for the fresh ν (an r × r draw per run, its strictly lower entries
            used).
        quadratic: False for a factor of J alone: w = √B ζ̄ [K, r], nothing drawn.

    Returns:
        w [K, r + r²] (`[K, r]` without ``quadratic``), exactly N(0, I) distributed, in the columns of
        ``gaussian_quadratic_factor``.
    """
    K, B, r = zeta.shape
    linear = math.sqrt(B) * zeta.mean(1)
    if not quadratic:
        return linear
    if B <= r:
        raise ValueError(f"coupling the quadratic noise of {r} normals needs a batch larger than {r}, got {B}")
    centred = zeta - zeta.mean(1, keepdim=True)
    chol = torch.linalg.cholesky(centred.transpose(1, 2) @ centred)  # [K, r, r]
    dof = (B - torch.arange(1, r + 1, dtype=zeta.dtype, device=zeta.device)) / 2
    square = torch.diagonal(chol, dim1=-2, dim2=-1) ** 2 / 2
    lower, upper = torch.special.gammainc(dof, square), torch.special.gammaincc(dof, square)
    diagonal = torch.where(lower < 0.5, torch.special.ndtri(lower), -torch.special.ndtri(upper))
    fresh = streams.normal(r, r).to(zeta) * math.sqrt(0.5)  # only the strictly lower entries are used
    below = torch.tril(chol, -1) * math.sqrt(0.5)
    strict = torch.tril(fresh, -1)
    quad = torch.diag_embed(diagonal) + below + strict + (below - strict).transpose(1, 2)
    return torch.cat([linear, quad.flatten(1)], dim=-1)
