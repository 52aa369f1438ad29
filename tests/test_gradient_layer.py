"""Gradient-layer generator (flows.gradient_layer): layers, stacking, pushing fresh latents, training."""
import math

import pytest
import torch

from analysis.metrics import mmd2
from flows.gradient_layer import GradientLayer, Stack, apply_layers
from games.errors import ConfigError
from games.mixture import MixtureGAN
from games.random import Streams


def small(**options) -> GradientLayer:
    options = {"game": MixtureGAN(hidden=(16, 16)), "particles": 64, "batch_size": 32, **options}
    return GradientLayer(**options)


def critic_and_points(gl: GradientLayer, K: int = 3, N: int = 10):
    streams = Streams.from_seed(5, K)
    omega = gl.game.init(K, streams)[:, gl.game.p:]
    return omega, 1.5 * streams.normal(N, 2)


def finite_difference_gradient(f, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central differences of f: [K, N, 2] → [K, N] (points independent), coordinate by coordinate."""
    columns = []
    for i in range(x.shape[-1]):
        e = torch.zeros_like(x)
        e[..., i] = h
        columns.append((f(x + e) - f(x - e)) / (2 * h))
    return torch.stack(columns, dim=-1)


@pytest.mark.parametrize("loss", ["gan", "wgan"])
def test_one_layer_moves_points_by_eta_times_the_critic_gradient(loss):
    gl = small(loss=loss, eta=0.3)
    omega, x = critic_and_points(gl)
    moved = gl.layer(omega, x)
    by_func = gl.game.discriminator_input_grad(omega, x)  # torch.func.grad, not the layer's autograd
    by_difference = finite_difference_gradient(lambda y: gl.game.discriminate(omega, y), x)
    torch.testing.assert_close(moved, x + 0.3 * by_func, rtol=0, atol=1e-13)
    torch.testing.assert_close(moved, x + 0.3 * by_difference, rtol=0, atol=1e-8)
    assert (moved - x).abs().max() > 1e-3  # the check is not vacuous


def test_ns_gan_layer_follows_the_gradient_of_log_sigmoid_d():
    """∇ log σ(D) = (1 − σ(D)) ∇D: the non-saturating generator's descent direction."""
    gl = small(loss="ns-gan", eta=0.5)
    omega, x = critic_and_points(gl)
    d = gl.game.discriminate(omega, x)
    expected = x + 0.5 * (1 - torch.sigmoid(d))[..., None] * gl.game.discriminator_input_grad(omega, x)
    torch.testing.assert_close(gl.layer(omega, x), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("eta", [0.1, 0.5, 1.5])
def test_fixed_quadratic_critic_contracts_at_rate_one_minus_eta_to_the_L(eta):
    """D(x) = −|x − c|²/2 has ∇D = c − x, so each layer maps x − c to (1 − η)(x − c)."""
    c = torch.tensor([0.7, -1.2])
    x0 = torch.randn(2, 20, 2, generator=torch.Generator().manual_seed(0))
    quadratic = lambda x: -0.5 * (x - c).square().sum(-1)  # noqa: E731
    for L in (1, 5, 12):
        xL = apply_layers(x0, [quadratic] * L, eta)
        torch.testing.assert_close(xL - c, (1 - eta) ** L * (x0 - c), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("distill_every", [0, 4])
def test_pushing_the_latents_reproduces_the_training_positions(distill_every):
    gl = small(distill_every=distill_every, distill_steps=5)
    traj = gl.run(10, K=2, seed=1, record_particles=64)
    assert traj.states.shape == (11, 2, 128) and traj.times[-1] == pytest.approx(10 * gl.eta)
    assert len(gl.stack) == (10 if distill_every == 0 else 2)
    pushed = gl.push(gl.latents)
    torch.testing.assert_close(pushed, traj.states[-1].reshape(2, 64, 2), rtol=0, atol=1e-12)
    if distill_every == 0:  # every prefix of the stack gives that layer's record
        for l in (0, 3, 7):
            prefix = gl.push(gl.latents, Stack(None, gl.stack.snapshots[:l]))
            torch.testing.assert_close(prefix, traj.states[l].reshape(2, 64, 2), rtol=0, atol=1e-12)
        assert (traj.states[-1] - traj.states[0]).abs().max() > 1e-2


def test_fresh_latents_take_the_same_map_as_the_training_latents():
    """A latent pushed alone or inside a batch of others lands in the same place (the map is pointwise)."""
    gl = small()
    gl.run(6, K=2, seed=2)
    z = gl.latents[:, :5]
    fresh = torch.cat([z, torch.randn(2, 7, 2, generator=torch.Generator().manual_seed(1))], dim=1)
    torch.testing.assert_close(gl.push(fresh)[:, :5], gl.push(gl.latents)[:, :5], rtol=0, atol=1e-12)


def test_ensemble_runs_equal_single_runs():
    gl = small()
    streams = Streams.from_seed(4, 3)
    batched = gl.run(5, streams=streams).states
    for k in (0, 2):
        single = gl.run(5, streams=Streams([int(streams.seeds[k])])).states
        torch.testing.assert_close(single[:, 0], batched[:, k], rtol=1e-10, atol=1e-10)


def test_a_short_run_on_the_ring_reduces_mmd():
    """MMD² (RBF, h = 0.5) to fresh target samples falls below a quarter of its start after 100
    layers, for the particles and for fresh latents pushed through the stack (about 0.1 of it)."""
    gl = GradientLayer(MixtureGAN(hidden=(32, 32)), eta=0.2, n_critic=5, critic_lr=2e-3,
                       critic_options={"beta1": 0.5}, particles=256)
    traj = gl.run(100, K=2, seed=0, record_every=100, record_particles=256, dtype=torch.float32)
    target = gl.game.sample(2, 512, Streams.from_seed(9, 2, dtype=torch.float32))[0]
    start, end = (mmd2(s.reshape(2, -1, 2), target, bandwidth=0.5) for s in traj.states[[0, -1]])
    fresh = gl.push(Streams.from_seed(10, 2, dtype=torch.float32).normal(256, 2))
    assert (end < 0.25 * start).all(), (start, end)
    assert (mmd2(fresh, target, bandwidth=0.5) < 0.25 * start).all()


def test_ctrl_c_keeps_the_finished_layers(monkeypatch):
    gl = small()
    rounds, original = [], gl.critic_round

    def interrupt_fourth(*args):
        rounds.append(1)
        if len(rounds) == 4:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(gl, "critic_round", interrupt_fourth)
    traj = gl.run(10, K=2, record_every=5, record_particles=64)
    assert traj.metadata["interrupted"] == 4 and traj.metadata["recorded_layers"] == [0, 3]
    assert len(gl.stack) == 3
    torch.testing.assert_close(gl.push(gl.latents), traj.states[-1].reshape(2, 64, 2), rtol=0, atol=1e-12)


@pytest.mark.parametrize("options, field", [
    ({"loss": "minimax"}, "gradient_layer.loss"),
    ({"eta": 0.0}, "gradient_layer.eta"),
    ({"eta": math.nan}, "gradient_layer.eta"),
    ({"n_critic": 0}, "gradient_layer.n_critic"),
    ({"critic_lr": -1e-3}, "gradient_layer.critic_lr"),
    ({"critic_optimizer": "rmsprop"}, "gradient_layer.critic_optimizer"),
    ({"critic_options": {"beta1": 1.5}}, "gradient_layer.critic_optimizer.beta1"),
    ({"ridge": -1.0}, "gradient_layer.ridge"),
    ({"batch_size": 0}, "gradient_layer.batch_size"),
    ({"particles": 2.5}, "gradient_layer.particles"),
    ({"distill_every": -1}, "gradient_layer.distill_every"),
    ({"distill_steps": 0}, "gradient_layer.distill_steps"),
    ({"distill_lr": 0}, "gradient_layer.distill_lr"),
    ({"game": "ring"}, "gradient_layer.game"),
])
def test_bad_options_raise_config_errors_naming_them(options, field):
    with pytest.raises(ConfigError) as err:
        small(**options)
    assert err.value.field == field and field in str(err.value)


@pytest.mark.parametrize("run_options, field", [
    ({"layers": -1}, "gradient_layer.layers"),
    ({"record_particles": 65}, "gradient_layer.record_particles"),
    ({"base": torch.zeros(2, 3)}, "gradient_layer.base"),
    ({"K": 0}, "run.paths"),
])
def test_bad_run_options_raise_config_errors_naming_them(run_options, field):
    run_options = {"layers": 2, "K": 2, **run_options}
    with pytest.raises(ConfigError) as err:
        small().run(run_options.pop("layers"), **run_options)
    assert err.value.field == field


def test_latents_of_other_than_two_dimensions_need_a_base_generator():
    gl = small(game=MixtureGAN(hidden=(16, 16), z_dim=3))
    with pytest.raises(ConfigError, match="z_dim = 2"):
        gl.run(1, K=1)
    theta = gl.game.init(1, Streams.from_seed(0, 1))[:, : gl.game.p]
    assert gl.run(1, K=1, base=theta).states.shape == (2, 1, 128)
    distilled = small(game=gl.game, distill_every=1, distill_steps=2)  # x_0 = G_θ(z) at the initial θ
    assert distilled.run(1, K=1).states.shape == (2, 1, 128)
