"""Update rules as objects: one iteration x_k → x_{k+1} of a training rule, written once.

A rule's ``step`` is the iteration's mathematics, built from the primitives of a ``Step`` context:
the players' gradients on named minibatches, Jacobian products, the players' optimisers, and the
moves of a point (descend by the rates, explore by an extrapolation step, interpolate). The same code
then runs

- in training (``games.sga``): minibatch gradients, optimisers, rates from schedules, observables;
- in the expansion in η (``games.expansion``): the exact expected or noise-injected gradient, SGD, and
  points kept as x + offset + η·shift, so that the rule's drift, its O(η) correction and its noise are
  read off the code (SMEs and modified flows with no formula written by hand).

A rule never computes with points itself, only through the context, so both readings are exact. It
may compute with gradients and directions ({player: tensor}). A rule's gradient evaluations are data:
``trace`` lists them (kind, players, minibatch) by running the step once.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import fields, is_dataclass
from typing import ClassVar, Dict, Protocol, Sequence, Tuple

import torch

from ..base import PLAYERS
from ..errors import ConfigError

Params = Dict[str, torch.Tensor]  # a point {"theta": [K, p], "omega": [K, q]} (opaque to rules)
Vectors = Dict[str, torch.Tensor]  # gradients or directions, one per player


class Step(Protocol):
    """What a rule's ``step`` may do; ``games.sga`` (training) and ``games.expansion`` implement it."""

    def gradients(self, y: Params, players: Sequence[str] = PLAYERS, batch: str = "g") -> Vectors:
        """ξ_player(y) = ∇ of each player's own loss (weight decay included) on ``batch``'s minibatch.

        Args:
            y: the point {player: `[K, n_player]`}.
            players: the players whose gradients are wanted ("theta", "omega").
            batch: the batch key: each key and player has its own minibatch (with ``shared_batch``,
                one minibatch serves the whole iteration).

        Returns:
            {player: ξ_player(y) `[K, n_player]`} for the players given.
        """

    def jacobian_transpose_product(self, y: Params, u: Vectors, batch: str = "g") -> Vectors:
        """Jᵀu at y, J = Dξ on ``batch``'s minibatches.

        Args:
            y: the point {player: `[K, n_player]`}.
            u: the vector multiplied, {player: `[K, n_player]`} for both players.
            batch: the batch key of J's minibatches.

        Returns:
            Jᵀu, {player: `[K, n_player]`}.
        """

    def jacobian_product(self, y: Params, v: Vectors, batch: str = "g") -> Vectors:
        """J v at y.

        Args:
            y: the point {player: `[K, n_player]`}.
            v: the vector multiplied, {player: `[K, n_player]`} for both players.
            batch: the batch key of J's minibatches.

        Returns:
            J v, {player: `[K, n_player]`}.
        """

    def directions(self, gradients: Vectors) -> Vectors:
        """Each player's optimiser's direction D from its gradient (SGD: D = g); advances its state."""

    def descend(self, y: Params, directions: Vectors) -> Params:
        """y − η_player·D for the players given (the others stay), then the game's projection.

        Args:
            y: the point {player: `[K, n_player]`}.
            directions: {player: D_player `[K, n_player]`} of the players that move.

        Returns:
            The point reached, {player: `[K, n_player]`}.
        """

    def explore(self, y: Params, gradients: Vectors, rho: float = 1.0, tied: bool = True) -> Params:
        """y − ρ_player·g: ρ = rho·η_player (``tied``) or rho·c_player, held fixed as η → 0.

        Args:
            y: the point {player: `[K, n_player]`}.
            gradients: {player: g_player `[K, n_player]`} of the players that move (no optimiser).
            rho: the scale of the step (> 0).
            tied: whether the step scales with η (rather than staying fixed as η → 0).

        Returns:
            The point reached, {player: `[K, n_player]`}, after the game's projection.
        """

    def interpolate(self, y: Params, z: Params, alpha: float) -> Params:
        """y + α(z − y): the step actually taken from y.

        Args:
            y: the point the step starts from, {player: `[K, n_player]`}.
            z: the point it moves towards, {player: `[K, n_player]`}.
            alpha: α in (0, 1].

        Returns:
            The point reached, {player: `[K, n_player]`}, after the game's projection.
        """

    def previous(self, x: Params) -> Params:
        """The point one iteration before x on the rule's underlying one-step method (expansion only)."""

    def inner(self, index: int) -> "Step":
        """The context for inner iteration ``index`` of a rule made of iterations of another (lookahead):
        its minibatches are its own, and its moves are not the iteration's step."""


