"""The mixture-gan entry: its observables, and a reduced run whose SME-1 and SVAG ensembles agree with
training at a short horizon."""
import json

import pytest
import torch

from games import MixtureGAN
from games.random import Streams
from gandyn.cli import main
from analysis.observables import MIXTURE_OBSERVABLES as OBSERVABLES
from analysis.observables import mixture_observables as observables


def test_observables_on_known_states():
    """A generator that collapses every latent onto one mode reaches one mode of eight and lies far from
    the target in sliced W₂; the losses are the game's on the probe."""
    game, K = MixtureGAN(hidden=(4,)), 3
    streams = Streams.from_seed(0, K)
    x = game.init(K, streams)
    p_weights = 2 * 4 + 4 + 4 * 2  # generator: z → 4 → 2; the output bias is the last 2 entries
    x[:, : p_weights] = 0.0
    x[:, p_weights : game.p] = torch.tensor([2.0, 0.0])  # G(z) = (2, 0): the mode at angle 0
    real, z = game.sample(K, 64, streams)
    values = observables(game, (real, z))(x)
    assert values.shape == (K, len(OBSERVABLES))
    assert torch.equal(values[:, 4], torch.ones(K))
    loss_g, loss_d = game.losses(*game.split(x), (real, z))
    assert torch.allclose(values[:, 0], loss_g) and torch.allclose(values[:, 1], loss_d)
    # a point mass at one of eight equal modes: W₂² ≥ the squared distance to the other seven modes' mass
    assert torch.all(values[:, 5] > 1.0)


@pytest.mark.slow
def test_reduced_mixture_gan_run(tmp_path):
    assert main(["reproduce", "mixture-gan", "--quick", "--quiet", "--out", str(tmp_path), "--set", "run.paths=24",
                 "--set", "sga.steps=30", "--set", "run.record_every=10"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for name in ("sme1", "svag2"):
        for key in OBSERVABLES:
            value, low, high = (summary[f"weak_error_{name}_{key}{s}"] for s in ("", "_low", "_high"))
            if key in ("loss_g", "loss_d", "sw2"):  # at t = 3 both still follow training closely
                assert abs(value) <= 2 * (high - low), (name, key, value, low, high)
    for figure in ("mixture_gan", "mixture_gan_weak_errors", "mixture_gan_samples"):
        assert (tmp_path / f"{figure}.png").exists()
    assert (tmp_path / "trajectories" / "sme1.npz").exists()


def test_mixture_gan_refuses_simultaneous_updates(tmp_path, capsys):
    assert main(["reproduce", "mixture-gan", "--quick", "--quiet", "--out", str(tmp_path),
                 "--set", "sga.update=sim"]) == 2
    assert "sga.update" in capsys.readouterr().err
