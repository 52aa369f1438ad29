"""The normals of a fused integration, one block of steps at a time, the next block drawn while this one steps.

``integrate`` draws the normals of ``block`` steps at once, one draw of the per-path ``Streams`` for each
tile of paths, and then runs the block's steps on them. On a CPU with a thread to spare (the steps of a
small ensemble run on one), a helper thread draws the next block's normals into a second buffer while
the steps run, in parts (ranges of its Box–Muller pairs, ``Streams.normal_at``); when the steps reach
the next block first, they make the parts the helper has not begun. The draw is the one the steps'
thread would make at the next block (the same counter, tiles and kernel), so drawing ahead changes when
the numbers are made, never what they are. Compiled kernels release the GIL while they run
(``games.compiled``), and so do torch's eager ones, so that the two threads overlap.
"""
from __future__ import annotations

import atexit
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import torch

from games.driver import threads
from games.execution import available_memory
from games.random import Streams

PARTS = 8  # the most parts of a draw ahead: the steps' thread makes those the helper has not begun
PART_NUMBERS = 1 << 20  # normals in a part at least: long enough that a call's fixed cost does not count


class BlockNormals:
    """Each tile's normals for one block of steps, [block, K_tile, m], from the draw at a given counter of the
    streams, optionally drawing the next block ahead on a helper thread."""

    def __init__(self, streams: Streams, tiles: list, block: int, m: int, paths_inner: bool, compiled: Optional[bool],
                 draw_threads: int, ahead: int = 0):
        """
        Args:
            streams: the ensemble's per-path streams (their counter is not changed here).
            tiles: the slices of paths, each drawn into a buffer of its own.
            block: the steps per draw.
            m: the normals per path and step.
            paths_inner: store the paths innermost ([block·m, K_tile] buffers, for compiled steps).
            compiled: draw through the compiled kernel (None: the streams' setting).
            draw_threads: torch's threads for a draw on the caller's thread.
            ahead: torch's threads for drawing the next block on a helper thread while this one steps (two sets
                of buffers); 0: every block is drawn on the caller's thread when the steps reach it.
        """
        self.streams = [streams.subset(tile) for tile in tiles]  # drawn from at a given counter (normal_at)
        self.block, self.m, self.paths_inner, self.compiled = block, m, paths_inner, compiled
        self.draw_threads, self.ahead, self.pending = draw_threads, ahead, None
        shapes = [(block * m, t.stop - t.start) if paths_inner else (t.stop - t.start, block * m) for t in tiles]
        self.buffers = [[torch.empty(shape, dtype=streams.buffer_dtype, device=streams.device) for shape in shapes]
                        for _ in range(2 if ahead else 1)]
        half, parts = (block * m + 1) // 2, parts_of(streams.K * block * m) if ahead else 1
        cuts = sorted({half * p // parts for p in range(parts + 1)})
        self.parts = [range(a, b) for a, b in zip(cuts, cuts[1:])]  # of the Box–Muller pairs

    def draw(self, counter: int, more: bool) -> list:
        """Each tile's normals of the draw at ``counter``, [block, K_tile, m] views of a buffer that holds them
        until the second next call; with ``more`` (another block follows) the helper starts on draw counter + 1.
        Of a draw begun ahead, this thread makes the parts the helper has not begun, from the last one back.

        Args:
            counter: the streams' counter before the draw (a draw increments it by one).
            more: whether the steps will reach the next block.

        Returns:
            The normals, one tensor per tile.
        """
        pending, self.pending, fill = self.pending, None, 0
        if pending is not None and pending[0] == counter:
            _, fill, futures = pending
            for part, future in reversed(list(zip(self.parts, futures))):
                if future.cancel():
                    self._draw(counter, fill, 1, part)  # one thread: the helper may be drawing beside it
            for future in futures:
                if not future.cancelled():
                    future.result()
        else:
            for future in pending[2] if pending is not None else []:  # a draw for another counter: let it finish
                if not future.cancel():  # before its buffers are written again
                    future.exception()
            self._draw(counter, fill, self.draw_threads)
        if self.ahead and more:
            self.pending = (counter + 1, 1 - fill, [_helper().submit(self._draw, counter + 1, 1 - fill, self.ahead, part)
                                                    for part in self.parts])
        return [self._view(buffer) for buffer in self.buffers[fill]]

    def _draw(self, counter: int, fill: int, count: int, pairs: Optional[range] = None) -> None:
        """Each tile's draw at ``counter`` (its Box–Muller ``pairs``; None: all), into buffer set ``fill``, on
        ``count`` torch threads."""
        with threads(count):
            for streams, buffer in zip(self.streams, self.buffers[fill]):
                streams.normal_at(counter, self.block, self.m, out=buffer, pairs=pairs, compiled=self.compiled,
                                  paths_inner=self.paths_inner)

    def _view(self, buffer: torch.Tensor) -> torch.Tensor:
        """A tile's buffer as its block of normals [block, K_tile, m]."""
        if self.paths_inner:
            return buffer.view(self.block, self.m, -1).transpose(1, 2)
        return buffer.view(-1, self.block, self.m).transpose(0, 1)


def parts_of(numbers: int) -> int:
    """The parts a draw ahead of ``numbers`` normals is made in: one per ``PART_NUMBERS``, at most ``PARTS``."""
    return max(1, min(PARTS, numbers // PART_NUMBERS))


def ahead_fits(streams: Streams, block: int, m: int) -> bool:
    """Whether a second set of block buffers (the draw ahead) takes at most a quarter of the free memory.

    Args:
        streams: the ensemble's streams (K, device and buffer dtype).
        block: the steps per draw.
        m: the normals per path and step.

    Returns:
        True where it fits, or where the free memory is unknown.
    """
    free = available_memory(streams.device)
    return free is None or 4 * streams.K * block * m * streams.buffer_dtype.itemsize <= free


@functools.lru_cache(maxsize=1)
def _helper() -> ThreadPoolExecutor:
    """The process's helper thread for drawing ahead."""
    executor = ThreadPoolExecutor(1, thread_name_prefix="gandyn-draws")
    atexit.register(executor.shutdown, wait=False, cancel_futures=True)
    return executor
