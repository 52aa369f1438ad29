"""Closed forms of the games against autograd and Monte Carlo."""
import math

import pytest
import torch

from games import BilinearGame, DiracGAN, GaussianGame, MixtureGAN
from games.errors import ConfigError
from games.base import Game, gaussian_quadratic_factor
from games.random import Streams



def cubature_batch(r: int, K: int):
    """The 2r points ±√r e_j: their average integrates every polynomial of degree ≤ 3 against N(0, I_r)."""
    pts = math.sqrt(r) * torch.cat([torch.eye(r), -torch.eye(r)])
    return pts.expand(K, 2 * r, r)


@pytest.mark.parametrize("loss", ["gan", "ns-gan", "wgan", "wgan-gp"])
@pytest.mark.parametrize("gamma", [0.0, 0.7])
def test_dirac_field_is_closed_form(loss, gamma):
    game = DiracGAN(loss=loss, gamma=gamma)
    x = torch.randn(50, 2)
    assert torch.allclose(game.field(x, None), game.expected_field(x), atol=1e-14)


@pytest.mark.parametrize("n", [1, 2])
def test_gaussian_field_is_closed_form(n):
    game = GaussianGame(n=n, mean=0.7, std=1.3, ridge=0.3)
    x = torch.randn(20, game.d)
    pts = cubature_batch(2 * n, 20)
    batch = (pts[..., :n], pts[..., n:])  # joint noise (ξ_data, z) of each sample
    assert torch.allclose(game.field(x, batch), game.expected_field(x), atol=1e-12)


