"""The mean update map of stateless gradient training, expanded in the learning rate (THEORY §2, §3).

An iteration of SGD is a composition of sub-steps x ← x + η P_s V(x) (``SGA.substeps``: P_s the rate
scales of the players sub-step s moves, V the expected field less weight decay), so the mean map
Φ̄_η (the update rule on the expected field) expands as Φ̄_η(x) = x + η b₁ + η² m₂ + O(η³) with

- b₁ = ∂_η Φ̄_η = Σ_s P_s V                        (V for sim and alt; (V_θ, n_d V_ω) with n_d steps)
- m₂ = ½ ∂²_η Φ̄_η = Σ_s P_s DV·(Σ_{r<s} P_r V)    (0 for sim; the interaction terms of alternation)

and the flow ẋ = b whose time-η map matches Φ̄_η to O(η³) is the modified equation
b = b₁ + η(m₂ − ½ Db₁·b₁) (Hairer, Lubich & Wanner 2006, §IX.1; for games Rosca et al. 2021). Both
the deterministic modified equations (``flows.modified``) and the SMEs' drifts (``sde.sme``) are
read from here.

``update_map_terms`` reads b₁ and m₂ off the actual update code instead (forward-mode derivatives
in η of ``SGA.step`` on the expected field, torch.func.jvp): the check of the formulas above, and
the general mechanism for rules that are not such compositions.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch
from torch.func import jvp

from .base import PLAYERS, Game
from .errors import ConfigError
from .optim import SGD
from .random import Streams
from .sga import SGA, Player
from .trajectory import Trajectory


class MeanFieldGame(Game):
    """``game`` played on its mean field V (default: the expected field): every minibatch field is
    V itself, scaled by ``eta`` (1 unless a rate is being differentiated through). SGA on it is full
    (infinite-batch) gradient training, the deterministic chain x_{k+1} = Φ̄_η(x_k)."""

    def __init__(self, game: Game, mean_field=None):
        self.game, self.mean_field, self.eta = game, mean_field or game.expected_field, 1.0
        self.name, self.p, self.q = f"mean-field {game.name}", game.p, game.q

    def sample(self, K, B, generator):
        return None

    def init(self, K, generator):
        return self.game.init(K, generator)

    def expected_field(self, x):
        return self.mean_field(x)

    def player_grads(self, theta, omega, batch, players=PLAYERS, player_losses=None):
        field = dict(zip(PLAYERS, self.game.split(self.mean_field(self.game.join(theta, omega)))))
        return {who: -self.eta * field[who] for who in players}, {who: torch.zeros_like(theta[:, 0]) for who in players}


class MeanMapExpansion:
    """The terms b₁, m₂ of the mean update map of ``sga`` (SGD for both players, constant rate
    ratio) and its modified equation at reference rate ``eta`` (default: sga's rate at step 0)."""

    def __init__(self, sga: SGA, eta: Optional[float] = None):
        for who, player in sga.players.items():
            if not isinstance(sga.optimizers[who], SGD) or player.schedule is not None:
                raise ConfigError(f"sga.{'gen' if who == 'theta' else 'disc'}.optimizer",
                                  "the expansion is derived for SGD with a constant rate ratio")
        if sga.svag != 1:
            raise ConfigError("sga.svag", "the expansion is derived for plain updates; SVAG training tends to "
                                          "SME-1 of the plain trainer (svag = 1) at the same rate")
        self.sga, self.game = sga, sga.game
        self.eta = float(sga.schedule(0)) if eta is None else float(eta)
        self.p, self.d = self.game.p, self.game.d
        self._decay = self._per_coordinate({w: p.weight_decay for w, p in sga.players.items()})
        self._scales = [self._rate_scales({w: 1.0 if w in moved else 0.0 for w in PLAYERS})
                        for moved in sga.substeps()]  # P_s
        self._mean_field = MeanFieldGame(self.game, self.mean_field)
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

    # -- the terms -------------------------------------------------------------------------------
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
        for s, scale in enumerate(self._scales):
            scale = scale.to(x)
            if s > 0:  # not on moved's value: where V(x) = 0 the term vanishes but its derivative need not
                m2 = m2 + scale * self.mean_field_jvp(x, moved)
            moved = moved + scale * v
        return m2

    def modified_field(self, x: torch.Tensor, eta: Optional[float] = None) -> torch.Tensor:
        """b₁ + η(m₂ − ½ Db₁·b₁): the modified equation's field to first order in η (default: ``eta``)."""
        eta = self.eta if eta is None else eta
        b1 = self.leading_drift(x)
        return b1 + eta * (self.second_moment_term(x) - 0.5 * self.leading_drift_jvp(x, b1))

    # -- the same terms read off the update code -----------------------------------------------------
    def mean_step(self, x: torch.Tensor, eta) -> torch.Tensor:
        """Φ̄_η(x): one iteration of the actual update code on the expected field, η a (dual) tensor."""
        self._mean_field.eta = eta
        try:
            params, _, _ = self._unit.step_players(dict(zip(PLAYERS, self.game.split(x))),
                                                   self._unit.init_state(x), 0, _NO_STREAMS, observe=False)
        finally:
            self._mean_field.eta = 1.0  # a dual η must not outlive its transform
        return self.game.join(params["theta"], params["omega"])

    def mean_chain(self, steps: int, **run_options) -> Trajectory:
        """x_{k+1} = Φ̄_η(x_k), k < ``steps``: gradient training on the mean field at rate ``eta``, by the
        update code itself (``SGA.run``'s keywords: K, x0, record_every, …)."""
        return replace(self._unit, lr=self.eta).run(steps, **run_options)

    def update_map_terms(self, x: torch.Tensor) -> tuple:
        """(∂_η Φ̄_η(x), ½ ∂²_η Φ̄_η(x)) at η = 0 by forward-mode derivatives of ``mean_step``."""
        zero, one = torch.zeros((), dtype=x.dtype, device=x.device), torch.ones((), dtype=x.dtype, device=x.device)
        first = lambda e: jvp(lambda e2: self.mean_step(x, e2), (e,), (one,))[1]  # noqa: E731
        b1, second = jvp(first, (zero,), (one,))
        return b1, 0.5 * second


_NO_STREAMS = Streams([0])  # the mean-field map draws no random numbers
