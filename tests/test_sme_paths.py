"""An SME of a game, integrated by the fused Euler–Maruyama and by torchsde, against the chain."""
import torch

from games import SGA, GaussianGame
from games.random import Streams
from sde import SME, brownian_from_increments, euler_maruyama, sdeint


def test_sme_pathwise_fused_equals_torchsde():
    sme = SME(SGA(GaussianGame(), lr=0.05, batch_size=8, update="alt-d"), order="2")
    increments = 0.01**0.5 * Streams.from_seed(1, 6).normal(100, sme.m).transpose(0, 1)  # [N, K, m], dt = 0.01
    x0 = GaussianGame().init(6, Streams.from_seed(0, 6))
    fused = euler_maruyama(sme, x0, 1.0, 0.01, increments=increments)
    reference = sdeint(sme, x0, 1.0, 0.01, bm=brownian_from_increments(increments, 0.01))
    assert fused.metadata["diverged"] == {}
    assert torch.allclose(fused.states, reference.states, atol=1e-12)


def test_sme_divergence_is_reported_not_raised():
    """Explicit EM at dt = 0.1 blows this SME up: the paths are reported, the ensemble is not lost."""
    sme = SME(SGA(GaussianGame(), lr=0.05, batch_size=8, update="alt-d"), order="2")
    x0 = GaussianGame().init(6, Streams.from_seed(0, 6))
    increments = 0.1**0.5 * Streams.from_seed(1, 6).normal(30, sme.m).transpose(0, 1)
    traj = euler_maruyama(sme, x0, 3.0, 0.1, increments=increments)
    assert traj.metadata["diverged"]
    step = min(traj.metadata["diverged"].values())
    assert torch.isfinite(traj.states[:step]).all()


def test_sme1_tracks_the_chain_mean():
    """Weak agreement at a small rate: ensemble means of chain and SME-1 agree to O(η) + MC error."""
    game, eta, K = GaussianGame(), 0.01, 2000
    trainer = SGA(game, lr=eta, batch_size=8)
    chain = trainer.run(200, K=K, seed=0, record_every=200)
    x0 = game.init(K, Streams.from_seed(0, K))
    sde = euler_maruyama(SME(trainer, order="1"), x0, 2.0, eta, seed=1, record_every=200)
    diff = chain.states[-1].mean(0) - sde.states[-1].mean(0)
    se = (chain.states[-1].var(0) / K + sde.states[-1].var(0) / K).sqrt()
    assert torch.all(diff.abs() < 5 * se + 5 * eta), (diff, se)
    assert torch.allclose(chain.times, sde.times)
