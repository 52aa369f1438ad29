"""The one stepping loop every simulator runs under (DESIGN.md, "Performance model").

A simulator is a ``Stepper``: it holds an ensemble's state and takes one step at a time. ``drive`` does
everything around the steps, once for every simulator:

- the record: row n holds t_n, x_n and the observables of step n (taken from x_n), every
  ``record_every`` steps and at the last step;
- divergence: every ``screen_every`` steps (the stepper's), a run whose state is non-finite or beyond
  its bound max_i |x_i| > blowup · max(1, max_i |x_{0,i}|) (``games.execution``; the run's own start) is
  marked diverged at its first such step; a finite run beyond the bound is set to NaN, so that it drops out of every ensemble mean
  (``analysis.compare`` leaves non-finite runs out). Once every run has diverged the loop stops, with a
  last row of that step;
- Ctrl-C: the loop stops and returns what it recorded, ``interrupted`` = the step it was taking;
- checkpoints (``games.checkpoint``): saves every ``checkpoints.every`` seconds at a screening step
  and at the end, and a loop that finds its checkpoint goes on from it, to the same bits;
- torch's thread count for the loop (``threads_for``) and the progress bar.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Optional

import torch

from .execution import current
from .trajectory import Trajectory

SMALL_WORK = 1 << 17  # numbers touched per step below which a second intra-op thread costs more than it gains
LONG_KERNEL = 1 << 22  # numbers in one kernel call from which more threads hold up under load (threads_for_kernel)


class Stepper:
    """A simulator's ensemble of K runs and its step, as the driver sees it.

    Subclasses give ``K``, ``time``, ``state``, ``step``, ``state_dict``/``load_state_dict``, and may
    override the rest.
    """

    K: int
    screen_every: int = 1  # steps between divergence screens (a stepper drawing noise in blocks: the block)
    observes: bool = True  # whether its rows carry observables of the step (else a row is the state alone)

    def time(self) -> float:
        """t_n, the time of the current state."""
        raise NotImplementedError

    def state(self) -> torch.Tensor:
        """The current state x_n [K, d] (screened for divergence)."""
        raise NotImplementedError

    def row(self) -> torch.Tensor:
        """What a row of the record keeps of the current state (default: the state)."""
        return self.state()

    def step(self, n: int, observe: bool) -> Optional[dict]:
        """x_n → x_{n+1}; the observables {name: [K]} of the step if ``observe``.

        Args:
            n: the step's index (the state is x_n).
            observe: whether the step's row is recorded, so that its observables are wanted.

        Returns:
            {observable name: `[K]`} if ``observe`` (and the stepper has observables), else None.
        """
        raise NotImplementedError

    def observe(self, n: int) -> dict:
        """The observables of the last row (n = the number of steps), taken without stepping."""
        return {}

    def first_steps(self, bad: torch.Tensor, n_from: int, n_to: int, bound: torch.Tensor) -> dict:
        """{run: the first step in (n_from, n_to] at which run ``bad`` left its ``bound`` [K] or became
        non-finite (``inside_bound``)}; default n_to (exact for steppers screened every step).

        Args:
            bad: the runs found diverged at step n_to, a bool mask [K].
            n_from: the last screened step, at which they were all inside.
            n_to: the step just screened.
            bound: each run's bound on max_i |x_i|, shape [K].

        Returns:
            {run index: step} for each run of ``bad``.
        """
        return {run: n_to for run in torch.nonzero(bad).flatten().tolist()}

    def poison(self, runs: torch.Tensor) -> None:
        """Set the state of ``runs`` [K] (bool) to NaN."""
        raise NotImplementedError

    def work(self) -> int:
        """Numbers one call of a step touches, roughly (for the thread count): a loop that advances its runs
        tile by tile touches one tile's at a time."""
        return self.state().numel()

    def fingerprint(self) -> dict:
        """What identifies the loop, beside its kind, runs and steps (checked before resuming)."""
        return {}

    def state_dict(self) -> dict:
        """Everything a resumed loop needs at a screening step: state, the rule's and optimisers' state,
        the positions of the random streams."""
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


class Record:
    """The rows of a loop's record, on the CPU: steps, times, states and observables."""

    def __init__(self):
        self.steps, self.times, self.states, self.observables = [], [], [], {}

    def add(self, n: int, t: float, x: torch.Tensor, observables: Optional[dict]) -> None:
        """Append a row.

        Args:
            n: the step of the row.
            t: its time t_n.
            x: what the row keeps of the state (``Stepper.row``), shape [K, d], a CPU copy.
            observables: {name: `[K]`} of the step taken from x_n, or None (a row with none).
        """
        self.steps.append(n)
        self.times.append(t)
        self.states.append(x)
        for name, v in (observables or {}).items():
            self.observables.setdefault(name, []).append(torch.as_tensor(v).detach().cpu())

    def nan_row(self) -> dict:
        """Observables of NaN named as the last row's."""
        return {name: torch.full_like(v[-1], math.nan) for name, v in self.observables.items()}

    def state_dict(self) -> dict:
        return dict(vars(self))

    @classmethod
    def from_state_dict(cls, state: dict) -> "Record":
        record = cls()
        vars(record).update(state)
        return record


