"""Runs that resume after any kill, and ensembles split over worker processes, give the bits of one
uninterrupted run in one process."""
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from games import SGA, GaussianGame, MixtureGAN, Player
from games.checkpoint import Checkpoints
from games.execution import using
from games.random import Streams
from games.schedules import Table
from gandyn.rundir import first_difference
from sde import SME, ReferenceBatchGame, coupled_chain, integrate

TIMING = ("wall_time_s",)  # the only keys that may differ between two runs of the same configuration


def _gandyn(*args) -> list:
    return [sys.executable, "-m", "gandyn.cli", *args]


def _summary(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    return {k: v for k, v in summary.items() if k not in TIMING}


def _arrays(out: Path) -> dict:
    found = {}
    for path in sorted((out / "trajectories").glob("*.npz")):
        with np.load(path) as data:
            found.update({f"{path.stem}/{k}": data[k] for k in data.files})
    return found


def _assert_same_results(a: Path, b: Path) -> None:
    assert _summary(a) == _summary(b)
    arrays_a, arrays_b = _arrays(a), _arrays(b)
    assert arrays_a.keys() == arrays_b.keys()
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)


ENTRIES = [  # (entry, options, kills): small, with several loops, and trajectories on disk for overview
    ("svag", ["--quick", "--set", "run.paths=2000"], 7),
    ("overview", ["--quick", "--set", "run.paths=32", "--set", "sga.steps=1000"], 3),
]


