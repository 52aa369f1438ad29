"""Per-run random streams: run k's numbers depend only on its own seed and on the draw count.

A counter-based generator (a 32-bit integer hash of seed, draw and element index, in the spirit of
Philox/Threefry) gives every run of an ensemble its own stream without a Python loop over runs, so
that an ensemble of K runs equals K single runs with the same seeds, exactly, and the same seed gives
the same numbers on every device. Normals come from Box–Muller on 32-bit uniforms in float32
arithmetic (then cast to the streams' dtype), so their tails are cut at about 6.7 standard deviations.
"""
from __future__ import annotations

import functools
import math

from typing import Optional

import torch

from .compiled import options_for, own_code
from .execution import check_memory

_MASK = 0xFFFFFFFF
STREAM_BYTES = 48  # a run's seed words and the temporaries of deriving them
_GOLDEN = 0x9E3779B9
_ODD = (0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F)


def _mix32(h: torch.Tensor) -> torch.Tensor:
    """lowbias32 (C. Wellons): a bijective avalanche hash of 32-bit values held in int64."""
    h = h ^ (h >> 16)
    h = (h * 0x7FEB352D) & _MASK
    h = h ^ (h >> 15)
    h = (h * 0x846CA68B) & _MASK
    return h ^ (h >> 16)


def _mix32_int(h: int) -> int:
    """lowbias32 on a Python integer."""
    h ^= h >> 16
    h = (h * 0x7FEB352D) & _MASK
    h ^= h >> 15
    h = (h * 0x846CA68B) & _MASK
    return h ^ (h >> 16)


def run_seeds(seed: int, K: int) -> torch.Tensor:
    """The K per-run 63-bit seeds of an ensemble started from one integer ``seed``; their low
    words are distinct, so no two runs of an ensemble share a stream.

    Args:
        seed: the ensemble's seed, an integer (its low 64 bits are used).
        K: the number of runs.

    Returns:
        The seeds, int64 of shape [K]; run k's depends on (seed, k) alone.
    """
    lo = _mix32_int((seed & _MASK) ^ _ODD[0])
    hi = _mix32_int(((seed >> 32) & _MASK) ^ _mix32_int(lo + _ODD[1])) & 0x7FFFFFFF
    k = torch.arange(K, dtype=torch.int64)
    return (hi << 32) | _mix32((lo + _GOLDEN * (k + 1)) & _MASK)


def _bits(lo: torch.Tensor, hi: torch.Tensor, n: int, paths_inner: bool = False) -> torch.Tensor:
    """[K, n] 32-bit integers of draws keyed (lo, hi) [K] ([n, K] if ``paths_inner``): element i is one
    lowbias32 round of the Weyl sequence lo + (i+1)·φ, keyed by hi. int64, in [0, 2³²)."""
    return _bits32(_as_int32(lo), _as_int32(hi), _weyl(n, lo.device), paths_inner).to(torch.int64) & _MASK


# The draws' hash runs on 32-bit words held in int32 (two's complement), so that vectorised kernels use
# 32-bit lanes and native 32-bit products: a wrapping int32 product keeps the low 32 bits of the
# product, and an arithmetic right shift masked to its low 32 − s bits is the logical shift. The
# numbers are those of the int64 formulation (``_mix32``) bit for bit.
def _signed32(c: int) -> int:
    """A 32-bit word as the int32 value with the same bits."""
    c &= _MASK
    return c - (1 << 32) if c & 0x80000000 else c


def _as_int32(x: torch.Tensor) -> torch.Tensor:
    """int64 words in [0, 2³²) as int32 with the same bits (no reliance on narrowing casts wrapping)."""
    return (x - ((x & 0x80000000) << 1)).to(torch.int32)


def _mix32_i32(h: torch.Tensor) -> torch.Tensor:
    """lowbias32 of 32-bit words held in int32; overwrites ``h`` (a fresh tensor) and returns it."""
    h ^= (h >> 16).bitwise_and_(0xFFFF)
    h *= 0x7FEB352D
    h ^= (h >> 15).bitwise_and_(0x1FFFF)
    h *= _signed32(0x846CA68B)
    h ^= (h >> 16).bitwise_and_(0xFFFF)
    return h


@functools.lru_cache(maxsize=64)
def _weyl(n: int, device: torch.device) -> torch.Tensor:
    """(i+1)·φ mod 2³², i < n, as int32 words: a table, not an int32 arange times φ, whose overflow
    the C++ of a compiled kernel may fold at compile time (undefined behaviour: gcc drops the code)."""
    return _as_int32((torch.arange(1, n + 1, device=device, dtype=torch.int64) * _GOLDEN) & _MASK)


