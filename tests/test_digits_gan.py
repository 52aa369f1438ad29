"""The digits-gan entry: its observables on known states, and a reduced run whose SME-1 and SVAG ensembles
follow training at a short horizon."""
import json

import pytest
import torch

from analysis import digits as quality
from games import DigitsGAN
from games.digits import digits
from games.random import Streams
from gandyn.cli import main
from analysis.observables import DIGITS_OBSERVABLES as OBSERVABLES
from analysis.observables import digits_observables as observables


def test_observables_on_known_states():
    """A generator whose output bias is a held-out digit and whose weights are 0 draws that one image: one class
    covered, and an fdd far above a generator of real digits; the losses are the game's on the probe."""
    game, K = DigitsGAN(hidden=(4,), latent=2), 2
    streams = Streams.from_seed(0, K)
    x = game.init(K, streams)
    image = digits("test")[0][0]
    x[:, : game.p - 64] = 0.0
    x[:, game.p - 64 : game.p] = torch.atanh(image.clamp(-0.999, 0.999))  # tanh(bias) = the image
    real, z = game.sample(K, 200, streams)
    values = observables(game, (real, z))(x)
    assert values.shape == (K, len(OBSERVABLES))
    assert torch.equal(values[:, 5], torch.ones(K, dtype=values.dtype))
    assert (values[:, 4] > 10 * quality.fdd(digits("train")[0][:200])).all()
    loss_g, loss_d = game.losses(*game.split(x), (real, z))
    torch.testing.assert_close(values[:, 0], loss_g.double()) and torch.testing.assert_close(values[:, 1], loss_d.double())


@pytest.mark.slow
def test_reduced_digits_gan_run(tmp_path):
    assert main(["reproduce", "digits-gan", "--quick", "--quiet", "--out", str(tmp_path), "--set", "run.paths=12",
                 "--set", "sga.steps=30", "--set", "run.record_every=10"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for name in ("sme1", "svag2"):
        for key in OBSERVABLES:
            value, low, high = (summary[f"weak_error_{name}_{key}{s}"] for s in ("", "_low", "_high"))
            if key in ("loss_g", "loss_d"):  # at t = 1.5 both still follow training closely
                assert abs(value) <= 2 * (high - low), (name, key, value, low, high)
    for figure in ("digits_gan", "digits_gan_weak_errors", "digits_gan_samples"):
        assert (tmp_path / f"{figure}.png").exists()


def test_sme_noise_factor_is_low_rank():
    """SME-1's noise for the digits GAN is the factor of M per-sample gradients, [K, d, M], never d × d; its
    product with itself is Σ_B's unbiased estimate: the per-sample fields' covariance over B."""
    from sde import ReferenceBatchGame

    game = DigitsGAN(hidden=(8,), latent=2)
    x = game.init(2, Streams.from_seed(0, 2))
    for M in (4, 8):
        estimated = ReferenceBatchGame(game, samples=16, noise_samples=M, fresh=False)
        factor = estimated.gradient_noise_factor(x, 4)
        assert factor.shape == (2, game.d, M)
        fields = estimated.reference_fields(x)  # [K, M, d]
        centred = fields - fields.mean(1, keepdim=True)
        torch.testing.assert_close(factor @ factor.transpose(1, 2), centred.transpose(1, 2) @ centred / (4 * (M - 1)))


def test_sme_of_a_large_network_never_forms_a_d_by_d_matrix():
    """Reading the rule's loadings probes each minibatch twice instead of d times: for this 51,905-parameter
    network the old read allocated a (2d)² identity (21 GB) and evaluated the rule on 2d rows."""
    from sde.estimated import estimated_sme1 as sme1
    from games import SGA
    from sde import integrate

    game = DigitsGAN()  # d = 51,905
    sde = sme1(SGA(game, lr=0.05, batch_size=64, update="alt-d"), 64, 1)
    assert [tuple(a.shape) for a in sde._loadings] == [(game.d,)] * sde.groups  # diagonals, never d × d
    x0 = game.init(2, Streams.from_seed(0, 2, dtype=torch.float32))
    traj = integrate(sde, x0, 0.05, 0.05, solver="euler", seed=1, dtype=torch.float32)
    assert torch.isfinite(traj.states).all()
