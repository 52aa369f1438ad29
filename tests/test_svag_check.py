"""The SVAG check: SVAG training approaches SME-1 at a fixed η like 1/l (Li, Malladi & Arora 2021)."""
import json

import pytest

from analysis.svag import svag_errors, svag_runs
from games import SGA, BilinearGame
from gandyn.cli import main
from sde import SME, integrate


def test_weak_error_against_sme1_falls_with_l_on_a_linear_game():
    """Bilinear game with ridge and additive noise at η = 0.3: the mean's error is O(η/l); l = 8 is at
    least three times closer to SME-1 than plain training, beyond the Monte Carlo error."""
    game = BilinearGame(p=1, q=1, ridge=0.5, noise_offset=0.5, b=1.0, c=-0.5)
    sga, K = SGA(game, lr=0.3, batch_size=1), 4000
    x0 = game.equilibrium() + 1.0
    runs = svag_runs(sga, [1, 8], 5, K=K, x0=x0, seed=0, record_every=10**9)
    sme = integrate(SME(sga, order="1"), x0, 1.5, 0.3 / 16, solver="platen2", K=K, seed=1, record_every=10**9)
    errors = {l: e.largest() for l, e in svag_errors(runs, sme, phi=lambda x: x).items()}
    (plain, plain_se), (amplified, amplified_se) = errors[1], errors[8]
    assert plain > 10 * plain_se
    assert amplified < plain / 3 and plain - amplified > 5 * (plain_se**2 + amplified_se**2) ** 0.5
    assert runs[8].times[-1].item() == pytest.approx(1.5, rel=1e-12) == runs[1].times[-1].item()


@pytest.mark.slow
def test_svag_entry(tmp_path):
    assert main(["reproduce", "svag", "--quick", "--quiet", "--out", str(tmp_path), "--set", "run.paths=1500"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["svag_error_sim_l8"] < summary["svag_error_sim_l1"] / 3
    assert 0.6 < summary["slope_svag_sim"] < 1.4 and (tmp_path / "svag.png").exists()


def test_the_expansion_of_an_svag_trainer_is_refused():
    from games.errors import ConfigError

    with pytest.raises(ConfigError, match="sga.svag"):
        SME(SGA(BilinearGame(p=1, q=1), svag=4))
