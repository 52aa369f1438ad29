"""An ensemble's runs in chunks, run as Ray tasks on local worker processes or on a cluster.

Run k's numbers come from its own stream (``games.random``) and its steps touch its own row, so the K
runs of an ensemble split into chunks of consecutive runs that can run anywhere and join into the same
bits (``Trajectory.join_runs``). ``run.workers`` = N (``games.execution``) makes N chunks, each a Ray
task with its share of the threads; 1 (the default) runs in this process without importing Ray. Each
chunk's loops checkpoint under their own keys, so a rerun after a kill loads the finished chunks
instead of running them again.

The same chunking cuts an ensemble into tiles inside one process (``tiles``): a loop that advances
a tile of runs, small enough that a step's data stay in the L2 cache, through several steps before it
moves to the next tile streams less of the ensemble through memory (``sde.integrate``).

One difference remains: a loop in one process stops once every run has diverged, while a chunk cannot
know about the others and runs on to the end; the two agree whenever some run survives.
"""
from __future__ import annotations

import contextvars
import functools
import logging
from pathlib import Path
from typing import Callable, Sequence

import torch

from .errors import MissingExtra
from .execution import current, using
from .random import Streams

_INSIDE = contextvars.ContextVar("gandyn_inside_chunk", default=False)


def inside() -> bool:
    """Whether this code runs as a chunk of a split ensemble."""
    return _INSIDE.get()


def splits(K: int) -> bool:
    """Whether an ensemble of K runs is split over workers here."""
    return current().workers > 1 and K > 1 and not inside()


MIN_TILE = 4096  # runs: a compiled call's fixed cost wants thousands of runs behind it (bench/sde_throughput.py)
L2_FALLBACK = 1 << 20  # bytes, where the cache size cannot be read


def tiles(K: int, bytes_per_run: int, device="cpu") -> int:
    """How many in-process tiles an ensemble of K runs on ``device`` splits into: none on a GPU, in a
    chunk, or with workers; else tiles of at most ``run.tile`` runs (default ``tile_size``, in tiles of at
    least ``MIN_TILE``), so that a tile's step stays within the cache and is a short call for one thread.

    Args:
        K: the number of runs.
        bytes_per_run: the bytes one step of one run touches (its state and noise).
        device: where the runs live.

    Returns:
        The number of tiles, ≥ 1 (1: the whole ensemble at once).
    """
    if inside() or current().workers > 1 or torch.device(device).type != "cpu":
        return 1
    if current().tile:
        return -(-K // current().tile)
    return max(1, min(-(-K // tile_size(bytes_per_run)), K // MIN_TILE))


def tile_size(bytes_per_run: int) -> int:
    """Runs per tile: as many as the L2 cache holds the step data of (``l2_cache_bytes``), ≥ ``MIN_TILE``.

    Args:
        bytes_per_run: the bytes one step of one run touches.

    Returns:
        The number of runs in a tile.
    """
    return max(MIN_TILE, l2_cache_bytes() // max(1, bytes_per_run))


@functools.lru_cache(maxsize=None)
def l2_cache_bytes(cpu: Path = Path("/sys/devices/system/cpu/cpu0")) -> int:
    """The L2 (data or unified) cache of a CPU in bytes, from Linux's sysfs (``L2_FALLBACK`` elsewhere).

    Args:
        cpu: the CPU's sysfs directory (its ``cache/index*/{level,type,size}``).

    Returns:
        The cache's size in bytes.
    """
    for index in sorted((cpu / "cache").glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
            if level == "2" and kind != "Instruction":
                return int(size.rstrip("KMGkmg")) << {"K": 10, "M": 20, "G": 30}.get(size[-1:].upper(), 0)
        except (OSError, ValueError):
            break
    return L2_FALLBACK


def chunk_slices(K: int, chunks: int) -> list:
    """``chunks`` (at most K) slices of consecutive runs covering 0 … K − 1, their sizes within one.

    Args:
        K: the number of runs.
        chunks: the number of chunks wanted (≥ 1).

    Returns:
        A list of min(chunks, K) slices, in order.
    """
    chunks = min(chunks, K)
    bounds = [K * i // chunks for i in range(chunks + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def run_split(job: Callable, K: int, streams: Sequence[Streams], merge: Callable):
    """``merge`` of ``job(index, *chunk_streams)`` over the chunks of the K runs, each on a worker.

    Args:
        job: (slice of runs, the streams of those runs…) ↦ the chunk's result; it must be picklable
            (Ray's cloudpickle takes closures) and run its chunk alone.
        K: the number of runs.
        streams: the ensemble's streams (each of K runs); after the call they stand where the whole
            ensemble's would.
        merge: the chunks' results, in order ↦ the ensemble's.

    Returns:
        The merged result.
    """
    streams, setting = list(streams), current()
    slices = chunk_slices(K, setting.workers)
    key = setting.checkpoints.next_key() if setting.checkpoints is not None else None
    threads = max(1, (setting.threads or torch.get_num_threads()) // len(slices))
    tasks = [(job, index, [s.subset(index) for s in streams],
              setting.checkpoints.child(f"{key}.c{i}") if key is not None else None, threads)
             for i, index in enumerate(slices)]
    results = _on_ray(tasks, setting.address, len(slices))
    for s, counter in zip(streams, results[0][1]):
        s.counter = counter
    return merge([result for result, _ in results])


def run_chunk(job: Callable, index: slice, streams: list, checkpoints, threads: int):
    """One chunk, in the process that runs it: (its result, its streams' positions after it).

    Args:
        job: (slice of runs, the streams of those runs…) ↦ the chunk's result (``run_split``).
        index: the chunk's runs.
        streams: the chunk's streams (``Streams.subset(index)`` of the ensemble's).
        checkpoints: the chunk's own checkpoint store, or None.
        threads: torch's intra-op threads for the chunk.

    Returns:
        (the job's result, [each stream's ``counter`` after the job]).
    """
    token = _INSIDE.set(True)
    try:
        with using(workers=1, threads=threads, checkpoints=checkpoints):
            return job(index, *streams), [s.counter for s in streams]
    finally:
        _INSIDE.reset(token)


def _on_ray(tasks: list, address, workers: int) -> list:
    try:
        import ray
    except ImportError:
        raise MissingExtra("run.workers > 1 (or --address)", "ray", "distributed") from None

    if not ray.is_initialized():
        quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        ray.init(address=address, **quiet) if address else ray.init(num_cpus=workers, **quiet)
    remote = ray.remote(num_cpus=1)(run_chunk)
    return ray.get([remote.remote(*task) for task in tasks])
