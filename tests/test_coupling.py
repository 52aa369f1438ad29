"""Coupling discrete training with its SME: exact Brownian increments made of the chain's minibatches."""
import math

import pytest
import torch

from games import SGA, BilinearGame, DiracGAN, GaussianGame
from games.random import Streams
from sde import SME, bridge, coupled_chain, integrate

GAME = GaussianGame(n=2, mean=0.5, std=0.7, ridge=0.5, mu0=0.2, sigma0=0.4)


def ks_statistic(samples: torch.Tensor) -> torch.Tensor:
    """√n · sup |F_n − Φ| per column of samples [n, c]."""
    n = samples.shape[0]
    ordered, _ = samples.sort(0)
    cdf = torch.special.ndtr(ordered)
    grid = torch.arange(1, n + 1, dtype=samples.dtype)[:, None] / n
    return math.sqrt(n) * torch.maximum(grid - cdf, cdf - (grid - 1 / n)).max(0).values


def ks_critical(alpha: float) -> float:
    """Kolmogorov's asymptotic upper-α point √(ln(2/α)/2): the leading term of its series, for small α."""
    return math.sqrt(math.log(2 / alpha) / 2)


def moments_ok(w: torch.Tensor, z: float = 5.0):
    n, m = w.shape
    eye = torch.eye(m, dtype=w.dtype)
    assert w.mean(0).abs().max() < z / math.sqrt(n)
    assert (torch.cov(w.T) - eye).abs().max() < z * math.sqrt(2 / n)


@pytest.mark.parametrize("B", [6, 64])
def test_increments_are_exactly_standard_normal(B):
    """Even at B = 6 (χ² with 2 to 5 degrees of freedom), where the minibatch's quadratic statistics are far from Gaussian."""
    K = 40000
    w = GAME.gradient_noise_increments(GAME.sample(K, B, Streams.from_seed(0, K)), Streams.from_seed(1, K))
    assert w.shape == (K, GAME.noise_dim) and GAME.noise_dim == 2 * GAME.n + 2 * GAME.n**2
    moments_ok(w)
    assert ks_statistic(w).max() < ks_critical(0.001 / w.shape[1])  # family-wise 0.1% over the columns


def test_the_ks_check_rejects_the_plain_quadratic_statistic():
    """The check above can fail: the normalised scatter (Σ(ξ_i − ξ̄)² − B)/√(2B) itself is not Gaussian at B = 4."""
    K, B = 40000, 4
    xi = Streams.from_seed(0, K).normal(B)
    plain = (((xi - xi.mean(1, keepdim=True)) ** 2).sum(1) - B) / math.sqrt(2 * B)
    assert ks_statistic(plain[:, None]).item() > 5


@pytest.mark.parametrize("game", [GAME, BilinearGame(p=2, q=2, noise_coupling=0.4, noise_offset=0.3),
                                  DiracGAN.preset("noisy-r1")],
                         ids=["gaussian", "bilinear", "dirac-wgan-instance-noise"])
def test_increments_drive_the_factor_to_the_chain_noise(game):
    """F w = √B(V̂ − E V̂) up to a residual variance O(1/B) (zero for noise linear in the samples)."""
    K = 4000
    x = game.init(K, Streams.from_seed(2, K)) + 0.3 * Streams.from_seed(3, K).normal(game.d)
    residual = []
    for B in (16, 64):
        batch = game.sample(K, B, Streams.from_seed(4, K))
        w = game.gradient_noise_increments(batch, Streams.from_seed(5, K))
        noise = game.field(x, batch) - game.expected_field(x)
        driven = (game.gradient_noise_factor(x, B) @ w[..., None])[..., 0]
        residual.append(((noise - driven).var(0).sum() / noise.var(0).sum()).item())
    if isinstance(game, (BilinearGame, DiracGAN)):  # noise linear in the samples: exact
        assert max(residual) < 1e-20
    else:
        assert residual[0] < 0.1 and residual[1] < residual[0] / 2.5, residual


@pytest.mark.parametrize("update,shared", [("sim", False), ("alt-d", False), ("alt-g", False), ("sim", True)])
def test_coupled_chain_is_the_chain_and_gives_one_column_per_noise_column(update, shared):
    K, eta, steps = 50, 0.1, 7
    sga = SGA(GAME, lr=eta, update=update, batch_size=8, shared_batch=shared)
    sme = SME(sga, order="1")
    x0 = GAME.init(1, Streams([0]))[0]
    chain, dw = coupled_chain(sme, steps, x0, Streams.from_seed(0, K), Streams.from_seed(1, K))
    plain = sga.run(steps, streams=Streams.from_seed(0, K), x0=x0)
    assert torch.equal(chain.states, plain.states)
    assert dw.shape == (steps, K, sme.m)


def test_coupled_sme_paths_follow_their_chain_runs():
    """The point of the coupling: paths stay close to their own chain run, unlike independent ones."""
    K, eta = 2000, 0.05
    sme = SME(SGA(GAME, lr=eta, update="alt-d", batch_size=32), order="2")
    x0 = GAME.init(1, Streams([0]))[0]
    chain, dw = coupled_chain(sme, 40, x0, Streams.from_seed(0, K), Streams.from_seed(1, K), record_every=40)
    coupled = integrate(sme, x0, 2.0, eta, solver="platen2", increments=dw, record_every=40).states[-1]
    free = integrate(sme, x0, 2.0, eta, solver="platen2", K=K, seed=9, record_every=40).states[-1]
    gap = lambda end: (chain.states[-1] - end).pow(2).sum(-1).mean().sqrt().item()  # noqa: E731
    assert gap(coupled) < 0.2 * gap(free)


def test_bridge_keeps_the_sums_and_the_law():
    K, N, m, h = 20000, 3, 2, 0.3
    coarse = Streams.from_seed(0, K).normal(N, m).transpose(0, 1) * math.sqrt(h)
    fine = bridge(coarse, h, Streams.from_seed(1, K))
    assert fine.shape == (2 * N, K, m)
    assert torch.allclose(fine[0::2] + fine[1::2], coarse, atol=1e-14)
    moments_ok(fine.permute(1, 0, 2).reshape(K, -1) / math.sqrt(h / 2))

