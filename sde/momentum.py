"""SDEs of gradient descent–ascent with stateful optimisers: heavy ball and Adam (THEORY §7).

A stateful optimiser has no SME on x alone; its SDE carries the optimiser's state, and it is a limit
only under a stated scaling of the optimiser's constants with the learning rate. Both SDEs here are
of simultaneous GDA (``sga.update`` = "sim"), the players' minibatch noise taken from SME-1 of the same
training with SGD at unit rates (``sde.sme``): b₁ = V and σσᵀ = Σ_B (fresh minibatches: one per player),
σW entering with the sign of the gradient's noise −ζ (the field's is ζ), so that ``sde.coupling`` drives
them by the chain's own minibatches.

- ``HeavyBallSME``: torch's heavy ball m' = βm + g, x' = x − c η m'. With v = (1 − β)m and the
  effective rate h = η/(1 − β), v' = v + (1 − β)(ĝ − v), x' = x − c h v': as h → 0 with 1 − β = γh
  (γ fixed: η = γh², β = 1 − γh), the chain follows, in time t = kh,
      dx = −c v dt,   dv = γ(ξ(x) − v) dt + γ√h σ(x) dW,
  ξ = −V the players' gradients. (With β fixed instead, heavy ball is SGD at rate η/(1 − β).)
- ``AdamSME``: Adam m' = β₁m + (1 − β₁)g, v' = β₂v + (1 − β₂)g², x' = x − c η m̂/(√v̂ + ε) with the bias
  corrections m̂ = m'/(1 − β₁^{k+1}), v̂ = v'/(1 − β₂^{k+1}). Malladi, Lyu, Panigrahi & Arora 2022
  (arXiv:2205.10287), with c₁ = (1 − β₁)/η², c₂ = (1 − β₂)/η² and time τ = kη²:
      dx = −c (√γ₂/γ₁) m / (η(√u + ε√γ₂)) dτ,  dm = c₁(ξ(x) − m) dτ + c₁ η σ(x) dW,  du = c₂(diag Σ_B(x) − u) dτ,
  γᵢ(τ) = 1 − e^{−cᵢτ} (the bias corrections), m₀ = u₀ = 0. It is the limit under their square-root
  scaling rule; the SVAG check keeps it fixed while the chain has rate η/ℓ, 1 − βᵢ → (1 − βᵢ)/ℓ²,
  ε → εℓ and ℓ² times the gradient noise (SVAG with l = ℓ²), so that u = v/ℓ² → diag Σ_B.

The state y is (x, optimiser state) [K, 2d] or [K, 3d]: θ = y[:, :p] as for every Trajectory.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

import torch

from games.errors import ConfigError
from games.optim import Adam, HeavyBall
from games.sga import SGA, Player

from .sme import SME


class _OptimiserSDE:
    """The common part: SME-1 of ``sga`` with SGD at unit rates gives ξ = −V and σ (σσᵀ = Σ_B)."""

    noise_type = "general"
    sde_type = "ito"

    def __init__(self, sga: SGA, optimizer: type, eta: Optional[float]):
        if sga.rule.name != "sim":
            raise ConfigError("sga.update", f"the SDE of a stateful optimiser is given for simultaneous updates, "
                                            f"not {sga.rule.label}")
        for name, who in (("gen", "theta"), ("disc", "omega")):
            if not isinstance(sga.optimizers[who], optimizer):
                raise ConfigError(f"sga.{name}.optimizer", f"{type(self).__name__} needs {optimizer.__name__} "
                                                           "for both players")
        unit = {name: Player("sgd", weight_decay=p.weight_decay) for name, p in (("gen", sga.gen), ("disc", sga.disc))}
        self.sga, self.game = sga, sga.game
        self.noise = SME(replace(sga, lr=1.0, update="sim", **unit), order="1")
        self.eta = float(sga.schedule(0)) if eta is None else float(eta)
        self.p, self.x_dim, self.m, self.groups = sga.game.p, sga.game.d, self.noise.m, self.noise.groups
        self.scales = self.per_coordinate(lambda who: sga.players[who].scale)

    def per_coordinate(self, value) -> torch.Tensor:
        """[d]: value("theta") on θ's coordinates and value("omega") on ω's."""
        p, q = self.game.p, self.game.q
        return torch.cat([torch.full((p,), float(value("theta"))), torch.full((q,), float(value("omega")))])

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """ξ(x) = −V(x), each player's expected gradient (weight decay included)."""
        return -self.noise.leading_drift(x)

    def g(self, t, y):
        """The dense diffusion [K, d_y, m] (for torchsde): ``g_prod`` on the unit vectors."""
        units = torch.eye(self.m, dtype=y.dtype, device=y.device)
        return torch.stack([self.g_prod(t, y, units[j].expand(y.shape[0], -1)) for j in range(self.m)], dim=-1)

    def describe(self) -> dict:
        return {"name": self.name, "eta": self.eta, "sga": self.sga.describe()}

    def initial(self, x0: torch.Tensor) -> torch.Tensor:
        """(x0, the optimiser's state at 0): the state y the SDE starts from."""
        return torch.cat([x0] + [torch.zeros_like(x0)] * (self.d // self.x_dim - 1), dim=-1)


class HeavyBallSME(_OptimiserSDE):
    """The SDE of simultaneous GDA with heavy ball at rate η and momentum β (both players; see the module
    docstring): state (x, v), time t = kh with h = η/(1 − β), γ = (1 − β)/h."""

    def __init__(self, sga: SGA, eta: Optional[float] = None):
        """Reads β from the players' heavy-ball optimisers and the noise from SME-1 with SGD.

        Args:
            sga: simultaneous GDA with ``HeavyBall`` for both players, one momentum β > 0.
            eta: the learning rate η (default: sga's rate at step 0).
        """
        super().__init__(sga, HeavyBall, eta)
        betas = {sga.optimizers[w].momentum for w in ("theta", "omega")}
        if len(betas) != 1 or betas == {0.0}:
            raise ConfigError("sga.disc.momentum", f"needs one momentum β > 0 for both players, got {sorted(betas)}")
        beta = betas.pop()
        self.step_time = self.eta / (1 - beta)  # h: the SDE time of one iteration
        self.gamma = (1 - beta) / self.step_time
        self.d = 2 * self.x_dim
        self.name = f"heavy-ball SDE (h = {self.step_time:g}, γ = {self.gamma:g})"

    def svag_trainer(self, l: int) -> SGA:
        """The chain that tends to this SDE as l grows (SVAG-style): effective rate h/l (β = 1 − γh/l, torch
        rate γh²/l²) and l times the gradient noise (SVAG with l), the same γ and rate scales."""
        beta = 1 - self.gamma * self.step_time / l
        players = {name: replace(getattr(self.sga, name), optimizer=HeavyBall(beta)) for name in ("gen", "disc")}
        return replace(self.sga, lr=self.gamma * self.step_time**2 / l, svag=l, **players)

    def iteration_time(self, l: int = 1) -> float:
        """The SDE time of one iteration of ``svag_trainer(l)``: h/l."""
        return self.step_time / l

    def rate(self, l: int = 1) -> float:
        """The rate the weak error of ``svag_trainer(l)`` is of the order of: h/l."""
        return self.step_time / l

    def f(self, t, y):
        """The drift (−c v, γ(ξ(x) − v)).

        Args:
            t: the time (unused: the SDE is autonomous).
            y: the states (x, v), [K, 2d].

        Returns:
            f(t, y), [K, 2d].
        """
        x, v = y.split(self.x_dim, dim=-1)
        return torch.cat([-self.scales.to(y) * v, self.gamma * (self.gradient(x) - v)], dim=-1)

    def g_prod(self, t, y, w):
        """The diffusion times w: (0, −γ√h σ(x) w), noise on v only.

        Args:
            t: the time (unused).
            y: the states (x, v), [K, 2d].
            w: the vectors, typically Brownian increments ΔW, [K, m].

        Returns:
            g(t, y) w, [K, 2d].
        """
        x = y[..., : self.x_dim]
        kick = -self.gamma * math.sqrt(self.step_time) * self.noise.noise_product(x, w)  # the gradient's noise: −ζ
        return torch.cat([torch.zeros_like(kick), kick], dim=-1)


class AdamSME(_OptimiserSDE):
    """Malladi et al. 2022's SDE of simultaneous GDA with Adam at rate η (see the module docstring): state
    (x, m, u), time τ = kη²."""

    def __init__(self, sga: SGA, eta: Optional[float] = None):
        """Reads c₁, c₂ and ε from the players' Adam optimisers and the noise from SME-1 with SGD.

        Args:
            sga: simultaneous GDA with ``Adam`` for both players.
            eta: the learning rate η (default: sga's rate at step 0).
        """
        super().__init__(sga, Adam, eta)
        opt = {w: sga.optimizers[w] for w in ("theta", "omega")}
        self.c1 = self.per_coordinate(lambda w: (1 - opt[w].beta1) / self.eta**2)
        self.c2 = self.per_coordinate(lambda w: (1 - opt[w].beta2) / self.eta**2)
        self.eps = self.per_coordinate(lambda w: opt[w].eps)
        self.d = 3 * self.x_dim
        self.name = "Adam SDE (Malladi et al. 2022)"

    def svag_trainer(self, l: int) -> SGA:
        """The chain that tends to this SDE as l grows (Malladi et al.'s SVAG check): rate η/l,
        1 − βᵢ → (1 − βᵢ)/l², ε → εl and l² times the gradient noise (SVAG with l²), so that c₁, c₂, ηε and
        the noise of m stay fixed while the SDE time of an iteration shrinks to η²/l²."""
        players = {}
        for name, who in (("gen", "theta"), ("disc", "omega")):
            opt = self.sga.optimizers[who]
            scaled = Adam(1 - (1 - opt.beta1) / l**2, 1 - (1 - opt.beta2) / l**2, opt.eps * l)
            players[name] = replace(getattr(self.sga, name), optimizer=scaled)
        return replace(self.sga, lr=self.eta * l, svag=l * l, **players)

    def iteration_time(self, l: int = 1) -> float:
        """The SDE time of one iteration of ``svag_trainer(l)``: η²/l²."""
        return (self.eta / l) ** 2

    def rate(self, l: int = 1) -> float:
        """The rate the weak error of ``svag_trainer(l)`` is of the order of: η/l."""
        return self.eta / l

    def f(self, t, y):
        """The drift of (x, m, u), with the bias corrections γᵢ(τ) = 1 − e^{−cᵢτ} at τ = t.

        Args:
            t: the time τ (τ = kη² after k iterations); the drift depends on it through γᵢ.
            y: the states (x, m, u), [K, 3d].

        Returns:
            f(t, y), [K, 3d].
        """
        x, m, u = y.split(self.x_dim, dim=-1)
        c1, c2, eps, scales = (v.to(y) for v in (self.c1, self.c2, self.eps, self.scales))
        tau = torch.as_tensor(t, dtype=y.dtype, device=y.device).clamp_min(torch.finfo(y.dtype).tiny)
        gamma1, gamma2 = -torch.expm1(-c1 * tau), -torch.expm1(-c2 * tau)
        step = -scales * gamma2.sqrt() / gamma1 * m / (self.eta * (u.clamp_min(0).sqrt() + eps * gamma2.sqrt()))
        variance = self.noise.noise_factor(x).pow(2).sum(-1)  # diag Σ_B
        return torch.cat([step, c1 * (self.gradient(x) - m), c2 * (variance - u)], dim=-1)

    def g_prod(self, t, y, w):
        """The diffusion times w: (0, −c₁ η σ(x) w, 0), noise on m only.

        Args:
            t: the time (unused).
            y: the states (x, m, u), [K, 3d].
            w: the vectors, typically Brownian increments ΔW, [K, m].

        Returns:
            g(t, y) w, [K, 3d].
        """
        x = y[..., : self.x_dim]
        kick = -self.c1.to(y) * self.eta * self.noise.noise_product(x, w)  # the gradient's noise: −ζ
        zero = torch.zeros_like(kick)
        return torch.cat([zero, kick, zero], dim=-1)
