"""Oracles: where an update rule's gradients come from.

An update rule (``games.rules``) asks for the players' gradients ξ(y) = (∇_θ L_G, ∇_ω L_D)(y) at points y,
each on a named minibatch of the iteration, and for products of the Jacobian J = Dξ with vectors. Each
player's weight decay is part of its objective: ξ_w gains wd_w·y_w and J gains wd_w on the diagonal.

Minibatches are identified by the rule's batch key and the player whose loss is evaluated: every key
gives each player its own minibatch (``fresh``), or one minibatch serves the whole iteration
(``shared``). The minibatches of an iteration are numbered in the order it first uses them (its
*groups*): the order in which the chain draws them, and the order of an SME's noise blocks.

- ``Minibatch``: minibatches drawn from the runs' streams (training), pairs of them under SVAG;
- ``Mean``: the exact expected gradient, the same on every minibatch;
- ``Injected``: the expected gradient less a given noise on each minibatch g, ξ̂_g(y) = ξ(y) − ζ_g(y):
  a vector ζ_g, or the game's noise F(y)w_g driven by given normals w_g (``Game.gradient_noise_product``),
  so that the chain's noise becomes an explicit input (linearisations, expansions, SMEs).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence

import torch

from . import derivatives
from .base import PLAYERS, Game
from .errors import ConfigError
from .random import Streams

Params = Dict[str, torch.Tensor]  # {"theta": [K, p], "omega": [K, q]}


class Oracle:
    """Gradients of ``game``'s players on the minibatches of one iteration (``begin`` starts one)."""

    def __init__(self, game: Game, shared: bool = False, decay: Optional[Dict[str, float]] = None):
        """An oracle of ``game``'s gradients.

        Args:
            game: the game.
            shared: one minibatch for the whole iteration instead of one per batch key and player.
            decay: each player's weight decay wd ≥ 0, {"theta": wd_θ, "omega": wd_ω} (added as wd·y to its
                gradient; a missing player: 0), or None for none.
        """
        self.game, self.shared = game, bool(shared)
        self.decay = {who: float((decay or {}).get(who, 0.0)) for who in PLAYERS}
        self.groups: Dict[tuple, int] = {}
        self.trace: Optional[list] = None  # set to a list to record each evaluation (``games.rules.trace``)

    def begin(self) -> None:
        """Start an iteration: its minibatches are yet to be drawn."""
        self.groups = {}

    def state_dict(self) -> dict:
        """What a resumed loop needs of the oracle between iterations (none: its streams are the loop's)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def group(self, key: str, who: str) -> int:
        """The index of the minibatch that ``who``'s loss uses under ``key`` (a new one at first use).

        Args:
            key: the rule's batch key (say "g").
            who: the player whose loss is evaluated, "theta" or "omega".

        Returns:
            The group g ≥ 0: minibatches are numbered in the order the iteration first uses them.
        """
        identity = ("shared",) if self.shared else (key, who)
        return self.groups.setdefault(identity, len(self.groups))

    def _by_group(self, key: str, players: Sequence[str]) -> Dict[int, list]:
        """{group: the players that evaluate their loss on it}, in order of first use."""
        out: Dict[int, list] = {}
        for who in players:
            out.setdefault(self.group(key, who), []).append(who)
        return out

    # -- what rules call ---------------------------------------------------------------------------
    def gradients(self, y: Params, players: Sequence[str] = PLAYERS, key: str = "g"):
        """({player: ξ_player(y) on key's minibatch, weight decay included}, {player: its loss [K]}).

        Args:
            y: the point {"theta": θ [K, p], "omega": ω [K, q]}.
            players: the players whose gradients are needed.
            key: the rule's batch key; each player's minibatch is its ``group`` under it.

        Returns:
            (grads, losses): grads[player] = ∇ of its own loss in its own parameters plus wd·y_player,
            [K, p] or [K, q]; losses[player] its minibatch loss [K].
        """
        grads, losses = {}, {}
        for group, members in self._by_group(key, players).items():
            g, l = self._raw_gradients(y, tuple(members), group)
            grads.update(g)
            losses.update(l)
        self._record("gradient", players, key)
        return {who: self._decayed(who, grads[who], y[who]) for who in players}, losses

    def jacobian_transpose_product(self, y: Params, u: Params, key: str = "g") -> Params:
        """Jᵀu at y, J = Dξ on key's minibatches (each row block on its player's).

        Args:
            y: the point {"theta": θ [K, p], "omega": ω [K, q]}.
            u: the vector {"theta": [K, p], "omega": [K, q]}.
            key: the rule's batch key.

        Returns:
            Jᵀu as {"theta": [K, p], "omega": [K, q]}.
        """
        self._record("jacobian-transpose", PLAYERS, key)
        return self.split(self._jacobian_product(self.join(y), self.join(u), key, transpose=True))

    def jacobian_product(self, y: Params, v: Params, key: str = "g") -> Params:
        """J v at y, J = Dξ on key's minibatches.

        Args:
            y: the point {"theta": θ [K, p], "omega": ω [K, q]}.
            v: the direction {"theta": [K, p], "omega": [K, q]}.
            key: the rule's batch key.

        Returns:
            J v as {"theta": [K, p], "omega": [K, q]}: the derivative of ξ along v.
        """
        self._record("jacobian", PLAYERS, key)
        return self.split(self._jacobian_product(self.join(y), self.join(v), key, transpose=False))

    # -- what an oracle defines --------------------------------------------------------------------
    def _raw_gradients(self, y: Params, players: tuple, group: int):
        """({player: gradient of its own loss, no decay}, {player: loss}) on minibatch ``group``."""
        raise NotImplementedError

    def _jacobian_product(self, x: torch.Tensor, v: torch.Tensor, key: str, transpose: bool) -> torch.Tensor:
        """Jᵀv or Jv [K, d] at x [K, d], by reverse mode through ``_flat_gradients`` (differentiable oracles)."""
        xi = lambda z: self._flat_gradients(z, key)  # noqa: E731
        return (derivatives.vjp if transpose else derivatives.jvp)(xi, x, v)

    # -- helpers -----------------------------------------------------------------------------------
    def _flat_gradients(self, x: torch.Tensor, key: str) -> torch.Tensor:
        """ξ(x) [K, d] on key's minibatches, weight decay included (without recording an evaluation)."""
        trace, self.trace = self.trace, None
        try:
            grads, _ = self.gradients(self.split(x), PLAYERS, key)
        finally:
            self.trace = trace
        return self.join(grads)

    def _decayed(self, who: str, grad: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return grad + self.decay[who] * y if self.decay[who] else grad

    def join(self, y: Params) -> torch.Tensor:
        """The state x [K, d] of a point {player: its parameters}."""
        return self.game.join(y["theta"], y["omega"])

    def split(self, x: torch.Tensor) -> Params:
        """The point {player: its parameters} of a state x [K, d]."""
        return dict(zip(PLAYERS, self.game.split(x)))

    def _record(self, kind: str, players, key: str) -> None:
        if self.trace is not None:
            groups = sorted({self.group(key, who) for who in players})
            self.trace.append({"kind": kind, "players": tuple(players), "batch": key, "groups": groups})


class Minibatch(Oracle):
    """Minibatches of size ``batch_size`` from ``streams``: the chain's own gradients.

    Under SVAG (``svag`` = l > 1; Li, Malladi & Arora 2021) each minibatch is a pair of independent ones
    and a gradient is a₊∇L(γ₁) + a₋∇L(γ₂) (``svag_combine``): the same mean, l× the noise covariance.
    ``player_losses`` may replace the game's method of that name (a compiled version).
    """

    def __init__(self, game: Game, batch_size: int, streams: Streams, shared: bool = False, svag: int = 1,
                 decay: Optional[Dict[str, float]] = None, player_losses: Optional[Callable] = None):
        """An oracle of the chain's minibatch gradients.

        Args:
            game: the game.
            batch_size: the minibatch size B.
            streams: the K runs' random streams, from which the minibatches are drawn.
            shared: as for ``Oracle``.
            svag: the SVAG factor l ≥ 1 (1: plain minibatches).
            decay: as for ``Oracle``.
            player_losses: a replacement for ``game.player_losses`` (same signature), or None.
        """
        super().__init__(game, shared, decay)
        self.batch_size, self.streams, self.svag, self.player_losses = batch_size, streams, svag, player_losses
        self.batches: list = []

    def begin(self) -> None:
        super().begin()
        self.batches = []

    def draw(self):
        """A new minibatch for the K runs (a pair under SVAG)."""
        one = lambda: self.game.sample(self.streams.K, self.batch_size, self.streams)  # noqa: E731
        return one() if self.svag == 1 else (one(), one())

    def batch(self, group: int):
        """Minibatch ``group`` of the iteration, drawn at its first use."""
        while len(self.batches) <= group:
            self.batches.append(self.draw())
        return self.batches[group]

    def _raw_gradients(self, y, players, group):
        theta, omega, batch = y["theta"], y["omega"], self.batch(group)
        if self.svag == 1:
            return self.game.player_grads(theta, omega, batch, players, self.player_losses)
        pair = [self.game.player_grads(theta, omega, b, players, self.player_losses) for b in batch]
        return tuple({w: svag_combine(self.svag, first[w], second[w]) for w in players}
                     for first, second in zip(*pair))  # (grads, losses)

    def _jacobian_product(self, x, v, key, transpose):
        """By autograd through the minibatch gradients (their graph kept); a Jv by the double-backward
        trick Jv = ∂_u (Jᵀu)·v."""
        if self.svag != 1:
            raise ConfigError("sga.svag", "SVAG combines gradients; a rule with Jacobian products needs svag = 1")
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            xi = self._flat_gradients(x, key)
            if transpose:
                return torch.autograd.grad(xi, x, v)[0]
            u = torch.zeros_like(xi, requires_grad=True)
            (pulled,) = torch.autograd.grad(xi, x, u, create_graph=True)
            return torch.autograd.grad(pulled, u, v)[0]


class Mean(Oracle):
    """The expected gradient ξ = −E V̂ on every minibatch, from the game's ``expected_field`` (or ``field``,
    a function x [K, d] ↦ V(x) [K, d] given instead)."""

    def __init__(self, game: Game, shared: bool = False, decay: Optional[Dict[str, float]] = None,
                 field: Optional[Callable] = None):
        """An oracle of the expected gradients.

        Args:
            game: the game.
            shared: as for ``Oracle``.
            decay: as for ``Oracle``.
            field: the expected field x [K, d] ↦ V(x) [K, d], or None for ``game.expected_field``.
        """
        super().__init__(game, shared, decay)
        self.field = field or game.expected_field
        self._game_field = field is None  # the game's own field: its expected_field_jvp applies
        self._last = (None, None, None)  # (θ, ω, V): a rule evaluating at one point twice pays once

    def _mean_field(self, y: Params) -> Params:
        """The expected gradient −V(y) per player (the last point's reused when y is the same tensors)."""
        theta, omega, value = self._last
        if theta is not y["theta"] or omega is not y["omega"]:
            value = self.split(-self.field(self.join(y)))
            self._last = (y["theta"], y["omega"], value)
        return value

    def gradient_tangents(self, y: Params, v: Params, players: Sequence[str] = PLAYERS, key: str = "g") -> Params:
        """{player: J_player(y)·v}: the derivative of its gradient on key's minibatch along v (the game's
        ``expected_field_jvp``, in closed form where the game has one), without recording an evaluation.

        Args:
            y: the point {"theta": θ [K, p], "omega": ω [K, q]}.
            v: the direction {"theta": [K, p], "omega": [K, q]}.
            players: the players whose tangents are needed.
            key: the rule's batch key.

        Returns:
            {player: J_player(y)·v}, [K, p] or [K, q], weight decay included (wd·v_player).
        """
        x, direction = self.join(y), self.join(v)
        if self._game_field:
            mean = self.split(-self.game.expected_field_jvp(x, direction))
        else:
            mean = self.split(-derivatives.jvp(self.field, x, direction))
        return {who: self._decayed(who, self._noisy_tangent(mean[who], x, direction, who, key), v[who])
                for who in players}

    def _noisy_tangent(self, mean: torch.Tensor, x, v, who: str, key: str) -> torch.Tensor:
        return mean

    def _constant_noise(self) -> bool:
        """Whether the gradients' noise does not move with y (so J is the expected field's)."""
        return True

    def _jacobian_product(self, x, v, key, transpose):
        """J v by ``gradient_tangents`` (closed-form jvps). Jᵀu, where J is the expected field's, column by
        column from J e_j on d·K rows at once (d closed-form jvps, cheaper than reverse mode through the
        field for the few coordinates of the games with closed forms); else by reverse mode."""
        if not transpose:
            return self.join(self.gradient_tangents(self.split(x), self.split(v), PLAYERS, key))
        if not self._constant_noise():
            return super()._jacobian_product(x, v, key, transpose)
        K, d = x.shape
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        rows, units = x.repeat(d, 1), eye.repeat_interleave(K, dim=0)  # row j·K + k: x_k along e_j
        columns = self.join(self.gradient_tangents(self.split(rows), self.split(units), PLAYERS, key))
        return (columns.reshape(d, K, d) * v[None]).sum(-1).T  # (Jᵀv)_j = (J e_j)·v

    def gradients(self, y, players=PLAYERS, key="g"):
        """As ``Oracle.gradients``, with the expected gradient ξ(y) = −V(y) on every minibatch (less the
        injected noise of ``Injected``); the losses are zero, not evaluated.

        Args:
            y: the point {"theta": θ [K, p], "omega": ω [K, q]}.
            players: the players whose gradients are needed.
            key: the rule's batch key.

        Returns:
            (grads, losses): grads[player], `[K, p]` or `[K, q]`, weight decay included; losses[player], zeros [K].
        """
        for who in players:
            self.group(key, who)  # number the minibatches as the chain would draw them
        self._record("gradient", players, key)
        mean = self._mean_field(y)
        zero = torch.zeros_like(mean["theta"][:, 0])
        grads = {who: self._decayed(who, self._noisy(mean[who], y, who, key), y[who]) for who in players}
        return grads, {who: zero for who in players}

    def _noisy(self, mean: torch.Tensor, y: Params, who: str, key: str) -> torch.Tensor:
        """The gradient on key's minibatch for ``who`` given its mean: the mean itself."""
        return mean


class Injected(Mean):
    """The expected gradient less a given noise on each minibatch g: ξ̂_g(y) = ξ(y) − ζ_g(y)."""

    def __init__(self, game: Game, noise: Callable, shared: bool = False, decay=None, mean: bool = True,
                 noise_tangent: Optional[Callable] = None):
        """An oracle of the expected gradients with injected noise.

        Args:
            game: the game.
            noise: (g, y [K, d]) ↦ ζ_g(y) [K, d], or None for none on that minibatch (see ``vectors`` and
                ``driven``); a minibatch beyond those given has no noise.
            shared: as for ``Oracle``.
            decay: as for ``Oracle``.
            mean: False for the noise alone (ξ̂_g = −ζ_g, no expected gradient and no decay): the part of a
                linear rule's step that the noise makes.
            noise_tangent: (g, y, v) ↦ Dζ_g(y)·v [K, d] or None for zero (default: zero, constant noise).
        """
        super().__init__(game, shared, decay if mean else None)
        self.noise, self.mean, self.noise_tangent = noise, mean, noise_tangent
        if not mean:
            self.field, self._game_field = torch.zeros_like, False

    @classmethod
    def vectors(cls, game: Game, vectors: Sequence[torch.Tensor], **options) -> "Injected":
        """ζ_g = ``vectors[g]`` [K, d] (constant in y).

        Args:
            game: the game.
            vectors: the noise ζ_g [K, d] of minibatch g = 0, 1, …; later minibatches have none.
            **options: ``Injected``'s other options (shared, decay, mean).

        Returns:
            The oracle.
        """
        vectors = list(vectors)
        return cls(game, lambda g, y: vectors[g] if g < len(vectors) else None, **options)

    @classmethod
    def driven(cls, game: Game, batch_size: int, w: torch.Tensor, **options) -> "Injected":
        """ζ_g(y) = F(y)w_g, F the game's factor of the minibatch noise (``gradient_noise_product``), for
        normals w [K, G, m] (minibatch g takes w[:, g]).

        Args:
            game: the game, whose ``gradient_noise_product`` gives F(y)w.
            batch_size: the minibatch size B of the noise's covariance Σ_B.
            w: the driving normals [K, G, m], m = the game's noise columns; minibatches g ≥ G have none.
            **options: ``Injected``'s other options (shared, decay, mean).

        Returns:
            The oracle (whose noise moves with y unless the game's noise is additive).
        """
        def noise(g, y):
            return game.gradient_noise_product(y, batch_size, w[:, g]) if g < w.shape[1] else None

        def noise_tangent(g, y, v):
            if g >= w.shape[1]:
                return None
            return derivatives.jvp(lambda z: game.gradient_noise_product(z, batch_size, w[:, g]), y, v)
        return cls(game, noise, noise_tangent=None if game.additive_noise else noise_tangent, **options)

    def _noisy(self, mean, y, who, key):
        zeta = self.noise(self.group(key, who), self.join(y))
        if zeta is None:
            return mean
        return mean - self.split(zeta)[who]

    def _constant_noise(self) -> bool:
        return self.noise_tangent is None

    def _noisy_tangent(self, mean, x, v, who, key):
        change = None if self.noise_tangent is None else self.noise_tangent(self.group(key, who), x, v)
        if change is None:
            return mean
        return mean - self.split(change)[who]


def svag_combine(l: int, first, second):
    """SVAG's a₊·first + a₋·second, a± = (1 ± √(2l − 1))/2 (Li, Malladi & Arora 2021, arXiv:2102.12470).

    Since a₊ + a₋ = 1 and a₊² + a₋² = l, two independent unbiased estimates combine into one with the same
    mean and l times the covariance.

    Args:
        l: the SVAG factor l ≥ 1.
        first: the estimate on the first minibatch of the pair (a tensor or anything with + and scalar ·).
        second: the estimate on the second, same shape.

    Returns:
        a₊·first + a₋·second, same shape.
    """
    root = math.sqrt(2 * l - 1)
    return (1 + root) / 2 * first + (1 - root) / 2 * second
