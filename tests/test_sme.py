"""Stochastic modified equations: drifts against THEORY §2's hand formulas and the actual update code."""
import math

import numpy as np
import pytest
import torch

from games import SGA, BilinearGame, DiracGAN, GaussianGame, Player
from games.errors import ConfigError
from games.random import Streams
from sde.sme import SME

CT, CO = 0.7, 1.3  # separate rate ratios c_θ ≠ c_ω


def scaled_field(game):
    c = torch.cat([torch.full((game.p,), CT), torch.full((game.q,), CO)])
    return lambda y: c * game.expected_field(y)


def jacobians(V, x):
    return torch.stack([torch.autograd.functional.jacobian(lambda z: V(z[None])[0], xk) for xk in x])


def mv(M, v):
    return (M @ v[..., None])[..., 0]


def hand_sme2(game, x, eta, update):
    """THEORY §2: sim V − (η/2)(DV)V; alt (D first) flips the sign of the interaction in b_θ."""
    V = scaled_field(game)
    v, J, p = V(x), jacobians(V, x), game.p
    if update == "sim":
        return v - eta / 2 * mv(J, v)
    vt, vo = v[:, :p], v[:, p:]
    jtt, jto, jot, joo = J[:, :p, :p], J[:, :p, p:], J[:, p:, :p], J[:, p:, p:]
    if update == "alt-d":
        bt, bo = vt - eta / 2 * (mv(jtt, vt) - mv(jto, vo)), vo - eta / 2 * (mv(jot, vt) + mv(joo, vo))
    else:  # the mirror image
        bo, bt = vo - eta / 2 * (mv(joo, vo) - mv(jot, vt)), vt - eta / 2 * (mv(jtt, vt) + mv(jto, vo))
    return torch.cat([bt, bo], dim=1)


def sga(game, eta, update="sim", **kw):
    return SGA(game, lr=eta, update=update, gen=Player(scale=CT), disc=Player(scale=CO), **kw)


@pytest.mark.parametrize("update", ["sim", "alt-d", "alt-g"])
@pytest.mark.parametrize("game", [GaussianGame(ridge=0.3), DiracGAN(gamma=0.4)], ids=["gaussian", "dirac"])
def test_sme2_drift_equals_hand_formulas(game, update):
    x = torch.randn(6, game.d, generator=torch.Generator().manual_seed(3))
    drift = SME(sga(game, 0.1, update), order="2").drift(x)
    assert torch.allclose(drift, hand_sme2(game, x, 0.1, update), atol=1e-12)


def test_n_d_steps_follow_the_composed_map():
    """Sub-steps x ← x + ηP_iV: b₁ = Σ P_iV and m₂ = Σ_{i>j} P_i DV P_j V (here ω, ω, ω, θ)."""
    game, eta, n_d = GaussianGame(ridge=0.3), 0.05, 3
    x = torch.randn(4, 4, generator=torch.Generator().manual_seed(5))
    V = scaled_field(game)
    v, J = V(x), jacobians(V, x)
    P = {"theta": torch.diag(torch.tensor([1.0, 1, 0, 0])), "omega": torch.diag(torch.tensor([0.0, 0, 1, 1]))}
    order = ["omega"] * n_d + ["theta"]
    b1 = sum(mv(P[w], v) for w in order)
    m2 = sum(mv(P[order[i]] @ J @ P[order[j]], v) for i in range(len(order)) for j in range(i))
    sme = SME(sga(game, eta, "alt-d", n_d=n_d), order="2")
    assert torch.allclose(sme.leading_drift(x), b1, atol=1e-13)
    assert torch.allclose(sme.second_moment_term(x), m2, atol=1e-12)
    assert torch.allclose(sme.drift(x), b1 + eta * (m2 - 0.5 * mv(jacobians(sme.leading_drift, x), b1)), atol=1e-12)


@pytest.mark.parametrize("update,n_d", [("sim", 1), ("alt-d", 1), ("alt-g", 1), ("alt-d", 3), ("alt-g", 2)])
def test_composition_terms_equal_those_read_off_the_update_code(update, n_d):
    """b₁ and m₂ from the sub-step formula against forward-mode derivatives in η of SGA.step itself."""
    game = GaussianGame(ridge=0.3)
    trainer = SGA(game, lr=0.1, update=update, n_d=n_d, gen=Player(scale=CT, weight_decay=0.2),
                  disc=Player(scale=CO, weight_decay=0.05))
    sme = SME(trainer, order="2")
    x = torch.randn(5, game.d, generator=torch.Generator().manual_seed(8))
    b1, m2 = sme.update_map_terms(x)
    assert torch.allclose(sme.leading_drift(x), b1, atol=1e-13)
    assert torch.allclose(sme.second_moment_term(x), m2, atol=1e-12)
    assert (m2.abs().max() > 0.1) == (update != "sim")


