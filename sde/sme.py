"""Stochastic modified equations (SME) of update rules, read off the rules' own code (THEORY §2, §7).

dX = b(X) dt + √η σ(X) dW approximates the chain x_{k+1} = Φ_η(x_k) in the weak sense. One iteration
moves x by η D(x, η; w), D the rule's direction (``games.expansion``) and w ~ N(0, I) the normals that
drive the noise F(y)w_g of each minibatch g it draws (``games.oracle.Injected``). Expanding
D = Φ₁(w) + η Φ₂(w) + O(η²):

- SME-1: b = β₁ = E Φ₁;  SME-2 and SME-2s: b = β₁ + η(β₂ − ½ Dβ₁·β₁), β₂ = E Φ₂ = m₂ + c, c the
  curvature–noise term (nonzero when a minibatch serves two evaluations: a shared batch, extragradient
  on one sample);
- noise: σσᵀ = Σ̃ = Cov Φ₁. For a rule whose Φ₁ is linear in its gradients (GDA, extragradient with a
  tied step, optimistic GDA, lookahead of those), Φ₁'s noise is Σ_g A_g F w_g with constant loadings A_g
  read off the code once, so σ = [A_g F]_g and σw is one call of the game's ``gradient_noise_product``.
  Otherwise (Jacobian products, a fixed extrapolation step) Φ₁ is read at the rows w = ±e_j: where it is
  affine in w (the game's Jacobian is noise-free) σ = ∂_wΦ₁ and σw = Φ₁(w) − Φ₁(0); where quadratic, σ
  is the factor [J, vec(H)/√2] of the Gaussian quadratic form (``games.base.gaussian_quadratic_factor``),
  m = r + r² columns. The constructor reads the degree at a probe state and refuses a higher one, and a
  quadratic term within one minibatch (its covariance needs the minibatch's fourth moments);
- SME-2s (stationary-consistent): SME-2 drift, σσᵀ = Σ̃ + ηΣ₃ − (η/2)(JΣ̃ + Σ̃Jᵀ), J = Dβ₁,
  Σ₃ = Cov(Φ₁, Φ₂) + Cov(Φ₂, Φ₁) the O(η³) term of the one-step covariance η²(Σ̃ + ηΣ₃), projected onto
  the positive semidefinite cone (evaluations that needed it are counted in ``projections``).

E over w is taken exactly by ``games.expansion.noise_bias`` (degree ≤ 3 in w). Needs a game with
``expected_field`` and ``gradient_noise_factor`` (or ``gradient_noise_product``), SGD for both players and
no projection (weight clipping). A rule with memory is read on its underlying one-step method; its
SME-2 needs noise that does not depend on x (``Game.additive_noise``) and its SME-2s is not derived.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch

from games import derivatives
from games.base import NotAvailable, gaussian_quadratic_factor
from games.errors import ConfigError, check_choice
from games.expansion import Expansion, noise_bias, stacked
from games.linalg import psd_power, range_root
from games.oracle import Injected
from games.random import Streams
from games.sga import SGA

ORDERS = ("1", "2", "2s")
MAX_QUADRATIC_COLUMNS = 64  # a quadratic noise form takes O(r²) evaluations of the rule


class SME(Expansion):
    """The SME of order "1", "2" or "2s" of ``sga`` at reference rate ``eta`` (default: sga's rate at
    step 0), as a torchsde-compatible Itô SDE with general noise: f(t, y) = b(y), g(t, y) = √η σ(y)."""

    noise_type = "general"
    sde_type = "ito"

    @classmethod
    def available(cls, sga: SGA) -> bool:
        """Whether the SMEs of ``sga`` can be built: closed-form coefficients of its game, a rule they cover. A
        game without them says so (``games.base.NotAvailable``); any other error, a bare NotImplementedError
        included, is a bug and is raised."""
        try:
            cls(sga, order="2").drift(sga.game.init(1, Streams([0])))
            return True
        except (NotAvailable, ConfigError):
            return False

    def __init__(self, sga: SGA, order: str = "1", eta: Optional[float] = None):
        """Reads the rule's expansion, its noise loadings and the degree of its noise.

        Args:
            sga: the training: game, update rule, batch size and the players' SGD (no weight clipping).
            order: "1", "2" or "2s" (stationary-consistent SME-2).
            eta: the reference learning rate η (default: sga's rate at step 0).
        """
        self.order = check_choice("sde.order", str(order), ORDERS)
        if getattr(sga.game, "clip", None) is not None:
            raise ConfigError("game.clip", "the SME has no projection: weight clipping is not a smooth update")
        super().__init__(sga, eta)
        if self.rule.stateful and self.order == "2s":
            raise ConfigError("sde.order", f"SME-2s of {self.rule.label} (a rule with memory) is not derived")
        if self.rule.stateful and self.order == "2" and not self.game.additive_noise:
            raise ConfigError("sde.order", f"SME-2 of {self.rule.label} (a rule with memory) is derived for noise "
                                           f"that does not depend on x; {self.game.name}'s does")
        self.name = f"SME-{self.order} ({self.rule.label})"
        self.projections = 0  # evaluations where the SME-2s covariance had a negative eigenvalue
        self.batch_size = sga.batch_size
        self._loadings = None if self.nonlinear else self._read_loadings()
        self.noise_degree = 1 if not self.nonlinear else self._read_degree()

    # -- dimensions ------------------------------------------------------------------------------
    @functools.cached_property
    def noise_width(self) -> int:
        """m of the game's factor F [K, d, m] of one minibatch's noise (probed at its initial state)."""
        return self.game.gradient_noise_factor(self.game.init(1, Streams([0])), self.batch_size).shape[-1]

    @property
    def noise_columns(self) -> int:
        """r = G·m: the normals that drive one iteration's G minibatches."""
        return self.groups * self.noise_width

    @functools.cached_property
    def m(self) -> int:
        """The Brownian dimension: the width of σ (SME-2s: d more)."""
        r = self.noise_columns
        width = r + r * r if self.noise_degree == 2 else r
        return width + self.d if self.order == "2s" else width

    def describe(self) -> dict:
        return {"name": self.name, "order": self.order, "eta": self.eta, "sga": self.sga.describe()}

    # -- torchsde interface ----------------------------------------------------------------------
    def f(self, t, y):
        """The drift f(t, y) = b(y) (``drift``).

        Args:
            t: the time (unused: the SME is autonomous).
            y: the states, [K, d].

        Returns:
            b(y), [K, d].
        """
        return self.drift(y)

    def g(self, t, y):
        """The diffusion g(t, y) = √η σ(y) (``diffusion``), general noise.

        Args:
            t: the time (unused: the SME is autonomous).
            y: the states, [K, d].

        Returns:
            √η σ(y), [K, d, m].
        """
        return math.sqrt(self.eta) * self.diffusion(y)

    def g_prod(self, t, y, v):
        """g(t, y) v = √η σ(y) v [K, d] for v [K, m] (``noise_product``): torchsde's solvers and
        ``sde.solvers`` use it in place of g.

        Args:
            t: the time (unused).
            y: the states, [K, d].
            v: the vectors, typically Brownian increments ΔW, [K, m].

        Returns:
            √η σ(y) v, [K, d].
        """
        return math.sqrt(self.eta) * self.noise_product(y, v)

    # -- the rule's direction with its noise injected ------------------------------------------------
    def driven(self, w: torch.Tensor) -> Injected:
        """The expected gradients less minibatch g's noise F(y)w_g, w [K, G, m]."""
        return Injected.driven(self.game, self.batch_size, w, shared=self.sga.shared_batch, decay=self.decay)

    def _first(self, x, w):
        """Φ₁(w) = D(x, 0; w) at the K·P rows of x [K, d] and w [K, P, r]."""
        return stacked(lambda rows, ww: self.direction(rows, self.driven(ww)), x, w, self.groups)

    def _second(self, x, w):
        """Φ₂(w) = ∂_η D(x, 0; w) at the K·P rows."""
        return stacked(lambda rows, ww: self.second_moment_term(rows, self.driven(ww)), x, w, self.groups)

    def _shared_columns(self) -> list:
        """The noise columns whose squares can reach the mean: every column for a rule whose noise enters
        nonlinearly, else those of the minibatches that serve two or more evaluations."""
        if self.nonlinear:
            return list(range(self.noise_columns))
        uses = [0] * self.groups
        for evaluation in self.evaluations:
            for g in evaluation["groups"]:
                uses[g] += 1
        m = self.noise_width
        return [g * m + j for g in range(self.groups) if uses[g] > 1 for j in range(m)]

    # -- the coefficients --------------------------------------------------------------------------
    def noisy_leading_drift(self, x: torch.Tensor) -> torch.Tensor:
        """β₁ = E Φ₁(w): b₁, plus the noise's bias where Φ₁ is quadratic in w."""
        b1 = self.leading_drift(x)
        if self.noise_degree == 1:
            return b1
        return b1 + noise_bias(self._first, x, self.noise_columns, self._shared_columns())

    def curvature_noise(self, x: torch.Tensor) -> torch.Tensor:
        """c = E Φ₂(w) − Φ₂(0): the part of ½∂²_η E Φ_η that the noise adds to m₂ (THEORY §2; alternating
        with a shared batch: P_θ E[(∂_ω ζ_θ) ζ_ω]), exact for Φ₂ of degree ≤ 3 in w."""
        columns = self._shared_columns()
        if not columns or self.linear_in_eta:
            return torch.zeros_like(x)
        return noise_bias(self._second, x, self.noise_columns, columns)

    def drift(self, x: torch.Tensor) -> torch.Tensor:
        """β₁ (SME-1) or β₁ + η(m₂ + c − ½ Dβ₁·β₁) (SME-2, SME-2s); where β₁ = b₁, m₂ − ½ Db₁·β₁ is one
        derivative of D, along x − ½εb₁ and η = ε together (``Expansion.modified_field``)."""
        if self.order == "1":
            return self.noisy_leading_drift(x)
        if self.noise_degree == 1:
            return self.modified_field(x) + self.eta * self.curvature_noise(x)
        beta1 = self.noisy_leading_drift(x)
        slope = derivatives.jvp(self.noisy_leading_drift, x, beta1)
        return beta1 + self.eta * (self.second_moment_term(x) + self.curvature_noise(x) - 0.5 * slope)

    def noise_factor(self, x: torch.Tensor) -> torch.Tensor:
        """F̃ [K, d, r] with F̃F̃ᵀ = Σ̃ = Cov Φ₁: [A_g F]_g over the minibatches g of one iteration (F the
        game's factor of Σ_B; never a dense d×d matrix), or the Gaussian quadratic form's factor [J, vec(H)/√2]
        (J alone where Φ₁ is affine in w)."""
        if self._loadings is None:
            return gaussian_quadratic_factor(self._first, x, self.noise_columns, quadratic=self.noise_degree == 2)
        factor = self.game.gradient_noise_factor(x, self.batch_size)
        return torch.cat([loading.to(x)[:, None] * factor if loading.ndim == 1 else loading.to(x) @ factor
                          for loading in self._loadings], dim=-1)

    def noise_product(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """σ(x) w [K, d] for w [K, m]: Σ_g A_g F w_g over the minibatches g (w_g: their blocks of columns of
        ``noise_factor``), by the game's ``gradient_noise_product`` (F w without forming F where the game
        has that closed form); Φ₁(w) − Φ₁(0) where Φ₁ is affine in w; otherwise ``diffusion(x) @ w``.

        Args:
            x: the states, [K, d].
            w: the vectors, typically Brownian increments, [K, m] (m = ``m``, the Brownian dimension).

        Returns:
            σ(x) w, [K, d] (without the √η).
        """
        if self.order == "2s" or self.noise_degree == 2:
            return (self.diffusion(x) @ w[..., None])[..., 0]
        if self._loadings is None:
            ends = self._first(x, torch.stack([w, torch.zeros_like(w)], dim=1))
            return ends[:, 0] - ends[:, 1]
        blocks = w.unflatten(-1, (self.groups, -1)).movedim(-2, 0)  # [G, K, m], a view: one game call for all
        products = self.game.gradient_noise_product(x, self.batch_size, blocks)
        return sum(loading.to(x) * product if loading.ndim == 1 else product @ loading.to(x).T
                   for loading, product in zip(self._loadings, products))

    def noise_covariance(self, x: torch.Tensor) -> torch.Tensor:
        """Σ̃ = F̃F̃ᵀ [K, d, d] (dense)."""
        factor = self.noise_factor(x)
        return factor @ factor.transpose(1, 2)

    def noise_propagation(self, x: torch.Tensor) -> torch.Tensor:
        """Σ₃ = Cov(Φ₁, Φ₂) + Cov(Φ₂, Φ₁) [K, d, d]: the O(η³) term of the one-step covariance η²(Σ̃ + ηΣ₃)
        (for GDA a noise drawn at one sub-step carried through the later ones; zero for simultaneous
        updates). With Φ₁ = b₁ + Lw and Φ₂ = m₂ + Cw + (quadratic in w), Cov(Φ₂, Φ₁) = CLᵀ, whose column
        i is Φ₂'s odd part at w = the i-th row of L: 2d evaluations whatever the number of noise columns.
        Where Φ₁ is quadratic in w, from the factors [J, vec(H)/√2] of Φ₁ and Φ₂ in the same columns."""
        if self.linear_in_eta:  # Φ₂ = 0
            return torch.zeros(x.shape[0], self.d, self.d, dtype=x.dtype, device=x.device)
        first = self.noise_factor(x)
        if self.noise_degree == 2:
            second = gaussian_quadratic_factor(self._second, x, self.noise_columns)
            cross = second @ first.transpose(1, 2)
        else:
            ends = self._second(x, torch.cat([first, -first], dim=1))  # at w = ±(row i of L), i < d
            cross = ((ends[:, : self.d] - ends[:, self.d :]) / 2).transpose(1, 2)  # C Lᵀ [K, d, d]
        return cross + cross.transpose(1, 2)

    def _stationary_corrected(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Σ̃ + ηΣ₃ − (η/2)(JΣ̃ + Σ̃Jᵀ) for Σ̃ = ``sigma``, J = Dβ₁, symmetrised (SME-2s, before projection)."""
        jac = self.drift_jacobian(x)
        corrected = sigma + self.eta * self.noise_propagation(x)
        corrected = corrected - 0.5 * self.eta * (jac @ sigma + sigma @ jac.transpose(1, 2))
        return 0.5 * (corrected + corrected.transpose(1, 2))

    def drift_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """J = Dβ₁ [K, d, d], one column per coordinate direction."""
        eye = torch.eye(self.d, dtype=x.dtype, device=x.device)
        if self.noise_degree == 1:
            return torch.stack([self.leading_drift_jvp(x, eye[i].expand_as(x)) for i in range(self.d)], dim=-1)
        return torch.stack([derivatives.jvp(self.noisy_leading_drift, x, eye[i].expand_as(x))
                            for i in range(self.d)], dim=-1)

    def _projected_power(self, x: torch.Tensor, sigma: torch.Tensor, power: float) -> torch.Tensor:
        """The SME-2s matrix of Σ̃ = ``sigma`` projected onto the PSD cone, to ``power``; projections are
        counted."""
        result, negative = psd_power(self._stationary_corrected(x, sigma), power)
        self.projections += negative
        return result

    def covariance(self, x: torch.Tensor) -> torch.Tensor:
        """σσᵀ: Σ̃ (SME-1, SME-2) or the projected Σ̃ + ηΣ₃ − (η/2)(JΣ̃ + Σ̃Jᵀ) (SME-2s)."""
        sigma = self.noise_covariance(x)
        return sigma if self.order != "2s" else self._projected_power(x, sigma, 1.0)

    def diffusion(self, x: torch.Tensor) -> torch.Tensor:
        """σ(x) with σσᵀ = ``covariance``: the factor F̃ [K, d, m] (SME-1, SME-2), or for SME-2s
        ``M^½ [Σ̃^{+½}F̃, I − P]`` of shape ``[K, d, m + d]``, M the projected matrix and P the projection onto the range
        of Σ̃. As (Σ̃^{+½}F̃)(Σ̃^{+½}F̃)ᵀ = P, σσᵀ = M^½(P + I − P)M^½ = M, and the first m columns still
        take the factor's Brownian motion (``sde.coupling``)."""
        factor = self.noise_factor(x)
        if self.order != "2s":
            return factor
        sigma = factor @ factor.transpose(1, 2)
        inverse_root, onto_range = range_root(sigma)
        null = torch.eye(self.d, dtype=x.dtype, device=x.device) - onto_range
        return self._projected_power(x, sigma, 0.5) @ torch.cat([inverse_root @ factor, null], dim=-1)

    # -- reading the rule once -------------------------------------------------------------------------
    def _read_loadings(self) -> list:
        """[A_g] over the G minibatches: Φ₁'s response to a noise vector ζ_g on minibatch g, read at η = 0 on the
        noise alone (constant for a rule linear in its gradients). Where A_g is diagonal (every rule here) it is
        kept as its diagonal [d], read from two probes per minibatch, ζ_g = 1 and a random u, with A_g u = a ⊙ u
        checked, so that a network with 10⁵ parameters never forms a d × d matrix; otherwise A_g [d, d] is read
        one unit vector at a time."""
        G, d = self.groups, self.d
        x = self.game.init(1, Streams([0]))
        u = 0.5 + torch.rand(d, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(x)
        probes = torch.zeros(2 * G, G, d, dtype=x.dtype)
        for g in range(G):  # row 2g: ζ_g = 1, row 2g + 1: ζ_g = u, the other minibatches' noise 0
            probes[2 * g, g], probes[2 * g + 1, g] = 1.0, u
        responses = self._responses(x, probes).reshape(G, 2, d)
        diagonal, probed = responses[:, 0], responses[:, 1]
        if torch.allclose(probed, diagonal * u, rtol=1e-12, atol=1e-12 * float(diagonal.abs().max())):
            return list(diagonal)
        units = torch.eye(G * d, dtype=x.dtype).reshape(G * d, G, d)
        return list(self._responses(x, units).reshape(G, d, d).transpose(1, 2))  # A_g[:, j]

    def _responses(self, x: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """Φ₁ at x [1, d] with the noise ``vectors`` [R, G, d] (ζ_g = vectors[:, g]) and no mean: [R, d]."""
        oracle = Injected.vectors(self.game, vectors.unbind(1), shared=self.sga.shared_batch, mean=False)
        return self.direction(x.expand(len(vectors), -1), oracle)

    def _read_degree(self) -> int:
        """1 or 2: the degree in w of a rule's direction at η = 0 whose noise enters other than through its
        gradients alone (Jacobian products: quadratic where the game's Jacobian is noisy; a fixed
        extrapolation step), read at a probe state; a higher degree is refused, since the Gaussian factor
        would then be an approximation: the quadratic through the cubature points must reproduce Φ₁ at a
        point off them."""
        streams = Streams([0])
        x = self.game.init(1, streams) + 0.1 * torch.linspace(-1.0, 1.0, self.d, dtype=streams.dtype)
        r = self.noise_columns
        if r > MAX_QUADRATIC_COLUMNS:
            raise ConfigError("sga.update", f"{self.rule.label} takes its noise other than linearly; its SME needs "
                                            f"a quadratic form in r = {r} noise columns (at most "
                                            f"{MAX_QUADRATIC_COLUMNS}): use a game with a narrower noise factor")
        factor = gaussian_quadratic_factor(self._first, x, r)
        scale = 1 + factor.abs().max()
        if factor[..., r:].abs().max() <= 1e-12 * scale:
            return 1
        group = torch.arange(r) // self.noise_width
        within = (group[:, None] == group[None, :]).flatten()  # the Hessian's columns (j, l) of one minibatch
        if factor[..., r:][..., within].abs().max() > 1e-12 * scale:
            raise ConfigError("sga.update", f"{self.rule.label} multiplies two noisy evaluations on one minibatch of "
                                            f"{self.game.name}: the covariance of its step depends on the "
                                            "minibatch's fourth moments, which the SME's Gaussian noise does not "
                                            "have (sample = fresh takes them on independent minibatches)")
        probe = torch.linspace(-1.3, 0.9, r, dtype=x.dtype)[None, None]
        if (_quadratic_model(self._first, x, r, probe) - self._first(x, probe)[:, 0]).abs().max() > 1e-8 * scale:
            raise ConfigError("sga.update", f"the one-step direction of {self.rule.label} on {self.game.name} is "
                                            "not quadratic in the gradient noise, so its SME would be an "
                                            "approximation (e.g. a fixed extrapolation step with noise that "
                                            "depends on x)")
        return 2


def _quadratic_model(g, x, r, w) -> torch.Tensor:
    """g(x, w) [K, d] predicted at w [K, 1, r] by the quadratic through g's values at 0, ±e_j, ±e_j ± e_l."""
    eye = torch.eye(r, dtype=x.dtype, device=x.device)
    pairs = [(j, l) for j in range(r) for l in range(j + 1, r)]
    points = [torch.zeros(r, dtype=x.dtype)] + [s * eye[j] for j in range(r) for s in (1, -1)]
    points += [s * eye[j] + t * eye[l] for j, l in pairs for s in (1, -1) for t in (1, -1)]
    out = g(x, torch.stack(points).expand(x.shape[0], -1, -1))
    g0, plus, minus = out[:, 0], out[:, 1 : 2 * r + 1 : 2], out[:, 2 : 2 * r + 1 : 2]
    u = w[:, 0]  # [K, r]
    value = g0 + (((plus - minus) / 2) * u[..., None]).sum(1)
    value = value + 0.5 * (((plus + minus - 2 * g0[:, None]) * (u**2)[..., None]).sum(1))
    for i, (j, l) in enumerate(pairs):
        pp, pm, mp, mm = out[:, 2 * r + 1 + 4 * i : 2 * r + 5 + 4 * i].unbind(1)
        value = value + (pp - pm - mp + mm) / 4 * (u[:, j] * u[:, l])[:, None]
    return value
