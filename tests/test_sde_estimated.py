"""Reference-batch estimates of the SME coefficients, and a user-defined game through the SDE path."""
import math

import pytest
import torch

from games import SGA, Custom, GaussianGame, Player
from sde import SME, ReferenceBatchGame, euler_maruyama, sdeint


def test_low_rank_factor_reproduces_the_exact_covariance():
    game, B, N = GaussianGame(n=2, ridge=0.2), 4, 20000
    x = torch.randn(2, game.d, generator=torch.Generator().manual_seed(4))
    estimated = ReferenceBatchGame(game, samples=N, seed=3)
    factor = estimated.gradient_noise_factor(x, B)
    assert factor.shape == (2, game.d, N)
    exact = game.gradient_covariance(x, B)
    fields = estimated.reference_fields(x)  # the per-sample fields behind the estimate
    c = fields - fields.mean(1, keepdim=True)
    products = c[:, :, :, None] * c[:, :, None, :] / B
    se = products.std(1) / math.sqrt(N)
    z = ((factor @ factor.transpose(1, 2)) - exact).abs() / se.clamp_min(1e-12)
    assert z.max() < 5, z
    z_mean = (estimated.expected_field(x) - game.expected_field(x)).abs() / (fields.std(1) / math.sqrt(N))
    assert z_mean.max() < 5


def linear_custom_game():
    """L_G = θ·ω + ½|θ|² + θ·ξ̄ (ξ ~ N(1, 1) per sample), L_D = −θ·ω + ½|ω|²: expected field known."""

    def sample_losses(theta, omega, batch):  # batch [K, B, 2]
        coupling = (theta * omega).sum(-1, keepdim=True)  # [K, 1]
        lg = coupling + 0.5 * (theta**2).sum(-1, keepdim=True) + (batch * theta[:, None]).sum(-1)
        ld = -coupling + 0.5 * (omega**2).sum(-1, keepdim=True) + 0.0 * batch[..., 0]
        return lg, ld

    def losses(theta, omega, batch):
        lg, ld = sample_losses(theta, omega, batch)
        return lg.mean(-1), ld.mean(-1)

    return Custom(p=2, q=2, losses=losses, sample_losses=sample_losses,
                  sample=lambda K, B, gen: 1.0 + gen.normal(B, 2))


@pytest.mark.slow
def test_custom_game_through_the_sde_path():
    game = linear_custom_game()
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    th, om = x[:, :2], x[:, 2:]
    estimated = ReferenceBatchGame(game, samples=4096)
    expected = torch.cat([-(om + th + 1.0), th - om], dim=1)
    assert torch.allclose(estimated.expected_field(x), expected, atol=0.1)
    trainer = SGA(estimated, lr=0.02, batch_size=4, update="alt-d", gen=Player(scale=0.5))
    for order in ("1", "2", "2s"):
        sme = SME(trainer, order=order)
        fused = euler_maruyama(sme, torch.zeros(4), 0.2, 0.01, K=5, seed=1)
        assert fused.states.shape == (21, 5, 4) and not fused.metadata["diverged"]
    reference = sdeint(SME(trainer, order="1"), torch.zeros(4), 0.2, 0.01, K=5, seed=1)
    assert torch.isfinite(reference.states).all()


def test_fresh_reference_batches_are_new_per_state_and_unbiased_for_the_covariance():
    """fresh=True: one batch per state tensor (shared by the drift and the factor at that state), a new
    one for a new tensor; E[F Fᵀ] over fresh batches is Σ_B exactly, so the average of many small
    factors matches the closed form."""
    game, B = GaussianGame(n=1, ridge=0.2), 4
    x = torch.randn(3, game.d, generator=torch.Generator().manual_seed(1))
    estimated = ReferenceBatchGame(game, samples=64, noise_samples=8, seed=2, fresh=True)
    first = estimated.reference_batch(x)
    assert estimated.reference_batch(x) is first
    assert not torch.equal(estimated.reference_batch(x.clone())[0], first[0])
    draws = torch.stack([(lambda F: F @ F.transpose(1, 2))(estimated.gradient_noise_factor(x.clone(), B))
                         for _ in range(3000)])
    exact = game.gradient_covariance(x, B)
    se = draws.std(0) / math.sqrt(len(draws))
    z = (draws.mean(0) - exact).abs() / se.clamp_min(1e-12)
    assert z.max() < 5, z


def test_reference_drift_is_the_mean_of_the_per_sample_fields():
    game = GaussianGame(n=2, ridge=0.2)
    x = torch.randn(2, game.d, generator=torch.Generator().manual_seed(5))
    estimated = ReferenceBatchGame(game, samples=50, seed=3)  # every sample behind the factor too
    assert torch.allclose(estimated.expected_field(x), estimated.reference_fields(x).mean(1), atol=1e-12)
    with_head = ReferenceBatchGame(game, samples=50, noise_samples=10, seed=3)
    assert torch.equal(with_head.reference_fields(x), estimated.reference_fields(x)[:, :10])
