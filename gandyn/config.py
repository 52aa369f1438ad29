"""Configuration: frozen dataclasses validated on construction, read from TOML and ``--set`` overrides.

Keys are dotted paths: ``game.name``, ``game.<option>`` (passed to the game), ``sga.lr``,
``sga.update``, ``sga.<option>`` of the update rule (``sga.rho`` of extragradient…), ``sga.gen.optimizer``,
``run.paths``… A bad value raises ConfigError naming the key.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

import torch

from games import make_game
from games.errors import ConfigError, check_choice, check_int, check_positive
from games.execution import BLOWUP, Execution
from games.optim import make_optimizer
from games.schedules import make_schedule
from games.rules import make_rule
from games.sga import SGA, Player

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class GameConfig:
    """Which game, and the options its constructor takes.

    Attributes:
        name: the game's name in ``games.GAMES``.
        options: the keyword arguments of its constructor (``game.<option>`` keys).
    """

    name: str = "gaussian"
    options: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.build()  # validates name and options

    def build(self):
        return make_game(self.name, **self.options)


@dataclass(frozen=True)
class PlayerConfig:
    """One player's optimiser (with its options), rate scale c and weight decay.

    Attributes:
        optimizer: the optimiser's name (``games.optim``).
        scale: the rate scale c > 0 (η_player = c·η_k).
        weight_decay: the weight decay, ≥ 0.
        options: the optimiser's options.
    """

    optimizer: str = "sgd"
    scale: float = 1.0
    weight_decay: float = 0.0
    options: Dict[str, Any] = field(default_factory=dict)

    def player(self, field: str, center=0.0) -> Player:
        """The ``games.sga.Player`` these settings describe, validated.

        Args:
            field: the player's dotted key ("sga.gen" or "sga.disc"), named by a ConfigError.
            center: the player's FDR centre c₀, a number or a tensor of its dimension.

        Returns:
            The Player.

        Raises:
            ConfigError: for a non-positive scale, a negative weight decay or a bad optimiser.
        """
        check_positive(f"{field}.scale", self.scale)
        check_positive(f"{field}.weight_decay", self.weight_decay, allow_zero=True)
        opt = make_optimizer(self.optimizer, field=f"{field}.optimizer", **self.options)
        return Player(opt, self.scale, self.weight_decay, center=center)


@dataclass(frozen=True)
class SGAConfig:
    """Discrete training: update rule (with its options), reference rate η and its schedule, batches,
    SVAG's l, players.

    Attributes:
        update: the update rule's name (``games.rules.RULES``).
        n_d: discriminator steps per iteration, for the rules that take it.
        lr: the reference rate η > 0.
        steps: the number of iterations.
        batch_size: samples per gradient evaluation.
        shared_batch: one minibatch for the whole iteration instead of one per batch key and player.
        svag: SVAG's l ≥ 1 (1: plain training).
        schedule: the rate schedule's name (``games.schedules``).
        schedule_options: its options.
        gen: the generator's settings.
        disc: the discriminator's settings.
        update_options: the rule's options (``sga.<option>`` keys).
    """

    update: str = "sim"
    n_d: int = 1
    lr: float = 0.05
    steps: int = 1000
    batch_size: int = 16
    shared_batch: bool = False
    svag: int = 1
    schedule: str = "constant"
    schedule_options: Dict[str, Any] = field(default_factory=dict)
    gen: PlayerConfig = field(default_factory=PlayerConfig)
    disc: PlayerConfig = field(default_factory=PlayerConfig)
    update_options: Dict[str, Any] = field(default_factory=dict)  # sga.<option> keys of the rule

    def __post_init__(self):
        make_rule(self.update, self.n_d, **self.update_options)  # validates the rule and its options
        check_positive("sga.lr", self.lr)
        check_int("sga.steps", self.steps, minimum=0)
        check_int("sga.batch_size", self.batch_size)
        check_int("sga.svag", self.svag)
        self.gen.player("sga.gen"), self.disc.player("sga.disc")
        make_schedule(self.schedule, self.lr, field="sga.schedule", **self.schedule_options)

    def build(self, game, centers=(0.0, 0.0)) -> SGA:
        """The trainer; ``centers`` are the players' FDR centres c₀ (see games.sga.Player).

        Args:
            game: the game to train (``GameConfig.build``'s).
            centers: (c₀ of θ, c₀ of ω), each a number or a tensor of the player's dimension.

        Returns:
            The SGA.
        """
        lr = make_schedule(self.schedule, self.lr, field="sga.schedule", **self.schedule_options)
        return SGA(game, lr=lr, update=self.update, n_d=self.n_d, batch_size=self.batch_size,
                   shared_batch=self.shared_batch, svag=self.svag, gen=self.gen.player("sga.gen", centers[0]),
                   disc=self.disc.player("sga.disc", centers[1]), update_options=dict(self.update_options))


@dataclass(frozen=True)
class RunConfig:
    """The ensemble (K paths, seed, recording interval, device and dtype) and how it runs
    (``games.execution``): worker processes, threads (0: chosen from the work per step), the divergence
    bound and the seconds between checkpoints.

    Attributes:
        paths: the number of runs K.
        seed: the ensemble's seed, ≥ 0.
        record_every: iterations between records.
        device: the torch device ("cpu", "cuda"…).
        dtype: "float64" or "float32".
        workers: the worker processes.
        threads: CPU threads per worker (0: chosen from the work per step).
        blowup: a run is diverged once max_i |x_i| exceeds blowup · max(1, max_i |x_{0,i}|), > 1.
        checkpoint_every: seconds between checkpoints (0: at every opportunity).
        tile: runs per in-process tile of a CPU ensemble (0: from the L2 cache size).
    """

    paths: int = 256
    seed: int = 0
    record_every: int = 10
    device: str = "cpu"
    dtype: str = "float64"
    workers: int = 1
    threads: int = 0
    blowup: float = BLOWUP
    checkpoint_every: float = 60.0
    tile: int = 0

    def __post_init__(self):
        check_int("run.paths", self.paths)
        check_int("run.seed", self.seed, minimum=0)
        check_int("run.record_every", self.record_every)
        check_positive("run.checkpoint_every", self.checkpoint_every, allow_zero=True)
        check_int("run.threads", self.threads, minimum=0)
        check_int("run.tile", self.tile, minimum=0)
        self.execution()  # validates workers and blowup
        check_choice("run.dtype", self.dtype, tuple(DTYPES))
        try:
            device = torch.device(self.device)
        except RuntimeError:
            raise ConfigError("run.device", f"unknown device {self.device!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("run.device", "CUDA was asked for but is not available on this machine")

    @property
    def torch_dtype(self):
        return DTYPES[self.dtype]

    def execution(self, **more) -> dict:
        """The ``games.execution.Execution`` fields these keys set (``more`` on top), validated."""
        fields = {"workers": self.workers, "threads": self.threads or None, "blowup": self.blowup,
                  "tile": self.tile or None, **more}
        Execution(**fields)
        return fields


@dataclass(frozen=True)
class Config:
    """The whole configuration: the game, its discrete training and the ensemble's run.

    Attributes:
        game: the ``game.*`` keys.
        sga: the ``sga.*`` keys.
        run: the ``run.*`` keys.
    """

    game: GameConfig = field(default_factory=GameConfig)
    sga: SGAConfig = field(default_factory=SGAConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: Dict[str, Any]) -> "Config":
        """A new Config with dotted-key ``overrides`` applied, validated."""
        tree = self.to_dict()
        for key, value in overrides.items():
            _set_dotted(tree, key, value)
        return from_dict(tree)


# -- building from dictionaries, TOML and --set ------------------------------------------------------
def from_dict(tree: dict, cls=Config, prefix: str = ""):
    """Build ``cls`` from nested dictionaries; unknown keys raise ConfigError naming them.

    Args:
        tree: nested {key: value or section}, as in a TOML file.
        cls: the dataclass to build (Config or one of its sections).
        prefix: the dotted path of ``tree``, prepended to keys in error messages.

    Returns:
        An instance of ``cls``, validated.

    Raises:
        ConfigError: for an unknown key, a value of the wrong type, or an invalid value.
    """
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(path, f"unknown key; accepted: {', '.join(known)}")
        kind = known[key].type
        sub = _SECTIONS.get(kind if isinstance(kind, str) else getattr(kind, "__name__", ""))
        kwargs[key] = from_dict(value, sub, f"{path}.") if sub and isinstance(value, dict) else value
    _check_types(cls, kwargs, prefix)
    return cls(**kwargs)


_SECTIONS = {"GameConfig": GameConfig, "SGAConfig": SGAConfig, "RunConfig": RunConfig,
             "PlayerConfig": PlayerConfig}
_SCALARS = {"str": str, "int": int, "float": float, "bool": bool}
_SGA_KEYS = {f.name for f in dataclasses.fields(SGAConfig)}


def _check_types(cls, kwargs: dict, prefix: str) -> None:
    """Scalars must have their field's type (an int is a float; NaN is no number we take)."""
    for f in dataclasses.fields(cls):
        if f.name not in kwargs or f.type not in _SCALARS:
            continue
        value, want = kwargs[f.name], _SCALARS[f.type]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if want is int and isinstance(value, float) and value.is_integer():
            kwargs[f.name], ok = int(value), True
        if isinstance(value, float) and math.isnan(value):
            raise ConfigError(f"{prefix}{f.name}", "NaN is not accepted")
        if not ok:
            raise ConfigError(f"{prefix}{f.name}", f"expected {f.type}, got {value!r}")


def _set_dotted(tree: dict, key: str, value) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(key, f"{part!r} is a value, not a section")
    if parts[0] == "game" and len(parts) == 2 and parts[1] != "name":
        node.setdefault("options", {})[parts[1]] = value
    elif parts[0] == "sga" and len(parts) == 2 and parts[1] not in _SGA_KEYS:  # an option of the rule
        node.setdefault("update_options", {})[parts[1]] = value
    elif parts[-1] not in node and len(parts) >= 2 and "options" in node:
        node["options"][parts[-1]] = value
    else:
        node[parts[-1]] = value


def parse_value(text: str):
    """A ``--set`` value: a TOML literal (number, bool, string, array, table), else the raw string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if text.strip().lower() == "nan":
            return math.nan
        return text


def parse_overrides(items) -> Dict[str, Any]:
    """``["sga.lr=0.1", …]`` → {"sga.lr": 0.1, …}."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(item, "expected key=value, e.g. sga.lr=0.1")
        out[key.strip()] = parse_value(value.strip())
    return out


def load_toml(path) -> Dict[str, Any]:
    """A TOML file as dotted overrides."""
    try:
        with open(path, "rb") as f:
            tree = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("--config", f"cannot read {path}: {e}") from None
    return dict(_flatten(tree))


def _flatten(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict) and not key.endswith("options"):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value
