"""Dual metric flows (THEORY §5) as games: closed forms, the Gaussian instance, the τ → 0 limit."""
import numpy as np
import pytest
import torch

from flows import gradient_flow
from flows.dual import CRITICS, LOSSES, DualFlowGame, dual_flow, dual_training
from games.errors import ConfigError
from games.gaussian import GaussianGame
from games.random import Streams


def normals(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def whitened(P, n, seed):
    """P samples in Rⁿ with empirical mean 0 and covariance (1/P normalisation) exactly I."""
    z = normals(P, n, seed=seed)
    z = z - z.mean(0)
    chol = torch.linalg.cholesky(z.T @ z / P)
    return torch.linalg.solve_triangular(chol, z.T, upper=False).T


def small_game(generator="particles", critic="rff", loss="wgan", **options):
    target = normals(40, 2, seed=1) + torch.tensor([1.0, -0.5])
    data = {"positions": normals(12, 2, seed=2)} if generator == "particles" else \
           {"latent": normals(12, 3, seed=3), "generator_hidden": (5,)}
    options = {"ridge": 0.3, "n_features": 16, "hidden": (8,), **options}
    return DualFlowGame(target, generator=generator, critic=critic, loss=loss, **data, **options)


def perturbed_init(game, K=3, seed=4):
    return game.init(K, Streams.from_seed(seed, K)) + 0.3 * normals(K, game.d, seed=seed)


# -- fields -------------------------------------------------------------------------------------
@pytest.mark.parametrize("generator", ["particles", "network"])
@pytest.mark.parametrize("critic", CRITICS)
@pytest.mark.parametrize("loss", LOSSES)
def test_fields_agree(generator, critic, loss):
    """torch.func field = Game.field (autograd.grad, what SGA uses) = closed form (linear critics)."""
    game = small_game(generator, critic, loss, bias=critic == "rbf")
    x = perturbed_init(game)
    field = game.autograd_field(x)
    assert game.sample(3, 1, None) is None
    torch.testing.assert_close(game.field(x, None), field, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(game.expected_field(x), field, rtol=1e-12, atol=1e-12)
    if critic != "mlp":
        torch.testing.assert_close(game.linear_critic_field(x), field, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("critic", ["rff", "mlp"])
def test_particle_field_is_the_force_on_each_particle(critic):
    """S2: L_G is a sum, so each particle moves by −∇_x ℓ_G(D(X_i)) (``velocity``), not 1/N of it."""
    game = small_game("particles", critic, "ns-gan")
    x = perturbed_init(game)
    torch.testing.assert_close(game.expected_field(x)[:, : game.p], game.velocity(x).flatten(1),
                               rtol=1e-12, atol=1e-12)


def test_network_samples_move_by_the_ntk():
    """S1: d/dt G_θ(z_i) = −(1/N) Σ_j Θ(z_i, z_j) ∇_x ℓ_G(D(X_j)), Θ = J_i J_jᵀ the generator's NTK."""
    game = small_game("network", "mlp", "gan")
    x = perturbed_init(game, K=1)
    jac = torch.func.jacrev(game.particles)(x[:, : game.p])[0, :, :, 0].reshape(game.N * game.n, game.p)
    ntk = jac @ jac.T
    moved = jac @ game.expected_field(x)[0, : game.p]
    torch.testing.assert_close(moved, ntk @ game.velocity(x)[0].flatten() / game.N, rtol=1e-10, atol=1e-12)


def test_field_jvp_by_forward_mode():
    """expected_field composes with torch.func.jvp (modified equations need DV·v): central differences."""
    for critic in ("rff", "mlp"):
        game = small_game("network", critic, "ns-gan")
        x, v = perturbed_init(game), normals(3, game.d, seed=9)
        h = 1e-5
        central = (game.expected_field(x + h * v) - game.expected_field(x - h * v)) / (2 * h)
        torch.testing.assert_close(game.expected_field_jvp(x, v), central, rtol=1e-6, atol=1e-7)


def test_wgan_linear_critic_ode_and_best_response():
    """ȧ = E_Y φ − E_X φ − λa (autograd), vanishing at a* = (E_Y φ − E_X φ)/λ."""
    game = small_game("particles", "rff", "wgan", ridge=0.7)
    x = perturbed_init(game)
    theta, a = game.split(x)
    expected = (game.features(game.targets(a)).mean(-2) - game.features(game.particles(theta)).mean(-2)
                - 0.7 * a)
    torch.testing.assert_close(game.autograd_field(x)[:, game.p :], expected, rtol=1e-12, atol=1e-12)
    at_best = game.join(theta, game.best_response(x))
    assert game.autograd_field(at_best)[:, game.p :].abs().max() < 1e-12


def test_batched_runs_with_their_own_targets():
    """Targets and positions given per run [K, M, n] equal separate games with shared samples."""
    targets, positions = normals(2, 30, 2, seed=5), normals(2, 10, 2, seed=6)
    game = DualFlowGame(targets, positions=positions, critic="mlp", loss="gan", hidden=(6,))
    x = game.init(2, Streams.from_seed(0, 2))
    torch.testing.assert_close(game.particles(x), positions)
    field = game.expected_field(x)
    for k in range(2):
        single = DualFlowGame(targets[k], positions=positions[k], critic="mlp", loss="gan", hidden=(6,))
        torch.testing.assert_close(single.expected_field(x[k : k + 1]), field[k : k + 1], rtol=1e-12, atol=1e-12)


# -- the Gaussian instance (THEORY §3) --------------------------------------------------------------
TOL = {"n_records": 26, "rtol": 1e-8, "atol": 1e-10}  # solver errors ~1e-7 over [0, 5]


def gaussian_setup(n, N=30, M=40, mean=2.0, std=1.0, ridge=0.5, mu0=0.0, sigma0=0.5):
    gauss = GaussianGame(n=n, mean=mean, std=std, ridge=ridge, mu0=mu0, sigma0=sigma0)
    target = mean + std * whitened(M, n, seed=10)
    return gauss, target, whitened(N, n, seed=11)


@pytest.mark.parametrize("n", [1, 2])
def test_particle_flow_is_the_gaussian_game(n):
    """S2, quadratic critic, WGAN, ridge λ, data with exact mean m and covariance s²I, particles
    μ₀ + σ₀ẑ: particle mean and covariance follow (μ, WWᵀ), the critic follows (v, U), to 1e-6."""
    gauss, target, zhat = gaussian_setup(n)
    game = DualFlowGame(target, positions=gauss.mu0 + gauss.sigma0 * zhat, critic="quadratic", loss="wgan",
                        ridge=gauss.ridge)
    streams = Streams.from_seed(0, 1)
    flow = dual_flow(game, game.init(1, streams), 5.0, **TOL)
    exact = gradient_flow(gauss, gauss.init(1, streams), 5.0, **TOL)
    mu, W, _, _ = gauss.unpack(exact.states[:, 0])
    points = game.particles(flow.states[:, 0])  # [T, N, n]
    centred = points - points.mean(1, keepdim=True)
    assert (points.mean(1) - mu).abs().max() < 1e-6
    assert (centred.transpose(1, 2) @ centred / game.N - W @ W.transpose(1, 2)).abs().max() < 1e-6
    assert (flow.omega - exact.omega).abs().max() < 1e-6
    assert exact.omega.abs().max() > 0.5  # the critic did move


def test_affine_network_generator_is_the_gaussian_game():
    """S1 with G_θ(z) = Wz + b on whitened latents: (b, W) follows the Gaussian game's (μ, W)."""
    n = 2
    gauss, target, zhat = gaussian_setup(n)
    game = DualFlowGame(target, generator="network", latent=zhat, critic="quadratic", loss="wgan",
                        ridge=gauss.ridge)
    x0 = gauss.init(1, Streams.from_seed(0, 1))
    mu0, W0, omega0 = x0[:, :n], x0[:, n : gauss.p], x0[:, gauss.p :]
    flow = dual_flow(game, torch.cat([W0, mu0, omega0], dim=-1), 5.0, **TOL)
    exact = gradient_flow(gauss, x0, 5.0, **TOL)
    theta = flow.theta[:, 0]
    assert (theta[:, n**2 :] - exact.theta[:, 0, :n]).abs().max() < 1e-6
    assert (theta[:, : n**2] - exact.theta[:, 0, n:]).abs().max() < 1e-6
    assert (flow.omega - exact.omega).abs().max() < 1e-6


# -- discrete training at rate τ → the flow -----------------------------------------------------------
@pytest.mark.parametrize("update", ["sim", "alt-d"])
def test_training_converges_to_the_flow_at_order_one(update):
    """sup_{t ≤ T} |x_τ(t) − x(t)| ∝ τ: fitted slope over τ = 0.04 … 0.005 in [0.8, 1.2]."""
    target = normals(32, 2, seed=12) * 0.5 + torch.tensor([1.5, 0.0])
    game = DualFlowGame(target, positions=normals(16, 2, seed=13), critic="rff", n_features=32,
                        bandwidth=1.0, ridge=0.1)
    x0, alpha, T, coarse = game.init(2, Streams.from_seed(0, 2)), 2.0, 2.0, 0.04
    flow = dual_flow(game, x0, T, alpha=alpha, n_records=round(T / coarse) + 1)
    taus, errors = [coarse / 2**j for j in range(4)], []
    for tau in taus:
        run = dual_training(game, x0, tau, round(T / tau), alpha=alpha, update=update,
                            record_every=round(coarse / tau))
        np.testing.assert_allclose(run.times, flow.times, atol=1e-12)
        errors.append((run.states - flow.states).abs().max().item())
    slope = np.polyfit(np.log(taus), np.log(errors), 1)[0]
    assert 0.8 <= slope <= 1.2, (slope, errors)
    assert (flow.states[-1] - flow.states[0]).abs().max() > 10 * errors[0]  # the flow moved


# -- options --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, field", [
    ({"critic": "cnn"}, "game.critic"),
    ({"loss": "hinge"}, "game.loss"),
    ({"generator": "flow"}, "game.generator"),
    ({"ridge": -1.0}, "game.ridge"),
    ({"bandwidth": 0.0}, "game.bandwidth"),
    ({"n_features": 0}, "game.n_features"),
    ({"positions": None}, "game.positions"),
    ({"positions": torch.zeros(5, 3)}, "game.positions"),
    ({"latent": torch.zeros(5, 1)}, "game.latent"),
    ({"generator": "network", "positions": None}, "game.latent"),
    ({"critic": "rbf", "n_features": 41}, "game.n_features"),
    ({"hidden": "32"}, "game.hidden"),
    ({"activation": "gelu"}, "game.activation"),
])
def test_bad_options_raise(options, field):
    kwargs = {"positions": torch.zeros(5, 2), **options}
    with pytest.raises(ConfigError) as err:
        DualFlowGame(torch.zeros(40, 2), **kwargs)
    assert err.value.field == field


def test_closed_forms_refuse_other_critics_and_losses():
    mlp_critic = small_game(critic="mlp")
    with pytest.raises(ConfigError, match="game.critic"):
        mlp_critic.linear_critic_field(torch.zeros(1, mlp_critic.d))
    game = small_game(loss="gan")
    with pytest.raises(ConfigError, match="game.loss"):
        game.best_response(torch.zeros(1, game.d))
    with pytest.raises(ConfigError, match="flow.alpha"):
        dual_flow(game, torch.zeros(1, game.d), 1.0, alpha=0.0)
