"""Fixed-step integrators for Itô SDEs dX = f(t, X) dt + g(t, X) dW, batched over K paths.

The SDE interface is torchsde's: ``f(t, y) -> [K, d]``, ``g(t, y) -> [K, d, m]`` (any √η factor
included), ``noise_type = "general"`` (or ``"additive"``), ``sde_type = "ito"``, the dimensions
``d`` and ``m``, and ``p`` (the state splits into θ = y[:, :p] and ω = y[:, p:]); ``name`` and
``describe()`` are optional, for the metadata.

- ``integrate`` (``euler_maruyama`` for its Euler scheme): the fast path (DESIGN.md, "Performance
  model"): no Python loop over paths, Brownian increments drawn from the per-path ``Streams`` in
  blocks of ``block`` steps, one solver step (``sde.solvers``) per time step, optionally fused by
  torch.compile (a few steps to a call, laid out with the paths innermost: ``sde.layout``),
  divergence screened once per block.
- ``sdeint``: the reference path, through ``torchsde.sdeint``, with the same Trajectory layout.
- ``brownian_from_increments``: a torchsde Brownian motion made of given increments, so that
  torchsde's Euler and ``euler_maruyama`` can be compared path by path.

Time grid: t_n = n·dt, n = 0 … N with N = t_end/dt, which must be an integer (within 1e-9).
"""
from __future__ import annotations

import math
import time
import weakref
from typing import Optional

import numpy as np
import torch

from games import chunks
from games.driver import Stepper, drive, inside_bound, threads_for, threads_for_kernel
from games.execution import current
from games.errors import ConfigError, check_choice, check_int, check_positive
from games.random import Streams
from games.trajectory import Trajectory

from .layout import compile_step
from .normals import BlockNormals, ahead_fits
from .solvers import SOLVERS

NOISE_TYPES = ("general", "additive")  # both have g(t, y) of shape [K, d, m]


