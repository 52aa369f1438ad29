import pytest
import torch

from games.errors import ConfigError
from games.onelayer import OneLayerGAN
from games.random import Streams

f64 = torch.float64


def random_states(game, K, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(K, game.d, generator=g, dtype=f64)


def expected_loss(game, x):
    """E L = tr(V A*A*ᵀ) − tr(V AAᵀ) − ½‖V‖²_F for linear φ, written independently of the game."""
    A = x[:, : game.p].reshape(-1, game.n, game.k)
    V = x[:, game.p :].reshape(-1, game.n, game.n)
    S = game.target @ game.target.T
    real = (V * S).sum((1, 2))
    fake = (V * (A @ A.transpose(1, 2))).sum((1, 2))
    return real - fake - 0.5 * (V**2).sum((1, 2))


@pytest.mark.parametrize("n,k", [(2, 2), (3, 2)])
def test_expected_field_is_autograd_of_expected_loss(n, k):
    game = OneLayerGAN(n=n, k=k)
    x = random_states(game, 5).requires_grad_()
    (g,) = torch.autograd.grad(expected_loss(game, x).sum(), x)
    want = torch.cat([-g[:, : game.p], g[:, game.p :]], dim=-1)  # (−∇_θ L_G, −∇_ω L_D), L_D = −L
    torch.testing.assert_close(game.expected_field(x.detach()), want, rtol=1e-12, atol=1e-12)


def test_equilibrium_is_a_zero_of_the_field():
    game = OneLayerGAN()
    x = game.equilibrium()[None]
    assert torch.allclose(game.expected_field(x), torch.zeros_like(x), atol=1e-14)
    tanh = OneLayerGAN(activation="tanh")
    x = tanh.equilibrium()[None].expand(4000, -1)
    field = tanh.field(x, tanh.sample(4000, 8, Streams.from_seed(0, 4000)))
    assert (field[:, : tanh.p] == 0).all()  # V = 0: every minibatch gradient wrt A vanishes
    assert field.mean(0).abs().max() < 5 * field.std(0).max() / 4000**0.5


def test_minibatch_field_mean_and_exact_covariance():
    game = OneLayerGAN()
    K, B = 20000, 4
    x = random_states(game, 1, seed=3).expand(K, -1)
    fields = game.field(x, game.sample(K, B, Streams.from_seed(7, K)))
    mean, cov = game.expected_field(x[:1])[0], game.gradient_covariance(x[:1], B)[0]
    dev = fields - fields.mean(0)
    emp = dev.T @ dev / (K - 1)
    se_mean = fields.std(0) / K**0.5
    se_cov = (dev[:, :, None] * dev[:, None, :]).std(0) / K**0.5
    assert ((fields.mean(0) - mean).abs() < 5 * se_mean + 1e-12).all()
    assert ((emp - cov).abs() < 5 * se_cov + 1e-12).all()
    assert torch.linalg.norm(emp - cov) < 0.05 * torch.linalg.norm(cov)


def test_covariance_is_symmetric_psd_and_scales_as_one_over_B():
    game = OneLayerGAN(n=3, k=2)
    x = random_states(game, 3)
    c1, c8 = game.gradient_covariance(x, 1), game.gradient_covariance(x, 8)
    torch.testing.assert_close(c1 / 8, c8)
    torch.testing.assert_close(c1, c1.transpose(1, 2))
    assert torch.linalg.eigvalsh(c1).min() > -1e-10


@pytest.mark.parametrize("activation", ["linear", "tanh", "leaky_relu"])
def test_batched_runs_equal_single_runs(activation):
    """Bitwise: the ensemble of K runs is K single runs with the same seeds."""
    game = OneLayerGAN(activation=activation)
    streams = Streams.from_seed(11, 4)
    x = game.init(4, streams)
    batch = game.sample(4, 16, streams)
    field, losses = game.field(x, batch), game.losses(x[:, : game.p], x[:, game.p :], batch)
    for k in range(4):
        single = Streams(seeds=[int(streams.seeds[k])])
        xk = game.init(1, single)
        bk = game.sample(1, 16, single)
        assert torch.equal(xk, x[k : k + 1])
        assert all(torch.equal(a, b[k : k + 1]) for a, b in zip(bk, batch))
        assert torch.equal(game.field(xk, bk), field[k : k + 1])
        lk = game.losses(xk[:, : game.p], xk[:, game.p :], bk)
        assert all(torch.equal(a, b[k : k + 1]) for a, b in zip(lk, losses))


def test_init_and_shapes():
    game = OneLayerGAN(n=3, k=2, init_scale=0.5)
    x = game.init(6, Streams.from_seed(0, 6, dtype=torch.float32))
    assert x.shape == (6, 15) and x.dtype == torch.float32
    assert (x[:, game.p :] == 0).all()
    batch = game.sample(6, 5, Streams.from_seed(0, 6, dtype=torch.float32))
    lg, ld = game.sample_losses(x[:, : game.p], x[:, game.p :], batch)
    assert lg.shape == ld.shape == (6, 5) and torch.equal(lg, -ld)


def test_default_target_is_well_conditioned_and_target_can_be_given():
    s = torch.linalg.svdvals(OneLayerGAN().target)
    torch.testing.assert_close(s, torch.tensor([1.0, 0.5], dtype=f64))
    game = OneLayerGAN(target=[[1.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(game.equilibrium(), torch.tensor([1.0, 0, 0, 2, 0, 0, 0, 0], dtype=f64))


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"activation": "relu"}, "game.activation"),
        ({"n": 0}, "game.n"),
        ({"k": 1.5}, "game.k"),
        ({"init_scale": 0}, "game.init_scale"),
        ({"target": [[1.0, 2.0]]}, "game.target"),
    ],
)
def test_config_errors(kwargs, field):
    with pytest.raises(ConfigError) as err:
        OneLayerGAN(**kwargs)
    assert err.value.field == field


def test_closed_forms_need_linear_activation():
    game = OneLayerGAN(activation="tanh")
    x = random_states(game, 2)
    with pytest.raises(NotImplementedError):
        game.expected_field(x)
    with pytest.raises(NotImplementedError):
        game.gradient_covariance(x, 4)


def test_finite_training_sets_are_the_runs_own_and_follow_wishart():
    """With ``samples`` = n each run draws its real latents from its own n latents (a function of its
    seed), and the training set's second moment Σ̂ = A*ẐA*ᵀ has E‖Σ̂ − Σ‖²_F = (tr(Σ)² + tr(Σ²))/n for
    Σ = A*A*ᵀ (Wishart moments of n centred Gaussian draws)."""
    game = OneLayerGAN(n=3, k=3, samples=50)
    streams = Streams.from_seed(4, 2000)
    real, _ = game.sample(2000, 7, streams)
    pool = game.training_set(streams)
    assert pool.shape == (2000, 50, 3)
    assert ((real[:, :, None, :] == pool[:, None, :, :]).all(-1).any(-1)).all()
    single = Streams([int(streams.seeds[5])])
    assert torch.equal(game.training_set(single)[0], pool[5])
    S = game.target @ game.target.T
    squared = (game.empirical_target(streams) - S).square().sum((1, 2))
    expected = (torch.trace(S) ** 2 + torch.trace(S @ S)) / 50
    assert abs(squared.mean() - expected) < 4 * squared.std() / 2000**0.5
    with pytest.raises(NotImplementedError, match="population"):
        game.expected_field(game.init(1, Streams([0])))
    with pytest.raises(ConfigError, match="game.samples"):
        OneLayerGAN(samples=-1)
