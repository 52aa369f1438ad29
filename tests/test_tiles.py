"""Tiles: an ensemble advanced tile of runs after tile of runs inside one process (games.chunks.tiles,
sde.integrate) gives the bits of the whole ensemble at once."""
import math

import pytest
import torch

from games import SGA, GaussianGame, chunks
from games.errors import ConfigError
from games.execution import using
from gandyn.config import RunConfig
from sde import SME, euler_maruyama, integrate
from tests.test_sde_integrate import Blowup

UNTILED = 10**9  # runs per tile: more than any test's ensemble


def gaussian_sme():
    return SME(SGA(GaussianGame(), lr=0.05, batch_size=4), order="1")


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_tiles_give_the_bits_of_the_whole_ensemble(compile):
    """48 runs in three tiles of 16, recorded every 6 steps (between the 16-step blocks), against one tile."""
    sme = gaussian_sme()
    options = dict(K=48, seed=2, record_every=6, block=16, compile=compile)
    with using(tile=16):
        tiled = integrate(sme, sme.game.equilibrium(), 2.0, 0.05, **options)
    with using(tile=UNTILED):
        whole = integrate(sme, sme.game.equilibrium(), 2.0, 0.05, **options)
    assert (tiled.metadata["tiles"], whole.metadata["tiles"]) == (3, 1)
    assert torch.equal(tiled.times, whole.times) and torch.equal(tiled.states, whole.states)
    assert (tiled.states[-1] - tiled.states[0]).abs().min() > 0  # every run moved


def test_tiles_find_the_same_diverged_runs_and_steps():
    dt, T = 2.0**-8, 4.0
    x0 = torch.tensor([[1.0], [0.5], [-1.0], [0.0], [0.9]])
    inc = torch.randn(round(T / dt), 5, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * math.sqrt(dt)
    with using(tile=2):
        tiled = euler_maruyama(Blowup(0.1), x0, T, dt, increments=inc, block=64, record_every=8)
    with using(tile=UNTILED):
        whole = euler_maruyama(Blowup(0.1), x0, T, dt, increments=inc, block=64, record_every=8)
    assert tiled.metadata["tiles"] == 3 and len(whole.metadata["diverged"]) >= 2  # tiles of at most 2 runs
    assert tiled.metadata["diverged"] == whole.metadata["diverged"]
    assert torch.equal(tiled.states.nan_to_num(7.0), whole.states.nan_to_num(7.0))


def test_the_number_of_tiles_follows_the_tile_size_and_the_setting():
    assert chunks.tiles(100, 96) == 1  # a small ensemble is one tile
    with using(tile=30):
        assert chunks.tiles(100, 96) == 4  # tiles of at most 30 runs
        assert chunks.tiles(100, 96, device="cuda") == 1  # a GPU takes the whole ensemble
        assert chunks.chunk_slices(100, 3) == [slice(0, 33), slice(33, 66), slice(66, 100)]
    with using(tile=30, workers=2):
        assert chunks.tiles(100, 96) == 1  # workers split it instead
    size = chunks.tile_size(96)
    assert size == max(chunks.MIN_TILE, chunks.l2_cache_bytes() // 96)
    assert chunks.tiles(2 * size, 96) == 2 and chunks.tiles(2 * size + 1, 96) == 3  # at most a tile_size each
    wide = chunks.l2_cache_bytes()  # runs so wide that a tile would be one run: tiles of MIN_TILE, never fewer runs
    assert chunks.tiles(2 * chunks.MIN_TILE, wide) == 2 and chunks.tiles(2 * chunks.MIN_TILE - 1, wide) == 1


def test_the_l2_cache_size_is_read_from_sysfs(tmp_path):
    for index, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"),
                                                 ("2", "Unified", "2048K"), ("3", "Unified", "32768K")]):
        folder = tmp_path / "cache" / f"index{index}"
        folder.mkdir(parents=True)
        for name, text in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(text + "\n")
    assert chunks.l2_cache_bytes(tmp_path) == 2 << 20
    assert chunks.l2_cache_bytes(tmp_path / "elsewhere") == chunks.L2_FALLBACK


def test_run_tile_is_a_config_key():
    assert RunConfig(tile=5000).execution()["tile"] == 5000
    assert RunConfig().execution()["tile"] is None  # 0: from the cache
    with pytest.raises(ConfigError, match="run.tile"):
        RunConfig(tile=-1)
