"""weak-order: the study measures the orders of SME-1 and SME-2 on a small ensemble, with its checks."""
import math

import numpy as np
import pytest

from games import DiracGAN, GaussianGame
from games.random import Streams
from analysis import weak_order

GAME = GaussianGame.preset("damped-narrow")


@pytest.mark.parametrize("game", [GAME, DiracGAN.preset("noisy-r1")], ids=["gaussian", "dirac-instance-noise-r1"])
@pytest.mark.parametrize("update", ["sim", "alt-d"])
def test_weak_errors_fall_as_eta_and_eta_squared(game, update):
    """SME-1's error halves and SME-2's quarters with η, every point resolved (coupled paths)."""
    x0 = game.init(1, Streams([0]))[0]
    rows = weak_order.study(game, x0, update, ("1", "2"), [0.2, 0.1, 0.05], K=1500, batch=64, seed=0,
                            log=lambda m: None)
    for order, (low, high) in (("1", (0.8, 1.2)), ("2", (1.7, 2.4))):
        points = rows[order]
        assert all(p["kept"] for p in points), points
        slope = np.polyfit(np.log([p["eta"] for p in points]), np.log([p["error"] for p in points]), 1)[0]
        assert low < slope < high, (order, points)


def test_points_are_dropped_with_their_reason():
    assert weak_order.why_dropped(1e-3, 1e-3, 0.0).startswith("Monte Carlo")
    assert weak_order.why_dropped(1e-2, 1e-4, 5e-3).startswith("solver bias")
    assert weak_order.why_dropped(math.nan, 0.0, 0.0) == "non-finite"
    assert weak_order.why_dropped(1e-2, 1e-4, 1e-4) is None
