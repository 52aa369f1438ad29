"""Stochastic modified equations (SME) of stateless stochastic gradient training (THEORY §2).

dX = b(X) dt + √η σ(X) dW approximates the chain x_{k+1} = Φ_η(x_k) in the weak sense. The drift
comes from the expansion of the mean update map (``games.expansion``: b₁, m₂ and the modified
field b₁ + η(m₂ − ½ Db₁·b₁)):

- SME-1: b = b₁;  SME-2 and SME-2s: b = b₁ + η(m₂ − ½ Db₁·b₁)
- noise: Σ̃ = Σ_g A_g Σ_B A_gᵀ, one term per minibatch g of an iteration, A_g the sum of the
  rate-scaled projections of the sub-steps that use it (fresh: one each; shared: all); σ is the
  factor [A_g F]_g built from the game's factor F of Σ_B, so no d×d matrix is formed;
- SME-2s (stationary-consistent): SME-2 drift, σσᵀ = Σ̃ + ηΣ₃ − (η/2)(JΣ̃ + Σ̃Jᵀ), J = Db₁, projected
  onto the positive semidefinite cone (evaluations that needed it are counted in ``projections``);
  Σ₃ (``noise_propagation``, zero for simultaneous updates as in THEORY §2) carries a noise drawn
  at one sub-step through the later ones, so that the stationary covariance of a linear chain is
  matched to O(η²) by every rule, not only the simultaneous one.

- shared batch: the sub-steps' noises are correlated, so m₂ gains the curvature–noise term
  Σ_s P_s E[Dζ·Σ_{r<s} P_r ζ] (alternating: P_θ E[(∂_ω ζ_θ) ζ_ω]), read off the factor's derivative.

Needs a game with ``expected_field`` and ``gradient_noise_factor`` (differentiable in x for a
shared batch at order 2), SGD for both players and no projection (weight clipping).
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch
from torch.func import jvp

from games.base import PLAYERS
from games.errors import ConfigError, check_choice
from games.expansion import MeanMapExpansion
from games.linalg import psd_power, range_root
from games.random import Streams
from games.sga import SGA

ORDERS = ("1", "2", "2s")


class SME(MeanMapExpansion):
    """The SME of order "1", "2" or "2s" of ``sga`` at reference rate ``eta`` (default: sga's rate at
    step 0), as a torchsde-compatible Itô SDE with general noise: f(t, y) = b(y), g(t, y) = √η σ(y)."""

    noise_type = "general"
    sde_type = "ito"

    def __init__(self, sga: SGA, order: str = "1", eta: Optional[float] = None):
        self.order = check_choice("sde.order", str(order), ORDERS)
        if getattr(sga.game, "clip", None) is not None:
            raise ConfigError("game.clip", "the SME has no projection: weight clipping is not a smooth update")
        super().__init__(sga, eta)
        self.name = f"SME-{self.order} ({sga.update}, n_d={sga.n_d})"
        self.projections = 0  # evaluations where the SME-2s covariance had a negative eigenvalue
        self._group_scales = [self._rate_scales(w) for w in self.batch_groups()]  # A_g [d] (diagonal)

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

    def g_prod(self, t, y, v):
        """g(t, y) v = √η σ(y) v [K, d] for v [K, m] (``noise_product``): torchsde's solvers and
        ``sde.solvers`` use it in place of g."""
        return math.sqrt(self.eta) * self.noise_product(y, v)

    # -- the coefficients --------------------------------------------------------------------------
    def drift(self, x: torch.Tensor) -> torch.Tensor:
        """b₁ (SME-1) or the modified field b₁ + η(m₂ + c − ½ Db₁·b₁) (SME-2, SME-2s), c the
        curvature–noise term of a shared batch."""
        if self.order == "1":
            return self.leading_drift(x)
        if not self.sga.shared_batch:
            return self.modified_field(x)
        return self.modified_field(x) + self.eta * self.curvature_noise(x)

    def curvature_noise(self, x: torch.Tensor) -> torch.Tensor:
        """c = Σ_s P_s E[Dζ·(Σ_{r<s} P_r ζ)]: the part of ½∂²_η E Φ_η that a batch shared by the sub-steps
        adds to m₂ (THEORY §2, alternating: P_θ E[(∂_ω ζ_θ) ζ_ω]). With ζ = F w, E[wwᵀ] = I, for the
        game's factor F (as in Σ_B = FFᵀ), c = Σ_s P_s Σ_c DF_c·(Σ_{r<s} P_r F_c), exactly."""
        if len(self._scales) == 1:  # one sub-step (simultaneous): nothing runs after the batch is used
            return torch.zeros_like(x)
        factor = lambda y: self.game.gradient_noise_factor(y, self.sga.batch_size)  # noqa: E731
        F, eye = factor(x), torch.eye(self.d, dtype=x.dtype, device=x.device)
        dF = torch.stack([jvp(factor, (x,), (eye[k].expand_as(x),))[1] for k in range(self.d)], dim=-1)
        term, before = torch.zeros_like(x), torch.zeros_like(x[0])
        for scale in self._scales:  # P_s, in the order the sub-steps run
            scale = scale.to(x)
            if before.any():
                term = term + scale * torch.einsum("kicj,kjc->ki", dF, before[:, None] * F)
            before = before + scale
        return term

    def noise_factor(self, x: torch.Tensor) -> torch.Tensor:
        """F̃ = [A_g F]_g [K, d, G·m] over the minibatches g of one iteration: F̃F̃ᵀ = Σ̃ = Σ_g A_g Σ_B A_gᵀ,
        with F the game's factor of Σ_B (never a dense d×d matrix)."""
        factor = self.game.gradient_noise_factor(x, self.sga.batch_size)
        return torch.cat([scale.to(x)[:, None] * factor for scale in self._group_scales], dim=-1)

    def noise_product(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """σ(x) w [K, d] for w [K, m]: Σ_g A_g F w_g over the minibatches g (w_g: their blocks of columns of
        ``noise_factor``), by the game's ``gradient_noise_product`` (F w without forming F where the game
        has that closed form); for SME-2s, ``diffusion(x) @ w``."""
        if self.order == "2s":
            return (self.diffusion(x) @ w[..., None])[..., 0]
        scales = self._group_scales
        blocks = w.unflatten(-1, (len(scales), -1)).movedim(-2, 0)  # [G, K, m], a view: one game call for all
        products = self.game.gradient_noise_product(x, self.sga.batch_size, blocks)
        return sum(scale.to(x) * product for scale, product in zip(scales, products))

    def noise_covariance(self, x: torch.Tensor) -> torch.Tensor:
        """Σ̃ = F̃F̃ᵀ [K, d, d] (dense)."""
        factor = self.noise_factor(x)
        return factor @ factor.transpose(1, 2)

    def draw_groups(self) -> list:
        """The gradient evaluations (sub-step s, player) of an iteration grouped by the minibatch they
        use, in the order the chain draws them (fresh: one group each; shared: one for all)."""
        draws = [(s, who) for s, moved in enumerate(self.sga.substeps()) for who in moved]
        return [draws] if self.sga.shared_batch else [[draw] for draw in draws]

    def batch_groups(self) -> list:
        """How many sub-steps of each player use each minibatch of an iteration (``draw_groups``)."""
        return [{who: sum(w == who for _, w in group) for who in PLAYERS} for group in self.draw_groups()]

    def noise_propagation(self, x: torch.Tensor, field_jacobian: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Σ₃ [K, d, d], the O(η³) term of the chain's one-step noise covariance η²(Σ̃ + ηΣ₃): a noise
        drawn at sub-step s also moves the later sub-steps r > s, N_g = η A_g + η² C_g + O(η³) with
        C_g = Σ_{(s,who)∈g} (Σ_{r>s} P_r) DV P^{who}, so Σ₃ = Σ_g (A_g Σ_B C_gᵀ + C_g Σ_B A_gᵀ); zero
        for simultaneous updates. ``field_jacobian``: DV(x) [K, d, d], if already at hand."""
        total = torch.zeros(x.shape[0], self.d, self.d, dtype=x.dtype, device=x.device)
        if self.sga.update == "sim":
            return total
        jac = _batched_jacobian(self.mean_field_jvp, x) if field_jacobian is None else field_jacobian
        factor = self.game.gradient_noise_factor(x, self.sga.batch_size)
        later = [sum(self._scales[s + 1 :], torch.zeros(self.d)).to(x) for s in range(len(self._scales))]
        moved = {who: self._rate_scales({w: float(w == who) for w in PLAYERS}).to(x)[:, None] * factor
                 for who in PLAYERS}  # P^{who} F
        for group in self.draw_groups():
            direct = sum(moved[who] for _, who in group)  # A_g F
            carried = sum(later[s][:, None] * (jac @ moved[who]) for s, who in group)  # C_g F
            total = total + direct @ carried.transpose(1, 2) + carried @ direct.transpose(1, 2)
        return total

    def _stationary_corrected(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Σ̃ + ηΣ₃ − (η/2)(JΣ̃ + Σ̃Jᵀ) for Σ̃ = ``sigma``, J = Db₁, symmetrised (SME-2s, before projection)."""
        field_jacobian = _batched_jacobian(self.mean_field_jvp, x)  # DV; J = Db₁ = (Σ_s P_s) DV
        jac = sum(self._scales).to(x)[:, None] * field_jacobian
        corrected = sigma + self.eta * self.noise_propagation(x, field_jacobian)
        corrected = corrected - 0.5 * self.eta * (jac @ sigma + sigma @ jac.transpose(1, 2))
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