# -- the fused ensemble loop (the fast path) ---------------------------------------------------------
def integrate(sde, x0, t_end: float, dt: float, *, solver="euler", K: Optional[int] = None, seed: int = 0,
              streams: Optional[Streams] = None, increments: Optional[torch.Tensor] = None,
              record_every: int = 1, device="cpu", dtype=torch.float64, progress: bool = False,
              block: int = 64, compile: bool = False, metadata: Optional[dict] = None) -> Trajectory:
    """Integrate ``sde`` from ``x0`` to ``t_end`` with the fixed-step ``solver`` ("euler", "platen2" or a
    solver object of ``sde.solvers``), ΔW_n = √dt·N(0, I_m).

    ``x0`` is [d] (the same start for every path) or [K, d]. The normals come from ``streams``
    (default ``Streams.from_seed(seed, K)``), one draw of [K, block, m] per ``block`` steps (always a
    full block, so a shorter run is a prefix of a longer one). A path's numbers therefore depend
    on its seed *and on ``block``*, not on K, ``record_every`` or the number of steps: an ensemble
    of K paths equals K single paths with the same seeds exactly. ``increments`` [N, K, m], if
    given, are used as the ΔW_n instead (for pathwise comparisons; no streams are used).

    ``compile`` fuses the steps (coefficients, noise and update) and the normals' generator with
    torch.compile (one compilation per SDE object and shapes): the same numbers to rounding. A compiled
    call takes up to ``FUSED_STEPS`` steps, as many as divide both ``block`` and ``record_every``
    (``metadata['fused_steps']``).

    The loop runs under ``games.driver``: the state is recorded at t = 0, every ``record_every`` steps
    and at t_end (on the CPU). A path whose state stops being finite or leaves the driver's bound
    is reported in ``metadata['diverged']`` ({path: first step n with X_n out}) and its record is
    kept (a finite one is set to NaN at the end of its block); the run stops early once every path
    has diverged (its last row is then the state at the end of that block). Ctrl-C stops the run and
    returns what was recorded (``metadata['interrupted']`` = the step reached); checkpoints follow
    ``games.execution``, and with ``run.workers`` > 1 the paths split over processes (``games.chunks``)
    unless the SDE is not ``pathwise``. On the CPU, an ensemble larger than a tile (``run.tile``, from
    the L2 cache) advances tile after tile from one recorded or screened step to the next, to the same
    numbers (``metadata['tiles']``). When the steps leave one of the allowed CPU threads unused, a helper
    thread draws the next block's normals while this block's steps run (``sde.normals``;
    ``metadata['draws_ahead']``: its thread count), again to the same numbers.

    Args:
        sde: the Itô SDE in the torchsde interface: drift f(t, y) [K, d], diffusion g(t, y) [K, d, m]
            (or ``g_prod``), noise type "general" or "additive", and ``d``, ``m``, ``p``.
        x0: the initial state X_0, [d] or [K, d].
        t_end: the final time (t_end/dt an integer).
        dt: the step, > 0.
        solver: "euler", "platen2" or a solver object with ``step(sde, t, x, dt, dw)``.
        K: the number of paths (default: from x0, streams or increments, which must agree).
        seed: the seed of the default streams.
        streams: the per-path streams of the normals (its device and dtype are the run's).
        increments: given Brownian increments ΔW_n, [N, K, m] (instead of streams).
        record_every: record the state every that many steps (and at t_end).
        device: the device of the state (without streams).
        dtype: the dtype of the state (without streams).
        progress: show a progress bar.
        block: steps per draw of normals and per divergence screen (part of a path's noise).
        compile: fuse the steps with torch.compile.
        metadata: extra entries for the Trajectory's metadata.

    Returns:
        The Trajectory: times n·dt of the recorded steps [T] and states [T, K, d] (θ = the first p
        coordinates), with metadata (method, SDE, steps, seeds, ``diverged``, ``interrupted`` …).
    """
    _check_sde(sde)
    solver = _solver(solver)
    N = _steps(t_end, dt)
    record_every = check_int("record_every", record_every)
    block = check_int("block", block)
    if increments is not None:
        if streams is not None:
            raise ConfigError("increments", "give either increments or streams, not both")
        increments = torch.as_tensor(increments, device=device, dtype=dtype)
        if increments.ndim != 3 or increments.shape[0] != N or increments.shape[2] != sde.m:
            raise ConfigError("increments", f"expected [N={N}, K, m={sde.m}], got {tuple(increments.shape)}")
        K = _paths(K, x0, increments.shape[1])
    elif streams is not None:
        K, device, dtype = _paths(K, x0, streams.K), streams.device, streams.dtype
    else:
        K = _paths(K, x0)
        streams = Streams.from_seed(seed, K, device=device, dtype=dtype)
    x = _initial(x0, K, sde.d, device, dtype)
    meta = {"method": solver.name, "sde": _describe(sde), "t_end": float(t_end), "dt": float(dt),
            "steps": N, "record_every": record_every, "block": block, "compiled": bool(compile),
            "noise": "increments" if increments is not None else "streams",
            "seeds": streams.seeds.tolist() if streams is not None and K <= 64 else None,
            "versions": {"torch": torch.__version__}, **(metadata or {})}
    if chunks.splits(K) and _pathwise(sde):
        def job(index, *chunk_streams):
            chunk = increments[:, index] if increments is not None else None
            return integrate(sde, x[index], t_end, dt, solver=solver, streams=chunk_streams[0] if chunk_streams else None,
                             increments=chunk, record_every=record_every, device=device, dtype=dtype,
                             block=block, compile=compile, metadata=metadata)
        return chunks.run_split(job, K, [streams] if streams is not None else [], Trajectory.join_runs)
    tiles = chunks.tiles(K, x.element_size() * (sde.d + sde.m), device) if _pathwise(sde) else 1
    loop = _SDELoop(sde, solver, x, dt, streams, increments, block, compile, N, record_every, tiles)
    outcome = drive(loop, N, record_every=record_every, progress=progress, desc="sde",
                    stop_when_dead=not chunks.inside())
    return outcome.trajectory(sde.p, {**meta, "fused_steps": loop.fuse, "tiles": len(loop.tiles),
                                      "draws_ahead": 0 if increments is not None else loop.normals.ahead,
                                      **outcome.metadata(), **(metadata or {})})


