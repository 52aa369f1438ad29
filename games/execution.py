"""How simulations run: where they checkpoint, how many worker processes and threads they use, and the
bound past which a run counts as diverged.

The setting is a context (``using``), so that a catalog entry's many calls of ``SGA.run``,
``sde.integrate`` or ``sde.coupled_chain`` all follow the command line's ``run.*`` keys without each
call passing them on; the Python API's defaults are the context's defaults.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Optional

import torch

from .errors import ConfigError, check_int, check_positive

BLOWUP = 1e6  # a run is diverged once max_i |x_i| > BLOWUP · max(1, max_i |x_{0,i}|), x_0 its start


@dataclass(frozen=True)
class Execution:
    """The execution setting of simulations.

    Args:
        workers: processes an ensemble's runs are split over (``games.chunks``); 1 runs in-process,
            more as Ray tasks.
        address: a Ray cluster to join (None: start Ray on this machine).
        threads: torch's intra-op threads during a loop (None: chosen from the work per step).
        blowup: a run is diverged once max_i |x_i| > blowup · max(1, max_i |x_{0,i}|), x_0 its own start
            (math.inf: only once it is non-finite).
        checkpoints: the ``games.checkpoint.Checkpoints`` the loops save to and resume from (None: none).
        tile: the most runs per in-process tile of a CPU ensemble (``games.chunks.tiles``; None: from the L2 cache).
    """

    workers: int = 1
    address: Optional[str] = None
    threads: Optional[int] = None
    blowup: float = BLOWUP
    checkpoints: object = None
    tile: Optional[int] = None

    def __post_init__(self):
        check_int("run.workers", self.workers)
        if self.threads is not None:
            check_int("run.threads", self.threads)
        if self.tile is not None:
            check_int("run.tile", self.tile)
        if self.blowup != math.inf and check_positive("run.blowup", self.blowup) <= 1:
            raise ConfigError("run.blowup", f"must be > 1 (a multiple of the initial scale), got {self.blowup!r}")


_CURRENT = contextvars.ContextVar("gandyn_execution", default=Execution())


def current() -> Execution:
    """The execution setting in force."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(**changes):
    """A context in which ``current()`` has ``changes`` (fields of ``Execution``) on top of the setting in force."""
    token = _CURRENT.set(dataclasses.replace(current(), **changes))
    try:
        yield current()
    finally:
        _CURRENT.reset(token)


def check_memory(K: int, bytes_per_run: float, what: str, device="cpu") -> None:
    """Refuse, before allocating, an ensemble of K runs that needs more memory than ``device`` has free.

    Args:
        K: the number of runs.
        bytes_per_run: a lower bound on the bytes one run needs.
        what: what the estimate counts, for the message.
        device: where the runs live.

    Raises:
        ConfigError: on ``run.paths``, with the estimate and the available memory.
    """
    need, available = K * bytes_per_run, available_memory(device)
    if available is not None and need > available:
        raise ConfigError("run.paths", f"{K} runs need at least {_size(need)} ({what}); "
                                       f"{_size(available)} of memory is available")


def available_memory(device="cpu") -> Optional[int]:
    """Bytes free for new tensors on ``device`` (MemAvailable on Linux; None where unknown)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
