"""Learning-rate schedules: η_k, the learning rate at update k = 0, 1, ..."""
from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_right
from dataclasses import MISSING, dataclass, fields
from math import cos, pi
from typing import Callable, Tuple

import torch

from .errors import ConfigError, check_choice, check_int, check_positive


class Schedule(ABC):
    """A learning rate η_k for each update k = 0, 1, ..."""

    @abstractmethod
    def __call__(self, k: int) -> float:
        """η_k."""

    @classmethod
    def checked(cls, field: str, lr: float, **options) -> "Schedule":
        """An instance from ``lr`` and ``options`` after validating them; errors name ``field``.<option>.

        Args:
            field: the config key of the schedule (``sga.schedule``), prefixed to the options' keys.
            lr: the base rate η > 0 (already checked).
            **options: the schedule's other fields, by name (all of them: ``make_schedule`` fills in
                defaults).

        Returns:
            The schedule.

        Raises:
            ConfigError: naming ``field``.<option> for an option out of its range.
        """
        return cls(lr, **options)


@dataclass(frozen=True)
class Constant(Schedule):
    """η_k = η."""

    lr: float

    def __call__(self, k: int) -> float:
        return self.lr


@dataclass(frozen=True)
class Step(Schedule):
    """η_k = η γ^{#{m ∈ milestones : m ≤ k}}.

    Args:
        lr: η > 0, the rate before the first milestone.
        milestones: the updates at which the rate is multiplied by γ, strictly increasing.
        gamma: γ in (0, 1].
    """

    lr: float
    milestones: Tuple[int, ...]
    gamma: float = 0.1

    def __call__(self, k: int) -> float:
        return self.lr * self.gamma ** bisect_right(self.milestones, k)

    @classmethod
    def checked(cls, field: str, lr: float, milestones, gamma) -> "Step":
        milestones = _increasing(f"{field}.milestones", milestones)
        return cls(lr, milestones, _decay_factor(f"{field}.gamma", gamma))


@dataclass(frozen=True)
class Exponential(Schedule):
    """η_k = η γ^k.

    Args:
        lr: η > 0, the rate at k = 0.
        gamma: γ in (0, 1].
    """

    lr: float
    gamma: float

    def __call__(self, k: int) -> float:
        return self.lr * self.gamma**k

    @classmethod
    def checked(cls, field: str, lr: float, gamma) -> "Exponential":
        return cls(lr, _decay_factor(f"{field}.gamma", gamma))


@dataclass(frozen=True)
class InverseTime(Schedule):
    """η_k = η / (1 + decay·k)^power.

    Args:
        lr: η > 0, the rate at k = 0.
        decay: ≥ 0; at k = 1/decay the rate is η/2^power.
        power: > 0.
    """

    lr: float
    decay: float
    power: float = 1.0

    def __call__(self, k: int) -> float:
        return self.lr / (1 + self.decay * k) ** self.power

    @classmethod
    def checked(cls, field: str, lr: float, decay, power) -> "InverseTime":
        return cls(
            lr,
            check_positive(f"{field}.decay", decay, allow_zero=True),
            check_positive(f"{field}.power", power),
        )


@dataclass(frozen=True)
class Cosine(Schedule):
    """η_k = η_min + (η − η_min)(1 + cos(π min(k, T)/T))/2, with T = total_steps.

    Args:
        lr: η > 0, the rate at k = 0.
        total_steps: T ≥ 1, the update from which the rate stays η_min.
        lr_min: η_min in [0, η].
    """

    lr: float
    total_steps: int
    lr_min: float = 0.0

    def __call__(self, k: int) -> float:
        t = min(k, self.total_steps) / self.total_steps
        return self.lr_min + (self.lr - self.lr_min) * (1 + cos(pi * t)) / 2

    @classmethod
    def checked(cls, field: str, lr: float, total_steps, lr_min) -> "Cosine":
        lr_min = check_positive(f"{field}.lr_min", lr_min, allow_zero=True)
        if lr_min > lr:
            raise ConfigError(f"{field}.lr_min", f"must be <= lr = {lr!r}, got {lr_min!r}")
        return cls(lr, check_int(f"{field}.total_steps", total_steps), lr_min)


@dataclass(frozen=True)
class Piecewise(Schedule):
    """η_k = η·values[i] for b_{i−1} ≤ k < b_i, with b = boundaries, b_{−1} = 0, b_{len(b)} = ∞.

    Args:
        lr: η > 0, the base rate.
        boundaries: b, strictly increasing updates.
        values: len(b) + 1 factors > 0 of η, one per interval.
    """

    lr: float
    boundaries: Tuple[int, ...]
    values: Tuple[float, ...]

    def __call__(self, k: int) -> float:
        return self.lr * self.values[bisect_right(self.boundaries, k)]

    @classmethod
    def checked(cls, field: str, lr: float, boundaries, values) -> "Piecewise":
        boundaries = _increasing(f"{field}.boundaries", boundaries)
        values = _sequence(f"{field}.values", values)
        values = tuple(check_positive(f"{field}.values[{i}]", v) for i, v in enumerate(values))
        if len(values) != len(boundaries) + 1:
            message = f"needs len(boundaries) + 1 = {len(boundaries) + 1} entries, got {len(values)}"
            raise ConfigError(f"{field}.values", message)
        return cls(lr, boundaries, values)