def one_step_errors(game, update, n_d, order, etas, x):
    """|Φ_η(x) − x − (ηb + (η²/2)(Db)b)|: the actual update code against the SDE's one-step mean."""
    errors = []
    for eta in etas:
        trainer = sga(game, eta, update, n_d=n_d)
        chain, _, _ = trainer.step(x, trainer.init_state(x), 0, Streams.from_seed(0, len(x)))
        sme = SME(trainer, order=order)
        b = sme.drift(x)
        sde_mean = eta * b + eta**2 / 2 * mv(jacobians(sme.drift, x), b)
        errors.append((chain - x - sde_mean).norm(dim=-1).max().item())
    return errors


@pytest.mark.parametrize("update,n_d", [("sim", 1), ("alt-d", 1), ("alt-g", 1), ("alt-d", 3), ("alt-g", 2)])
@pytest.mark.parametrize("game", [DiracGAN(gamma=0.5), BilinearGame(p=2, q=2, ridge=0.2, noise_offset=0.0,
                                                                    coupling=[[1.0, 0.5], [-0.3, 0.8]])],
                         ids=["dirac-r1", "bilinear"])
def test_order2_drift_matches_the_update_code_to_third_order(game, update, n_d):
    """Deterministic games: the one-step error of SME-2 falls as η³, that of SME-1 as η²."""
    x = 0.5 * torch.randn(3, game.d, generator=torch.Generator().manual_seed(1))
    etas = [0.04, 0.02, 0.01, 0.005]
    for order, slope in (("2", 3.0), ("1", 2.0)):
        errors = one_step_errors(game, update, n_d, order, etas, x)
        fitted = np.polyfit(np.log(etas), np.log(errors), 1)[0]
        assert abs(fitted - slope) < 0.15, (order, errors)


@pytest.mark.parametrize("update,n_d,shared", [("sim", 1, False), ("sim", 1, True), ("alt-d", 2, False),
                                               ("alt-g", 1, True)])
def test_noise_covariance_is_that_of_one_chain_step(update, n_d, shared):
    """Cov[Φ_η(x) − x]/η² → Σ̃ as η → 0, from the actual update code with minibatch noise."""
    game, eta, N = GaussianGame(ridge=0.3), 1e-4, 40000
    x = torch.tensor([[1.5, 0.8, 0.3, -0.2]])
    trainer = sga(game, eta, update, n_d=n_d, batch_size=3, shared_batch=shared)
    xs = x.expand(N, -1)
    step, _, _ = trainer.step(xs, trainer.init_state(xs), 0, Streams.from_seed(9, N))
    increments = (step - xs) / eta
    exact = SME(trainer, order="1").noise_covariance(x)[0]
    c = increments - increments.mean(0)
    products = c[:, :, None] * c[:, None, :]
    z = (products.mean(0) - exact).abs() / (products.std(0) / math.sqrt(N)).clamp_min(1e-12)
    assert z.max() < 5, z


class _Recording:
    """The game, recording every minibatch it draws."""

    def __init__(self, game):
        self._game, self.batches = game, []

    def __getattr__(self, name):
        return getattr(self._game, name)

    def sample(self, K, B, generator):
        self.batches.append(self._game.sample(K, B, generator))
        return self.batches[-1]


@pytest.mark.parametrize("update,n_d", [("alt-d", 1), ("alt-g", 2)])
@pytest.mark.parametrize("game", [GaussianGame(ridge=0.3), BilinearGame(p=1, q=2, noise_coupling=0.6, ridge=0.2)],
                         ids=["gaussian", "bilinear"])