class _SDELoop(Stepper):
    """The fused ensemble loop as the driver's ``Stepper``: one solver step per time step on normals drawn
    in blocks of ``block`` steps (or on given increments), screened once per block.

    The driver reads the state only at recorded and screened steps; between two of them the loop
    advances one tile of runs (``games.chunks.tiles``) after another through all the steps, each tile
    on its own normals (its runs' streams, the same numbers as the whole ensemble's), up to ``fuse``
    steps to a compiled call."""

    observes = False

    def __init__(self, sde, solver, x, dt: float, streams: Optional[Streams], increments, block: int, compile: bool,
                 steps: int, record_every: int, tiles: int = 1):
        self.sde, self.dt, self.streams, self.increments, self.compile = sde, dt, streams, increments, compile
        self.K, self.n, self.block, self.screen_every = x.shape[0], 0, block, block
        self.x = self.x_start = _layout(x, compile)
        self.steps, self.record_every, self.ready = steps, record_every, 0  # x is x_ready (ready ≥ n)
        self.tiles = chunks.chunk_slices(self.K, tiles)
        self.tile_runs = max(tile.stop - tile.start for tile in self.tiles)  # the most runs one call advances
        # a compiled call takes ``fuse`` steps: they end on every screened and every recorded step
        self.fuse = math.gcd(FUSED_STEPS, block, record_every) if compile else 1
        scale = torch.tensor(1.0 if increments is not None else math.sqrt(dt), dtype=x.dtype, device=x.device)
        self._single, self._fused = {}, {}
        for size in {tile.stop - tile.start for tile in self.tiles}:  # compiled when first called
            single = _compiled_steps(solver, sde, size, 1) if compile else _scaled_steps(solver, sde, 1)
            fused = _compiled_steps(solver, sde, size, self.fuse) if self.fuse > 1 else None
            self._single[size] = lambda t, y, z, single=single: single(t, y, dt, z, scale)  # ΔW = scale·z
            self._fused[size] = None if fused is None else lambda t, y, z, fused=fused: fused(t, y, dt, z, scale)
        if increments is None:
            self.counter = streams.counter  # before the current block's draw
            draw_threads = threads_for_kernel(self.tile_runs * block * sde.m)  # one tile's draw is one call
            self.normals = BlockNormals(streams, self.tiles, block, sde.m, paths_inner=compile, compiled=compile or None,
                                        draw_threads=draw_threads, ahead=_ahead_threads(streams, block, sde.m, self.work(),
                                                                                        draw_threads))
        self.dw = None

    def time(self) -> float:
        return self.n * self.dt

    def state(self) -> torch.Tensor:
        return self.x

    def step(self, n: int, observe: bool):
        j = n % self.block
        if j == 0:
            self.x_start = self.x
            self._draw(n)
        if n == self.ready:  # on to the next step the driver reads
            stop = min(self.steps, (n // self.record_every + 1) * self.record_every, n - j + self.block)
            self.x, self.ready = self._advanced(self.x, n, stop), stop
        self.n = n + 1

    def _advanced(self, x: torch.Tensor, n: int, stop: int) -> torch.Tensor:
        """x_stop from x_n (n and stop in one block), tile after tile."""
        if len(self.tiles) == 1:
            return self._advanced_tile(0, x, n, stop)
        out = torch.empty_like(x)
        for i, tile in enumerate(self.tiles):
            out[tile] = self._advanced_tile(i, _layout(x[tile], self.compile), n, stop)
        return out

    def _advanced_tile(self, i: int, x: torch.Tensor, n: int, stop: int) -> torch.Tensor:
        """Tile i's x_stop from its x_n: ``fuse`` steps to a call where they fit, else one."""
        single, fused, dw = self._single[x.shape[0]], self._fused[x.shape[0]], self.dw[i]
        while n < stop:
            j = n % self.block
            if fused is not None and j % self.fuse == 0 and n + self.fuse <= stop:
                x, n = fused(self.clock[j : j + self.fuse], x, dw[j : j + self.fuse]), n + self.fuse
            else:
                x, n = single(self.clock[j], x, dw[j]), n + 1
        return x

    def _draw(self, n: int) -> None:
        """Each tile's block of increments that starts at step n, [nb, K_tile, m], and the times t_n … t_{n+nb−1}."""
        self.clock = _clock(range(n, n + self.block), self.dt, self.x)
        if self.increments is not None:
            self.dw = [self.increments[n : n + self.block, tile] for tile in self.tiles]
            return
        self.counter = self.streams.counter
        self.dw = self.normals.draw(self.counter, more=n + self.block < self.steps)
        self.streams.counter = self.counter + 1  # past the block, as one draw of the whole ensemble leaves it

    def first_steps(self, bad, n_from: int, n_to: int, bound: torch.Tensor) -> dict:
        """Replays the block from its start, tile by tile (the whole tile: f and g may depend on its runs),
        one step at a time with the same increments, to find each run's first step out of bounds."""
        found = {}
        for i, tile in enumerate(self.tiles):
            pending = set(torch.nonzero(bad[tile]).flatten().tolist())  # the tile's own indices
            y, single = _layout(self.x_start[tile], self.compile), self._single[tile.stop - tile.start]
            for n in range(n_from, n_to):
                if not pending:
                    break
                y = single(self.clock[n % self.block], y, self.dw[i][n % self.block])
                out = set(torch.nonzero(~inside_bound(y.abs().amax(dim=-1), bound[tile].to(y.device))).flatten().tolist())
                found.update({tile.start + run: n + 1 for run in pending & out})
                pending -= out
            found.update({tile.start + run: n_to for run in pending})  # not reproduced: a non-deterministic f or g
        return found

    def poison(self, runs: torch.Tensor) -> None:
        self.x.masked_fill_(runs[:, None], math.nan)

    def work(self) -> int:
        return self.tile_runs * (self.sde.d + self.sde.m)  # one call's: a tile's

    def fingerprint(self) -> dict:
        return {"d": self.sde.d, "m": self.sde.m, "dt": self.dt, "block": self.block}

    def state_dict(self) -> dict:
        counter = None if self.streams is None else self.counter if self.n % self.block else self.streams.counter
        return {"x": self.x, "n": self.n, "counter": counter}

    def load_state_dict(self, state: dict) -> None:
        self.x = self.x_start = _layout(state["x"].to(self.x.device), self.compile)
        self.n = self.ready = state["n"]
        if self.streams is not None:
            self.streams.counter = self.counter = state["counter"]
        if self.n % self.block:  # within a block (a finished loop): its increments, and the streams past them
            self._draw(self.n - self.n % self.block)


def euler_maruyama(sde, x0, t_end: float, dt: float, **options) -> Trajectory:
    """``integrate`` with the Euler–Maruyama scheme.

    Args:
        sde: the Itô SDE (torchsde interface; see ``integrate``).
        x0: the initial state, [d] or [K, d].
        t_end: the final time (t_end/dt an integer).
        dt: the step, > 0.
        **options: the other keywords of ``integrate`` (K, seed, streams, increments, record_every…).

    Returns:
        The Trajectory of ``integrate``, states [T, K, d].
    """
    return integrate(sde, x0, t_end, dt, solver="euler", **options)


def _solver(solver):
    if isinstance(solver, str):
        return SOLVERS[check_choice("solver", solver, tuple(SOLVERS))]()
    if not hasattr(solver, "step"):
        raise ConfigError("solver", f"expected one of {', '.join(SOLVERS)} or an object with step(); got {solver!r}")
    return solver


def _layout(x: torch.Tensor, paths_inner: bool) -> torch.Tensor:
    """The state x [K, d], stored (``paths_inner``, for compiled steps) with the paths as the innermost
    dimension, so that the fused kernels vectorise over paths rather than over the few coordinates."""
    return x.t().contiguous().t() if paths_inner else x


def _ahead_threads(streams: Streams, block: int, m: int, work: int, draw_threads: int) -> int:
    """torch's threads for a helper thread that draws the next block while the steps run (0: none): on a CPU,
    those of the allowed threads (``run.threads``, else torch's) that the steps leave unused, at most as many
    as a draw takes (``threads_for_kernel``: one for a short one), where a second block of normals fits."""
    spare = (current().threads or torch.get_num_threads()) - threads_for(work)
    if streams.device.type != "cpu" or spare < 1 or not ahead_fits(streams, block, m):
        return 0
    return min(spare, draw_threads)


def _clock(steps: range, dt: float, like: torch.Tensor) -> torch.Tensor:
    """t_n = n·dt for the steps n, a tensor whose entries the steps take (tensors, so that a compiled step
    is not specialised to each t; one tensor for a block, as making one costs more than indexing)."""
    return torch.tensor([n * dt for n in steps], dtype=like.dtype, device=like.device)


def _scaled_steps(solver, sde, count: int):
    """(t, x, dt, z, scale) ↦ x after ``count`` steps of solver.step(sde, t_i, x, dt, scale·z_i), on unscaled
    normals z (so that a compiled step reads them where the generator left them and scales them in its
    own kernel): for count = 1 one step at the 0-dim t on z [K, m], else steps at t [count] on z [count, K, m]."""
    def step(t, x, dt, z, scale):
        return solver.step(sde, t, x, dt, z.to(x.dtype) * scale)

    def steps(t, x, dt, z, scale):
        for i in range(count):
            x = step(t[i], x, dt, z[i], scale)
        return x
    return step if count == 1 else steps


def _compiled_steps(solver, sde, K: int, count: int):
    """``_scaled_steps`` for ``sde``, K paths and ``count`` steps, compiled as one call with static shapes and
    the paths innermost (``sde.layout.compile_step``); cached while ``sde`` lives."""
    cache = _COMPILED.setdefault(sde, {})
    key = (type(solver), K, count)
    if key not in cache:
        cache[key] = compile_step(_scaled_steps(solver, sde, count), K, STEP_OPTIONS)
    return cache[key]


_COMPILED = weakref.WeakKeyDictionary()
STEP_OPTIONS = {}  # inductor's configuration for compiled steps
FUSED_STEPS = 8  # steps per compiled call, at most: each call has a fixed cost (bench/sde_throughput.py)


# -- torchsde (the reference path) --------------------------------------------------------------------
def sdeint(sde, x0, t_end: float, dt: float, *, method: str = "euler", K: Optional[int] = None,
           seed: int = 0, record_every: int = 1, bm=None, increments: Optional[torch.Tensor] = None,
           device="cpu", dtype=torch.float64, metadata: Optional[dict] = None, **kwargs) -> Trajectory:
    """``torchsde.sdeint(sde, x0, ts, bm=bm, method=method, dt=dt, **kwargs)`` on the record grid.

    The Trajectory has the layout of ``euler_maruyama``'s: times n·dt for the recorded steps n.
    The Brownian motion is ``bm``, else one made of ``increments`` [N, K, m]
    (``brownian_from_increments``), else torchsde's ``BrownianInterval`` with ``entropy=seed``
    (its numbers are torchsde's, not the Streams'). The times handed to torchsde are the running
    sums 0, dt, dt + dt, … in the state's dtype, the clock torchsde's fixed-step loop keeps, so
    that it lands on every recorded time without a sliver step. Divergence is reported after the
    fact at the resolution of the record: {path: first recorded step whose state is non-finite}.

    Args:
        sde: the Itô SDE in the torchsde interface (f [K, d], g [K, d, m], ``d``, ``m``, ``p``).
        x0: the initial state X_0, [d] or [K, d].
        t_end: the final time (t_end/dt an integer).
        dt: the fixed step, > 0.
        method: torchsde's solver for the noise type (e.g. "euler").
        K: the number of paths (default: from x0 or the Brownian motion).
        seed: the entropy of torchsde's ``BrownianInterval`` (without bm or increments).
        record_every: record the state every that many steps (and at t_end).
        bm: a torchsde Brownian motion of shape [K, m].
        increments: given Brownian increments ΔW_n, [N, K, m] (instead of bm).
        device: the device of the state.
        dtype: the dtype of the state.
        metadata: extra entries for the Trajectory's metadata.
        **kwargs: further keywords of ``torchsde.sdeint`` (adaptive, rtol, …).

    Returns:
        The Trajectory: times n·dt of the recorded steps [T] and states [T, K, d], with metadata.
    """
    import torchsde

    _check_sde(sde)
    N = _steps(t_end, dt)
    record_every = check_int("record_every", record_every)
    if increments is not None:
        if bm is not None:
            raise ConfigError("increments", "give either increments or bm, not both")
        bm = brownian_from_increments(torch.as_tensor(increments, device=device, dtype=dtype), dt)
    K = _paths(K, x0, bm.shape[0] if bm is not None else None)
    x = _initial(x0, K, sde.d, device, dtype)
    steps = _record_steps(N, record_every)
    start = time.perf_counter()
    if N == 0:
        ys = x[None]
    else:
        clock = np.add.accumulate(np.concatenate([[0.0], np.full(N, dt)]).astype(_np_dtype(dtype)))
        ts = torch.as_tensor(clock[steps], dtype=dtype, device=device)
        if bm is None:
            levy = {"srk": "space-time", "log_ode": "foster"}.get(method, "none")
            bm = torchsde.BrownianInterval(t0=float(ts[0]), t1=float(ts[-1]), size=(K, sde.m), dtype=dtype,
                                           device=device, entropy=seed, dt=dt, levy_area_approximation=levy)
        ys = torchsde.sdeint(sde, x, ts, bm=bm, method=method, dt=dt, **kwargs)
        ys = ys[0] if isinstance(ys, tuple) else ys
    ys = ys.detach().cpu()
    finite = torch.isfinite(ys).all(dim=-1)  # [R, K]
    diverged = {run: steps[int(torch.nonzero(~finite[:, run])[0])]
                for run in torch.nonzero(~finite.all(dim=0)).flatten().tolist()}
    meta = {"method": f"torchsde-{method}", "sde": _describe(sde), "t_end": float(t_end), "dt": float(dt),
            "steps": N, "record_every": record_every, "noise": repr(bm) if N else None,
            "seed": seed if increments is None else None, "diverged": diverged, "interrupted": None,
            "wall_time_s": time.perf_counter() - start,
            "versions": {"torch": torch.__version__, "torchsde": torchsde.__version__},
            **(metadata or {})}
    times = torch.tensor(steps, dtype=torch.float64) * dt
    return Trajectory(times, ys, sde.p, {}, meta)


def brownian_from_increments(increments: torch.Tensor, dt: float, t0: float = 0.0):
    """A torchsde Brownian motion whose increments over [t0 + n·dt, t0 + (n+1)·dt] are increments[n].

    Args:
        increments: the Brownian increments ΔW_n, [N, K, m].
        dt: the grid's step, > 0.
        t0: the grid's start.

    Returns:
        A ``torchsde.BaseBrownian`` W of shape [K, m] on the times t0 + n·dt, n = 0 … N (queries off
        the grid raise), without Lévy area.
    """
    from torchsde import BaseBrownian

    class IncrementBrownian(BaseBrownian):
        """W on the grid t0 + n·dt from given increments [N, K, m]; queries off the grid are errors.

        A one-step query returns increments[n] itself (bit for bit); longer ones a difference of
        running sums. No Lévy area (``levy_area_approximation = "none"``).
        """

        def __init__(self, increments, dt, t0):
            self.increments, self.dt, self.t0 = increments, float(dt), float(t0)
            self._W = None

        def _index(self, t) -> int:
            s = (float(t) - self.t0) / self.dt
            n = round(s)
            if abs(s - n) > 1e-3 or not 0 <= n <= self.increments.shape[0]:
                raise ValueError(f"time {float(t)!r} is not on the grid t0 + n·dt "
                                 f"(t0={self.t0}, dt={self.dt}, n = 0 … {self.increments.shape[0]})")
            return n

        def __call__(self, ta, tb=None, return_U=False, return_A=False):
            if return_U or return_A:
                raise ValueError("brownian_from_increments has no Lévy area (levy_area_approximation='none')")
            if tb is None:
                ta, tb = self.t0, ta
            a, b = self._index(ta), self._index(tb)
            if b == a + 1:
                return self.increments[a]
            if self._W is None:
                zero = torch.zeros_like(self.increments[:1])
                self._W = torch.cat([zero, self.increments.cumsum(dim=0)])
            return self._W[b] - self._W[a]

        def __repr__(self):
            N, K, m = self.increments.shape
            return f"IncrementBrownian(N={N}, K={K}, m={m}, dt={self.dt}, t0={self.t0})"

        @property
        def dtype(self):
            return self.increments.dtype

        @property
        def device(self):
            return self.increments.device

        @property
        def shape(self):
            return self.increments.shape[1:]

        @property
        def levy_area_approximation(self):
            return "none"

    increments = torch.as_tensor(increments)
    if increments.ndim != 3:
        raise ConfigError("increments", f"expected [N, K, m], got {tuple(increments.shape)}")
    check_positive("dt", dt)
    return IncrementBrownian(increments, dt, t0)


# -- shared helpers -----------------------------------------------------------------------------------
def _check_sde(sde) -> None:
    for attr in ("f", "g", "noise_type", "sde_type", "d", "m", "p"):
        if not hasattr(sde, attr):
            raise ConfigError("sde", f"an SDE needs f, g, noise_type, sde_type, d, m and p; {attr!r} is missing")
    if sde.sde_type != "ito":
        raise ConfigError("sde.sde_type", f"expected 'ito', got {sde.sde_type!r}")
    if sde.noise_type not in NOISE_TYPES:
        raise ConfigError("sde.noise_type", f"expected one of {', '.join(NOISE_TYPES)}, got {sde.noise_type!r}")


def _steps(t_end, dt) -> int:
    """N = t_end/dt, which must be an integer within 1e-9."""
    dt = check_positive("dt", dt)
    t_end = check_positive("t_end", t_end, allow_zero=True)
    ratio = t_end / dt
    N = round(ratio)
    if abs(ratio - N) > 1e-9:
        raise ConfigError("dt", f"t_end/dt = {t_end}/{dt} = {ratio!r} must be an integer (within 1e-9)")
    return N


def _record_steps(N: int, record_every: int) -> list:
    steps = list(range(0, N + 1, record_every))
    return steps if steps[-1] == N else steps + [N]


def _paths(K, x0, *others) -> int:
    """The ensemble size: K if given, else from x0 [K, d] or the noise source; they must agree."""
    sizes = [("K", K)] if K is not None else []
    shape = getattr(x0, "shape", None) if torch.is_tensor(x0) else np.shape(x0)
    if len(shape) == 2:
        sizes.append(("x0", shape[0]))
    sizes += [("noise", k) for k in others if k is not None]
    if not sizes:
        return 1
    if len({int(k) for _, k in sizes}) > 1:
        raise ConfigError("K", "inconsistent numbers of paths: " + ", ".join(f"{n}: {k}" for n, k in sizes))
    return check_int("K", sizes[0][1])


def _initial(x0, K, d, device, dtype) -> torch.Tensor:
    x0 = torch.as_tensor(x0, device=device, dtype=dtype)
    if x0.shape[-1:] != (d,) or x0.ndim not in (1, 2):
        raise ConfigError("x0", f"expected [d={d}] or [K, d={d}], got {tuple(x0.shape)}")
    return x0.expand(K, d).clone() if x0.ndim == 1 else x0.clone()


def _pathwise(sde) -> bool:
    """Whether each path of ``sde`` moves by its own state and noise alone (its ``pathwise``, else its game's;
    default yes), so that paths split into chunks."""
    return getattr(sde, "pathwise", getattr(getattr(sde, "game", None), "pathwise", True))


def _np_dtype(dtype):
    return {torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16}[dtype]


def _describe(sde) -> dict:
    if hasattr(sde, "describe"):
        return sde.describe()
    return {"name": getattr(sde, "name", type(sde).__name__), "d": sde.d, "m": sde.m, "p": sde.p}
