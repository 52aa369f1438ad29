"""GA-NTK's infinite-width kernel, its finite-width networks, a generator against it, and the entry."""
import json
import math

import pytest
import torch

from flows.kernel_critic import (ReLUNetwork, critic_labels, critic_values, empirical_ntk, ga_ntk_generator, relu_ntk,
                                 trained_network_critic)
from games import DigitsGAN
from gandyn.cli import main


def points(seed=0, n=6, dim=5):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_relu_ntk_is_the_wide_networks_empirical_kernel():
    """The arc-cosine closed form against autograd's Jacobians of a width-20000 network (relative gap
    O(w^{−½})), and its diagonal |x|²/n exactly (θ = 0: both terms ½|x|²/n)."""
    x = points()
    closed = relu_ntk(x, x)
    empirical = empirical_ntk(ReLUNetwork(5, 20_000, seed=3), x)
    assert float((empirical - closed).norm() / closed.norm()) < 0.05
    torch.testing.assert_close(closed.diagonal(), x.square().sum(-1) / 5, rtol=1e-7, atol=1e-12)  # arccos kept off ±1
    assert torch.linalg.eigvalsh(closed).min() > 0


def test_trained_network_approaches_the_closed_form_critic_with_width():
    x = points(1, n=8)
    y = critic_labels(4, 4, dtype=x.dtype)
    closed = critic_values(relu_ntk(x, x), y, 1.0)
    gaps = [float((trained_network_critic(x, y, w, 1.0, 100, seed=s) - closed).norm()) for w in (64, 4096)
            for s in range(3)]
    assert sum(gaps[3:]) < sum(gaps[:3]) / 4  # 64× the width: about 8× closer
    assert ReLUNetwork(5, 16)(x).abs().max() == 0  # centred: the critic starts from D₀ = 0


def test_generator_learns_against_the_closed_form_critic():
    game = DigitsGAN(hidden=(16,), latent=4, images=64)
    traj = ga_ntk_generator(game, game.training_images(), 30, K=2, lr=3e-3, fakes=8, record_every=10)
    assert traj.states.shape == (4, 2, game.p) and traj["loss"].shape == (4, 2)
    assert (traj["loss"][-1] < traj["loss"][0]).all()


@pytest.mark.slow
def test_ga_ntk_entry(tmp_path):
    assert main(["reproduce", "ga-ntk", "--quick", "--quiet", "--out", str(tmp_path), "--set", "run.paths=2"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert -0.7 <= summary["slope_ntk_width"] <= -0.3, summary
    assert summary["ntk_gap_w64"] > summary["ntk_gap_w256"] > summary["ntk_gap_w1024"]
    assert summary["discretization_error"] < summary["ntk_gap_w1024"] / 10
    assert math.isfinite(summary["fdd_final_ga_ntk"]) and math.isfinite(summary["fdd_final_gan"])
    for figure in ("ga_ntk_width", "ga_ntk_generators"):
        assert (tmp_path / f"{figure}.png").exists()


def test_gradient_descent_on_the_kernel_model_tends_to_the_closed_form():
    """Explicit Euler on Ḋ = ηΘ(y − D) approaches D_t = (I − e^{−ηtΘ})y with an error that halves with the step."""
    from flows.kernel_critic import descent_critic_values

    points = torch.randn(8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kernel, y = relu_ntk(points, points), critic_labels(4, 4, dtype=torch.float64)
    closed = critic_values(kernel, y, 1.0)
    gaps = [float((descent_critic_values(kernel, y, 1.0, steps) - closed).norm()) for steps in (100, 200)]
    assert gaps[1] == pytest.approx(gaps[0] / 2, rel=0.05) and gaps[1] < 1e-2
