import json
import math
import sys

import pytest

from games.errors import ConfigError
from games.schedules import Constant, Step
from gandyn import sweep

CONFIG = {"theta_lr": 0.05, "theta_decay": "step", "omega_lr": 0.02, "omega_decay": "constant",
          "budget": 20, "runs": 2, "seed": 0, "device": "cpu", "hidden": [8]}


@pytest.fixture
def ray_down():
    """Ray is shut down after the test, even if it failed half-way (other tests share the worker)."""
    yield
    if "ray" in sys.modules and sys.modules["ray"] is not None and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()


def test_schedules_of_a_config():
    schedules = sweep.schedules_of(CONFIG, 20)
    assert schedules["theta"] == Step(0.05, (10, 15), 0.1)
    assert schedules["omega"] == Constant(0.02)
    assert sweep.schedules_of({**CONFIG, "omega_decay": "step"}, 2)["omega"].milestones == (1, 2)
    with pytest.raises(ConfigError, match="theta_decay"):
        sweep.schedules_of({**CONFIG, "theta_decay": "cosine-ish"}, 20)
    with pytest.raises(ConfigError, match="omega_lr"):
        sweep.schedules_of({**CONFIG, "omega_lr": -1.0}, 20)


def test_trial_reports_about_ten_times_and_at_the_end():
    reports = list(sweep.trial_progress(CONFIG))
    assert [r["step"] for r in reports] == list(range(2, 21, 2))
    final = reports[-1]
    assert math.isfinite(final[sweep.METRIC]) and final[sweep.METRIC] > 0
    assert 0 <= final["modes_covered"] <= 8 and 0 <= final["high_quality"] <= 1 and final["diverged"] == 0
    assert list(sweep.trial_progress(CONFIG))[-1] == final  # the same seed, the same trial


@pytest.mark.parametrize("field,value", [("budget", 0), ("samples", 0), ("runs", 0), ("hidden", (0,))])
def test_bad_settings_name_their_field(tmp_path, field, value):
    settings = {"budget": 4, "samples": 2, "runs": 2, field: value}
    with pytest.raises(ConfigError, match=field):
        sweep.ray_sweep(tmp_path, **settings)


def test_without_ray_the_message_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    with pytest.raises(sweep.MissingRay) as error:
        sweep.ray_sweep(tmp_path, 4, samples=2, runs=2)
    message = str(error.value)
    assert "\n" not in message and sweep.INSTALL in message and "ray" in message
    assert isinstance(error.value, ImportError)


@pytest.mark.slow
def test_ray_sweep_streams_its_trials_and_resumes(tmp_path, ray_down):
    pytest.importorskip("ray")
    settings = dict(budget=4, samples=2, runs=2, hidden=(8,), quiet=True)
    records = sweep.ray_sweep(tmp_path, **settings)
    assert len(records) == 2 and len({r["trial_id"] for r in records}) == 2
    assert all(r["steps"] == 4 and r[sweep.METRIC] is not None for r in records)
    assert records[0][sweep.METRIC] <= records[1][sweep.METRIC]
    for r in records:
        assert 1e-3 <= r["config"]["theta_lr"] <= 0.3 and r["config"]["omega_decay"] in ("constant", "step")
        assert set(sweep.schedules_of(r["config"], 4)) == {"theta", "omega"}
    assert sweep.load_results(tmp_path) == records
    assert len((tmp_path / "trials.jsonl").read_text().splitlines()) == 2
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert summary["best"] == records[0] and summary["finished"] == 2
    results = sorted(tmp_path.glob("ray/sweep/*/result.json"))
    assert len(results) == 2 and all(len(p.read_text().splitlines()) == 4 for p in results)
    before = {p: p.stat().st_mtime_ns for p in results}

    again = sweep.ray_sweep(tmp_path, **settings)  # a finished sweep: nothing runs again
    assert again == records
    assert len((tmp_path / "trials.jsonl").read_text().splitlines()) == 2
    assert {p: p.stat().st_mtime_ns for p in sorted(tmp_path.glob("ray/sweep/*/result.json"))} == before

    with pytest.raises(ConfigError, match="budget=4"):
        sweep.ray_sweep(tmp_path, **{**settings, "budget": 5})


def test_digits_trial_reports_fdd_and_coverage():
    config = {**CONFIG, "game": "digits", "budget": 6}
    reports = list(sweep.trial_progress(config))
    final = reports[-1]
    assert math.isfinite(final["fdd"]) and final["fdd"] > 0 and 0 <= final["coverage"] <= 10
    assert len(final["per_run"]) == 2 and "per_run" not in reports[0]
    assert abs(sum(final["per_run"]) / 2 - final["fdd"]) < 1e-9
    with pytest.raises(ConfigError, match="--game"):
        sweep.build_game("dirac", [8])


@pytest.mark.slow
def test_tune_digits_by_ray_validates_against_the_best_constant(tmp_path, ray_down):
    pytest.importorskip("ray")
    from gandyn.cli import main

    assert main(["tune", "--game", "digits", "--method", "ray", "--budget", "12", "--samples", "2", "--runs", "2",
                 "--quiet", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["trials"] == 2 and summary["best_constant_lr"] > 0
    assert 0 < summary["gain_vs_best_constant"] < 100 and 1e-3 <= summary["best_constant_lr"] <= 0.3
    assert json.loads((tmp_path / "schedule.json").read_text())["game"] == "digits"
    assert json.loads((tmp_path / "sweep.json").read_text())["metric"] == "fdd"
