"""Discrete stochastic gradient training of a two-player game (SGA), batched over K runs.

Update rules (THEORY §1), with η_θ = c_θ η_k and η_ω = c_ω η_k:
- ``sim``:   x' = x − (η_θ d_θ(x), η_ω d_ω(x));
- ``alt-d``: n_d discriminator steps ω ← ω − η_ω d_ω(θ, ω), then θ' = θ − η_θ d_θ(θ, ω');
- ``alt-g``: the mirror image, the generator first.
d is the direction the player's optimiser makes of its minibatch gradient (plus weight decay).
Minibatches are ``fresh`` (one per gradient evaluation) or ``shared`` (one per iteration).
An iteration advances the clock t by the reference rate η_k.
SVAG (``svag`` = l > 1; Li, Malladi & Arora 2021) evaluates each gradient on two independent minibatches,
g = a₊∇L(γ₁) + a₋∇L(γ₂) (same mean, l× the noise covariance), at rate η/l and clock step η_k/l: as l → ∞
the chain tends weakly to SME-1 at rate η. A schedule η(k) indexes plain iterations: iteration k uses η(k // l)/l.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import torch

from .base import PLAYERS, Game
from .errors import ConfigError, check_choice, check_int, check_positive
from .optim import Optimizer, make_optimizer
from .random import Streams
from .schedules import Adaptive, Schedule, as_schedule
from .trajectory import Trajectory

UPDATES = ("sim", "alt-d", "alt-g")


@dataclass(frozen=True)
class Player:
    """One player's optimiser, rate scale c (η_player = c·η_k) and weight decay (added to the gradient).

    ``center`` c₀ is the point the FDR observable (θ − c₀)·d is taken about: 2E[(θ − c₀)·d] = ηE|d|²
    holds at stationarity for every constant c₀ (THEORY §4), and c₀ near the stationary mean makes
    it far less noisy than c₀ = 0.
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
    """Stochastic gradient training of ``game``; ``step`` is the one-iteration update map."""

    game: Game
    lr: Union[float, Schedule, Callable[[int], float]] = 0.05
    update: str = "sim"
    n_d: int = 1
    batch_size: int = 1
    shared_batch: bool = False
    gen: Player = field(default_factory=Player)
    disc: Player = field(default_factory=Player)
    compile: bool = False  # torch.compile the players' losses (their backward too); pays off on long runs
    svag: int = 1  # l of SVAG (see the module docstring); 1 is plain training

    def __post_init__(self):
        check_choice("sga.update", self.update, UPDATES)
        self.n_d = check_int("sga.n_d", self.n_d)
        if self.update == "sim" and self.n_d > 1:
            raise ConfigError("sga.n_d", "n_d > 1 needs alternating updates (sga.update = alt-d or alt-g)")
        self.batch_size = check_int("sga.batch_size", self.batch_size)
        self.svag = check_int("sga.svag", self.svag)
        if isinstance(self.lr, (int, float)):
            check_positive("sga.lr", self.lr)
        for name, player in (("gen", self.gen), ("disc", self.disc)):
            check_positive(f"sga.{name}.scale", player.scale)
            check_positive(f"sga.{name}.weight_decay", player.weight_decay, allow_zero=True)
            if isinstance(player.schedule, Adaptive) and self.svag != 1:
                raise ConfigError("sga.svag", f"an adaptive schedule (sga.{name}) needs plain updates (svag = 1)")
        self.schedule = as_schedule(self.lr)
        self.players = {"theta": self.gen, "omega": self.disc}
        self.optimizers = {w: p.make_optimizer(f"sga.{n}") for w, p, n in
                           (("theta", self.gen, "gen"), ("omega", self.disc, "disc"))}
        self._player_losses = torch.compile(self.game.player_losses) if self.compile else None

    def _grads(self, params: dict, batch, players=PLAYERS):
        """The requested players' loss gradients and losses at ``params``; under SVAG ``batch`` is a pair
        and each is ``svag_combine`` of the pair's (the loss is then the one whose gradient is applied)."""
        theta, omega = params["theta"], params["omega"]
        if self.svag == 1:
            return self.game.player_grads(theta, omega, batch, players, self._player_losses)
        pair = [self.game.player_grads(theta, omega, b, players, self._player_losses) for b in batch]
        return tuple({w: svag_combine(self.svag, first[w], second[w]) for w in players}
                     for first, second in zip(*pair))  # (grads, losses)

    # -- the update map -----------------------------------------------------------------------
    def rate(self, who: str, k: int, state: Optional[dict] = None):
        """η_player at iteration k (under SVAG η_player(k // l)/l): a float, or per-run rates [K] from a
        per-run (``schedules.Table``) or adaptive schedule, the latter read off the training ``state``."""
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
                "count": {"theta": 0, "omega": 0}, "schedules": schedules}

    def step(self, x: torch.Tensor, state: dict, k: int, streams: Streams):
        """One iteration x_k → x_{k+1}: returns (x', state', observables {name: [K]})."""
        params, state, obs = self.step_players(dict(zip(PLAYERS, self.game.split(x))), state, k, streams)
        return self.game.join(params["theta"], params["omega"]), state, obs

    def substeps(self) -> list:
        """The players each sub-step of an iteration updates, in order; the players of one sub-step
        move from the same point (sim: one sub-step of both; alt-d: n_d of ω, then θ; alt-g: mirrored)."""
        if self.update == "sim":
            return [PLAYERS]
        order = [("omega",)] * self.n_d + [("theta",)]
        return order if self.update == "alt-d" else order[::-1]

    def step_players(self, params: dict, state: dict, k: int, streams: Streams, observe: bool = True):
        """``step`` on the players' parameters {"theta": [K, p], "omega": [K, q]}; the observables
        are computed only if ``observe``."""
        draw = self._batches(params["theta"].shape[0], streams)
        state = {**state, "count": dict(state["count"]), "schedules": dict(state["schedules"])}
        obs = {} if observe else None
        if self.update == "sim":
            grads, losses = self._simultaneous_grads(params, draw)
            new = {who: self._apply(who, params[who], grads[who], losses[who], state, k, obs)
                   for who in PLAYERS}
            return dict(zip(PLAYERS, self.game.project(new["theta"], new["omega"]))), state, obs
        for (who,) in self.substeps():
            grads, losses = self._grads(params, draw(), (who,))
            params = {**params, who: self._apply(who, params[who], grads[who], losses[who], state, k, obs)}
            params = dict(zip(PLAYERS, self.game.project(params["theta"], params["omega"])))
        return params, state, obs

    def _batches(self, K: int, streams: Streams):
        """A function giving the batch of the next gradient evaluation (shared: the same each time);
        under SVAG a pair of independent batches."""
        def one():
            return self.game.sample(K, self.batch_size, streams)

        sample = one if self.svag == 1 else lambda: (one(), one())
        if self.shared_batch:
            batch = sample()
            return lambda: batch
        return sample

    def _simultaneous_grads(self, params, draw):
        """Both players' gradients at x_k: from one batch (shared) or one batch each (fresh)."""
        if self.shared_batch:
            return self._grads(params, draw())
        grads, losses = {}, {}
        for who in PLAYERS:
            g, l = self._grads(params, draw(), (who,))
            grads.update(g)
            losses.update(l)
        return grads, losses

    def _apply(self, who, params, grad, loss, state, k, obs):
        """params − η d for one player; records loss, |∇L|, the rate, (params − c₀)·d and |d|² (summed
        over sub-steps), and reports the last two to an adaptive schedule."""
        player, rate = self.players[who], self._rate_for(who, k, state, params)
        grad = grad + player.weight_decay * params if player.weight_decay else grad
        d, state[who] = self.optimizers[who].direction(grad, state[who], state["count"][who])
        state["count"][who] += 1
        adaptive = isinstance(player.schedule, Adaptive)
        if obs is not None or adaptive:
            with torch.no_grad():
                centred = params - torch.as_tensor(player.center, dtype=params.dtype, device=params.device)
                dot, sq = (centred * d).sum(-1), (d * d).sum(-1)
            if adaptive:
                state["schedules"][who] = player.schedule.observe(state["schedules"][who], dot, sq)
        if obs is not None:
            if f"loss_{who}" not in obs:
                obs[f"loss_{who}"], obs[f"grad_norm_{who}"] = loss.detach(), grad.detach().norm(dim=-1)
                obs[f"lr_{who}"] = torch.zeros_like(sq) + rate.flatten() if torch.is_tensor(rate) else \
                    torch.full_like(sq, rate)
            obs[f"dot_{who}"], obs[f"sq_{who}"] = obs.get(f"dot_{who}", 0.0) + dot, obs.get(f"sq_{who}", 0.0) + sq
        return params - rate * d

    def _rate_for(self, who: str, k: int, state: dict, params: torch.Tensor):
        """``rate`` as a float or a [K, 1] column on params' device, checked against the number of runs."""
        rate = self.rate(who, k, state)
        if not torch.is_tensor(rate):
            return rate
        if rate.shape != params.shape[:1]:
            raise ConfigError(f"sga.{'gen' if who == 'theta' else 'disc'}.schedule",
                              f"gives {rate.numel()} per-run rates for K = {params.shape[0]} runs")
        return rate.to(device=params.device, dtype=params.dtype)[:, None]

    # -- running an ensemble --------------------------------------------------------------------
    def run(self, steps: int, *, K: Optional[int] = None, x0=None, seed: int = 0,
            streams: Optional[Streams] = None, record_every: int = 1, record_states: bool = True,
            device="cpu", dtype=torch.float64, progress: bool = False, metadata: Optional[dict] = None
            ) -> Trajectory:
        """Train K runs (default: one per row of x0 [K, d]) for ``steps`` iterations, recording every
        ``record_every`` and at the end.

        Each row of the record holds x_k and the observables of the step taken from x_k. A run whose
        state stops being finite is reported in ``metadata['diverged']`` ({run: step}); its record up
        to then is kept. Ctrl-C stops the run and returns what was recorded.
        """
        steps = check_int("sga.steps", steps, minimum=0)
        record_every = check_int("run.record_every", record_every)
        if K is None and x0 is not None and torch.as_tensor(x0).ndim == 2:
            K = len(x0)  # one run per initial state
        streams = streams or Streams.from_seed(seed, check_int("run.paths", K), device=device, dtype=dtype)
        x = self.game.init(streams.K, streams) if x0 is None else _as_states(x0, streams)
        params, state, t = dict(zip(PLAYERS, self.game.split(x))), self.init_state(x), 0.0
        recorder = _Recorder(self.game, record_states)
        alive, diverged, interrupted = torch.ones(streams.K, dtype=torch.bool, device=x.device), {}, None
        bar, start = _progress(steps, progress), time.perf_counter()
        try:
            for k in range(steps + 1):
                record = k % record_every == 0 or k == steps
                new, state, obs = self.step_players(params, state, k, streams, observe=record)
                if record:
                    recorder.add(t, params, obs)
                if k == steps:
                    break
                params, t = {w: v.detach() for w, v in new.items()}, t + self.clock_step(k)
                alive = _check_finite(params, alive, k + 1, diverged)
                if not alive.any():
                    recorder.add(t, params, {n: torch.full_like(v, math.nan) for n, v in recorder.last.items()})
                    break
                bar.update(1)
        except KeyboardInterrupt:
            interrupted = k
        finally:
            bar.close()
        meta = {**self.describe(), "seeds": streams.seeds.tolist() if streams.K <= 64 else None,
                "steps": steps, "record_every": record_every, "diverged": diverged,
                "interrupted": interrupted, "wall_time_s": time.perf_counter() - start,
                "schedules": {w: self.players[w].schedule.decisions(s) for w, s in state["schedules"].items()},
                **(metadata or {})}
        return recorder.trajectory(meta)

    def describe(self) -> dict:
        """The training set-up, for a Trajectory's metadata."""
        return {"method": "sga", "game": self.game.describe(), "update": self.update, "n_d": self.n_d,
                "batch_size": self.batch_size, "shared_batch": self.shared_batch, "svag": self.svag,
                "compile": self.compile, "versions": {"torch": torch.__version__}}


