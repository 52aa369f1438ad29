"""The one-layer entry: the learned law's error falls like n^(−½) in the training-set size."""
import json

import pytest

from gandyn.cli import main


@pytest.mark.slow
def test_one_layer_error_falls_like_inverse_root_samples(tmp_path):
    """Reduced: d ∈ {2, 4, 8}, n ∈ {64, 256, 1024}, 8 runs. The error cannot fall faster than the training set's
    own sampling error (√(d²/n), slope −½) and SGDA's floor is far below it, so the slope lands near −½."""
    assert main(["reproduce", "one-layer", "--quick", "--quiet", "--out", str(tmp_path),
                 "--set", "run.paths=8", "--set", "sga.steps=1000"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert -0.7 <= summary["slope_error_vs_samples"] <= -0.3, summary
    assert 0.5 <= summary["slope_error_vs_dim"] <= 1.5, summary
    for d in (2, 4, 8):
        assert 0 < summary[f"tv_d{d}"] < 0.5
    assert summary["floor_d2"] < summary["floor_d8"]
    assert (tmp_path / "one_layer.png").exists()


def test_learned_covariance_averages_the_second_half_against_the_target_law():
    """A run whose A sits at A* over the second half has learned the target law N(0, A*A*ᵀ) exactly."""
    import torch

    from analysis.onelayer import frobenius, learned_covariance
    from games import OneLayerGAN
    from games.trajectory import Trajectory

    game = OneLayerGAN(n=2, k=2)
    star = game.equilibrium()
    states = torch.stack([torch.zeros(game.d, dtype=torch.float64)] * 2 + [star] * 2)[:, None]  # [T = 4, K = 1, d]
    traj = Trajectory(times=torch.arange(4.0), states=states, p=game.p)
    learned = learned_covariance(game, traj)
    target = game.target @ game.target.T
    torch.testing.assert_close(learned[0], target)
    torch.testing.assert_close(game.target_law().cov, target)
    assert float(frobenius(learned, torch.zeros(2, 2, dtype=torch.float64))) == pytest.approx(float(target.norm()))
