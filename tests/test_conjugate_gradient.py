"""The conjugate-gradient entry: optimisers swapped into training, and the quick run's findings."""
import json
import math

import pytest
import torch

from games import GaussianGame, SGA
from games.optim import ConjugateGradient, HeavyBall
from gandyn.cli import main
from gandyn.experiments.conjugate_gradient import OPTIMIZERS, decaying, with_optimizer


def test_every_optimizer_drives_both_players():
    sga = SGA(GaussianGame(), lr=0.01)
    cg = with_optimizer(sga, "cg_hs_dy")
    assert cg.gen.optimizer == cg.disc.optimizer == ConjugateGradient(beta="HS_DY")
    assert with_optimizer(sga, "momentum").gen.optimizer == HeavyBall(0.9)
    assert len(OPTIMIZERS) == 9 and sga.gen.optimizer == "sgd"  # the original is left alone


def test_the_papers_decaying_rate():
    rates = decaying(0.2, 5)
    expected = torch.tensor([0.2 / math.sqrt(n + 1) for n in range(5)], dtype=torch.float64)
    assert rates.shape == (2, 5) and torch.allclose(rates, expected.expand(2, -1))


@pytest.mark.slow
def test_quick_run_trains_every_optimiser(tmp_path):
    """SGD at its best constant rate converges on the Gaussian game (strongly monotone near x* with its ridge:
    the distance falls to a noise floor far below the start), and the best digits run ends below the
    untrained generator's fdd."""
    assert main(["reproduce", "conjugate-gradient", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["distance_final_sgd_high"] < summary["distance_start"] / 5, summary
    start = summary["fdd_untrained"]
    for name in OPTIMIZERS:
        assert summary[f"fdd_mean_{name}_low"] <= summary[f"fdd_mean_{name}"] <= summary[f"fdd_mean_{name}_high"]
        assert 0 <= summary[f"coverage_{name}"] <= 10
    assert min(summary[f"fdd_best_{name}"] for name in OPTIMIZERS if summary[f"fdd_best_{name}"]) < start
    assert isinstance(summary["claim_mean_fdd_vs_adam"], bool)
    for figure in ("conjugate_gradient_gaussian", "conjugate_gradient_digits"):
        assert (tmp_path / f"{figure}.png").exists()