def _bits32(lo: torch.Tensor, hi: torch.Tensor, weyl: torch.Tensor, paths_inner: bool = False) -> torch.Tensor:
    """``_bits`` as int32 words (the same bits), of keys (lo, hi) given as int32 words, for the n = len(weyl)
    elements of ``_weyl(n)``."""
    lo, hi, weyl = (lo, hi, weyl[:, None]) if paths_inner else (lo[:, None], hi[:, None], weyl)
    return _mix32_i32((lo + weyl).bitwise_xor_(hi))


def _float32(h: torch.Tensor) -> torch.Tensor:
    """The unsigned values of int32 words, rounded to float32 once (as a cast of the int64 value is):
    the high and low 16 bits convert exactly, and the float32 sum rounds their exact sum."""
    high = (h >> 16).bitwise_and_(0xFFFF).to(torch.float32).mul_(65536.0)
    return high.add_(h.bitwise_and(0xFFFF).to(torch.float32))


def _normal(lo: torch.Tensor, hi: torch.Tensor, n: int, paths_inner: bool = False,
            dtype: torch.dtype = torch.float64, compiled: bool = False) -> torch.Tensor:
    """[K, n] normals of draws keyed (lo, hi) ([n, K] if ``paths_inner``: the same numbers, stored
    with the paths innermost), by Box–Muller on pairs (i, i + ⌈n/2⌉) of 32-bit uniforms: the first
    half takes the cosines, the second the sines. The arithmetic is float32 (faster than float64;
    the uniforms carry 32 bits), then cast to ``dtype``: the radius is relatively
    exact except below about 3·10⁻⁴, where u₁'s rounding near 1 quantises it."""
    K = lo.shape[0]
    out = torch.empty((n, K) if paths_inner else (K, n), dtype=dtype, device=lo.device)
    return _normal_into(out, lo, hi, n, paths_inner, compiled)


def _normal_into(out: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, n: int, paths_inner: bool,
                 compiled: bool = False, pairs: Optional[range] = None) -> torch.Tensor:
    """``_normal`` written into ``out``: a buffer reused across draws costs no fresh pages. ``compiled`` runs
    the torch.compile'd kernel, which writes both halves in one pass. ``pairs`` (a range of the ⌈n/2⌉
    Box–Muller pairs) writes only their elements, i and i + ⌈n/2⌉ for i in ``pairs``: the numbers of the
    whole draw, so that parts of one draw can be made apart. The keys may be given as int32 words."""
    half, dim = (n + 1) // 2, 0 if paths_inner else 1
    first, stop = (0, half) if pairs is None else (pairs.start, pairs.stop)
    if pairs is not None and (pairs.step != 1 or not 0 <= first < stop <= half):
        raise ValueError(f"pairs must be a range of consecutive pairs within 0 … {half}, got {pairs!r}")
    cos_out = out.narrow(dim, first, stop - first)
    sin_out = out.narrow(dim, half + first, max(0, min(stop, n - half) - first))
    box_muller = _compiled_box_muller(cos_out.shape, sin_out.shape, out.dtype, out.device) if compiled else _box_muller_into
    lo, hi = (w if w.dtype == torch.int32 else _as_int32(w) for w in (lo, hi))
    box_muller(cos_out, sin_out, lo, hi, _weyl_pairs(half, first, stop, lo.device), paths_inner)
    return out


@functools.lru_cache(maxsize=64)
def _weyl_pairs(half: int, first: int, stop: int, device: torch.device) -> torch.Tensor:
    """The Weyl words of pairs first … stop − 1 of a draw of ``half`` pairs: (i+1)·φ for their first elements
    i, then for their partners i + half (``_weyl(2·half)`` itself for all the pairs)."""
    weyl = _weyl(2 * half, device)
    if (first, stop) == (0, half):
        return weyl
    return torch.cat([weyl[first:stop], weyl[half + first : half + stop]])


