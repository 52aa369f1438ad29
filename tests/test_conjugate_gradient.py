"""The conjugate-gradient entry: optimisers swapped into training, and the quick run's findings."""
import json
import math

import pytest
import torch

from games import GaussianGame, SGA
from games.optim import ConjugateGradient, HeavyBall
from gandyn.cli import main
from analysis.tuning import inverse_sqrt, with_optimizer
from gandyn.experiments.conjugate_gradient import OPTIMIZERS


def test_every_optimizer_drives_both_players():
    sga = SGA(GaussianGame(), lr=0.01)
    cg = with_optimizer(sga, "cg", beta="HS_DY")
    assert cg.gen.optimizer == cg.disc.optimizer == ConjugateGradient(beta="HS_DY")
    assert with_optimizer(sga, "heavy_ball", momentum=0.9).gen.optimizer == HeavyBall(0.9)
    assert sga.gen.optimizer == "sgd"  # the original is left alone
    assert len(OPTIMIZERS) == 9 and OPTIMIZERS["momentum"] == ("heavy_ball", {"momentum": 0.9})  # the entry's set


def test_the_papers_decaying_rate():
    rates = inverse_sqrt(0.2, 5)
    expected = torch.tensor([0.2 / math.sqrt(n + 1) for n in range(5)], dtype=torch.float64)
    assert rates.shape == (2, 5) and torch.allclose(rates, expected.expand(2, -1))


@pytest.mark.slow
def test_reduced_run_trains_every_optimiser(tmp_path):
    """The Gaussian part at its quick size, the digits part reduced to 40 steps of 2 runs a rate: SGD at its
    best constant rate converges on the Gaussian game (strongly monotone near x* with its ridge: the distance
    falls to a noise floor far below the start), and every key is there with a consistent interval."""
    assert main(["reproduce", "conjugate-gradient", "--quick", "--quiet", "--out", str(tmp_path),
                 "--set", "sga.steps=40", "--set", "run.paths=2"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["distance_final_sgd_high"] < summary["distance_start"] / 5, summary
    for name in OPTIMIZERS:
        assert summary[f"distance_final_{name}"] > 0 and summary[f"best_lr_gaussian_{name}"] > 0
        assert summary[f"fdd_mean_{name}"] is None or summary[f"fdd_mean_{name}"] > 0  # None: every run diverged
        assert 0 <= summary[f"coverage_{name}"] <= 10
    assert summary["fdd_untrained"] > 0
    assert all(isinstance(summary[key], bool) for key in summary if key.startswith("claim_"))
    for figure in ("conjugate_gradient_gaussian", "conjugate_gradient_digits"):
        assert (tmp_path / f"{figure}.png").exists()
