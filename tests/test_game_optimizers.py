"""game-optimizers: the entry's slopes against the theory's orders, and the SDEs of optimisers with state."""
import json

import pytest

from games import SGA, BilinearGame, Player
from games.errors import ConfigError
from games.optim import Adam, HeavyBall
from gandyn.cli import main
from sde.momentum import AdamSME, HeavyBallSME

RULES = ("eg", "hgd", "consensus", "symplectic", "ogda", "lookahead")


@pytest.mark.slow
def test_entry_quick_slopes_are_the_orders_of_the_theory(tmp_path):
    """--quick: SME-1 slopes in [0.8, 1.2], SME-2 and modified-flow slopes in [1.7, 2.3] for every rule
    (with their intervals written), the spectra within 1e-6 of the closed forms, the SVAG-style checks of
    heavy ball and Adam falling at least like the rate."""
    assert main(["reproduce", "game-optimizers", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for rule in RULES:
        assert 0.8 <= summary[f"slope_sme1_{rule}"] <= 1.2, rule
        for key in (f"slope_sme2_{rule}", f"slope_modified_{rule}"):
            assert 1.7 <= summary[key] <= 2.3, key
            assert summary[f"{key}_low"] <= summary[key] <= summary[f"{key}_high"]
    assert summary["eigen_max_abs_error"] <= 1e-6
    assert 0.8 <= summary["slope_sde_heavy_ball"] <= 1.3 and summary["slope_sde_adam"] >= 0.8
    for name in ("sme", "flows", "spectra", "scaling"):
        assert (tmp_path / f"game_optimizers_{name}.png").exists()


def test_optimiser_sdes_refuse_what_they_are_not_derived_for():
    game = BilinearGame()
    heavy = Player(HeavyBall(0.9))
    with pytest.raises(ConfigError, match="sga.update"):
        HeavyBallSME(SGA(game, update="eg", gen=heavy, disc=heavy))
    with pytest.raises(ConfigError, match="sga.gen.optimizer"):
        HeavyBallSME(SGA(game, disc=heavy))
    with pytest.raises(ConfigError, match="momentum"):
        HeavyBallSME(SGA(game, gen=heavy, disc=Player(HeavyBall(0.5))))
    with pytest.raises(ConfigError, match="sga.disc.optimizer"):
        AdamSME(SGA(game, gen=Player(Adam())))


def test_svag_trainers_keep_the_sdes_constants():
    """The ℓ-chain of each SDE has the same γ (heavy ball) or c₁, c₂, ηε (Adam), and ℓ (ℓ²) times the noise."""
    game = BilinearGame()
    heavy = HeavyBallSME(SGA(game, lr=0.04, gen=Player(HeavyBall(0.8)), disc=Player(HeavyBall(0.8))))
    for l in (2, 4):
        scaled = heavy.svag_trainer(l)
        beta = scaled.optimizers["theta"].momentum
        rate = scaled.rate("theta", 0)
        assert scaled.svag == l and abs((1 - beta) ** 2 / rate - heavy.gamma) < 1e-12
        assert abs(rate / (1 - beta) - heavy.step_time / l) < 1e-12
    adam = AdamSME(SGA(game, lr=0.1, gen=Player(Adam(0.9, 0.99, 1e-3)), disc=Player(Adam(0.9, 0.99, 1e-3))))
    for l in (2, 4):
        scaled = adam.svag_trainer(l)
        opt, rate = scaled.optimizers["omega"], scaled.rate("omega", 0)
        assert scaled.svag == l * l and abs(rate - 0.1 / l) < 1e-15
        assert abs((1 - opt.beta1) / rate**2 - adam.c1[0]) < 1e-9 and abs((1 - opt.beta2) / rate**2 - adam.c2[0]) < 1e-9
        assert abs(opt.eps * rate - 1e-3 * 0.1) < 1e-15