@dataclass
class Outcome:
    """What ``drive`` returns: the record, {run: step} of the diverged runs, the step an interrupt stopped
    at (None), the step the loop resumed from (None: started afresh) and the loop's wall time (with the
    time of the processes it resumed from).

    Args:
        record: the rows recorded.
        diverged: {run index: the first step at which it diverged}.
        interrupted: the step Ctrl-C stopped the loop at, or None.
        resumed_from: the step the loop resumed from a checkpoint at, or None.
        wall_time_s: the loop's wall time in seconds, over every process that ran a part of it.
    """

    record: Record
    diverged: dict
    interrupted: Optional[int]
    resumed_from: Optional[int]
    wall_time_s: float

    def metadata(self) -> dict:
        return {"diverged": self.diverged, "interrupted": self.interrupted, "wall_time_s": self.wall_time_s}

    def trajectory(self, p: int, metadata: dict) -> Trajectory:
        """The record as a Trajectory (times in float64) with ``metadata``.

        Args:
            p: the number of θ coordinates of a recorded state (0 when the states are not recorded).
            metadata: the Trajectory's metadata.

        Returns:
            The Trajectory: times [T], states [T, K, d], observables {name: [T, K]}.
        """
        record = self.record
        return Trajectory(torch.tensor(record.times, dtype=torch.float64), torch.stack(record.states), p,
                          {name: torch.stack(v) for name, v in record.observables.items()}, metadata)


def drive(stepper: Stepper, steps: int, *, record_every: int = 1, progress: bool = False, desc: str = "steps",
          stop_when_dead: bool = True) -> Outcome:
    """Run ``stepper`` for ``steps`` steps under the execution setting in force (``games.execution``).

    Args:
        stepper: the simulator.
        steps: N, the number of steps.
        record_every: rows at n = 0, record_every, 2·record_every, … and N.
        progress: show a progress bar.
        desc: the progress bar's label.
        stop_when_dead: stop once every run has diverged (a chunk of an ensemble split over processes
            goes on, so that its rows are those of the whole ensemble's).

    Returns:
        The ``Outcome``.
    """
    setting = current()
    loop = _Loop(stepper, steps, record_every, setting)
    saved = loop.resume()
    if saved is not None and saved["finished"]:
        return loop.outcome()
    loop.started, bar = time.perf_counter(), _progress(steps, progress, desc, loop.n)
    with threads(threads_for(stepper.work())):
        try:
            loop.run(bar, stop_when_dead)
        except KeyboardInterrupt:
            loop.interrupted = loop.n
            if loop.pending is not None and (not stepper.observes or not loop.record.steps):
                loop.record.add(*loop.pending, None)  # the state reached (a first row has no observables yet)
            loop.screen()
        finally:
            bar.close()
    return loop.outcome()


