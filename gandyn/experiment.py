"""A catalog entry: a theory plot with its default configuration (``gandyn.catalog`` finds them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import torch

from games import GAMES

from .config import Config


def game_preset(game: str, preset: str) -> Dict[str, object]:
    """The dotted overrides of catalog game ``game`` set to its preset ``preset`` (``Game.PRESETS``).

    Args:
        game: the game's catalog name ("gaussian").
        preset: the name of one of its presets.

    Returns:
        {"game.name": game, "game.<option>": value, …}.
    """
    return {"game.name": game, **{f"game.{k}": v for k, v in GAMES[game].preset_options(preset).items()}}


@dataclass(frozen=True)
class Experiment:
    """A catalog entry: ``run(config, report, quick)`` fills the report; ``defaults`` and ``quick``
    are dotted overrides applied to the base Config (``quick`` on top, for ``--quick``).

    Attributes:
        name: the entry's name (``gandyn reproduce NAME``).
        title: its title.
        run: the callable ``run(config, report, quick)``.
        defaults: its dotted overrides of the base Config.
        quick: the dotted overrides of ``--quick``, on top of ``defaults``.
        threads: CPU threads while it runs; None for torch's default.
        gallery: the figure the gallery shows; empty for the report's first.
        rank: its place in listings (then by name).
    """

    name: str
    title: str
    run: Callable
    defaults: Dict[str, object] = field(default_factory=dict)
    quick: Dict[str, object] = field(default_factory=dict)
    threads: Optional[int] = None  # CPU threads while it runs (None: torch's default)
    gallery: str = ""  # the figure (NAME of NAME.png) the README's gallery shows; default: the entry's first
    rank: int = 100  # its place in `gandyn list`, the gallery and the README (then by name)

    def config(self, quick: bool, overrides: Dict[str, object]) -> Config:
        """The base Config with ``defaults``, then ``quick`` if asked, then ``overrides`` applied.

        Args:
            quick: whether to apply the ``quick`` overrides.
            overrides: {dotted key: value} applied last.

        Returns:
            The validated Config.
        """
        return Config().with_overrides({**self.defaults, **(self.quick if quick else {}), **overrides})

    def execute(self, config: Config, report, quick: bool) -> None:
        """``run`` with ``threads`` CPU threads on the CPU: entries made of small tensors set 1, so that their
        threads do not wait at OpenMP barriers on a busy machine.

        Args:
            config: the configuration to run.
            report: the Report the entry fills.
            quick: whether the ``--quick`` variant runs.
        """
        before = torch.get_num_threads()
        if self.threads and torch.device(config.run.device).type == "cpu":
            torch.set_num_threads(self.threads)
        try:
            self.run(config, report, quick)
        finally:
            torch.set_num_threads(before)
