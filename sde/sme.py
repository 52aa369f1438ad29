"""Stochastic modified equations (SME) of stateless stochastic gradient training (THEORY §2).

dX = b(X) dt + √η σ(X) dW approximates the chain x_{k+1} = Φ_η(x_k) in the weak sense. An
iteration of SGD is a composition of sub-steps x ← x + η P_s V(x) (``SGA.substeps``: P_s the rate
scales of the players sub-step s moves, V the expected field less weight decay), so the mean map
Φ̄_η (the update rule on the expected field) expands as Φ̄_η(x) = x + η b₁ + η² m₂ + O(η³) with

- b₁ = ∂_η Φ̄_η = Σ_s P_s V                        (V for sim and alt; (V_θ, n_d V_ω) with n_d steps)
- m₂ = ½ ∂²_η Φ̄_η = Σ_s P_s DV·(Σ_{r<s} P_r V)    (0 for sim; the interaction terms of alternation)
- SME-1: b = b₁;  SME-2: b = b₁ + η(m₂ − ½ Db₁·b₁)
- noise: Σ̃ = Σ_g A_g Σ_B A_gᵀ, one term per minibatch g of an iteration, A_g the sum of the
  rate-scaled projections of the sub-steps that use it (fresh: one each; shared: all); σ is the
  factor [A_g F]_g built from the game's factor F of Σ_B, so no d×d matrix is formed;
- SME-2s (stationary-consistent): SME-2 drift, σσᵀ = Σ̃ − (η/2)(JΣ̃ + Σ̃Jᵀ), J = Db₁, projected
  onto the positive semidefinite cone (evaluations that needed it are counted in ``projections``).

``update_map_terms`` reads b₁ and m₂ off the actual update code instead (forward-mode derivatives
in η of ``SGA.step`` on the expected field, torch.func.jvp): the check of the formulas above, and
the general mechanism for rules that are not such compositions.

Needs a game with ``expected_field`` and ``gradient_noise_factor``, SGD for both players and no
projection (weight clipping). SME-2 of alternating updates with a shared batch also needs the
curvature–noise term η E[(∂_ω ζ_θ) ζ_ω] (THEORY §2), not yet implemented: that case is refused.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch
from torch.func import jvp

from games.base import PLAYERS, Game
from games.errors import ConfigError, check_choice
from games.linalg import psd_power, range_root
from games.optim import SGD
from games.random import Streams
from games.sga import SGA, Player

ORDERS = ("1", "2", "2s")


class _ScaledMeanField(Game):
    """η times a mean field V (the SME's: expected field less weight decay), as a game whose
    unit-rate SGD step is one step of rate η of the original rule."""

    def __init__(self, game: Game, mean_field):
        self.game, self.mean_field, self.eta = game, mean_field, None
        self.name, self.p, self.q = f"mean-field {game.name}", game.p, game.q

    def sample(self, K, B, generator):
        return None

    def player_grads(self, theta, omega, batch, players=PLAYERS, player_losses=None):
        field = dict(zip(PLAYERS, self.game.split(self.mean_field(self.game.join(theta, omega)))))
        return {who: -self.eta * field[who] for who in players}, {who: torch.zeros_like(theta[:, 0]) for who in players}


class SME:
    """The SME of order "1", "2" or "2s" of ``sga`` at reference rate ``eta`` (default: sga's rate at
    step 0), as a torchsde-compatible Itô SDE with general noise: f(t, y) = b(y), g(t, y) = √η σ(y)."""

    noise_type = "general"
    sde_type = "ito"

    def __init__(self, sga: SGA, order: str = "1", eta: Optional[float] = None):
        self.order = check_choice("sde.order", str(order), ORDERS)
        for who, player in sga.players.items():
            if not isinstance(sga.optimizers[who], SGD) or player.schedule is not None:
                raise ConfigError(f"sga.{'gen' if who == 'theta' else 'disc'}.optimizer",
                                  "the SME is derived for SGD with a constant rate ratio")
        if sga.update != "sim" and sga.shared_batch and self.order != "1":
            raise ConfigError("sga.shared_batch", "SME-2 of alternating updates with a shared batch needs "
                              "the curvature–noise term E[(∂_ω ζ_θ) ζ_ω], which is not implemented yet")
        if getattr(sga.game, "clip", None) is not None:
            raise ConfigError("game.clip", "the SME has no projection: weight clipping is not a smooth update")
        self.sga, self.game = sga, sga.game
        self.eta = float(sga.schedule(0)) if eta is None else float(eta)
        self.p, self.d = self.game.p, self.game.d
        self.name = f"SME-{self.order} ({sga.update}, n_d={sga.n_d})"
        self.projections = 0  # evaluations where the SME-2s covariance had a negative eigenvalue
        self._decay = self._per_coordinate({w: p.weight_decay for w, p in sga.players.items()})
        self._scales = [self._rate_scales({w: 1.0 if w in moved else 0.0 for w in PLAYERS})
                        for moved in sga.substeps()]  # P_s
        self._mean_field = _ScaledMeanField(self.game, self.mean_field)
        self._unit = SGA(self._mean_field, lr=1.0, update=sga.update, n_d=sga.n_d,
                         gen=Player("sgd", scale=sga.gen.scale), disc=Player("sgd", scale=sga.disc.scale))

    def _per_coordinate(self, values: dict) -> torch.Tensor:
        """[d] with values["theta"] on θ's coordinates and values["omega"] on ω's."""
        return torch.cat([torch.full((self.p,), float(values["theta"])),
                          torch.full((self.d - self.p,), float(values["omega"]))])

    def _rate_scales(self, weights: dict) -> torch.Tensor:
        """[d]: c_θ·weights["theta"] on θ's coordinates and c_ω·weights["omega"] on ω's."""
        return self._per_coordinate({"theta": self.sga.gen.scale * weights["theta"],
                                     "omega": self.sga.disc.scale * weights["omega"]})

    @functools.cached_property
    def m(self) -> int:
        """The Brownian dimension: the width of σ (probed once, at the game's initial state)."""
        width = self.noise_factor(self.game.init(1, Streams([0]))).shape[-1]
        return width + self.d if self.order == "2s" else width

    def describe(self) -> dict:
        return {"name": self.name, "order": self.order, "eta": self.eta, "sga": self.sga.describe()}

    # -- torchsde interface ----------------------------------------------------------------------
    def f(self, t, y):
        return self.drift(y)

    def g(self, t, y):
        return math.sqrt(self.eta) * self.diffusion(y)

    # -- the coefficients --------------------------------------------------------------------------
    def mean_field(self, x: torch.Tensor) -> torch.Tensor:
        """V(x): the expected field less each player's weight decay."""
        return self.game.expected_field(x) - self._decay.to(x) * x

    def mean_field_jvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """DV(x)·v (the game's ``expected_field_jvp`` less the decay)."""
        return self.game.expected_field_jvp(x, v) - self._decay.to(x) * v

    def leading_drift(self, x: torch.Tensor) -> torch.Tensor:
        """b₁(x) = Σ_s P_s V(x)."""
        return sum(self._scales).to(x) * self.mean_field(x)

    def leading_drift_jvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Db₁(x)·v = Σ_s P_s DV(x)·v."""
        return sum(self._scales).to(x) * self.mean_field_jvp(x, v)

    def second_moment_term(self, x: torch.Tensor) -> torch.Tensor:
        """m₂(x) = Σ_s P_s DV(x)·(Σ_{r<s} P_r V(x))."""
        v, moved, m2 = self.mean_field(x), torch.zeros_like(x), torch.zeros_like(x)
        for scale in self._scales:
            scale = scale.to(x)
            if moved.any():
                m2 = m2 + scale * self.mean_field_jvp(x, moved)
            moved = moved + scale * v
        return m2

    def drift(self, x: torch.Tensor) -> torch.Tensor:
        """b₁ (SME-1) or b₁ + η(m₂ − ½ Db₁·b₁) (SME-2, SME-2s)."""
        b1 = self.leading_drift(x)
        if self.order == "1":
            return b1
        return b1 + self.eta * (self.second_moment_term(x) - 0.5 * self.leading_drift_jvp(x, b1))

    # -- the same terms read off the update code -----------------------------------------------------
    def mean_step(self, x: torch.Tensor, eta) -> torch.Tensor:
        """Φ̄_η(x): one iteration of the actual update code on the expected field, η a (dual) tensor."""
        self._mean_field.eta = eta
        try:
            params, _, _ = self._unit.step_players(dict(zip(PLAYERS, self.game.split(x))),
                                                   self._unit.init_state(x), 0, _NO_STREAMS, observe=False)
        finally:
            self._mean_field.eta = None  # a dual η must not outlive its transform
        return self.game.join(params["theta"], params["omega"])

    def update_map_terms(self, x: torch.Tensor) -> tuple:
        """(∂_η Φ̄_η(x), ½ ∂²_η Φ̄_η(x)) at η = 0 by forward-mode derivatives of ``mean_step``."""
        zero, one = torch.zeros((), dtype=x.dtype, device=x.device), torch.ones((), dtype=x.dtype, device=x.device)
        first = lambda e: jvp(lambda e2: self.mean_step(x, e2), (e,), (one,))[1]  # noqa: E731
        b1, second = jvp(first, (zero,), (one,))
        return b1, 0.5 * second

    def noise_factor(self, x: torch.Tensor) -> torch.Tensor:
        """F̃ = [A_g F]_g [K, d, G·m] over the minibatches g of one iteration: F̃F̃ᵀ = Σ̃ = Σ_g A_g Σ_B A_gᵀ,
        with F the game's factor of Σ_B (never a dense d×d matrix)."""
        factor = self.game.gradient_noise_factor(x, self.sga.batch_size)
        return torch.cat([self._rate_scales(w).to(x)[:, None] * factor for w in self.batch_groups()], dim=-1)

    def noise_covariance(self, x: torch.Tensor) -> torch.Tensor:
        """Σ̃ = F̃F̃ᵀ [K, d, d] (dense)."""
        factor = self.noise_factor(x)
        return factor @ factor.transpose(1, 2)

    def batch_groups(self) -> list:
        """How many sub-steps of each player use each minibatch of an iteration, in the order the chain
        draws them (fresh: one per player's gradient evaluation; shared: one for the iteration)."""
        draws = [(who,) for moved in self.sga.substeps() for who in moved]
        if self.sga.shared_batch:
            return [{who: sum(d == (who,) for d in draws) for who in PLAYERS}]
        return [{who: int(d == (who,)) for who in PLAYERS} for d in draws]

    def _stationary_corrected(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Σ̃ − (η/2)(JΣ̃ + Σ̃Jᵀ) for Σ̃ = ``sigma``, J = Db₁, symmetrised (SME-2s, before projection)."""
        jac = _batched_jacobian(self.leading_drift_jvp, x)
        corrected = sigma - 0.5 * self.eta * (jac @ sigma + sigma @ jac.transpose(1, 2))
        return 0.5 * (corrected + corrected.transpose(1, 2))

    def _projected_power(self, x: torch.Tensor, sigma: torch.Tensor, power: float) -> torch.Tensor:
        """The SME-2s matrix of Σ̃ = ``sigma`` projected onto the PSD cone, to ``power``; projections are
        counted."""
        result, negative = psd_power(self._stationary_corrected(x, sigma), power)
        self.projections += negative
        return result

    def covariance(self, x: torch.Tensor) -> torch.Tensor:
        """σσᵀ: Σ̃ (SME-1, SME-2) or the projected Σ̃ − (η/2)(JΣ̃ + Σ̃Jᵀ) (SME-2s)."""
        sigma = self.noise_covariance(x)
        return sigma if self.order != "2s" else self._projected_power(x, sigma, 1.0)

    def diffusion(self, x: torch.Tensor) -> torch.Tensor:
        """σ(x) with σσᵀ = ``covariance``: the factor F̃ [K, d, m] (SME-1, SME-2), or for SME-2s
        M^½ [Σ̃^{+½}F̃, I − P] [K, d, m + d], M the projected matrix and P the projection onto the range
        of Σ̃. As (Σ̃^{+½}F̃)(Σ̃^{+½}F̃)ᵀ = P, σσᵀ = M^½(P + I − P)M^½ = M, and the first m columns still
        take the factor's Brownian motion (``sde.coupling``)."""
        factor = self.noise_factor(x)
        if self.order != "2s":
            return factor
        sigma = factor @ factor.transpose(1, 2)
        inverse_root, onto_range = range_root(sigma)
        null = torch.eye(self.d, dtype=x.dtype, device=x.device) - onto_range
        return self._projected_power(x, sigma, 0.5) @ torch.cat([inverse_root @ factor, null], dim=-1)


def _batched_jacobian(jvp_of, x: torch.Tensor) -> torch.Tensor:
    """[K, d, d] Jacobians at x [K, d] from a Jacobian–vector product jvp_of(x, v) [K, d]."""
    eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    return torch.stack([jvp_of(x, eye[i].expand_as(x)) for i in range(x.shape[-1])], dim=-1)


_NO_STREAMS = Streams([0])  # the mean-field map draws no random numbers