@dataclass(frozen=True, eq=False)
class Table(Schedule):
    """Per-run rates: η_k = values[r // runs_per_row, min(k, N − 1)] for run r, ``values`` [R, N], so that
    R candidate schedules train as one ensemble of R·runs_per_row runs.

    Args:
        values: the rates, shape [R, N], finite and > 0; row i is the schedule of runs
            i·runs_per_row … (i + 1)·runs_per_row − 1, and column N − 1 holds from update N − 1 on.
        runs_per_row: the consecutive runs sharing a row (≥ 1).
    """

    values: torch.Tensor
    runs_per_row: int = 1

    def __post_init__(self):
        if self.values.ndim != 2 or self.values.shape[1] == 0:
            raise ConfigError("schedule.values", f"expected a table [R, N ≥ 1], got {tuple(self.values.shape)}")
        if not bool(torch.isfinite(self.values).all()) or bool((self.values <= 0).any()):
            raise ConfigError("schedule.values", "rates must be finite and > 0")
        check_int("schedule.runs_per_row", self.runs_per_row)

    @property
    def runs(self) -> int:
        """The number of runs K the table is for."""
        return self.values.shape[0] * self.runs_per_row

    def __call__(self, k: int) -> torch.Tensor:
        return self.values[:, min(k, self.values.shape[1] - 1)].repeat_interleave(self.runs_per_row)

    def for_runs(self, index: slice) -> "Table":
        """The table of the runs ``index`` alone (a row per run)."""
        return Table(self.values.repeat_interleave(self.runs_per_row, dim=0)[index])


class Adaptive(ABC):
    """A per-run rate that reacts to training: after each update θ' = θ − η d the trainer reports
    (θ − c₀)·d and |d|² [K], and the schedule returns its new state (functional, like an optimiser).
    ``pathwise``: whether a run's rates depend on its own updates alone (not pooled over the runs)."""

    pathwise = True

    @abstractmethod
    def start(self, like: torch.Tensor) -> dict:
        """The state for K = len(like) runs, on like's device and dtype."""

    @abstractmethod
    def rate(self, state: dict) -> torch.Tensor:
        """The rates [K] of the next update."""

    @abstractmethod
    def observe(self, state: dict, dot: torch.Tensor, sq: torch.Tensor) -> dict:
        """The state after an update with (θ − c₀)·d = ``dot`` and |d|² = ``sq`` [K].

        Args:
            state: the schedule's state before the update (``start``, or a previous ``observe``'s);
                not modified.
            dot: (θ − c₀)·d of each run, shape [K].
            sq: |d|² of each run, shape [K].

        Returns:
            The new state.
        """

    def decisions(self, state: dict) -> dict:
        """What the schedule decided, for a Trajectory's metadata (JSON-serialisable)."""
        return {}


@dataclass(frozen=True)
class FromCallable(Schedule):
    """η_k = fn(k)."""

    fn: Callable[[int], float]

    def __call__(self, k: int) -> float:
        return float(self.fn(k))


_BY_NAME = {
    "constant": Constant,
    "step": Step,
    "exponential": Exponential,
    "inverse_time": InverseTime,
    "cosine": Cosine,
    "piecewise": Piecewise,
}
SCHEDULES = tuple(_BY_NAME)


def make_schedule(name: str, lr: float, field: str = "schedule", **options) -> Schedule:
    """The schedule ``name`` with base rate ``lr``; a ConfigError names ``field`` or ``field``.<option>.

    Args:
        name: one of ``SCHEDULES``: "constant", "step", "exponential", "inverse_time", "cosine",
            "piecewise".
        lr: the base rate η > 0.
        field: the config key of the schedule, for errors.
        **options: the schedule's other fields (required where they have no default).

    Returns:
        The schedule.
    """
    cls = _BY_NAME[check_choice(field, name, SCHEDULES)]
    defaults = {f.name: f.default for f in fields(cls) if f.name != "lr"}
    for key in options:
        if key not in defaults:
            accepted = ", ".join(defaults) or "none"
            raise ConfigError(f"{field}.{key}", f"not an option of {name!r}; accepted: {accepted}")
    for key, default in defaults.items():
        if default is MISSING and key not in options:
            raise ConfigError(f"{field}.{key}", f"required by {name!r}")
    return cls.checked(field, check_positive(f"{field}.lr", lr), **{**defaults, **options})


def as_schedule(lr_or_schedule, field: str = "lr") -> Schedule:
    """A Schedule from a Schedule (itself), a callable k ↦ η_k (wrapped) or a number η (constant).

    Args:
        lr_or_schedule: a ``Schedule``, a function k ↦ η_k, or a number η > 0.
        field: the config key, for the error on a bad number.

    Returns:
        The schedule.
    """
    if isinstance(lr_or_schedule, Schedule):
        return lr_or_schedule
    if callable(lr_or_schedule):
        return FromCallable(lr_or_schedule)
    return Constant(check_positive(field, lr_or_schedule))


def _sequence(field: str, value) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(field, f"expected a list, got {value!r}")
    return tuple(value)


def _increasing(field: str, value) -> Tuple[int, ...]:
    ints = tuple(check_int(f"{field}[{i}]", v) for i, v in enumerate(_sequence(field, value)))
    if any(a >= b for a, b in zip(ints, ints[1:])):
        raise ConfigError(field, f"must be strictly increasing, got {list(ints)}")
    return ints


def _decay_factor(field: str, value) -> float:
    v = check_positive(field, value)
    if v > 1:
        raise ConfigError(field, f"must be in (0, 1], got {value!r}")
    return v
