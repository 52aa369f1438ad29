import math

import pytest
import torch

from games.errors import ConfigError
from games.mixture import MixtureGAN
from games.random import Streams

LOSSES = ["gan", "ns-gan", "wgan-gp"]


@pytest.mark.parametrize("loss", LOSSES)
def test_batched_runs_equal_single_runs(loss):
    """Draws are bitwise equal; losses and fields agree to 1e-12 (batched matmuls may reorder sums)."""
    game = MixtureGAN(loss=loss, hidden=(16, 16))
    streams = Streams.from_seed(3, 4)
    x = game.init(4, streams)
    batch = game.sample(4, 8, streams)
    losses = game.losses(*game.split(x), batch)
    field = game.field(x, batch)
    for k in range(4):
        single = Streams(seeds=[int(streams.seeds[k])])
        xk, bk = game.init(1, single), game.sample(1, 8, single)
        assert torch.equal(xk, x[k : k + 1])
        assert all(torch.equal(a, b[k : k + 1]) for a, b in zip(bk, batch))
        for a, b in zip(game.losses(*game.split(xk), bk), losses):
            torch.testing.assert_close(a, b[k : k + 1], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(game.field(xk, bk), field[k : k + 1], rtol=1e-12, atol=1e-12)


def test_sizes_and_shapes():
    game = MixtureGAN(z_dim=3, hidden=(64, 64))
    assert game.p == (3 * 64 + 64) + (64 * 64 + 64) + (64 * 2 + 2)
    assert game.q == (2 * 64 + 64) + (64 * 64 + 64) + (64 + 1)
    streams = Streams.from_seed(0, 5, dtype=torch.float32)
    x = game.init(5, streams)
    real, z = game.sample(5, 7, streams)
    assert x.shape == (5, game.d) and x.dtype == torch.float32
    assert real.shape == (5, 7, 2) and z.shape == (5, 7, 3)
    assert game.generate(x, torch.zeros(5, 11, 3, dtype=x.dtype)).shape == (5, 11, 2)
    assert game.discriminate(x[:, game.p :], real).shape == (5, 7)
    lg, ld = game.sample_losses(*game.split(x), (real, z))
    assert lg.shape == ld.shape == (5, 7)
    _, _, eps = MixtureGAN(loss="wgan-gp").sample(5, 7, streams)
    assert eps.shape == (5, 7, 1) and ((eps > 0) & (eps < 1)).all()


def test_init_is_uniform_within_default_linear_ranges():
    game = MixtureGAN(hidden=(32,))
    x = game.init(200, Streams.from_seed(1, 200))
    first = x[:, : 2 * 32 + 32]  # generator layer 1: fan_in = z_dim = 2
    last = x[:, game.p - (32 * 2 + 2) : game.p]  # generator output layer: fan_in = 32
    assert first.abs().max() <= 2**-0.5 and first.abs().max() > 0.99 * 2**-0.5
    assert last.abs().max() <= 32**-0.5 and last.abs().max() > 0.99 * 32**-0.5
    assert abs(first.mean()) < 0.01


@pytest.mark.parametrize("target,modes", [("ring", 8), ("grid", 25)])
def test_real_samples_cover_the_modes(target, modes):
    game = MixtureGAN(target=target)
    centres = game.modes()
    assert centres.shape == (modes, 2)
    if target == "ring":
        torch.testing.assert_close(centres.norm(dim=-1), torch.full((8,), 2.0, dtype=torch.float64))
    real, _ = game.sample(2, 5000, Streams.from_seed(0, 2))
    assert (game.mode_coverage(real) == 1).all()
    # P(|N(0, σ²I₂)| < 3σ) = 1 − e^{−4.5} ≈ 0.989
    assert ((game.quality(real) - (1 - math.exp(-4.5))).abs() < 0.01).all()


def test_coverage_and_quality_diagnostics():
    game = MixtureGAN()
    m = game.modes()
    samples = torch.stack([m, m[:1].expand(8, 2), m + 1.0])  # all modes, one mode, off the modes
    torch.testing.assert_close(game.mode_coverage(samples), torch.tensor([1, 1 / 8, 0], dtype=torch.float64))
    torch.testing.assert_close(game.quality(samples), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    assert game.quality(samples[2:], radius=1.5).item() == 1.0


def test_gan_losses():
    streams = Streams.from_seed(2, 3)
    gan, ns = MixtureGAN(loss="gan", hidden=(8,)), MixtureGAN(loss="ns-gan", hidden=(8,))
    x = gan.init(3, streams)
    batch = gan.sample(3, 6, streams)
    theta, omega = gan.split(x)
    lg, ld = gan.sample_losses(theta, omega, batch)
    d_real = gan.discriminate(omega, batch[0])
    d_fake = gan.discriminate(omega, gan.generate(x, batch[1]))
    want = -(torch.sigmoid(d_real).log() + (1 - torch.sigmoid(d_fake)).log())
    torch.testing.assert_close(ld, want)
    torch.testing.assert_close(lg, -ld)
    lg_ns, ld_ns = ns.sample_losses(theta, omega, batch)
    torch.testing.assert_close(lg_ns, -torch.sigmoid(d_fake).log())
    torch.testing.assert_close(ld_ns, ld)


def test_wgan_gp_penalty_and_its_gradient():
    game = MixtureGAN(loss="wgan-gp", hidden=(16, 16))
    streams = Streams.from_seed(5, 3)
    x = game.init(3, streams)
    real, z, eps = batch = game.sample(3, 6, streams)
    theta, omega = game.split(x)
    points = (eps * real + (1 - eps) * game.generate(x, z)).requires_grad_()
    (slope,) = torch.autograd.grad(game.discriminate(omega, points).sum(), points)
    torch.testing.assert_close(game.discriminator_input_grad(omega, points.detach()), slope)
    lg, ld = game.sample_losses(theta, omega, batch)
    d_fake = game.discriminate(omega, game.generate(x, z))
    penalty = (slope.norm(dim=-1) - 1) ** 2
    torch.testing.assert_close(ld, d_fake - game.discriminate(omega, real) + 10 * penalty)
    torch.testing.assert_close(lg, -d_fake)
    field = game.field(x, batch)
    assert torch.isfinite(field).all() and field[:, game.p :].abs().max() > 0
    # per-sample fields by torch.func (jacrev through the penalty) average to the minibatch field
    torch.testing.assert_close(game.sample_fields(x, batch).mean(1), field, rtol=1e-10, atol=1e-12)
    # the field is differentiable (update-map Jacobians): third derivatives of D exist
    xr = x.clone().requires_grad_()
    (jac_row,) = torch.autograd.grad(game.field(xr, batch)[:, -1].sum(), xr)
    assert torch.isfinite(jac_row).all()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"loss": "lsgan"}, "game.loss"),
        ({"target": "spiral"}, "game.target"),
        ({"activation": "sigmoid"}, "game.activation"),
        ({"hidden": 64}, "game.hidden"),
        ({"hidden": (64, 0)}, "game.hidden"),
        ({"z_dim": 0}, "game.z_dim"),
        ({"gp_weight": -1}, "game.gp_weight"),
    ],
)
def test_config_errors(kwargs, field):
    with pytest.raises(ConfigError) as err:
        MixtureGAN(**kwargs)
    assert err.value.field == field