class UpdateRule(ABC):
    """One iteration of a training rule, x_k → x_{k+1}, built from gradient evaluations.

    Subclasses are frozen dataclasses whose fields are the rule's options (config keys ``sga.<field>``),
    with a ``name`` (``sga.update``), a ``step`` and, for rules with memory, ``init`` and
    ``underlying_state``.
    """

    name: ClassVar[str]
    stateful: ClassVar[bool] = False  # the rule keeps state between iterations (beyond its optimisers')
    adaptive_schedules: ClassVar[bool] = True  # an adaptive schedule may read its steps (lookahead: no)

    def init(self, x: Params) -> dict:
        """The rule's state before its first iteration."""
        return {}

    @abstractmethod
    def step(self, x: Params, state: dict, ctx: Step) -> Tuple[Params, dict]:
        """One iteration from x: (x', state').

        Args:
            x: the point x_k, {"theta": `[K, p]`, "omega": `[K, q]`}, opaque to the rule (moved only
                through ``ctx``).
            state: the rule's state (``init`` at the first iteration); not modified.
            ctx: the primitives the iteration is built from: gradients, Jacobian products, optimisers'
                directions and moves.

        Returns:
            (x_{k+1}, the rule's new state).
        """

    def underlying_state(self, x: Params, ctx: Step) -> dict:
        """The state the rule has at x on its underlying one-step method (Hairer, Lubich & Wanner 2006,
        §XV.2), where ``ctx.previous(x)`` is the point one step before x: what the expansion of a rule
        with memory reads its continuous limits from. Stateless rules: ``init``.

        Args:
            x: the point, {"theta": `[K, p]`, "omega": `[K, q]`}.
            ctx: the expansion's context, whose ``previous`` gives the point before x.

        Returns:
            The rule's state at x.

        Raises:
            ConfigError: for a rule with memory that states no underlying one-step method.
        """
        if self.stateful:
            raise ConfigError("sga.update", f"{self.label} keeps state between iterations and states no "
                                            "underlying one-step method, so its continuous limit is not derived")
        return self.init(x)

    @classmethod
    def checked(cls, field: str, **options) -> "UpdateRule":
        """An instance from ``options`` after validating them; errors name ``field``.<option>.

        Args:
            field: the config key prefix of the options (``sga``).
            **options: the rule's options (its dataclass fields), by name.

        Returns:
            The rule.

        Raises:
            ConfigError: naming ``field``.<option> for an option out of its range.
        """
        return cls(**options)

    def options(self) -> dict:
        """The rule's options (its dataclass fields)."""
        return {f.name: getattr(self, f.name) for f in fields(self)} if is_dataclass(self) else {}

    @property
    def label(self) -> str:
        """The rule's name with the options that differ from their defaults (lookahead's inner rule first)."""
        defaults = {f.name: f.default for f in fields(self)} if is_dataclass(self) else {}
        changed = [f"{k}={v}" for k, v in self.options().items()
                   if k not in ("inner", "first") and v != defaults.get(k)]
        inner = getattr(self, "inner", None)
        parts = ([inner.label] if inner is not None else []) + changed
        return f"{self.name} ({', '.join(parts)})" if parts else self.name

    def describe(self) -> dict:
        options = {k: (v.describe() if isinstance(v, UpdateRule) else v) for k, v in self.options().items()}
        return {"name": self.name, **options}


def trace(sga, x=None) -> list:
    """The gradient evaluations of one iteration of ``sga``'s rule, as data: one dict per evaluation
    with its kind ("gradient", "jacobian", "jacobian-transpose"), players, batch key and minibatch
    groups (numbered in the order the iteration first uses them), read off the step by running it once
    on the game's initial state (one run).

    Args:
        sga: the training set-up (``games.sga.SGA``) whose rule is traced.
        x: the state the step is taken from, shape [1, d] (None: the game's initial state of one run).

    Returns:
        A list of dicts, one per gradient evaluation, in the order of the step.
    """
    from ..oracle import Minibatch
    from ..random import Streams

    streams = Streams([0])
    x = sga.game.init(1, streams) if x is None else x
    oracle = Minibatch(sga.game, sga.batch_size, streams, sga.shared_batch)
    oracle.trace = []
    sga.step(x, sga.init_state(x), 0, streams, oracle=oracle)
    return oracle.trace