def _box_muller_into(cos_out: torch.Tensor, sin_out: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
                     weyl: torch.Tensor, paths_inner: bool) -> None:
    """The cosine half (``half`` normals per run) and the sine half (the first ``sin_out.shape[dim]``
    of another ``half``) of ``_normal``, each written into its own buffer: separate buffers let the
    compiled kernel store both, cast to their dtype (exactly), from one loop."""
    half, dim = weyl.shape[0] // 2, 0 if paths_inner else 1
    b1, b2 = _float32(_bits32(lo, hi, weyl, paths_inner)).split(half, dim=dim)
    r = torch.sqrt(-2.0 * torch.log((b1 + 0.5) * 2.0**-32))
    angle = (2 * math.pi * 2.0**-32) * (b2 + 0.5)
    cos_out.copy_(r * torch.cos(angle))
    rest = sin_out.shape[dim]  # half − 1 when n is odd: the last sine is dropped
    sin_out.copy_(r.narrow(dim, 0, rest) * torch.sin(angle.narrow(dim, 0, rest)))


@functools.lru_cache(maxsize=None)
def _compiled_box_muller(cos_shape, sin_shape, dtype, device):
    """``_box_muller_into`` torch.compile'd for buffers of these shapes, dtype and device, on its own code
    object (``games.compiled``): one compilation per shape, never the eager fallback."""
    return torch.compile(own_code(_box_muller_into), dynamic=False, options=options_for(device))


