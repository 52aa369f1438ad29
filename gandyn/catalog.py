"""The experiment catalog: each entry is a theory plot with its default configuration."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import torch

from games.errors import ConfigError

from .config import Config


@dataclass(frozen=True)
class Experiment:
    """A catalog entry: ``run(config, report, quick)`` fills the report; ``defaults`` and ``quick``
    are dotted overrides applied to the base Config (``quick`` on top, for ``--quick``)."""

    name: str
    title: str
    run: Callable
    defaults: Dict[str, object] = field(default_factory=dict)
    quick: Dict[str, object] = field(default_factory=dict)
    threads: Optional[int] = None  # CPU threads while it runs (None: torch's default)
    gallery: str = ""  # the figure (NAME of NAME.png) the README's gallery shows; default: the entry's first

    def config(self, quick: bool, overrides: Dict[str, object]) -> Config:
        return Config().with_overrides({**self.defaults, **(self.quick if quick else {}), **overrides})

    def execute(self, config: Config, report, quick: bool) -> None:
        """``run`` with ``threads`` CPU threads on the CPU: entries made of small tensors set 1, as two
        threads waiting at OpenMP barriers on a busy two-core machine made them up to ten times slower."""
        before = torch.get_num_threads()
        if self.threads and torch.device(config.run.device).type == "cpu":
            torch.set_num_threads(self.threads)
        try:
            self.run(config, report, quick)
        finally:
            torch.set_num_threads(before)


def catalog() -> Dict[str, Experiment]:
    from .experiments import (conjugate_gradient, digits_gan, dirac_phase, ga_ntk, dual_flow_limit, fdr, game_optimizers, gradient_layer, invariant_measure,
                              lr_schedule, mixture_gan, mode_collapse, modified_ode, one_layer, overview, svag,
                              weak_order)

    entries = [overview.EXPERIMENT, dirac_phase.EXPERIMENT, modified_ode.EXPERIMENT, weak_order.EXPERIMENT,
               invariant_measure.EXPERIMENT, fdr.EXPERIMENT, svag.EXPERIMENT, dual_flow_limit.EXPERIMENT, gradient_layer.EXPERIMENT,
               mode_collapse.EXPERIMENT, lr_schedule.EXPERIMENT, mixture_gan.EXPERIMENT, game_optimizers.EXPERIMENT,
               one_layer.EXPERIMENT, conjugate_gradient.EXPERIMENT,
               ga_ntk.EXPERIMENT, digits_gan.EXPERIMENT]
    return {e.name: e for e in entries}


def get(name: str) -> Experiment:
    entries = catalog()
    if name not in entries:
        raise ConfigError("NAME", f"unknown experiment {name!r}; expected one of {', '.join(entries)}")
    return entries[name]
