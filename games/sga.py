"""Discrete stochastic gradient training of a two-player game (SGA), batched over K runs.

An iteration is one step of an update rule (``games.rules``: simultaneous or alternating GDA with n_D
discriminator steps, extragradient, optimistic GDA, Hamiltonian, consensus, symplectic, lookahead…),
run here on the chain's minibatches (``games.oracle.Minibatch``) with the players' optimisers and
rates η_θ = c_θ η_k, η_ω = c_ω η_k: a player's move is θ − η_θ d, d the direction its optimiser makes of
its gradient (weight decay included). Minibatches are ``fresh`` (one per batch key of the rule and
player) or ``shared`` (one per iteration). An iteration advances the clock t by the reference rate η_k.
SVAG (``svag`` = l > 1; Li, Malladi & Arora 2021) evaluates each gradient on two independent minibatches,
g = a₊∇L(γ₁) + a₋∇L(γ₂) (same mean, l× the noise covariance), at rate η/l and clock step η_k/l: as l → ∞
the chain tends weakly to SME-1 at rate η. A schedule η(k) indexes plain iterations: iteration k uses η(k // l)/l.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Union

import torch

from . import chunks
from .base import PLAYERS, Game
from .driver import Stepper, drive
from .errors import ConfigError, check_int, check_positive
from .optim import Optimizer, make_optimizer
from .oracle import Minibatch, Oracle, svag_combine  # noqa: F401  (svag_combine: its home before games.oracle)
from .random import Streams
from .rules import RULES, UpdateRule, make_rule
from .schedules import Adaptive, Schedule, Table, as_schedule
from .trajectory import Trajectory

UPDATES = RULES


@dataclass(frozen=True)
class Player:
    """One player's optimiser, rate scale c (η_player = c·η_k) and weight decay (added to the gradient).

    ``center`` c₀ is the point the FDR observable (θ − c₀)·d is taken about: 2E[(θ − c₀)·d] = ηE|d|²
    holds at stationarity for every constant c₀ (THEORY §4), and c₀ near the stationary mean makes
    it far less noisy than c₀ = 0.

    Args:
        optimizer: the optimiser making the direction d from the gradient: a name of
            ``games.optim.OPTIMIZERS`` or an ``Optimizer``.
        scale: c > 0, the player's rate relative to the reference rate, η_player = c·η_k.
        weight_decay: wd ≥ 0; wd·y is added to the player's gradient at y.
        schedule: the player's own rate, replacing c·η_k: a ``Schedule``, an ``Adaptive`` schedule or a
            function k ↦ η_player(k) (None: c·η_k).
        center: c₀, a scalar or a tensor broadcasting against the player's parameters `[K, p]`.
    """

    optimizer: Union[str, Optimizer] = "sgd"
    scale: float = 1.0
    weight_decay: float = 0.0
    schedule: Optional[Union[Schedule, Adaptive, Callable[[int], float]]] = None  # replaces c·η_k if given
    center: Union[float, torch.Tensor] = 0.0

    def make_optimizer(self, field: str) -> Optimizer:
        if isinstance(self.optimizer, str):
            return make_optimizer(self.optimizer, field=f"{field}.optimizer")
        return self.optimizer


@dataclass
class SGA:
    """Stochastic gradient training of ``game`` by the rule ``update`` (a name of ``games.rules.RULES``
    with ``update_options``, or an ``UpdateRule``); ``step`` is the one-iteration update map.

    Args:
        game: the game trained.
        lr: the reference rate η_k: a constant > 0, a ``Schedule``, or a function k ↦ η_k.
        update: the rule: a name of ``games.rules.RULES`` or an ``UpdateRule`` (which carries its own
            options).
        n_d: discriminator steps per iteration (alternating rules only).
        batch_size: B, the samples of each minibatch.
        shared_batch: one minibatch per iteration for every gradient of the rule, rather than a fresh
            one per batch key of the rule and player.
        gen: the generator's ``Player`` (θ).
        disc: the discriminator's ``Player`` (ω).
        compile: ``torch.compile`` the players' losses (their backward too).
        svag: l ≥ 1 of SVAG (module docstring); 1 is plain training.
        update_options: the rule's options (config keys ``sga.<option>``) when ``update`` is a name.
    """

    game: Game
    lr: Union[float, Schedule, Callable[[int], float]] = 0.05
    update: Union[str, UpdateRule] = "sim"
    n_d: int = 1
    batch_size: int = 1
    shared_batch: bool = False
    gen: Player = field(default_factory=Player)
    disc: Player = field(default_factory=Player)
    compile: bool = False  # torch.compile the players' losses (their backward too); pays off on long runs
    svag: int = 1  # l of SVAG (see the module docstring); 1 is plain training
    update_options: dict = field(default_factory=dict)  # the rule's options when ``update`` is a name

    def __post_init__(self):
        if isinstance(self.update, UpdateRule):
            if self.n_d != 1 or self.update_options:
                raise ConfigError("sga.update_options" if self.update_options else "sga.n_d",
                                  f"a rule object ({self.update.label}) carries its own options")
            self.rule = self.update
        else:
            self.rule = make_rule(self.update, self.n_d, **self.update_options)
        self.batch_size = check_int("sga.batch_size", self.batch_size)
        self.svag = check_int("sga.svag", self.svag)
        if isinstance(self.lr, (int, float)):
            check_positive("sga.lr", self.lr)
        for name, player in (("gen", self.gen), ("disc", self.disc)):
            check_positive(f"sga.{name}.scale", player.scale)
            check_positive(f"sga.{name}.weight_decay", player.weight_decay, allow_zero=True)
            if isinstance(player.schedule, Adaptive) and self.svag != 1:
                raise ConfigError("sga.svag", f"an adaptive schedule (sga.{name}) needs plain updates (svag = 1)")
            if isinstance(player.schedule, Adaptive) and not self.rule.adaptive_schedules:
                raise ConfigError("sga.update", f"{self.rule.name} takes no adaptive schedule (sga.{name}.schedule)")
        self.schedule = as_schedule(self.lr)
        self.players = {"theta": self.gen, "omega": self.disc}
        self.optimizers = {w: p.make_optimizer(f"sga.{n}") for w, p, n in
                           (("theta", self.gen, "gen"), ("omega", self.disc, "disc"))}
        self._player_losses = torch.compile(self.game.player_losses) if self.compile else None

    # -- the update map -----------------------------------------------------------------------
    def rate(self, who: str, k: int, state: Optional[dict] = None):
        """η_player at iteration k (under SVAG η_player(k // l)/l): a float, or per-run rates [K] from a
        per-run (``schedules.Table``) or adaptive schedule, the latter read off the training ``state``.

        Args:
            who: the player, "theta" or "omega".
            k: the iteration (counted in SVAG's sub-iterations).
            state: the training state (``init_state``); needed only for an adaptive schedule.

        Returns:
            η_player: a float, or a tensor of per-run rates [K].
        """
        player, plain = self.players[who], k // self.svag
        if isinstance(player.schedule, Adaptive):
            return player.schedule.rate(state["schedules"][who])
        if player.schedule is not None:
            value = player.schedule(plain)
            return value / self.svag if torch.is_tensor(value) else float(value) / self.svag
        return player.scale * float(self.schedule(plain)) / self.svag

    def clock_step(self, k: int) -> float:
        """The time iteration k covers: η_k, or η(k // l)/l under SVAG."""
        return float(self.schedule(k // self.svag)) / self.svag

    def init_state(self, x: torch.Tensor) -> dict:
        theta, omega = self.game.split(x)
        schedules = {w: p.schedule.start(x) for w, p in self.players.items() if isinstance(p.schedule, Adaptive)}
        return {"theta": self.optimizers["theta"].init(theta), "omega": self.optimizers["omega"].init(omega),
                "count": {"theta": 0, "omega": 0}, "schedules": schedules,
                "rule": self.rule.init({"theta": theta, "omega": omega})}

    @property
    def decay(self) -> dict:
        """Each player's weight decay."""
        return {w: p.weight_decay for w, p in self.players.items()}

    def oracle(self, streams: Streams) -> Minibatch:
        """The chain's gradients: minibatches of ``batch_size`` from ``streams`` (pairs under SVAG)."""
        return Minibatch(self.game, self.batch_size, streams, self.shared_batch, self.svag, self.decay,
                         self._player_losses)

    def step(self, x: torch.Tensor, state: dict, k: int, streams: Streams, oracle: Optional[Oracle] = None):
        """One iteration x_k → x_{k+1}: returns (x', state', observables {name: [K]}); the gradients come
        from ``oracle`` (default: the minibatches of ``streams``).

        Args:
            x: the runs' states x_k = (θ, ω), shape [K, d], d = p + q.
            state: the training state (``init_state``: optimisers, rule, adaptive schedules).
            k: the iteration's index, which sets its rates.
            streams: the runs' random streams, from which the minibatches are drawn.
            oracle: where the gradients come from (None: ``self.oracle(streams)``).

        Returns:
            (x_{k+1} `[K, d]`, the new training state, {observable name: `[K]`}).
        """
        params, state, obs = self.step_players(dict(zip(PLAYERS, self.game.split(x))), state, k, streams,
                                               oracle=oracle)
        return self.game.join(params["theta"], params["omega"]), state, obs

    def step_players(self, params: dict, state: dict, k: int, streams: Streams, observe: bool = True,
                     oracle: Optional[Oracle] = None, adapt: bool = True):
        """``step`` on the players' parameters {"theta": [K, p], "omega": [K, q]}.

        Args:
            params: the players' parameters {"theta": `[K, p]`, "omega": `[K, q]`}.
            state: the training state (``init_state``).
            k: the iteration's index, which sets its rates.
            streams: the runs' random streams, from which the minibatches are drawn.
            observe: whether to compute the step's observables.
            oracle: where the gradients come from (None: ``self.oracle(streams)``).
            adapt: whether the step is taken, so that adaptive schedules are told of its moves (not for
                a step computed only for its observables, whose moves are never applied).

        Returns:
            (params', state', observables or None).
        """
        oracle = oracle or self.oracle(streams)
        oracle.begin()
        state = {**state, "count": dict(state["count"]), "schedules": dict(state["schedules"])}
        obs = {} if observe else None
        params, state["rule"] = self.rule.step(params, state["rule"], _Training(self, state, k, oracle, obs,
                                                                                adapt=adapt))
        return params, state, obs

    # -- running an ensemble --------------------------------------------------------------------
    def run(self, steps: int, *, K: Optional[int] = None, x0=None, seed: int = 0,
            streams: Optional[Streams] = None, record_every: int = 1, record_states: bool = True,
            device="cpu", dtype=torch.float64, progress: bool = False, metadata: Optional[dict] = None,
            oracle: Optional[Oracle] = None) -> Trajectory:
        """Train K runs (default: one per row of x0 [K, d]) for ``steps`` iterations, recording every
        ``record_every`` and at the end, under ``games.driver`` (divergence, Ctrl-C, checkpoints).

        Each row of the record holds x_k and the observables of the step taken from x_k. A run whose
        state stops being finite or leaves the driver's bound is reported in ``metadata['diverged']``
        ({run: step}); its record up to then is kept. Ctrl-C stops the run and returns what was
        recorded. The gradients come from ``oracle`` (default: the minibatches of the runs' streams);
        with the default oracle and ``run.workers`` > 1 the runs are split over processes
        (``games.chunks``), to the same bits.

        Args:
            steps: N ≥ 0, the number of iterations.
            K: the number of runs (default: the rows of a 2-D ``x0``); needed unless ``x0`` is 2-D or
                ``streams`` is given.
            x0: the initial state, [d] (shared by every run) or [K, d] (None: ``game.init``).
            seed: the seed of the runs' streams (``Streams.from_seed``), when ``streams`` is None.
            streams: the runs' random streams (overrides ``seed`` and ``K``).
            record_every: rows at iterations 0, record_every, 2·record_every, … and N.
            record_states: keep the states in the record (False: observables only, states of width 0).
            device: where the runs' tensors live.
            dtype: the runs' floating-point type.
            progress: show a progress bar.
            metadata: entries added to the Trajectory's metadata.
            oracle: where the gradients come from (None: the minibatches of the runs' streams).

        Returns:
            The Trajectory: times [T] on the clock t = Σ η_k, states [T, K, d], the observables [T, K]
            and the set-up, seeds and diverged runs in its metadata.
        """
        steps = check_int("sga.steps", steps, minimum=0)
        record_every = check_int("run.record_every", record_every)
        if K is None and x0 is not None and torch.as_tensor(x0).ndim == 2:
            K = len(x0)  # one run per initial state
        streams = streams or Streams.from_seed(seed, check_int("run.paths", K), device=device, dtype=dtype)
        x = self.game.init(streams.K, streams) if x0 is None else _as_states(x0, streams)
        options = dict(record_every=record_every, record_states=record_states, progress=progress,
                       metadata=metadata)
        if oracle is None and self.pathwise and chunks.splits(streams.K):
            return chunks.run_split(lambda index, streams: self.runs(index)._run(steps, x[index], streams, **options),
                                    streams.K, [streams], Trajectory.join_runs)
        return self._run(steps, x, streams, oracle=oracle, **options)

    def _run(self, steps: int, x: torch.Tensor, streams: Streams, *, record_every: int, record_states: bool,
             progress: bool, metadata: Optional[dict], oracle: Optional[Oracle] = None) -> Trajectory:
        """``run`` in this process, from the states x [K, d]."""
        loop = _TrainingLoop(self, x, streams, oracle or self.oracle(streams), record_states)
        outcome = drive(loop, steps, record_every=record_every, progress=progress, desc="training",
                        stop_when_dead=not chunks.inside())
        meta = {**self.describe(), "seeds": streams.seeds.tolist() if streams.K <= 64 else None,
                "steps": steps, "record_every": record_every, **outcome.metadata(),
                "schedules": {w: self.players[w].schedule.decisions(s) for w, s in loop.train_state["schedules"].items()},
                "states_recorded": record_states, **(metadata or {})}
        return outcome.trajectory(self.game.p if record_states else 0, meta)

    @property
    def pathwise(self) -> bool:
        """Whether each run's steps depend on its own state and streams alone, so that the runs split into
        chunks (not: a game that says otherwise, an adaptive schedule pooled over the runs)."""
        return getattr(self.game, "pathwise", True) and all(
            getattr(p.schedule, "pathwise", True) for p in self.players.values())

    def runs(self, index: slice) -> "SGA":
        """This training for the runs ``index`` alone: per-run (``Table``) schedules cut to them."""
        cut = {name: replace(player, schedule=player.schedule.for_runs(index))
               for name, player in (("gen", self.gen), ("disc", self.disc)) if isinstance(player.schedule, Table)}
        return replace(self, **cut) if cut else self

    def describe(self) -> dict:
        """The training set-up, for a Trajectory's metadata."""
        return {"method": "sga", "game": self.game.describe(), "update": self.rule.name, "n_d": self.n_d,
                "rule": self.rule.describe(),
                "batch_size": self.batch_size, "shared_batch": self.shared_batch, "svag": self.svag,
                "compile": self.compile, "versions": {"torch": torch.__version__}}


class _Training:
    """The ``Step`` of training (``games.rules.base``): the oracle's gradients, the players' optimisers and
    rates at iteration k, the game's projection after each move, and the observables of each move.

    Recorded per player (when ``obs`` is a dict): the loss and |∇L| of its first gradient of the
    iteration, its rate, and (y − c₀)·d and |d|² summed over its moves y → y − η d (the FDR terms; an
    adaptive schedule is told them after each move).
    """

    def __init__(self, sga: SGA, state: dict, k: int, oracle: Oracle, obs: Optional[dict], prefix: str = "",
                 quiet: bool = False, adapt: bool = True):
        self.sga, self.state, self.k, self.oracle, self.obs = sga, state, k, oracle, obs
        self.prefix, self.quiet, self.adapt = prefix, quiet, adapt

    def gradients(self, y, players=PLAYERS, batch="g"):
        grads, losses = self.oracle.gradients(y, players, self.prefix + batch)
        if self.obs is not None:
            for who in players:
                if f"loss_{who}" not in self.obs:
                    self.obs[f"loss_{who}"] = losses[who].detach()
                    self.obs[f"grad_norm_{who}"] = grads[who].detach().norm(dim=-1)
        return grads

    def jacobian_transpose_product(self, y, u, batch="g"):
        return self.oracle.jacobian_transpose_product(y, u, self.prefix + batch)

    def jacobian_product(self, y, v, batch="g"):
        return self.oracle.jacobian_product(y, v, self.prefix + batch)

    def directions(self, gradients):
        out = {}
        for who, grad in gradients.items():
            out[who], self.state[who] = self.sga.optimizers[who].direction(grad, self.state[who],
                                                                          self.state["count"][who])
            self.state["count"][who] += 1
        return out

    def descend(self, y, directions):
        new = dict(y)
        for who, d in directions.items():
            rate = self._rate(who, y[who])
            self._observe(who, y[who], d, rate)
            new[who] = y[who] - rate * d
        return self._project(new)

    def explore(self, y, gradients, rho=1.0, tied=True):
        new = dict(y)
        for who, g in gradients.items():
            step = rho * self._rate(who, y[who]) if tied else rho * self.sga.players[who].scale
            new[who] = y[who] - step * g
        return self._project(new)

    def interpolate(self, y, z, alpha):
        new = {who: y[who] + alpha * (z[who] - y[who]) for who in PLAYERS}
        if not self.quiet:  # the step taken: y' = y − η d with d = α(y − z)/η
            for who in PLAYERS:
                rate = self._rate(who, y[who])
                self._observe(who, y[who], alpha * (y[who] - z[who]) / rate, rate)
        return self._project(new)

    def previous(self, x):
        raise ConfigError("sga.update", "training keeps a rule's past in its state, not an underlying one-step method")

    def inner(self, index):
        return _Training(self.sga, self.state, self.k, self.oracle, self.obs, f"{self.prefix}{index}/", quiet=True,
                         adapt=self.adapt)

    def _rate(self, who: str, params: torch.Tensor):
        """``SGA.rate`` as a float or a [K, 1] column on params' device, checked against the number of runs."""
        rate = self.sga.rate(who, self.k, self.state)
        if not torch.is_tensor(rate) or rate.ndim == 0:  # one rate for every run
            return rate
        if rate.shape != params.shape[:1]:
            raise ConfigError(f"sga.{'gen' if who == 'theta' else 'disc'}.schedule",
                              f"gives {rate.numel()} per-run rates for K = {params.shape[0]} runs")
        return rate.to(device=params.device, dtype=params.dtype)[:, None]

    def _project(self, y: dict) -> dict:
        return dict(zip(PLAYERS, self.sga.game.project(y["theta"], y["omega"])))

    def _observe(self, who, params, d, rate) -> None:
        """Records the move params → params − rate·d (unless ``quiet``) and reports it to an adaptive schedule
        (if the move is applied: ``adapt``)."""
        player, obs = self.sga.players[who], self.obs
        adaptive = self.adapt and isinstance(player.schedule, Adaptive)
        if self.quiet or (obs is None and not adaptive):
            return
        with torch.no_grad():
            centred = params - torch.as_tensor(player.center, dtype=params.dtype, device=params.device)
            dot, sq = (centred * d).sum(-1), (d * d).sum(-1)
        if adaptive:
            self.state["schedules"][who] = player.schedule.observe(self.state["schedules"][who], dot, sq)
        if obs is not None:
            if f"lr_{who}" not in obs:
                obs[f"lr_{who}"] = torch.zeros_like(sq) + rate.flatten() if torch.is_tensor(rate) else \
                    torch.full_like(sq, rate)
            obs[f"dot_{who}"], obs[f"sq_{who}"] = obs.get(f"dot_{who}", 0.0) + dot, obs.get(f"sq_{who}", 0.0) + sq


def train(game: Game, steps: int, **options) -> Trajectory:
    """Train ``game`` with SGA: options are SGA's fields and ``SGA.run``'s keywords.

    Args:
        game: the game trained.
        steps: the number of iterations.
        **options: ``SGA``'s fields (``lr``, ``update``, ``batch_size``, …) and ``SGA.run``'s keywords
            (``K``, ``x0``, ``seed``, ``record_every``, …).

    Returns:
        The Trajectory of ``SGA.run``.
    """
    run_keys = {"K", "x0", "seed", "streams", "record_every", "record_states", "device", "dtype",
                "progress", "metadata"}
    run_options = {k: options.pop(k) for k in list(options) if k in run_keys}
    return SGA(game, **options).run(steps, **run_options)


def _as_states(x0, streams: Streams) -> torch.Tensor:
    x0 = torch.as_tensor(x0, device=streams.device, dtype=streams.dtype)
    return x0.expand(streams.K, -1).clone() if x0.ndim == 1 else x0.clone()


class _TrainingLoop(Stepper):
    """Training as the driver's ``Stepper``: the players' parameters, the training state (optimisers, rule,
    schedules), the clock, the streams and the oracle."""

    def __init__(self, sga: SGA, x: torch.Tensor, streams: Streams, oracle: Oracle, record_states: bool):
        self.sga, self.streams, self.oracle, self.record_states = sga, streams, oracle, record_states
        self.params, self.train_state, self.t = dict(zip(PLAYERS, sga.game.split(x))), sga.init_state(x), 0.0
        self.K = streams.K

    def time(self) -> float:
        return self.t

    def state(self) -> torch.Tensor:
        return self.sga.game.join(self.params["theta"], self.params["omega"])

    def row(self) -> torch.Tensor:
        return self.state() if self.record_states else self.params["theta"][:, :0]

    def step(self, n: int, observe: bool):
        new, self.train_state, obs = self.sga.step_players(self.params, self.train_state, n, self.streams,
                                                           observe=observe, oracle=self.oracle)
        self.params, self.t = {w: v.detach() for w, v in new.items()}, self.t + self.sga.clock_step(n)
        return obs

    def observe(self, n: int) -> dict:
        """The observables of the step from x_n, which is not taken: no schedule hears of it."""
        return self.sga.step_players(self.params, self.train_state, n, self.streams, oracle=self.oracle,
                                     adapt=False)[2]

    def poison(self, runs: torch.Tensor) -> None:
        self.params = {w: v.masked_fill(runs[:, None], math.nan) for w, v in self.params.items()}

    def work(self) -> int:
        return self.K * (self.sga.game.p + self.sga.game.q) * max(1, self.sga.batch_size)

    def fingerprint(self) -> dict:
        return {"update": self.sga.rule.name, "d": self.sga.game.p + self.sga.game.q}

    def state_dict(self) -> dict:
        return {"params": self.params, "train_state": self.train_state, "t": self.t, "counter": self.streams.counter,
                "oracle": self.oracle.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.params, self.train_state, self.t = state["params"], state["train_state"], state["t"]
        self.streams.counter = state["counter"]
        self.oracle.load_state_dict(state["oracle"])