@pytest.mark.parametrize("n", [1, 3])
def test_gaussian_closed_form_minibatch_field_matches_autograd(n):
    game = GaussianGame(n=n, mean=0.7, std=1.3, ridge=0.3)
    x, s = torch.randn(6, game.d), Streams.from_seed(3, 6)
    batch = game.sample(6, 5, s)
    assert torch.allclose(game.field(x, batch), Game.field(game, x, batch), atol=1e-12)
    assert torch.allclose(game.sample_fields(x, batch), Game.sample_fields(game, x, batch), atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_gaussian_closed_form_noise_factor_matches_cubature(n):
    """The closed-form [J, vec(H)/√2]/√B against the unit-step cubature of the per-sample field,
    column for column (the coupling of ``gradient_noise_increments`` relies on the order), and the
    cubature's columns left out are exactly zero."""
    game = GaussianGame(n=n, mean=0.7, std=1.3, ridge=0.3)
    x, B = torch.randn(7, game.d, dtype=torch.float64), 5
    one_sample = lambda rows, u: Game.sample_fields(game, rows, (u[..., :n], u[..., n:]))  # noqa: E731
    cubature = gaussian_quadratic_factor(one_sample, x, 2 * n) / B**0.5
    columns = game.cubature_columns()
    torch.testing.assert_close(game.gradient_noise_factor(x, B), cubature[..., columns], rtol=1e-12, atol=1e-12)
    left_out = torch.ones(cubature.shape[-1], dtype=torch.bool)
    left_out[columns] = False
    assert left_out.sum() == 2 * n * n and cubature[..., left_out].abs().max() < 1e-12


@pytest.mark.parametrize("n", [1, 2, 3])
def test_gaussian_noise_product_is_the_factor_times_w(n):
    """The closed-form F w (the primary formula) against the factor, to machine precision, with
    extra leading dimensions of w; and it is driven by every column."""
    game = GaussianGame(n=n, mean=0.7, std=1.3, ridge=0.3)
    gen = torch.Generator().manual_seed(n)
    x, B = torch.randn(7, game.d, dtype=torch.float64, generator=gen), 5
    w = torch.randn(3, 7, game.noise_dim, dtype=torch.float64, generator=gen)
    factor = game.gradient_noise_factor(x, B)
    assert factor.shape == (7, game.d, game.noise_dim)
    product = game.gradient_noise_product(x, B, w)
    torch.testing.assert_close(product, (factor @ w[..., None])[..., 0], rtol=0, atol=1e-13)
    torch.testing.assert_close(product[1], Game.gradient_noise_product(game, x, B, w[1]), rtol=0, atol=1e-13)
    assert factor.abs().amax(dim=(0, 1)).min() > 1e-3  # no column is idle
    # the product is the noise: its covariance over w ~ N(0, I) is the cubature's Σ_B
    one_sample = lambda rows, u: Game.sample_fields(game, rows, (u[..., :n], u[..., n:]))  # noqa: E731
    cubature = gaussian_quadratic_factor(one_sample, x, 2 * n) / B**0.5
    torch.testing.assert_close(game.gradient_covariance(x, B), cubature @ cubature.transpose(1, 2),
                               rtol=1e-12, atol=1e-12)


def test_bilinear_closed_form_noise_product_matches_cubature():
    """F w in closed form against the cubature of autograd's per-sample field, column for column (the
    order gradient_noise_increments drives), with leading dimensions of w."""
    game = BilinearGame(p=2, q=3, coupling=[[1.0, 0.5, 0.0], [0.2, -1.0, 0.3]], noise_coupling=0.4, noise_offset=0.2)
    gen = torch.Generator().manual_seed(0)
    x, B = torch.randn(6, game.d, generator=gen), 4
    cubature = gaussian_quadratic_factor(game.sample_fields, x, game.noise_dim, quadratic=False) / B**0.5
    torch.testing.assert_close(game.gradient_noise_factor(x, B), cubature, rtol=1e-12, atol=1e-12)
    w = torch.randn(3, 6, game.noise_dim, generator=gen)
    torch.testing.assert_close(game.gradient_noise_product(x, B, w), (cubature @ w[..., None])[..., 0],
                               rtol=1e-12, atol=1e-12)


def test_gaussian_n1_field_matches_theory():
    """μ̇ = a + 2bμ, σ̇ = 2bσ, ȧ = (m − μ) − λa, ḃ = (m² + s² − μ² − σ²) − λb (THEORY §3)."""
    m, s, lam = 0.7, 1.3, 0.3
    game = GaussianGame(mean=m, std=s, ridge=lam)
    x = torch.randn(30, 4)
    mu, sig, a, b = x.T
    theory = torch.stack([a + 2 * b * mu, 2 * b * sig, (m - mu) - lam * a,
                          (m**2 + s**2 - mu**2 - sig**2) - lam * b], 1)
    assert torch.allclose(game.expected_field(x), theory, atol=1e-13)


def test_bilinear_field_is_closed_form():
    game = BilinearGame(p=2, q=3, coupling=[[1.0, 0.5, 0.0], [0.2, -1.0, 0.3]], b=0.3, c=-0.2,
                        ridge=0.1, noise_coupling=0.4, noise_offset=0.2)
    x = torch.randn(10, 5)
    assert torch.allclose(game.field(x, cubature_batch(game.noise_dim, 10)), game.expected_field(x), atol=1e-12)
    x_star = game.equilibrium()
    assert torch.allclose(game.expected_field(x_star[None]), torch.zeros(1, 5), atol=1e-12)


def covariance_zscores(fields: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """|empirical − exact| / standard error, entrywise, the standard error estimated from the data."""
    c = fields - fields.mean(0)
    products = c[:, :, None] * c[:, None, :]
    se = products.std(0) / math.sqrt(len(fields))
    return (products.mean(0) - exact).abs() / se.clamp_min(1e-12)


@pytest.mark.parametrize("game", [GaussianGame(), GaussianGame(n=2, ridge=0.2),
                                  BilinearGame(p=2, q=2, noise_coupling=0.3, ridge=0.1),
                                  DiracGAN.preset("noisy-r1")],
                         ids=["gaussian-n1", "gaussian-n2", "bilinear", "dirac-wgan-instance-noise"])
def test_exact_covariance_matches_sampled_minibatch_fields(game):
    N, B = 40000, 3
    x = torch.randn(1, game.d, generator=torch.Generator().manual_seed(1))
    fields = game.field(x.expand(N, -1), game.sample(N, B, Streams.from_seed(7, N)))
    exact = game.gradient_covariance(x, B)[0]
    z = covariance_zscores(fields, exact)
    assert z.max() < 5.0, z
    # and it is a real check: a covariance off by 10% is caught
    assert covariance_zscores(fields, 1.1 * exact).max() > 5.0


def test_bilinear_covariance_closed_form():
    """Cov ζ_θ = (s_A²|ω|² + s_b²)I/B, Cov ζ_ω = (s_A²|θ|² + s_c²)I/B, Cov(ζ_θ, ζ_ω) = −s_A² θωᵀ/B."""
    sA, sb, B = 0.3, 0.2, 5
    game = BilinearGame(p=2, q=3, noise_coupling=sA, noise_offset=sb)
    x = torch.randn(4, 5)
    th, om = x[:, :2], x[:, 2:]
    exact = game.gradient_covariance(x, B)
    tt = (sA**2 * (om**2).sum(1) + sb**2)[:, None, None] * torch.eye(2) / B
    oo = (sA**2 * (th**2).sum(1) + sb**2)[:, None, None] * torch.eye(3) / B
    to = -sA**2 * th[:, :, None] * om[:, None, :] / B
    assert torch.allclose(exact[:, :2, :2], tt)
    assert torch.allclose(exact[:, 2:, 2:], oo)
    assert torch.allclose(exact[:, :2, 2:], to)


def test_gaussian_w2_closed_form():
    game = GaussianGame(mean=1.0, std=2.0)
    x = torch.tensor([[3.0, -0.5, 0.0, 0.0]])
    assert torch.allclose(game.w2(x), torch.tensor([math.sqrt(4 + 1.5**2)]))
    game2 = GaussianGame(n=2, mean=1.0, std=2.0)
    x2 = torch.cat([torch.tensor([1.0, 1.0]), 2 * torch.eye(2).flatten(), torch.zeros(6)])[None]
    assert game2.w2(x2).abs().item() < 1e-7


def test_dirac_instance_noise_makes_gradients_stochastic():
    game = DiracGAN(noise=0.5)
    x = torch.ones(3, 2)
    s = Streams.from_seed(0, 3)
    f1, f2 = game.field(x, game.sample(3, 4, s)), game.field(x, game.sample(3, 4, s))
    assert not torch.allclose(f1, f2)
    assert torch.equal(DiracGAN().field(x, None), DiracGAN().field(x, None))


def test_wgan_clipping_projects_the_critic():
    game = DiracGAN(loss="wgan", clip=0.5)
    theta, omega = game.project(torch.tensor([[2.0]]), torch.tensor([[-3.0]]))
    assert theta.item() == 2.0 and omega.item() == -0.5


@pytest.mark.parametrize("game", [GaussianGame(n=2, mean=0.5, std=0.7, ridge=0.5), BilinearGame(p=2, q=3)]
                         + [DiracGAN(loss=loss, gamma=0.7) for loss in ("gan", "ns-gan", "wgan", "wgan-gp")],
                         ids=["gaussian", "bilinear", "dirac-gan", "dirac-ns-gan", "dirac-wgan", "dirac-wgan-gp"])
def test_closed_form_field_derivative_matches_autograd(game):
    x, v = torch.randn(7, game.d, dtype=torch.float64), torch.randn(7, game.d, dtype=torch.float64)
    expected = torch.func.jvp(game.expected_field, (x,), (v,))[1]
    assert torch.allclose(game.expected_field_jvp(x, v), expected, atol=1e-12)


def test_games_name_their_coordinates():
    from games import BilinearGame, GaussianGame

    assert GaussianGame().coordinate_names == ("μ", "σ", "a", "b")
    two = GaussianGame(n=2)
    assert two.coordinate_names == tuple(f"x{i}" for i in range(two.d))
    assert len(BilinearGame().coordinate_names) == BilinearGame().d


def test_games_declare_what_they_offer_and_name_what_they_do_not():
    """The Gaussian game's target law and distance, against their definitions; a game without one says so."""
    game = GaussianGame.preset("damped")
    law = game.target_law()
    torch.testing.assert_close(law.mean, torch.tensor([0.5], dtype=torch.float64))
    torch.testing.assert_close(law.cov, torch.tensor([[0.25]], dtype=torch.float64))
    x = torch.tensor([[0.0, 1.0, 0.3, 0.2]], dtype=torch.float64)  # N(0, 1) against N(0.5, 0.25): W₂² = 0.25 + 0.25
    torch.testing.assert_close(game.target_distance(x), torch.tensor([math.sqrt(0.5)], dtype=torch.float64))
    mixture = MixtureGAN("ring").target_law()
    assert mixture.modes.shape == (8, 2) and mixture.std == 0.02
    custom = BilinearGame()
    with pytest.raises(NotImplementedError, match="target law"):
        custom.target_law()
    assert custom.offered("target_law") is None and custom.offered("equilibrium") is not None
    assert MixtureGAN().offered("equilibrium") is None


def test_offered_lets_a_missing_implementation_through():
    """Only NotAvailable means "not offered": a bare NotImplementedError is a bug and must surface."""

    class Broken(BilinearGame):
        def equilibrium(self):
            raise NotImplementedError

    with pytest.raises(NotImplementedError):
        Broken().offered("equilibrium")


def test_presets_are_their_options_and_unknown_ones_are_named():
    assert GaussianGame.preset("damped") == GaussianGame(mean=0.5, std=0.5, ridge=1.0, mu0=0.0, sigma0=1.0)
    assert GaussianGame.preset("damped", sigma0=0.3) == GaussianGame.preset("damped-narrow")
    with pytest.raises(ConfigError, match="game.preset"):
        GaussianGame.preset("nowhere")


def test_dirac_wgan_gp_offers_no_closed_form_eigenvalues():
    """|ψ| is not differentiable at ψ = 0: no eigenvalues are offered; the R1 GAN's are ±i f'(0) damped by γ/2."""
    assert DiracGAN(loss="wgan-gp", gamma=1.0).offered("flow_eigenvalues") is None
    assert DiracGAN(loss="wgan-gp", gamma=1.0).offered("gd_eigenvalues", 0.1, "sim") is None
    values = DiracGAN(loss="wgan", gamma=1.0).flow_eigenvalues()  # f'(0) = 1: −½ ± i√¾
    assert sorted(v.imag for v in values) == pytest.approx([-math.sqrt(0.75), math.sqrt(0.75)])
    assert all(v.real == pytest.approx(-0.5) for v in values)
