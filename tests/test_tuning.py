"""Schedules judged on discrete training (analysis.tuning), the lr-schedule entry and ``gandyn tune``."""
import json

import pytest
import torch

from analysis.tuning import constant, evaluate, gain, inverse_time, log_grid, step_decay
from games import SGA, GaussianGame
from gandyn.cli import main

GAME = {**{f"game.{k}": v for k, v in GaussianGame.preset_options("damped").items()}, "sga.batch_size": 4}


def test_schedule_families_are_what_they_say():
    decay = step_decay(0.1, 8)
    assert decay.shape == (2, 8) and torch.equal(decay[0], decay[1])
    torch.testing.assert_close(decay[0], torch.tensor([0.1] * 4 + [0.01] * 2 + [0.001] * 2, dtype=torch.float64))
    assert inverse_time(0.1, 10, half_life=0.5)[0, 5].item() == pytest.approx(0.05)
    grid = log_grid(1e-3, 1e-1, 5)
    assert grid[0] == pytest.approx(1e-3) and grid[-1] == pytest.approx(1e-1) and grid[2] == pytest.approx(1e-2)


def test_candidates_share_their_seeds():
    """Two copies of one schedule in one ensemble train identically (common random numbers), so their
    gain is exactly 1; a different schedule differs run by run."""
    sga = SGA(GaussianGame.preset("damped"), batch_size=4)
    results, _ = evaluate(sga, {"a": constant(0.01, 50), "b": constant(0.01, 50), "c": constant(0.02, 50)}, runs=30)
    assert torch.equal(results["a"], results["b"]) and not torch.equal(results["a"], results["c"])
    estimate = gain(results["a"], results["b"])
    assert estimate.value == 1.0 and estimate.se == 0.0


def test_gain_is_the_ratio_of_mean_squared_distances():
    baseline, candidate = torch.tensor([4.0, 2.0, 6.0]), torch.tensor([1.0, 2.0, 3.0])
    assert gain(baseline, candidate).value == pytest.approx(2.0)


def _overrides(settings: dict) -> list:
    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["moments", "surrogate"])
def test_tune_writes_a_validated_schedule(method, tmp_path):
    assert main(["tune", "--game", "gaussian", "--budget", "300", "--method", method, "--runs", "100", "--quiet",
                 "--out", str(tmp_path), *_overrides(GAME)]) == 0
    schedule = json.loads((tmp_path / "schedule.json").read_text())
    assert len(schedule["rates"]["theta"]) == len(schedule["rates"]["omega"]) == 300
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["gain_vs_best_constant_high"] > 1  # the recommendation is not worse than the best constant rate
    assert (tmp_path / "tune.png").exists()


def test_tune_names_bad_input(capsys, tmp_path):
    assert main(["tune", "--game", "gaussian", "--budget", "10", "--method", "ray", "--quiet", "--out", str(tmp_path)]) == 2
    assert "--game" in capsys.readouterr().err
    assert main(["tune", "--game", "gaussian", "--budget", "10", "--method", "sgd", "--quiet", "--out", str(tmp_path)]) == 2
    assert "--method" in capsys.readouterr().err


@pytest.mark.slow
def test_lr_schedule_entry_beats_its_baselines(tmp_path):
    """At a reduced size (1000 iterations, 300 runs) the moment-optimised schedule still beats the best
    constant rate and step decay on discrete training."""
    assert main(["reproduce", "lr-schedule", "--quick", "--quiet", "--out", str(tmp_path),
                 "--set", "run.paths=300", "--set", "sga.steps=1000"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["gain_vs_best_constant_low"] > 1.0 and summary["gain_vs_step_decay_low"] > 1.0
    for key in ("gain_fdr_vs_best_constant", "model_gain_vs_best_constant", "best_constant_lr"):
        assert key in summary
