"""weak-order: the study measures SME-1's first order on a small ensemble, with its checks."""
import math

import numpy as np

from games import GaussianGame
from games.random import Streams
from gandyn.experiments import weak_order

GAME = GaussianGame(mean=0.5, std=0.5, ridge=1.0, mu0=0.0, sigma0=0.3)


def test_sme1_weak_error_halves_with_eta():
    x0 = GAME.init(1, Streams([0]))[0]
    rows = weak_order.study(GAME, x0, "sim", ("1",), [0.2, 0.1, 0.05], K=3000, batch=64, seed=0, log=lambda m: None)
    points = rows["1"]
    assert all(p["kept"] for p in points), points
    slope = np.polyfit(np.log([p["eta"] for p in points]), np.log([p["error"] for p in points]), 1)[0]
    assert 0.75 < slope < 1.25, points
    assert all(p["bias"] < p["error"] / 3 for p in points)


def test_points_are_dropped_with_their_reason():
    assert weak_order._why_dropped(1e-3, 1e-3, 0.0).startswith("Monte Carlo")
    assert weak_order._why_dropped(1e-2, 1e-4, 5e-3).startswith("solver bias")
    assert weak_order._why_dropped(math.nan, 0.0, 0.0) == "non-finite"
    assert weak_order._why_dropped(1e-2, 1e-4, 1e-4) is None
