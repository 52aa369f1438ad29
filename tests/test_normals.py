"""Drawing ahead (sde.normals): a helper thread draws the next block's normals while the steps run, and the
integration gets the bits it gets when every block is drawn in place."""
import concurrent.futures
import threading

import pytest
import torch

from games import SGA, GaussianGame
from games.driver import SMALL_WORK, threads
from games.execution import using
from games.random import Streams
from sde import SME, integrate
from sde import normals
from sde.normals import BlockNormals
from tests.test_sde_integrate import Blowup


def gaussian_sme():
    return SME(SGA(GaussianGame(), lr=0.05, batch_size=4), order="1")


def ahead_and_in_place(sde, x0, t_end, dt, **options):
    """The integration with a thread to spare for drawing ahead (two torch threads, steps on one; each draw
    in eight parts, whichever thread makes them), and with one thread allowed (every block drawn in place)."""
    with threads(2), pytest.MonkeyPatch.context() as patch:
        patch.setattr(normals, "PART_NUMBERS", 1)
        ahead = integrate(sde, x0, t_end, dt, **options)
    with using(threads=1):
        in_place = integrate(sde, x0, t_end, dt, **options)
    assert (ahead.metadata["draws_ahead"], in_place.metadata["draws_ahead"]) == (1, 0)
    return ahead, in_place


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_drawing_ahead_gives_the_bits_of_drawing_in_place(compile):
    """48 runs in three tiles, 16-step blocks, recorded every 6 steps (between block ends)."""
    sme = gaussian_sme()
    with using(tile=16):
        ahead, in_place = ahead_and_in_place(sme, sme.game.equilibrium(), 2.0, 0.05, K=48, seed=2, record_every=6,
                                             block=16, compile=compile)
    assert ahead.metadata["tiles"] == 3
    assert torch.equal(ahead.times, in_place.times) and torch.equal(ahead.states, in_place.states)
    assert (ahead.states[-1] - ahead.states[0]).abs().min() > 0  # every run moved


def test_drawing_ahead_finds_the_same_diverged_runs_and_steps():
    """Runs that blow up on the streams' normals: the same runs, steps and records (the blocks are replayed
    from the normals drawn ahead)."""
    x0 = torch.tensor([[1.0], [0.5], [-1.0], [0.0], [0.9]], dtype=torch.float64)
    ahead, in_place = ahead_and_in_place(Blowup(0.1), x0, 4.0, 2.0**-8, seed=1, block=64, record_every=8)
    assert len(in_place.metadata["diverged"]) >= 2
    assert ahead.metadata["diverged"] == in_place.metadata["diverged"]
    assert torch.equal(ahead.states.nan_to_num(7.0), in_place.states.nan_to_num(7.0))


def test_a_block_drawn_ahead_is_the_draw_at_its_counter():
    """Each block, drawn ahead or (after a jump of the counter, as a resumed run makes) in place, equals a fresh
    draw of the streams at that counter; the streams handed in keep their counter."""
    streams = Streams.from_seed(5, 7)
    tiles = [slice(0, 3), slice(3, 7)]
    drawer = BlockNormals(streams, tiles, block=4, m=3, paths_inner=True, compiled=None, draw_threads=1, ahead=1)
    for counter in [0, 1, 2, 7, 8]:  # 7: the block drawn ahead (counter 3) is abandoned
        blocks = drawer.draw(counter, more=True)
        fresh = Streams.from_seed(5, 7)
        fresh.counter = counter
        expected = fresh.normal(4, 3).transpose(0, 1)  # [block, K, m]
        assert torch.equal(torch.cat(blocks, dim=1).to(expected.dtype), expected)
    assert streams.counter == 0


def test_the_steps_thread_makes_the_parts_the_helper_has_not_begun(monkeypatch):
    """With the helper held up, the steps' thread makes every part of the draw ahead itself, and the block is
    still the draw at its counter."""
    monkeypatch.setattr(normals, "PART_NUMBERS", 1)
    streams = Streams.from_seed(2, 6)
    blocks = BlockNormals(streams, [slice(0, 2), slice(2, 6)], block=4, m=2, paths_inner=False, compiled=None,
                          draw_threads=1, ahead=1)
    assert len(blocks.parts) == 4  # a run draws 8 normals, 4 Box–Muller pairs: one pair a part
    release = threading.Event()
    blocks.draw(0, more=False)
    normals._helper().submit(release.wait)  # the helper is busy until released
    try:
        blocks.pending = (1, 1, [normals._helper().submit(blocks._draw, 1, 1, 1, part) for part in blocks.parts])
        drawn = blocks.draw(1, more=False)
    finally:
        release.set()
    fresh = Streams.from_seed(2, 6)
    fresh.counter = 1
    assert torch.equal(torch.cat(drawn, dim=1).to(torch.float64), fresh.normal(4, 2).transpose(0, 1))


def test_an_error_in_a_draw_ahead_reaches_the_steps_thread():
    blocks = BlockNormals(Streams.from_seed(0, 4), [slice(0, 4)], block=2, m=2, paths_inner=False, compiled=None,
                          draw_threads=1, ahead=1)
    real, helpers = blocks._draw, []

    def draw(counter, fill, count, pairs=None):
        if counter == 1:
            helpers.append(threading.current_thread().name)
            raise MemoryError("no room for the next block")
        real(counter, fill, count, pairs)
    blocks._draw = draw
    blocks.draw(0, more=True)  # drawn in place; counter 1 goes to the helper
    concurrent.futures.wait(blocks.pending[2])  # the helper has made (and failed) it: none is left to this thread
    with pytest.raises(MemoryError, match="next block"):
        blocks.draw(1, more=False)
    assert helpers and helpers[0] != threading.current_thread().name


def test_a_tiled_ensemble_steps_on_one_thread_and_draws_ahead():
    """12,000 paths of the Gaussian SME touch more numbers per step than one thread is for (SMALL_WORK), but in
    tiles of 6000 each call is short: the steps then run on one thread, and the other draws ahead."""
    sme = gaussian_sme()
    assert 12_000 * (sme.d + sme.m) >= SMALL_WORK > 6000 * (sme.d + sme.m)
    with threads(2):
        with using(tile=6000):
            tiled = integrate(sme, sme.game.equilibrium(), 0.1, 0.05, K=12_000, seed=0, block=2)
        with using(tile=10**9):
            whole = integrate(sme, sme.game.equilibrium(), 0.1, 0.05, K=12_000, seed=0, block=2)
    assert (tiled.metadata["tiles"], tiled.metadata["draws_ahead"]) == (2, 1)
    assert (whole.metadata["tiles"], whole.metadata["draws_ahead"]) == (1, 0)  # two threads for the steps
    assert torch.equal(tiled.states, whole.states)
