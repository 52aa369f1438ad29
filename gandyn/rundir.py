"""A run directory's own state (``DIR/.gandyn``): the entry and configuration it holds, whether that run
finished, and the checkpoints of its loops, so that running the same command again resumes an
unfinished run where it was killed (``games.checkpoint``)."""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from games.checkpoint import Checkpoints
from games.errors import ConfigError
from games.execution import using
from games.trajectory import atomic_write

STATE = ".gandyn"
EXECUTION_KEYS = ("run.workers", "run.threads", "run.checkpoint_every", "run.tile")  # how a run goes, not what it gives


def writable(out: Path) -> Path:
    """``out``, created if need be; ConfigError("--out") if it cannot be created or written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise ConfigError("--out", f"cannot write the output directory {out}: {e.strerror or e}") from None
    return out


def prepare(out: Path, identity: dict, fresh: bool, every: float) -> Checkpoints:
    """The checkpoints of the run ``identity`` ({"entry", "quick", "config"}) in ``out``: those of an
    unfinished run of the same identity (resumed), else a new, empty store (``fresh`` discards an
    unfinished run; without it, one of another identity is refused naming the first differing key).

    Args:
        out: the run directory.
        identity: {"entry": name, "quick": bool, "config": the configuration as a dictionary}.
        fresh: whether to discard an unfinished run there.
        every: seconds between checkpoints (0: at every opportunity).

    Returns:
        The Checkpoints, ``resuming`` when an unfinished run goes on.

    Raises:
        ConfigError: if ``out`` holds an unfinished run of another identity and ``fresh`` is not set.
    """
    state = Path(out) / STATE
    held = _read(state / "run.json")
    if held is not None and not held.get("finished") and not fresh:
        key = first_difference(_comparable(held), _comparable(identity))
        if key is not None:
            name = {"quick": "--quick", "entry": "NAME"}.get(key, key.removeprefix("config."))
            raise ConfigError("--out", f"{out} holds an unfinished run with {name} = {_lookup(held, key)!r}, not "
                                       f"{_lookup(identity, key)!r}; use --fresh to start over, or another --out")
        return Checkpoints(state / "checkpoints", every, resuming=True)
    shutil.rmtree(state / "checkpoints", ignore_errors=True)
    _write(state / "run.json", {**identity, "finished": False})
    return Checkpoints(state / "checkpoints", every)


@contextlib.contextmanager
def resumable(out: Path, identity: dict, run, fresh: bool = False, address=None):
    """A context that runs ``identity``'s loops as ``run`` (a ``RunConfig``) says, checkpointed in ``out``
    (resumed if ``out`` holds its unfinished run, see ``prepare``), and marks the run finished on leaving
    without an error. It yields the checkpoints (``resuming``: whether an unfinished run goes on).

    Args:
        out: the run directory.
        identity: {"entry": name, "quick": bool, "config": the configuration as a dictionary}.
        run: the RunConfig saying how the loops run (workers, threads, divergence bound, checkpoint interval).
        fresh: whether to discard an unfinished run there.
        address: the Ray cluster's address for worker processes; None for this machine.

    Yields:
        The Checkpoints.
    """
    checkpoints = prepare(out, identity, fresh, run.checkpoint_every)
    with using(**run.execution(checkpoints=checkpoints, address=address)):
        yield checkpoints
    finish(out)


def finish(out: Path) -> None:
    """Mark the run in ``out`` finished and drop its checkpoints."""
    state = Path(out) / STATE
    _write(state / "run.json", {**_read(state / "run.json"), "finished": True})
    shutil.rmtree(state / "checkpoints", ignore_errors=True)


def first_difference(a, b, prefix: str = "") -> Optional[str]:
    """The first dotted key at which the nested dictionaries ``a`` and ``b`` differ (None if equal).

    Args:
        a: the first value (a nested dictionary, or a leaf).
        b: the second value.
        prefix: the dotted path of a and b, prepended to the key found.

    Returns:
        The dotted key, or None.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    return None if a == b else prefix.rstrip(".")


def _comparable(identity: dict) -> dict:
    """The identity without the keys that change how a run goes, not what it gives."""
    config = json.loads(json.dumps(identity["config"]))
    for key in EXECUTION_KEYS:
        section, name = key.split(".")
        config.get(section, {}).pop(name, None)
    return {"entry": identity["entry"], "quick": identity["quick"], "config": config}


def _lookup(tree: dict, key: str):
    for part in key.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _read(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, value: dict) -> None:
    text = json.dumps(value, indent=2, default=str)
    atomic_write(path, lambda f: f.write(text.encode()))
