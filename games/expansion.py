"""The one-step map of an update rule, expanded in the learning rate and read off the rule's own code.

An iteration of a rule (``games.rules``) with SGD at rates c·η maps x to Φ_η(x) = x + η D(x, η), D the
rule's direction. The rule's ``step`` runs here on a context at η = 0 that keeps every point it reaches as
x + offset + η·shift (an extrapolation by a step held fixed as η → 0 moves the offset, a move by the
rates moves the shift), and follows each quantity with its first derivative along a seed direction
(``Jet``): gradients at a moving point gain J·ẏ (the game's ``expected_field_jvp``), so that with the
gradients of the expected field (``games.oracle.Mean``)

- b₁ = D(x, 0) = ∂_η Φ̄_η(x)                  the rule's gradient flow ẋ = b₁ (V, (V_θ, n_d V_ω), …)
- m₂ = ∂_η D(x, 0) = ½ ∂²_η Φ̄_η(x)            the derivative along η
- Db₁·v                                        the derivative along x, seeded with v

and the flow whose time-η map matches Φ̄_η to O(η³) is the modified equation
b = b₁ + η(m₂ − ½ Db₁·b₁) (Hairer, Lubich & Wanner 2006, §IX.1; for games Rosca et al. 2021). With the
noise of each minibatch injected (``games.oracle.Injected``) the same evaluations give the SMEs' noise
(``sde.sme``). A rule with memory is read on its underlying one-step method (``UpdateRule.underlying_state``).

``update_map_terms`` takes b₁ and m₂ by forward-mode derivatives in η (torch.func.jvp) of an iteration
of the training code itself (``SGA.step`` on the expected field): the check of the terms above.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch
from torch.func import jvp

from . import derivatives
from .base import PLAYERS
from .errors import ConfigError
from .optim import SGD
from .oracle import Injected, Mean, Oracle
from .random import Streams
from .sga import SGA, Player
from .trajectory import Trajectory


def _add(a, b, scale=1.0):
    """a + scale·b for tensors, Jets or ``None`` (zero)."""
    if b is None:
        return a
    return scale * b if a is None else a + scale * b


class Jet:
    """value + ε·tangent to first order in ε (``tangent`` None: zero): a quantity the expansion follows
    with its derivative along the seed direction. Rules combine gradients linearly, which Jets support."""

    __slots__ = ("value", "tangent")

    def __init__(self, value, tangent=None):
        """The jet value + ε·tangent.

        Args:
            value: the quantity at ε = 0 (a tensor, say [K, p]).
            tangent: its derivative along the seed direction, same shape, or None for zero.
        """
        self.value, self.tangent = value, tangent

    def __add__(self, other):
        other = other if isinstance(other, Jet) else Jet(other)
        return Jet(self.value + other.value, _add(self.tangent, other.tangent))

    __radd__ = __add__

    def __neg__(self):
        return Jet(-self.value, None if self.tangent is None else -self.tangent)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, scale):
        return Jet(self.value * scale, None if self.tangent is None else self.tangent * scale)

    __rmul__ = __mul__

    def __truediv__(self, scale):
        return self * (1.0 / scale)


class _Point:
    """x + offset + η·shift, offset and shift {player: Jet or ``None`` for zero}."""

    __slots__ = ("offset", "shift")

    def __init__(self, offset: dict, shift: dict):
        self.offset, self.shift = offset, shift


def _combine(a, b, alpha):
    """a + α(b − a) for Jets or ``None`` (zero)."""
    if a is None and b is None:
        return None
    return _add(a, _add(b, a, -1.0), alpha)


class _Expanding:
    """The ``Step`` of the expansion (``games.rules.base``) at η = 0: gradients from ``oracle``, SGD at rates
    c·η, points as ``_Point``s about x, and every quantity a ``Jet`` along the seed: a change v of x
    (``seed_x``) and of η by ``seed_eta``. A point's velocity is then ẏ = v + ∂offset + seed_eta·shift.
    The flag ``nonlinear`` is set when the step uses a gradient's noise other than linearly (a Jacobian
    product, or an extrapolation by a fixed step)."""

    def __init__(self, x: dict, scales: dict, oracle: Oracle, seed_x: Optional[dict] = None, seed_eta: float = 0.0,
                 previous=None, prefix: str = "", flags: Optional[dict] = None):
        self.x, self.scales, self.oracle = x, scales, oracle
        self.seed_x, self.seed_eta, self._previous, self.prefix = seed_x, seed_eta, previous, prefix
        self.flags = {"nonlinear": False} if flags is None else flags  # shared with inner contexts

    @property
    def nonlinear(self) -> bool:
        return self.flags["nonlinear"]

    @property
    def start(self) -> _Point:
        return _Point({w: None for w in PLAYERS}, {w: None for w in PLAYERS})

    def at(self, y: _Point) -> dict:
        """The point y at η = 0 as tensors: x + offset."""
        return {w: self.x[w] if y.offset[w] is None else self.x[w] + y.offset[w].value for w in PLAYERS}

    def velocity(self, y: _Point) -> Optional[dict]:
        """ẏ = v + ∂offset + seed_eta·shift at η = 0, or None where it is zero for every player."""
        parts = {w: _add(_add(None if self.seed_x is None else self.seed_x[w],
                              None if y.offset[w] is None else y.offset[w].tangent),
                         None if y.shift[w] is None or not self.seed_eta else y.shift[w].value, self.seed_eta)
                 for w in PLAYERS}
        if all(v is None for v in parts.values()):
            return None
        return {w: torch.zeros_like(self.x[w]) if v is None else v for w, v in parts.items()}

    def gradients(self, y, players=PLAYERS, batch="g"):
        point, key = self.at(y), self.prefix + batch
        values = self.oracle.gradients(point, players, key)[0]
        moving = self.velocity(y)
        if moving is None:
            return {w: Jet(values[w]) for w in players}
        tangents = self.oracle.gradient_tangents(point, moving, players, key)
        return {w: Jet(values[w], tangents[w]) for w in players}

    def jacobian_transpose_product(self, y, u, batch="g"):
        return self._jacobian(y, u, batch, self.oracle.jacobian_transpose_product)

    def jacobian_product(self, y, v, batch="g"):
        return self._jacobian(y, v, batch, self.oracle.jacobian_product)

    def _jacobian(self, y, u, batch, product):
        """J(y)ᵀu or J(y)u as Jets: the tangent is J(y)·u̇ + ∂_y[J(y)u]·ẏ (a second derivative, by reverse mode)."""
        self.flags["nonlinear"] = True
        point, key, moving = self.at(y), self.prefix + batch, self.velocity(y)
        value = product(point, {w: u[w].value for w in PLAYERS}, key)
        tangent = None
        if any(u[w].tangent is not None for w in PLAYERS):
            tangent = product(point, {w: _zero_or(u[w].tangent, self.x[w]) for w in PLAYERS}, key)
        if moving is not None:
            fixed = {w: u[w].value for w in PLAYERS}
            flat = lambda z: self.oracle.join(product(self.oracle.split(z), fixed, key))  # noqa: E731
            moved = self.oracle.split(derivatives.jvp(flat, self.oracle.join(point), self.oracle.join(moving)))
            tangent = moved if tangent is None else {w: tangent[w] + moved[w] for w in PLAYERS}
        return {w: Jet(value[w], None if tangent is None else tangent[w]) for w in PLAYERS}

    def directions(self, gradients):
        return gradients

    def descend(self, y, directions):
        return _Point(y.offset, {w: _add(y.shift[w], directions.get(w), -self.scales[w]) for w in PLAYERS})

    def explore(self, y, gradients, rho=1.0, tied=True):
        if tied:
            return _Point(y.offset, {w: _add(y.shift[w], gradients.get(w), -rho * self.scales[w]) for w in PLAYERS})
        self.flags["nonlinear"] = True
        return _Point({w: _add(y.offset[w], gradients.get(w), -rho * self.scales[w]) for w in PLAYERS}, y.shift)

    def interpolate(self, y, z, alpha):
        return _Point({w: _combine(y.offset[w], z.offset[w], alpha) for w in PLAYERS},
                      {w: _combine(y.shift[w], z.shift[w], alpha) for w in PLAYERS})

    def previous(self, x):
        """x − η b₁(x) + O(η²): the underlying one-step method's previous point, to the order m₂ needs (its
        O(η²) term is not derived: NaN, so that a rule that would need it shows it); x itself where only
        values at η = 0, or derivatives along x, are followed."""
        if self._previous is None:
            return x
        b1 = self._previous()
        unknown = {w: torch.full_like(b1[w], float("nan")) for w in PLAYERS}
        return _Point(x.offset, {w: _add(x.shift[w], Jet(b1[w], unknown[w]), -1.0) for w in PLAYERS})

    def inner(self, index):
        return _Expanding(self.x, self.scales, self.oracle, self.seed_x, self.seed_eta, self._previous,
                          f"{self.prefix}{index}/", self.flags)


def _zero_or(value, like):
    return torch.zeros_like(like) if value is None else value


class Expansion:
    """The terms b₁, m₂ of the one-step map of ``sga``'s rule (SGD for both players at a constant rate
    ratio) and its modified equation at reference rate ``eta`` (default: sga's rate at step 0)."""

    def __init__(self, sga: SGA, eta: Optional[float] = None):
        """The expansion of ``sga``'s one-step map; ConfigError for a stateful optimiser, a schedule or SVAG.

        Args:
            sga: the trainer: its game, rule, players' rate ratios c and weight decays, and shared batches.
            eta: the reference learning rate η of the modified equation, or None for sga's rate at step 0.
        """
        for who, player in sga.players.items():
            if not isinstance(sga.optimizers[who], SGD) or player.schedule is not None:
                raise ConfigError(f"sga.{'gen' if who == 'theta' else 'disc'}.optimizer",
                                  "the expansion is derived for SGD with a constant rate ratio; a stateful "
                                  "optimiser has its own SDE (sde.momentum)")
        if sga.svag != 1:
            raise ConfigError("sga.svag", "the expansion is derived for plain updates; SVAG training tends to "
                                          "SME-1 of the plain trainer (svag = 1) at the same rate")
        self.sga, self.game, self.rule = sga, sga.game, sga.rule
        self.eta = float(sga.schedule(0)) if eta is None else float(eta)
        self.p, self.d = self.game.p, self.game.d
        self.scales = {w: float(p.scale) for w, p in sga.players.items()}
        self.decay = sga.decay
        self.evaluations, self.groups, self.nonlinear, self.linear_in_eta = self._probe()

    def _probe(self):
        """(the evaluations of one step, its minibatch groups, whether its noise enters nonlinearly, whether
        the step is x + ηD(x) exactly), from runs of the step on the game's initial state: D's derivative
        along η is then zero, structurally (no gradient at a point that moves with η)."""
        oracle, x = self.oracle(), self.game.init(1, Streams([0]))
        oracle.trace = []
        ctx = self._run(x, oracle)[2]
        return oracle.trace, len(oracle.groups), ctx.nonlinear, self._run(x, self.oracle(), seed_eta=1.0)[1] is None

    # -- evaluating the rule ---------------------------------------------------------------------
    def oracle(self, noise=None, mean: bool = True) -> Oracle:
        """The expected gradients (weight decay included), less ``noise`` if given (an ``Injected``
        oracle's noise; ``mean`` = False: the noise alone).

        Args:
            noise: (g, y [K, d]) ↦ ζ_g(y) [K, d] or None, as for ``Injected``; None for a ``Mean`` oracle.
            mean: False for the noise alone (with ``noise`` only).

        Returns:
            The oracle, on sga's shared-batch setting and weight decays.
        """
        shared = self.sga.shared_batch
        if noise is None:
            return Mean(self.game, shared, self.decay)
        return Injected(self.game, noise, shared, self.decay, mean=mean)

    def _run(self, x: torch.Tensor, oracle: Oracle, seed_x=None, seed_eta: float = 0.0):
        """(D(x, 0) [K, d], its derivative along the seed [K, d] or None, the context): the rule's step at
        η = 0 on ``oracle``, followed along x + εv (``seed_x`` = v) and η = ε·``seed_eta``."""
        params = dict(zip(PLAYERS, self.game.split(x)))
        previous = None
        if self.rule.stateful and seed_eta:  # the underlying method's previous point x − ηb₁(x) moves with η
            previous = lambda: dict(zip(PLAYERS, self.game.split(self.leading_drift(x))))  # noqa: E731
        seed = None if seed_x is None else dict(zip(PLAYERS, self.game.split(seed_x)))
        ctx = _Expanding(params, self.scales, oracle, seed, seed_eta, previous)
        oracle.begin()
        start = ctx.start
        end, _ = self.rule.step(start, self.rule.underlying_state(start, ctx), ctx)
        if any(end.offset[w] is not None for w in PLAYERS):
            raise ConfigError("sga.update", f"{self.rule.label} moves x by a step that does not vanish with η")
        shift = {w: Jet(torch.zeros_like(params[w])) if end.shift[w] is None else end.shift[w] for w in PLAYERS}
        value = self.game.join(shift["theta"].value, shift["omega"].value)
        if all(shift[w].tangent is None for w in PLAYERS):
            return value, None, ctx
        tangent = self.game.join(*(_zero_or(shift[w].tangent, params[w]) for w in PLAYERS))
        return value, tangent, ctx

    def direction(self, x: torch.Tensor, oracle: Optional[Oracle] = None) -> torch.Tensor:
        """D(x, 0) [K, d] on ``oracle`` (default: the expected gradients): Φ_η(x) = x + ηD(x, 0) + O(η²).

        Args:
            x: the states [K, d].
            oracle: where the gradients come from, or None for the expected gradients (``oracle()``).

        Returns:
            D(x, 0) [K, d].
        """
        return self._run(x, oracle or self.oracle())[0]

    def direction_derivative(self, x: torch.Tensor, oracle: Optional[Oracle] = None, along=None,
                             eta: float = 0.0) -> torch.Tensor:
        """The derivative of D(x, η) at η = 0 along x + εv (``along`` = v) and η = ε·``eta`` [K, d].

        Args:
            x: the states [K, d].
            oracle: where the gradients come from, or None for the expected gradients.
            along: the direction v [K, d] of x, or None for zero.
            eta: the rate of change of η with ε (0: a derivative along x alone).

        Returns:
            d/dε D(x + εv, ε·eta) at ε = 0, [K, d] (zeros where D does not depend on the seed).
        """
        tangent = self._run(x, oracle or self.oracle(), along, eta)[1]
        return torch.zeros_like(x) if tangent is None else tangent

    # -- the terms -------------------------------------------------------------------------------
    def leading_drift(self, x: torch.Tensor) -> torch.Tensor:
        """b₁(x) = D(x, 0) on the expected field."""
        return self.direction(x)

    def leading_drift_jvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Db₁(x)·v.

        Args:
            x: the states [K, d].
            v: the directions [K, d].

        Returns:
            The derivative of b₁ at x along v, [K, d].
        """
        return self.direction_derivative(x, along=v)

    def second_moment_term(self, x: torch.Tensor, oracle: Optional[Oracle] = None) -> torch.Tensor:
        """m₂(x) = ∂_η D(x, η) at η = 0 = ½∂²_η Φ̄_η(x) (on ``oracle``, default the expected gradients); zero
        for a rule whose step is x + ηD(x) exactly.

        Args:
            x: the states [K, d].
            oracle: where the gradients come from, or None for the expected gradients.

        Returns:
            m₂(x) [K, d].
        """
        if self.linear_in_eta:
            return torch.zeros_like(x)
        return self.direction_derivative(x, oracle, eta=1.0)

    def modified_field(self, x: torch.Tensor, eta: Optional[float] = None) -> torch.Tensor:
        """b₁ + η(m₂ − ½ Db₁·b₁): the modified equation's field to first order in η (default: ``eta``). The
        bracket is one derivative of D, along x − ½εb₁ and η = ε together.

        Args:
            x: the states [K, d].
            eta: the learning rate η, or None for the expansion's ``eta``.

        Returns:
            The modified field [K, d].
        """
        eta = self.eta if eta is None else eta
        b1 = self.leading_drift(x)
        return b1 + eta * self.direction_derivative(x, along=-0.5 * b1, eta=0.0 if self.linear_in_eta else 1.0)

    # -- the same terms from the training code ------------------------------------------------------
    def trainer(self, eta) -> SGA:
        """``sga`` with SGD at rates c·η (η a number or a 0-dim tensor) on the players' own scales."""
        players = {name: Player("sgd", scale=self.scales[w], schedule=lambda k, c=self.scales[w]: c * eta,
                                weight_decay=self.decay[w])
                   for name, w in (("gen", "theta"), ("disc", "omega"))}
        return replace(self.sga, lr=1.0, compile=False, **players)

    def mean_step(self, x: torch.Tensor, eta) -> torch.Tensor:
        """Φ̄_η(x): one iteration of the training code (``SGA.step``) on the expected field, η a number or a
        0-dim tensor (possibly dual), from the rule's initial state.

        Args:
            x: the states [K, d].
            eta: the learning rate η: a number or a 0-dim tensor (differentiable, say a forward-mode dual).

        Returns:
            Φ̄_η(x) [K, d].
        """
        trainer = self.trainer(eta)
        oracle = Mean(self.game, self.sga.shared_batch, self.decay)
        x_new, _, _ = trainer.step(x, trainer.init_state(x), 0, _NO_STREAMS, oracle=oracle)
        return x_new

    def mean_chain(self, steps: int, **run_options) -> Trajectory:
        """x_{k+1} = Φ̄_η(x_k), k < ``steps``: training on the expected field at rate ``eta`` by the training
        code itself (``SGA.run``'s keywords: K, x0, record_every, …).

        Args:
            steps: the number of iterations.
            **run_options: keywords of ``SGA.run``.

        Returns:
            The trajectory of ``SGA.run``.
        """
        trainer = replace(self.sga, lr=self.eta, compile=False)
        return trainer.run(steps, oracle=Mean(self.game, self.sga.shared_batch, self.decay), **run_options)

    def update_map_terms(self, x: torch.Tensor) -> tuple:
        """(∂_η Φ̄_η(x), ½ ∂²_η Φ̄_η(x)) at η = 0 by forward-mode derivatives of ``mean_step``."""
        zero, one = torch.zeros((), dtype=x.dtype, device=x.device), torch.ones((), dtype=x.dtype, device=x.device)
        first = lambda e: jvp(lambda e2: self.mean_step(x, e2), (e,), (one,))[1]  # noqa: E731
        b1, second = jvp(first, (zero,), (one,))
        return b1, 0.5 * second


def noise_bias(g, x: torch.Tensor, r: int, columns, chunk: int = 64) -> torch.Tensor:
    """E g(x, w) − g(x, 0) [K, d] over w ~ N(0, I_r), for g(x [K, d], w [K, P, r]) → [K, P, d]: exact when g
    is a polynomial of degree ≤ 3 in w whose even terms involve only ``columns``, as
    ½ Σ_c (g(e_c) + g(−e_c) − 2g(0)) over them (the odd terms average out; every point in one evaluation).

    Args:
        g: the function (x [K, d], w [K, P, r]) ↦ [K, P, d].
        x: the states [K, d].
        r: the dimension of w.
        columns: the coordinates of w that the even terms of g involve (indices in 0…r − 1).
        chunk: the columns evaluated per call of g (at most 2·chunk + 1 points at once).

    Returns:
        E g(x, w) − g(x, 0) [K, d].
    """
    columns, total = list(columns), 0.0
    for start in range(0, len(columns), chunk):  # at most 2·chunk + 1 points at once
        eye = torch.eye(r, dtype=x.dtype, device=x.device)[columns[start : start + chunk]]
        out = g(x, torch.cat([x.new_zeros(1, r), eye, -eye]).expand(x.shape[0], -1, -1))
        n = eye.shape[0]
        total = total + 0.5 * (out[:, 1 : n + 1] + out[:, n + 1 :] - 2 * out[:, :1]).sum(1)
    return total


def stacked(fn, x: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
    """fn(x, w) evaluated at P noise points at once: x [K, d], w [K, P, groups·m] → [K, P, d], with
    fn(x [K', d], w [K', groups, m]) → [K', d] called once on the K·P rows.

    Args:
        fn: the function (x [K', d], w [K', groups, m]) ↦ [K', d].
        x: the states [K, d].
        w: P noise points per run [K, P, groups·m], each the m numbers of each group, group by group.
        groups: the number of groups G that each point's numbers split into.

    Returns:
        fn at every (x_k, w_kp), [K, P, d].
    """
    K, P, _ = w.shape
    rows = x[:, None].expand(-1, P, -1).reshape(K * P, -1)
    return fn(rows, w.reshape(K * P, groups, -1)).reshape(K, P, -1)


_NO_STREAMS = Streams([0])  # the expected field draws no random numbers