def test_short_training_moves_samples_onto_the_ring():
    """300 simultaneous GD steps, lr 0.05, ns-gan: generated samples move towards the modes."""
    game = MixtureGAN(loss="ns-gan")
    streams = Streams.from_seed(0, 2)
    x = game.init(2, streams)
    z = streams.normal(512, 2)

    def distance_to_modes(x):
        return torch.cdist(game.generate(x, z), game.modes()).min(-1).values.mean(-1)

    before = distance_to_modes(x)
    for _ in range(300):
        x = x + 0.05 * game.field(x, game.sample(2, 64, streams))
    assert (distance_to_modes(x) < 0.6 * before).all()
    assert (game.quality(game.generate(x, z), radius=0.5) > 0.1).all()


@pytest.mark.parametrize("loss", ["ns-gan", "wgan-gp", "gan"])
def test_generator_loss_alone_equals_the_full_computation(loss):
    game = MixtureGAN(loss=loss, hidden=(16,))
    streams = Streams.from_seed(4, 3)
    x = game.init(3, streams)
    batch = game.sample(3, 5, streams)
    theta, omega = game.split(x)
    alone, _ = game.player_fields(theta, omega, batch, ("theta",))
    both, losses = game.player_fields(theta, omega, batch)
    assert torch.allclose(alone["theta"], both["theta"], atol=1e-14)
    assert torch.allclose(game.player_losses(theta, omega, batch, ("theta",))["theta"], losses["theta"])