def test_shared_batch_second_order_term_includes_the_curvature_noise(game, update, n_d):
    """E[Φ_η(x) − x − η Σ_s P_s V̂(x)]/η² → m₂ + c over shared minibatches, from the update code: the
    control variate η Σ_s P_s V̂ (same batch) leaves O(1) per-batch noise, so c ∝ 1/B is resolved."""
    eta, N, B = 1e-4, 100_000, 2
    x = torch.tensor([[0.9, 0.7, 0.4, -0.3]], dtype=torch.float64)[:, : game.d]
    recording = _Recording(game)
    trainer = sga(recording, eta, update, n_d=n_d, batch_size=B, shared_batch=True)
    xs = x.expand(N, -1)
    stepped, _, _ = trainer.step(xs, trainer.init_state(xs), 0, Streams.from_seed(4, N))
    (batch,) = recording.batches
    rates = torch.tensor([CT] * game.p + [n_d * CO] * game.q, dtype=torch.float64)
    second = (stepped - xs - eta * rates * game.field(xs, batch)) / eta**2  # ½∂²_η Φ per batch, + O(η)
    mean, se = second.mean(0), second.std(0) / math.sqrt(N)
    sme = SME(sga(game, eta, update, n_d=n_d, batch_size=B, shared_batch=True), order="2")
    m2, c = sme.second_moment_term(x)[0], sme.curvature_noise(x)[0]
    assert ((mean - m2 - c).abs() / se).max() < 5, (mean, m2, c, se)
    assert ((mean - m2).abs() / se).max() > 10  # the curvature–noise term is resolved, not negligible


def test_sme2s_covariance_is_positive_semidefinite_and_projections_counted():
    game = GaussianGame(ridge=0.3)
    sme = SME(sga(game, 0.2, batch_size=4), order="2s")
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(2))
    cov = sme.covariance(x)
    assert torch.linalg.eigvalsh(cov).min() > -1e-12
    d = sme.diffusion(x)
    assert torch.allclose(d @ d.transpose(1, 2), cov, atol=1e-10)
    assert sme.projections >= 0
    start = game.init(3, Streams([0, 1, 2]))  # no critic yet: the generator's noise vanishes, Σ̃ is singular
    assert torch.linalg.matrix_rank(sme.noise_covariance(start)[0]) < game.d
    d = sme.diffusion(start)
    assert d.shape == (3, game.d, sme.m) and torch.allclose(d @ d.transpose(1, 2), sme.covariance(start), atol=1e-10)


@pytest.mark.parametrize("order", ["1", "2", "2s"])
@pytest.mark.parametrize("update,shared", [("sim", False), ("alt-d", False), ("sim", True)])
@pytest.mark.parametrize("game", [GaussianGame(n=2, ridge=0.3), DiracGAN.preset("noisy-r1")],
                         ids=["gaussian", "dirac"])
def test_noise_product_is_the_diffusion_times_w(game, order, update, shared):
    """g_prod(t, y, v) = g(t, y) v to rounding, for a game with a closed-form product (Gaussian) and one
    with a factor only (Dirac); the torchsde interface uses it in place of g."""
    sme = SME(SGA(game, lr=0.05, update=update, batch_size=6, shared_batch=shared), order=order)
    gen = torch.Generator().manual_seed(4)
    x = game.init(5, Streams.from_seed(0, 5)) + 0.3 * torch.randn(5, game.d, generator=gen, dtype=torch.float64)
    v = torch.randn(5, sme.m, generator=gen, dtype=torch.float64)
    expected = (sme.g(0.0, x) @ v[..., None])[..., 0]
    torch.testing.assert_close(sme.g_prod(0.0, x, v), expected, rtol=1e-12, atol=1e-13)
    assert expected.abs().max() > 1e-3


def test_refusals_name_the_field():
    game = GaussianGame()
    with pytest.raises(ConfigError, match="sga.gen.optimizer"):
        SME(SGA(game, gen=Player("adam")))
    with pytest.raises(ConfigError, match="sde.order"):
        SME(SGA(game), order="3")


def test_smes_are_available_where_the_game_has_closed_forms():
    from games import MixtureGAN

    assert SME.available(SGA(GaussianGame(), lr=0.1))
    assert not SME.available(SGA(MixtureGAN(hidden=(4,)), lr=0.1))


def test_a_missing_implementation_is_raised_not_taken_for_an_absent_sme():
    """A game method that raises a bare NotImplementedError is a bug: SME.available raises it rather than
    answering no (a game without closed forms raises games.base.NotAvailable)."""
    class Unfinished(GaussianGame):
        def expected_field(self, x):
            raise NotImplementedError

    with pytest.raises(NotImplementedError):
        SME.available(SGA(Unfinished(), lr=0.1))
