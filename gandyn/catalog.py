"""The experiment catalog: every ``EXPERIMENT`` of the modules in ``gandyn.experiments``, found by name, so that
a new entry is one new module there (plus its page, notebook and test)."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Dict

from games.errors import ConfigError

from . import experiments
from .experiment import Experiment


def catalog() -> Dict[str, Experiment]:
    """{name: entry}, ordered by each entry's ``rank``, then its name."""
    found = []
    for module in pkgutil.iter_modules(experiments.__path__):
        entry = getattr(importlib.import_module(f"{experiments.__name__}.{module.name}"), "EXPERIMENT", None)
        if isinstance(entry, Experiment):
            found.append(entry)
    return {e.name: e for e in sorted(found, key=lambda e: (e.rank, e.name))}


def get(name: str) -> Experiment:
    entries = catalog()
    if name not in entries:
        raise ConfigError("NAME", f"unknown experiment {name!r}; expected one of {', '.join(entries)}")
    return entries[name]