def train(game: Game, steps: int, **options) -> Trajectory:
    """Train ``game`` with SGA: options are SGA's fields and ``SGA.run``'s keywords."""
    run_keys = {"K", "x0", "seed", "streams", "record_every", "record_states", "device", "dtype",
                "progress", "metadata"}
    run_options = {k: options.pop(k) for k in list(options) if k in run_keys}
    return SGA(game, **options).run(steps, **run_options)


def svag_combine(l: int, first, second):
    """SVAG's a₊·first + a₋·second, a± = (1 ± √(2l − 1))/2 (Li, Malladi & Arora 2021, arXiv:2102.12470)."""
    root = math.sqrt(2 * l - 1)
    return (1 + root) / 2 * first + (1 - root) / 2 * second


def _as_states(x0, streams: Streams) -> torch.Tensor:
    x0 = torch.as_tensor(x0, device=streams.device, dtype=streams.dtype)
    return x0.expand(streams.K, -1).clone() if x0.ndim == 1 else x0.clone()


def _check_finite(params: dict, alive, step, diverged) -> torch.Tensor:
    """Mark runs whose state just stopped being finite; ``diverged`` maps run → first bad step.

    A row sum is non-finite whenever an entry is (and, rarely, when finite entries overflow it), so
    it screens in one pass; the entrywise test decides.
    """
    if all(torch.isfinite(v.sum(dim=-1)).all() for v in params.values()):
        return alive
    now = torch.stack([torch.isfinite(v).all(dim=-1) for v in params.values()]).all(dim=0)
    for run in torch.nonzero(alive & ~now).flatten().tolist():
        diverged[run] = step
    return alive & now


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="training", unit="step", leave=False)


class _Recorder:
    """Collects rows of the record on the CPU."""

    def __init__(self, game: Game, record_states: bool):
        self.game, self.record_states = game, record_states
        self.times, self.states, self.obs = [], [], {}

    def add(self, t, params: dict, obs):
        self.times.append(t)
        x = self.game.join(params["theta"], params["omega"]) if self.record_states else params["theta"][:, :0]
        self.states.append(x.detach().cpu())
        for name, v in obs.items():
            self.obs.setdefault(name, []).append(torch.as_tensor(v).detach().cpu())
        self.last = obs

    def trajectory(self, metadata: dict) -> Trajectory:
        states = torch.stack(self.states)
        obs = {n: torch.stack(v) for n, v in self.obs.items()}
        meta = {**metadata, "states_recorded": self.record_states}
        return Trajectory(torch.tensor(self.times, dtype=torch.float64), states,
                          self.game.p if self.record_states else 0, obs, meta)