class Streams:
    """Independent random streams for K runs; every draw returns a tensor of shape [K, *shape].

    All runs make the same sequence of draws, so a draw is identified by a counter shared by the
    ensemble; run k's numbers are a hash of (seed_k, counter, index).
    """

    def __init__(self, seeds, device="cpu", dtype=torch.float64, compiled: bool = False):
        """The streams of the runs with ``seeds``, at the start of their sequence.

        Args:
            seeds: one non-negative 63-bit integer seed per run (K ≥ 1 of them; ``run_seeds``).
            device: where the draws are made and returned.
            dtype: the floating-point type of uniform and normal draws.
            compiled: draw normals through the torch.compile'd kernel by default (``normal``).
        """
        seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
        if seeds.numel() == 0:
            raise ValueError("Streams needs at least one run seed")
        self.seeds = seeds.cpu()
        self.device = torch.device(device)
        self.dtype = dtype
        self.compiled = bool(compiled)  # normals through the torch.compile'd kernel (same numbers to rounding)
        self.counter = 0
        self._keys = {}  # counter ↦ the key words of the draw made there, as int32 (normal_at)
        seeds = seeds.to(self.device)
        self._lo, self._hi = seeds & _MASK, (seeds >> 32) & _MASK

    @classmethod
    def from_seed(cls, seed: int, K: int, device="cpu", dtype=torch.float64, compiled: bool = False) -> "Streams":
        """The streams of K runs whose seeds derive from ``seed`` (``run_seeds``).

        Args:
            seed: the ensemble's seed.
            K: the number of runs.
            device: where the draws are made and returned.
            dtype: the floating-point type of uniform and normal draws.
            compiled: draw normals through the torch.compile'd kernel by default.

        Returns:
            The streams; run k's numbers are the same whatever K ≥ k + 1 is.

        Raises:
            ConfigError: if K runs' streams alone would not fit in ``device``'s free memory.
        """
        check_memory(K, STREAM_BYTES, "their random streams alone", device)
        return cls(run_seeds(seed, K), device=device, dtype=dtype, compiled=compiled)

    @property
    def K(self) -> int:
        return self.seeds.numel()

    def subset(self, index) -> "Streams":
        """Streams of the runs ``index`` alone, at the same position in their sequence."""
        sub = Streams(self.seeds[index], device=self.device, dtype=self.dtype, compiled=self.compiled)
        sub.counter = self.counter
        return sub

    def _key(self) -> tuple:
        """The next draw's key words (lo', hi') [K] each: bijective in each seed word, so distinct seeds
        never share a draw's stream."""
        self.counter += 1
        return self._key_at(self.counter)

    def _key_at(self, draw: int) -> tuple:
        """The key words of draw number ``draw`` (the first draw is number 1)."""
        c = draw * _GOLDEN
        lo = _mix32((self._lo + _mix32_int((c + _ODD[0]) & _MASK)) & _MASK)
        hi = _mix32(((self._hi ^ lo) + _mix32_int((c + _ODD[1]) & _MASK)) & _MASK)
        return lo, hi

    def _bits(self, n: int) -> torch.Tensor:
        """[K, n] independent 32-bit integers for the next draw."""
        return _bits(*self._key(), n)

    def uniform(self, *shape) -> torch.Tensor:
        """Uniform numbers in (0, 1), shape [K, *shape]."""
        n = math.prod(shape)
        u = (self._bits(n).to(torch.float64) + 0.5) / 2.0**32
        return u.to(self.dtype).reshape(self.K, *shape)

    @property
    def buffer_dtype(self) -> torch.dtype:
        """The narrowest dtype that holds the normals in the streams' dtype exactly: float32 for float32
        and float64 streams (Box–Muller runs in float32, so the cast to float64 is exact; half the
        memory traffic for a loop of draws), else the streams' dtype."""
        return torch.float32 if self.dtype in (torch.float32, torch.float64) else self.dtype

    def normal(self, *shape, compiled: Optional[bool] = None, paths_inner: bool = False,
               out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Standard normal numbers, shape [K, *shape] (Box–Muller). ``compiled`` (default: the
        streams' own setting) draws the same numbers, to float32 rounding in log, cos and sin,
        through one fused torch.compile'd kernel; ``paths_inner`` stores the same numbers with the
        runs as the innermost dimension (a permuted view), the layout compiled ensemble steps read
        fastest; ``out`` (contiguous, [prod(shape), K] if ``paths_inner`` else [K, prod(shape)], of
        ``buffer_dtype``) receives them, so that a loop of draws reuses one buffer.

        Args:
            *shape: the shape of each run's draw.
            compiled: use the compiled kernel (None: the streams' setting).
            paths_inner: store the runs innermost; the result is then a permuted view.
            out: a buffer to write the numbers into (None: a new tensor of the streams' dtype).

        Returns:
            N(0, 1) numbers, shape [K, *shape], independent across runs, elements and draws.
        """
        n = math.prod(shape)
        lo, hi = self._key()
        compiled = self.compiled if compiled is None else compiled
        if out is None:
            z = _normal(lo, hi, n, paths_inner, self.dtype, compiled)
        else:
            self._check_buffer(out, n, paths_inner)
            z = _normal_into(out, lo, hi, n, paths_inner, compiled)
        return z.reshape(*shape, self.K).movedim(-1, 0) if paths_inner else z.reshape(self.K, *shape)

    def normal_at(self, counter: int, *shape, out: torch.Tensor, pairs: Optional[range] = None,
                  compiled: Optional[bool] = None, paths_inner: bool = False) -> torch.Tensor:
        """The normals ``normal(*shape, out=out)`` draws when the streams stand at ``counter``, without moving
        them, so that several threads may draw from one set of streams. ``pairs`` writes only part of the draw:
        its Box–Muller pairs in that range, elements i and i + ⌈n/2⌉ of the n = prod(shape) (the rest of
        ``out`` is left as it was), so that parts made apart fill ``out`` with the whole draw. The key words of
        the last few counters are kept, so that a part costs no more than its numbers.

        Args:
            counter: the streams' counter before the draw.
            *shape: the shape of each run's draw.
            out: the buffer, as for ``normal``.
            pairs: the range of pairs to write, within 0 … ⌈n/2⌉ (None: all).
            compiled: use the compiled kernel (None: the streams' setting).
            paths_inner: ``out`` holds the runs innermost ([n, K]).

        Returns:
            ``out``.
        """
        self._check_buffer(out, math.prod(shape), paths_inner)
        keys = self._keys.get(counter)
        if keys is None:
            keys = tuple(_as_int32(w) for w in self._key_at(counter + 1))
            self._keys = {**dict(list(self._keys.items())[-3:]), counter: keys}  # replaced whole: thread-safe
        compiled = self.compiled if compiled is None else compiled
        return _normal_into(out, *keys, math.prod(shape), paths_inner, compiled, pairs)

    def _check_buffer(self, out: torch.Tensor, n: int, paths_inner: bool) -> None:
        """Raise ValueError unless ``out`` can hold a draw of n normals per run: contiguous, of ``buffer_dtype``,
        [n, K] if ``paths_inner`` else [K, n]."""
        expected = (n, self.K) if paths_inner else (self.K, n)
        if tuple(out.shape) != expected or out.dtype != self.buffer_dtype or not out.is_contiguous():
            raise ValueError(f"out must be a contiguous {self.buffer_dtype} tensor of shape {expected}, "
                             f"got {out.dtype} {tuple(out.shape)}")

    def randint(self, high: int, *shape) -> torch.Tensor:
        """Integers uniform in {0, …, high − 1}, shape [K, *shape].

        Args:
            high: the number of values, 1 ≤ high ≤ 2³² (a 32-bit word modulo ``high``).
            *shape: the shape of each run's draw.

        Returns:
            int64 integers, shape [K, *shape].
        """
        n = math.prod(shape)
        return (self._bits(n) % high).reshape(self.K, *shape)

    def state_dict(self) -> dict:
        return {"seeds": self.seeds.tolist(), "counter": self.counter}