class _Loop:
    """The driver's own state: the step reached, the record, the diverged runs, the bound."""

    def __init__(self, stepper: Stepper, steps: int, record_every: int, setting):
        self.stepper, self.steps, self.record_every = stepper, steps, record_every
        self.store = setting.checkpoints
        self.key = self.store.next_key() if self.store is not None else None
        self.fingerprint = {"kind": type(stepper).__name__, "K": stepper.K, "steps": steps,
                            "record_every": record_every, **stepper.fingerprint()}
        self.n, self.screened, self.record, self.diverged, self.interrupted = 0, 0, Record(), {}, None
        x0 = stepper.state().detach()
        scale = _peak(x0.nan_to_num(0.0, 0.0, 0.0)).clamp(min=1.0)
        self.bound = setting.blowup * scale  # [K]: each run's own
        self.alive = torch.ones(stepper.K, dtype=torch.bool, device=x0.device)
        self.resumed_from, self.last_save, self.pending = None, time.monotonic(), None
        self.wall_before, self.started = 0.0, None  # seconds spent before a resume; when this process began

    def run(self, bar, stop_when_dead: bool) -> None:
        stepper, steps, every = self.stepper, self.steps, self.record_every
        while True:
            n = self.n
            record = n % every == 0 or n == steps
            if n == steps:
                if record:
                    self.record.add(n, stepper.time(), _copy(stepper.row()), stepper.observe(n))
                break
            self.pending = (n, stepper.time(), _copy(stepper.row())) if record else None
            obs = stepper.step(n, record)
            if record:
                self.record.add(*self.pending, obs)
                self.pending = None
            self.n = n + 1
            bar.update(1)
            if self.n % stepper.screen_every == 0 or self.n == steps:
                self.screen()
                if stop_when_dead and not self.alive.any():
                    self.record.add(self.n, stepper.time(), _copy(stepper.row()), self.record.nan_row())
                    break
                self.save_if_due()
        self.wall_before, self.started = self.wall_time(), None  # the finished loop's time, as saved
        self.save(finished=True)

    def screen(self) -> None:
        """Mark the runs that diverged since the last screen; set those beyond the bound to NaN."""
        if self.n == self.screened:
            return
        peak = _peak(self.stepper.state().detach())
        inside = inside_bound(peak, self.bound)
        if not inside.all():
            new = self.alive & ~inside
            if new.any():
                self.diverged.update(self.stepper.first_steps(new, self.screened, self.n, self.bound))
                finite_outside = new & torch.isfinite(peak)
                if finite_outside.any():
                    self.stepper.poison(finite_outside)
            self.alive = self.alive & inside
        self.screened = self.n

    def save_if_due(self) -> None:
        if self.store is not None and time.monotonic() - self.last_save >= self.store.every:
            self.save(finished=False)

    def save(self, finished: bool) -> None:
        if self.store is None:
            return
        self.store.save(self.key, self.fingerprint, {
            "finished": finished, "n": self.n, "record": self.record.state_dict(), "diverged": self.diverged,
            "alive": self.alive.cpu(), "bound": self.bound, "interrupted": self.interrupted,
            "stepper": self.stepper.state_dict(), "wall_time_s": self.wall_time()})
        self.last_save = time.monotonic()

    def resume(self) -> Optional[dict]:
        """Load this loop's checkpoint, if any; returns it."""
        saved = self.store.load(self.key, self.fingerprint) if self.store is not None else None
        if saved is None:
            return None
        self.stepper.load_state_dict(saved["stepper"])
        self.n = self.screened = saved["n"]
        self.record, self.diverged = Record.from_state_dict(saved["record"]), dict(saved["diverged"])
        self.alive, self.bound = saved["alive"].to(self.alive.device), saved["bound"].to(self.alive.device)
        self.interrupted, self.resumed_from = saved["interrupted"], saved["n"]
        self.wall_before = saved.get("wall_time_s", 0.0)
        state = "finished" if saved["finished"] else f"resumed at step {saved['n']} of {self.steps}"
        self.store.log(f"loop {self.key} ({self.fingerprint['kind']}, K={self.stepper.K}): {state}")
        return saved

    def wall_time(self) -> float:
        """Seconds the loop has run, over every process that ran a part of it."""
        return self.wall_before + (time.perf_counter() - self.started if self.started is not None else 0.0)

    def outcome(self) -> Outcome:
        return Outcome(self.record, self.diverged, self.interrupted, self.resumed_from, self.wall_time())


def _peak(x: torch.Tensor) -> torch.Tensor:
    """max_i |x_i| per run [K] of states [K, d] (0 where d = 0)."""
    return x.abs().amax(dim=-1) if x.shape[-1] else x.new_zeros(x.shape[0])


def inside_bound(peak: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    """[K]: finite and at most the run's bound (False for NaN and ±inf; an infinite bound admits every finite state).

    Args:
        peak: each run's max_i |x_i|, shape [K].
        bound: each run's bound, shape [K] (or broadcasting against ``peak``).

    Returns:
        A bool mask [K], True for the runs inside their bound.
    """
    return torch.isfinite(peak) & (peak <= bound)


def _copy(x: torch.Tensor) -> torch.Tensor:
    """A CPU copy of x that later steps cannot change."""
    return x.detach().to("cpu", copy=True)


def threads_for(work: int) -> int:
    """torch's intra-op threads for a loop whose step touches ``work`` numbers: ``run.threads`` if set
    (``games.execution``), else one below ``SMALL_WORK`` (threads waiting at barriers cost more than they
    gain on small tensors, and far more when another process holds a core), else the count in force
    (torch's default, or what the caller set)."""
    if current().threads:
        return current().threads
    return 1 if work < SMALL_WORK else torch.get_num_threads()


def threads_for_kernel(numbers: int) -> int:
    """torch's intra-op threads for one long kernel call of ``numbers`` numbers inside a loop (a block of
    normals): ``run.threads`` if set, else the count in force for a call of at least ``LONG_KERNEL``
    numbers, else one. Call it before the loop: the count in force is then the caller's. A call that long
    outlasts a scheduler's time slice, so that a core shared with another process slows it about as much
    as one thread would be, whereas short calls on two threads collapse (``threads_for``)."""
    if current().threads:
        return current().threads
    return torch.get_num_threads() if numbers >= LONG_KERNEL else 1


@contextlib.contextmanager
def threads(count: int):
    """torch's intra-op thread count set to ``count`` for the block (on the CPU; restored after)."""
    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _progress(total: int, enabled: bool, desc: str, initial: int = 0):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step", leave=False)