@pytest.mark.slow
@pytest.mark.parametrize("entry,options,kills", ENTRIES)
def test_killed_runs_resume_to_the_same_results(tmp_path, entry, options, kills):
    """SIGKILL at seeded random moments, then the same command again, until it finishes: the summary and
    trajectories are those of an uninterrupted run, and the reruns went on from what was saved."""
    common = [*options, "--set", "run.checkpoint_every=0.2", "--quiet"]
    whole = tmp_path / "whole"
    start = time.perf_counter()
    subprocess.run(_gandyn("reproduce", entry, *common, "--out", str(whole)), check=True, timeout=600)
    duration = time.perf_counter() - start
    killed, rng = tmp_path / "killed", random.Random(f"{entry}-kills")
    checkpoints = killed / ".gandyn" / "checkpoints"
    done, attempts = 0, 0
    while done < kills:
        attempts += 1
        assert attempts <= 4 * kills, "the runs kept finishing before they were killed"
        saved = _saves(checkpoints)
        process = subprocess.Popen(_gandyn("reproduce", entry, *common, "--out", str(killed)),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_a_save(checkpoints, saved, process)  # each attempt gets somewhere, then dies soon after
        time.sleep(rng.uniform(0.0, 0.03) * duration)
        process.send_signal(signal.SIGKILL)
        if process.wait() == 0 or _finished(killed):  # the save seen was the last one and the run ended (or
            shutil.rmtree(killed)  # marked itself finished) before the kill: start over, so that all the kills
            done = 0  # counted land in one unfinished run
            continue
        assert process.returncode == -signal.SIGKILL, f"the run failed with status {process.returncode}"
        done += 1
    log = (checkpoints / "resume.log").read_text()
    assert "resumed at step" in log or ": finished" in log  # later attempts took up saved work
    subprocess.run(_gandyn("reproduce", entry, *common, "--out", str(killed)), check=True, timeout=600)
    _assert_same_results(whole, killed)
    held = json.loads((killed / ".gandyn" / "run.json").read_text())
    assert held["finished"] and held["entry"] == entry
    assert not (killed / ".gandyn" / "checkpoints").exists()  # a finished run drops its checkpoints


def _finished(out: Path) -> bool:
    """Whether the run in ``out`` has marked itself finished (it may be killed after that, on its way out)."""
    held = out / ".gandyn" / "run.json"
    return held.exists() and json.loads(held.read_text()).get("finished", False)


def _saves(directory: Path) -> dict:
    """{checkpoint file: its modification time} in ``directory``."""
    return {p.name: p.stat().st_mtime_ns for p in directory.glob("*.pt")} if directory.exists() else {}


def _wait_for_a_save(directory: Path, before: dict, process, timeout: float = 300.0) -> None:
    """Until a checkpoint in ``directory`` is new or rewritten since ``before``."""
    deadline = time.monotonic() + timeout
    while _saves(directory) == before:
        assert process.poll() is None, "the run ended before saving a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint was saved"
        time.sleep(0.02)


def test_a_killed_loop_resumes_within_itself_to_the_same_bits(tmp_path):
    """The driver's checkpoint of a loop cut short (as a kill would leave it) resumes to the bits of a whole
    run, for training (its optimiser state and streams) and the fused integrator (its block of normals)."""
    game = GaussianGame()
    sga = SGA(game, lr=0.05, batch_size=4, gen=_adam())
    whole_train = sga.run(300, K=6, seed=3, record_every=7)
    sme = SME(SGA(game, lr=0.05, batch_size=4), order="1")
    whole_sde = integrate(sme, game.equilibrium(), 3.0, 0.01, K=6, seed=4, record_every=9, block=16)

    store = Checkpoints(tmp_path, every=0.0)
    with using(checkpoints=store), _killed_after_steps(130):
        with pytest.raises(_Killed):
            sga.run(300, K=6, seed=3, record_every=7)
    with using(checkpoints=Checkpoints(tmp_path, every=0.0)):
        resumed = sga.run(300, K=6, seed=3, record_every=7)
    _assert_same_trajectory(whole_train, resumed)
    assert "resumed at step 130 of 300" in (tmp_path / "resume.log").read_text()

    sde_store = tmp_path / "sde"
    with using(checkpoints=Checkpoints(sde_store, every=0.0)), _killed_after_steps(150):
        with pytest.raises(_Killed):
            integrate(sme, game.equilibrium(), 3.0, 0.01, K=6, seed=4, record_every=9, block=16)
    with using(checkpoints=Checkpoints(sde_store, every=0.0)):
        resumed = integrate(sme, game.equilibrium(), 3.0, 0.01, K=6, seed=4, record_every=9, block=16)
    _assert_same_trajectory(whole_sde, resumed)
    assert "resumed at step 160 of 300" in (sde_store / "resume.log").read_text()  # the first block end past 150


def test_a_killed_compiled_integration_resumes_to_the_same_bits(tmp_path):
    """The compiled integrator, eight steps to a call and three tiles of runs, cut at a block end and resumed."""
    game = GaussianGame()
    sme = SME(SGA(game, lr=0.05, batch_size=4), order="1")
    options = dict(K=6, seed=4, record_every=8, block=16, compile=True)
    with using(tile=2):
        whole = integrate(sme, game.equilibrium(), 3.0, 0.01, **options)
    with using(checkpoints=Checkpoints(tmp_path, every=0.0), tile=2), _killed_after_steps(150):
        with pytest.raises(_Killed):
            integrate(sme, game.equilibrium(), 3.0, 0.01, **options)
    with using(checkpoints=Checkpoints(tmp_path, every=0.0), tile=2):
        resumed = integrate(sme, game.equilibrium(), 3.0, 0.01, **options)
    assert (whole.metadata["fused_steps"], whole.metadata["tiles"]) == (8, 3)
    _assert_same_trajectory(whole, resumed)
    assert "resumed at step 160 of 300" in (tmp_path / "resume.log").read_text()


def test_a_finished_loop_is_loaded_with_its_streams_where_they_were(tmp_path):
    """A rerun loads a finished loop instead of running it, and the streams it drew from stand where the
    run left them, so that what follows draws the same numbers."""
    sga = SGA(GaussianGame(), lr=0.05, batch_size=4)
    streams = Streams.from_seed(0, 5)
    first = sga.run(50, streams=streams, record_every=5)
    after = streams.normal(3)
    with using(checkpoints=Checkpoints(tmp_path)):
        saved = sga.run(50, streams=Streams.from_seed(0, 5), record_every=5)
    again = Streams.from_seed(0, 5)
    with using(checkpoints=Checkpoints(tmp_path)), _killed_after_steps(0):  # any step taken would raise
        loaded = sga.run(50, streams=again, record_every=5)
    _assert_same_trajectory(first, loaded)
    assert torch.equal(again.normal(3), after)
    assert loaded.metadata["wall_time_s"] == saved.metadata["wall_time_s"] > 0  # its time, not the load's


@pytest.mark.slow
def test_workers_give_the_bits_of_one_process():
    """run.workers = 2 (Ray tasks) equals the in-process run bit for bit: training (with per-run schedules
    cut to each chunk), the integrator, the coupled chain and its Brownian increments, the mixture GAN's
    batched networks, and an SDE whose paths are not independent (kept in one process)."""
    pytest.importorskip("ray")
    game = GaussianGame()
    sga = SGA(game, lr=0.05, batch_size=4, gen=_adam())
    sme = SME(SGA(game, lr=0.05, batch_size=4), order="1")
    mixture = SGA(MixtureGAN(hidden=(8,)), lr=0.05, batch_size=8)
    table = Table(torch.tensor([[0.01, 0.03], [0.02, 0.01], [0.04, 0.02]], dtype=torch.float64), runs_per_row=3)
    tabled = SGA(game, lr=0.01, batch_size=4, gen=Player(schedule=table), disc=Player(schedule=table))

    def everything():
        streams = (Streams.from_seed(5, 9), Streams.from_seed(6, 9))
        estimated = SME(SGA(ReferenceBatchGame(game, samples=64, fresh=True), lr=0.05, batch_size=4), order="1")
        chain, dw = coupled_chain(sme, 20, game.equilibrium(), *streams, record_every=4)
        return {"train": sga.run(40, K=9, seed=1, record_every=6),
                "sde": integrate(sme, game.equilibrium(), 1.0, 0.01, K=9, seed=2, record_every=10, block=16),
                "chain": chain, "dw": dw, "after": streams[0].normal(2),
                "mixture": mixture.run(10, K=5, seed=3, record_every=5),
                "tabled": tabled.run(30, K=9, seed=4, record_every=5),
                "estimated": integrate(estimated, game.equilibrium(), 0.2, 0.05, K=6, seed=5)}  # stays whole

    alone = everything()
    with using(workers=2):
        split = everything()
    for name in alone:
        if torch.is_tensor(alone[name]):
            assert torch.equal(alone[name], split[name]), name
        else:
            _assert_same_trajectory(alone[name], split[name])
            assert split[name].metadata["seeds"] == alone[name].metadata["seeds"]


@pytest.mark.slow
def test_an_entry_with_two_workers_gives_the_same_summary(tmp_path):
    pytest.importorskip("ray")
    options = ["--quick", "--set", "run.paths=2000", "--quiet"]
    subprocess.run(_gandyn("reproduce", "svag", *options, "--out", str(tmp_path / "one")), check=True, timeout=600)
    subprocess.run(_gandyn("reproduce", "svag", *options, "--set", "run.workers=2", "--out", str(tmp_path / "two")),
                   check=True, timeout=600)
    assert _summary(tmp_path / "one") == _summary(tmp_path / "two")


def test_a_directory_of_another_unfinished_configuration_is_refused(tmp_path):
    out = tmp_path / "run"
    (out / ".gandyn").mkdir(parents=True)
    (out / ".gandyn" / "run.json").write_text(json.dumps({
        "entry": "svag", "quick": True, "finished": False,
        "config": json.loads(json.dumps(_config({"run.paths": 2000})))}))
    result = subprocess.run(_gandyn("reproduce", "svag", "--quick", "--set", "run.paths=3000", "--out", str(out)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"gandyn: error: --out: {out} holds an unfinished run with run.paths = 2000, not 3000; "
        "use --fresh to start over, or another --out"]


def test_first_difference_names_the_first_differing_key():
    assert first_difference({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == "a.c"
    assert first_difference({"a": 1}, {"a": 1, "b": 2}) == "b"
    assert first_difference({"a": [1, 2]}, {"a": [1, 2]}) is None


@pytest.mark.parametrize("args,message", [
    (["run", "--out", "{file}"], "--out: {file} is a file, not a directory"),
    (["run", "--out", "{file}/sub"], "--out: cannot write the output directory {file}/sub: Not a directory"),
    (["run", "--set", "run.paths=1000000000000"], "run.paths: 1000000000000 runs need at least"),
])
def test_bad_output_paths_and_oversized_ensembles_exit_2_with_one_line(tmp_path, args, message):
    file = tmp_path / "a-file"
    file.write_text("")
    args = [a.format(file=file) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    result = subprocess.run(_gandyn(*args, "--quiet"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gandyn: error: " + message.format(file=file)), lines
    assert "of memory is available" in lines[0] or "run.paths" not in message


# -- helpers ------------------------------------------------------------------------------------------
class _Killed(BaseException):
    """Stands for SIGKILL: nothing catches it, so the loop leaves its last checkpoint as it was."""


class _killed_after_steps:
    """Raises ``_Killed`` from the driver's loop once ``steps`` steps were taken (in this context)."""

    def __init__(self, steps: int):
        self.steps = steps

    def __enter__(self):
        from games import driver

        self.original, limit = driver._Loop.save_if_due, self.steps

        def save_if_due(loop):
            self.original(loop)
            if loop.n >= limit:
                raise _Killed

        driver._Loop.save_if_due = save_if_due
        return self

    def __exit__(self, *exc):
        from games import driver

        driver._Loop.save_if_due = self.original
        return False


def _assert_same_trajectory(a, b) -> None:
    assert torch.equal(a.times, b.times)
    assert torch.equal(a.states.nan_to_num(1e300), b.states.nan_to_num(1e300))
    assert a.observables.keys() == b.observables.keys()
    for name in a.observables:
        assert torch.equal(a[name].nan_to_num(1e300), b[name].nan_to_num(1e300)), name
    assert a.metadata["diverged"] == b.metadata["diverged"]


def _adam():
    return Player(optimizer="adam")


def _config(overrides: dict) -> dict:
    from gandyn import catalog

    return catalog.get("svag").config(True, overrides).to_dict()
