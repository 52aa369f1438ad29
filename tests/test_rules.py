"""Update rules as objects: training by every rule, and their continuous limits read off their code,
against hand formulas, closed-form spectra, one-step expansions and exact moment recursions."""
import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.linalg
import torch

from analysis.linearisation import eigenvalues, max_eigen_difference, spectral_radius
from games.linearisation import update_map_jacobian
from flows import modified_flow
from games import SGA, BilinearGame, DiracGAN, GaussianGame, Player
from games.errors import ConfigError
from games.expansion import Expansion
from games.fdr_scheduler import FDRScheduler
from games.oracle import Mean
from games.random import Streams
from games.rules import Extragradient, UpdateRule, make_rule, trace
from sde.sme import SME

CT, CO = 0.7, 1.3  # separate rate ratios c_θ ≠ c_ω
RULES = {  # name: (sga.update, options)
    "eg": ("eg", {}), "eg-alt-same": ("eg", {"extrapolation": "alt", "sample": "same"}),
    "eg-rho": ("eg", {"rho": 0.6}), "eg-fixed": ("eg", {"rho": 0.3, "tied": False}), "ogda": ("ogda", {}),
    "hgd": ("hgd", {}), "hgd-same": ("hgd", {"sample": "same"}), "consensus": ("consensus", {"gamma": 0.4}),
    "symplectic": ("symplectic", {"lam": 0.7}), "lookahead": ("lookahead", {"k": 3, "alpha": 0.4}),
    "lookahead-eg": ("lookahead", {"k": 2, "inner": "eg"}),
}
STATELESS = [name for name in RULES if name != "ogda"]


def trainer(game, name, eta=0.05, **options):
    update, rule_options = RULES[name]
    options = {"gen": Player(scale=CT), "disc": Player(scale=CO), **options}
    return SGA(game, lr=eta, update=update, update_options=dict(rule_options), **options)


def mv(M, v):
    return (M @ v[..., None])[..., 0]


def jacobians(V, x):
    return torch.stack([torch.autograd.functional.jacobian(lambda z: V(z[None])[0], xk) for xk in x])


# -- training ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shared", [False, True], ids=["fresh", "shared"])
@pytest.mark.parametrize("name", list(RULES))
def test_ensemble_equals_single_runs_and_seeds_repeat(name, shared):
    game = GaussianGame(n=2)
    sga = trainer(game, name, batch_size=5, shared_batch=shared, gen=Player("adam", scale=0.5),
                  disc=Player("heavy_ball", weight_decay=0.01))
    ens = sga.run(12, K=3, seed=11, record_every=5)
    for k, seed in enumerate(ens.metadata["seeds"]):
        single = sga.run(12, streams=Streams([seed]), record_every=5)
        assert torch.equal(single.states[:, 0], ens.states[:, k])
        for observable, v in single.observables.items():
            assert torch.equal(v[:, 0], ens[observable][:, k]), observable
    again, other = sga.run(12, K=3, seed=11, record_every=5), sga.run(12, K=3, seed=12, record_every=5)
    assert torch.equal(again.states, ens.states) and not torch.equal(other.states, ens.states)
    assert torch.isfinite(ens.states).all()


def test_evaluations_are_data():
    """trace reads a rule's gradient evaluations off one step: kind, players, minibatch groups."""
    game = GaussianGame()
    eg = trace(SGA(game, update="eg"))
    assert [(e["kind"], e["groups"]) for e in eg] == [("gradient", [0, 1]), ("gradient", [2, 3])]
    assert [e["groups"] for e in trace(SGA(game, update="eg", update_options={"sample": "same"}))] == [[0, 1], [0, 1]]
    assert {g for e in trace(SGA(game, update="eg", shared_batch=True)) for g in e["groups"]} == {0}
    hgd = trace(SGA(game, update="hgd"))
    assert [e["kind"] for e in hgd] == ["gradient", "jacobian-transpose"] and hgd[1]["groups"] == [2, 3]
    lookahead = trace(SGA(game, update="lookahead", update_options={"k": 4}))
    assert len(lookahead) == 4 and lookahead[-1]["batch"] == "3/g"


def test_lookahead_fdr_terms_are_those_of_the_step_taken():
    """|θ' − c|² − |θ − c|² = −2η(θ − c)·d + η²|d|² for the recorded d of the whole lookahead step."""
    game = GaussianGame()
    traj = trainer(game, "lookahead", batch_size=3).run(20, K=4, seed=1, record_every=1)
    for who, part in (("theta", traj.theta), ("omega", traj.omega)):
        lhs = (part[1:] ** 2).sum(-1) - (part[:-1] ** 2).sum(-1)
        eta = traj[f"lr_{who}"][:-1]
        rhs = -2 * eta * traj[f"dot_{who}"][:-1] + eta**2 * traj[f"sq_{who}"][:-1]
        assert torch.allclose(lhs, rhs, atol=1e-12)


# -- continuous limits against the update code and hand formulas -------------------------------------------
GAMES = [GaussianGame(ridge=0.3), DiracGAN(gamma=0.4)]


@pytest.mark.parametrize("name", STATELESS)
@pytest.mark.parametrize("game", GAMES, ids=["gaussian", "dirac"])
def test_terms_equal_forward_mode_derivatives_of_the_training_code(game, name):
    """b₁ and m₂ from the expansion context equal ∂_η and ½∂²_η of SGA.step on the expected field."""
    sga = trainer(game, name, gen=Player(scale=CT, weight_decay=0.2), disc=Player(scale=CO, weight_decay=0.05))
    expansion = Expansion(sga)
    x = 0.5 * torch.randn(4, game.d, generator=torch.Generator().manual_seed(8))
    b1, m2 = expansion.update_map_terms(x)
    torch.testing.assert_close(expansion.leading_drift(x), b1, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(expansion.second_moment_term(x), m2, atol=1e-11, rtol=1e-11)


def hand_terms(game, name, x):
    """(b₁, m₂) of THEORY §7's hand formulas, with rate scales P = diag(c) and V the expected field."""
    c = torch.cat([torch.full((game.p,), CT), torch.full((game.q,), CO)])
    V = game.expected_field
    v, J = V(x), jacobians(V, x)
    pv = c * v
    zero = torch.zeros_like(x)
    if name in ("eg", "eg-rho"):
        return pv, c * RULES[name][1].get("rho", 1.0) * mv(J, pv)
    if name == "ogda":
        return pv, c * mv(J, pv)
    if name in ("hgd", "hgd-same"):
        return -c * mv(J.transpose(1, 2), v), zero
    if name == "consensus":
        return c * (v - 0.4 * mv(J.transpose(1, 2), v)), zero
    if name == "symplectic":
        return c * (v - 0.35 * mv(J.transpose(1, 2) - J, v)), zero
    if name == "lookahead":
        k, alpha = 3, 0.4
        return alpha * k * pv, alpha * k * (k - 1) / 2 * c * mv(J, pv)
    raise KeyError(name)


@pytest.mark.parametrize("name", ["eg", "eg-rho", "ogda", "consensus", "symplectic", "lookahead"])
@pytest.mark.parametrize("game", [DiracGAN(gamma=0.4), BilinearGame(p=2, q=1, coupling=[[1.0], [0.5]], ridge=0.2,
                                                                    b=0.3, noise_offset=0.2)], ids=["dirac", "bilinear"])
def test_terms_equal_the_hand_formulas(game, name):
    """THEORY §7: eg b₁ = PV, m₂ = ρP DV PV; ogda (underlying method) the same with ρ = 1; hgd −P DVᵀV;
    consensus P(V − γDVᵀV); symplectic P(V − (λ/2)(DVᵀ − DV)V); lookahead αkPV and αk(k−1)/2·P DV PV."""
    x = 0.5 * torch.randn(5, game.d, generator=torch.Generator().manual_seed(3))
    expansion = Expansion(trainer(game, name))
    b1, m2 = hand_terms(game, name, x)
    torch.testing.assert_close(expansion.leading_drift(x), b1, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(expansion.second_moment_term(x), m2, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("game,name", [(game, name) for game in GAMES for name in STATELESS
                                       if isinstance(game, DiracGAN) or name not in ("eg-fixed", "lookahead-eg")])
def test_modified_equation_one_step_error_is_third_order(game, name):
    """|Φ̄_η(x) − (time-η map of ẋ = b₁ + η(m₂ − ½Db₁b₁))(x)| falls as η³ (slope ≥ 2.8), the gradient
    flow's as η² — the training code itself against the flow of the terms read off it (every rule on
    Dirac-GAN; the Gaussian game leaves out the two whose steps are dearest)."""
    x0 = torch.tensor([[0.7, -0.4]]) if game.d == 2 else torch.tensor([[0.3, 0.8, 0.5, -0.2]])
    etas, slopes = [0.04, 0.02, 0.01], {}
    for order in ("1", "2"):
        errors = []
        for eta in etas:
            sga = trainer(game, name, eta)
            step = Expansion(sga).mean_step(x0, eta)
            flow = modified_flow(sga, x0, eta, order=order, n_records=2, rtol=1e-13, atol=1e-15)
            errors.append(float((step - flow.states[-1]).norm()))
        slopes[order] = np.polyfit(np.log(etas), np.log(errors), 1)[0]
    assert slopes["2"] >= 2.8 and 1.8 < slopes["1"] < 2.2, slopes


@pytest.mark.parametrize("name", ["eg", "eg-alt-same", "ogda", "hgd", "consensus", "symplectic", "lookahead"])
def test_noise_covariance_is_that_of_one_chain_step(name):
    """Cov[Φ_η(x) − x]/η² → Σ̃ as η → 0, from the actual update code with minibatch noise (Gaussian game:
    multiplicative noise, quadratic in it for the Hamiltonian rules on independent minibatches)."""
    game, eta, N = GaussianGame(ridge=0.3), 1e-4, 40000
    x = torch.tensor([[1.5, 0.8, 0.3, -0.2]])
    sga = trainer(game, name, eta, batch_size=3)
    xs = x.expand(N, -1)
    state = sga.init_state(xs)
    if name == "ogda":  # the stationary past: the previous direction drawn at x, as in the underlying method
        _, state, _ = sga.step(xs, state, 0, Streams.from_seed(8, N))
    step, _, _ = sga.step(xs, state, 0, Streams.from_seed(9, N))
    increments = (step - xs) / eta
    exact = SME(sga, order="1").noise_covariance(x)[0]
    c = increments - increments.mean(0)
    products = c[:, :, None] * c[:, None, :]
    if name == "ogda":  # 2ζ_k − ζ_{k−1}: 5 Σ per step, Σ once over two steps (the loading of the underlying method)
        exact = 5 * exact
    z = (products.mean(0) - exact).abs() / (products.std(0) / math.sqrt(N)).clamp_min(1e-12)
    assert z.max() < 5, z


# -- the bilinear game: spectra -----------------------------------------------------------------------------
BILINEAR = BilinearGame(coupling=[[1.3]], ridge=0.0, noise_offset=0.3)


@pytest.mark.parametrize("eta", [0.05, 0.2, 0.4])
def test_bilinear_gda_diverges_eg_and_ogda_converge_with_closed_form_radii(eta):
    x_star = BILINEAR.equilibrium()
    radii = {}
    for name in ("sim", "eg", "ogda", "alt-d", "hgd", "consensus", "symplectic", "lookahead"):
        sga = SGA(BILINEAR, lr=eta, update=name)
        auto = eigenvalues(update_map_jacobian(sga, x_star, oracle=Mean(BILINEAR)))
        exact = BILINEAR.one_step_eigenvalues(sga.rule, eta)
        assert max_eigen_difference(auto, exact) < 1e-10, name
        radii[name] = spectral_radius(auto)
        assert abs(radii[name] - spectral_radius(exact)) < 1e-10
    assert radii["sim"] > 1 and radii["eg"] < 1 and radii["ogda"] < 1, radii


# -- a linear game with noise: exact second moments ------------------------------------------------------
A_, LAM, S, B = 1.0, 0.3, 0.5, 2  # coupling, ridge, offset noise, batch
LINEAR = BilinearGame(coupling=[[A_]], ridge=LAM, b=0.4, c=-0.2, noise_offset=S, x0=1.0)
M_ = np.array([[-LAM, -A_], [A_, -LAM]])
V_OFFSET = np.array([-0.4, -0.2])


def field(x, zeta):
    """V̂(x) = Mx + v + ζ of the linear game (ζ: the minibatch noise, covariance S²/B·I)."""
    return M_ @ x + V_OFFSET + zeta


def hand_steps(eta):
    """One iteration of each rule written out by hand: (x, ζ [n, 2]) ↦ x' (ogda: on (x, V̂_{k−1}))."""
    P = np.eye(2)

    def alternate(x, z):
        x = x + eta * np.array([0.0, 1.0]) * field(x, z[0])
        return x + eta * np.array([1.0, 0.0]) * field(x, z[1])

    def lookahead(x, z):
        fast = x
        for j in range(3):
            fast = fast + eta * field(fast, z[j])
        return x + 0.4 * (fast - x)

    def ogda(state, z):
        x, previous = state[:2], state[2:]
        now = field(x, z[0])
        return np.concatenate([x + eta * (2 * now - previous), now])

    return {"sim": (lambda x, z: x + eta * field(x, z[0]), 1),
            "alt-d": (alternate, 2),
            "eg": (lambda x, z: x + eta * field(x + eta * field(x, z[0]), z[1]), 2),
            "hgd": (lambda x, z: x - eta * M_.T @ field(x, z[0]), 1),
            "consensus": (lambda x, z: x + eta * (P - 0.4 * M_.T) @ field(x, z[0]), 1),
            "symplectic": (lambda x, z: x + eta * (P + 0.35 * (M_ - M_.T)) @ field(x, z[0]), 1),
            "lookahead": (lookahead, 3), "ogda": (ogda, 1)}


def affine(step, n_state, n_noise):
    """(A, b, N) of an affine map step(x, ζ) = Ax + b + N vec(ζ), read off by evaluating it."""
    zero_x, zero_z = np.zeros(n_state), np.zeros((n_noise, 2))
    b = step(zero_x, zero_z)
    A = np.stack([step(e, zero_z) - b for e in np.eye(n_state)], axis=1)
    N = np.stack([step(zero_x, e.reshape(n_noise, 2)) - b for e in np.eye(2 * n_noise)], axis=1)
    return A, b, N


def exact_second_moment(name, eta, steps):
    """E|x_k|², k ≤ steps, of the chain from x0 = (1, 1), by the exact moment recursion of its affine map."""
    step, n_noise = hand_steps(eta)[name]
    Q = S**2 / B
    if name == "ogda":  # first step plain GDA (d_{−1} = d_0), then the map on (x, V̂_{k−1})
        first = lambda x, z: np.concatenate([x + eta * field(x, z[0]), field(x, z[0])])  # noqa: E731
        A, b, N = affine(first, 2, 1)
        mean, cov = A @ np.ones(2) + b, Q * N @ N.T
        A, b, N = affine(step, 4, 1)
        out = [2.0, mean[:2] @ mean[:2] + np.trace(cov[:2, :2])]
    else:
        A, b, N = affine(step, 2, n_noise)
        mean, cov, out = np.ones(2), np.zeros((2, 2)), [2.0]
    for _ in range(steps - len(out) + 1):
        mean, cov = A @ mean + b, A @ cov @ A.T + Q * N @ N.T
        out.append(mean[:2] @ mean[:2] + np.trace(cov[:2, :2]))
    return np.array(out)


RULE_OF = {"sim": ("sim", {}), "alt-d": ("alt-d", {}), "eg": ("eg", {}), "hgd": ("hgd", {}),
           "consensus": ("consensus", {"gamma": 0.4}), "symplectic": ("symplectic", {"lam": 0.7}),
           "lookahead": ("lookahead", {"k": 3, "alpha": 0.4}), "ogda": ("ogda", {})}


@pytest.mark.parametrize("name", list(RULE_OF))
def test_simulated_second_moment_matches_the_exact_recursion(name):
    """E|x_k|² of K simulated chains (the library's update code) within Monte Carlo error of the exact
    recursion of the hand-written affine map, along the run."""
    eta, steps, K = 0.1, 30, 20000
    update, options = RULE_OF[name]
    sga = SGA(LINEAR, lr=eta, update=update, update_options=dict(options), batch_size=B)
    traj = sga.run(steps, K=K, seed=5, record_every=10)
    exact = exact_second_moment(name, eta, steps)[[0, 10, 20, 30]]
    squared = traj.states.pow(2).sum(-1)  # [T, K]
    z = (squared.mean(1).numpy() - exact) / (squared.std(1).numpy() / math.sqrt(K)).clip(1e-12)
    assert np.abs(z[1:]).max() < 4.5, (z, exact)


def sme_second_moment(sme, t: float) -> float:
    """E|X_t|² of SME-1 of the linear game from x0 = (1, 1) in closed form: m(t) by the exponential of the
    affine drift, P(t) = ∫₀ᵗ e^{Ãs} ηΣ̃ e^{Ãᵀs} ds by Van Loan's block exponential."""
    zero = torch.zeros(1, 2)
    c = sme.leading_drift(zero)[0].numpy()
    A = np.stack([sme.leading_drift(torch.eye(2)[i : i + 1])[0].numpy() - c for i in range(2)], axis=1)
    Q = sme.eta * sme.noise_covariance(zero)[0].numpy()
    augmented = np.zeros((3, 3))
    augmented[:2, :2], augmented[:2, 2] = A, c
    mean = (scipy.linalg.expm(augmented * t) @ np.array([1.0, 1.0, 1.0]))[:2]
    block = scipy.linalg.expm(np.block([[-A, Q], [np.zeros((2, 2)), A.T]]) * t)
    cov = block[2:, 2:].T @ block[:2, 2:]
    return float(mean @ mean + np.trace(cov))


@pytest.mark.parametrize("name", list(RULE_OF))
def test_sme1_second_moment_is_within_order_eta_of_the_chain(name):
    """At a fixed horizon, |E|x_{T/η}|² − E|X_T|²| between the exact chain and SME-1 (closed forms both) falls
    like η: the gap halves with η (and it is there: SME-1 is not the chain)."""
    T, gaps = 2.0, []
    for eta in (0.04, 0.02, 0.01):
        update, options = RULE_OF[name]
        sme = SME(SGA(LINEAR, lr=eta, update=update, update_options=dict(options), batch_size=B), order="1")
        steps = round(T / eta)
        gaps.append(abs(exact_second_moment(name, eta, steps)[-1] - sme_second_moment(sme, T)))
    slope = np.polyfit(np.log([0.04, 0.02, 0.01]), np.log(gaps), 1)[0]
    assert 0.85 < slope < 1.15 and gaps[-1] > 1e-4, (slope, gaps)


# -- refusals and a rule written in a test --------------------------------------------------------------
def test_unsupported_combinations_are_refused_naming_the_key():
    gaussian = GaussianGame()
    with pytest.raises(ConfigError, match="sde.order"):
        SME(SGA(BILINEAR, update="ogda"), order="2s")
    with pytest.raises(ConfigError, match="sde.order"):
        SME(SGA(gaussian, update="ogda"), order="2")  # multiplicative noise
    with pytest.raises(ConfigError, match="sga.update"):
        SGA(gaussian, update="lookahead", gen=Player(schedule=FDRScheduler(lr=0.1)))
    with pytest.raises(ConfigError, match="sga.update"):
        SME(SGA(gaussian, update="eg", update_options={"rho": 0.5, "tied": False}))  # not quadratic in the noise
    with pytest.raises(ConfigError, match="fourth moments"):
        SME(SGA(gaussian, update="hgd", update_options={"sample": "same"}))
    with pytest.raises(ConfigError, match="sga.inner"):
        make_rule("lookahead", inner="lookahead")
    with pytest.raises(ConfigError, match="sga.gamma"):
        make_rule("eg", gamma=0.3)
    with pytest.raises(ConfigError, match="sga.n_d"):
        make_rule("eg", n_d=2)
    with pytest.raises(ConfigError, match="sga.gen.optimizer"):
        SME(SGA(gaussian, update="eg", gen=Player("heavy_ball")))
    with pytest.raises(ConfigError, match="sga.svag"):
        SGA(gaussian, update="hgd", svag=2).run(1, K=1)
    with pytest.raises(ConfigError, match="sga.n_d"):
        SGA(gaussian, update=Extragradient(), n_d=2)


@dataclass(frozen=True)
class Damped(UpdateRule):
    """A damped simultaneous step: x' = x − βη d(x)."""

    beta: float = 0.5
    name = "damped"

    def step(self, x, state, ctx):
        d = ctx.directions(ctx.gradients(x))
        return ctx.descend(x, {who: self.beta * d[who] for who in d}), state


def test_a_rule_written_in_a_test_trains_and_has_its_continuous_limits():
    """One class, no edit elsewhere: training (ensemble = singles), SME-1 drift βPV and noise β²PΣ_BP,
    and its modified equation, one step within O(η³)."""
    game, rule = GaussianGame(ridge=0.3), Damped(0.5)
    sga = SGA(game, lr=0.05, update=rule, batch_size=4, gen=Player(scale=CT), disc=Player(scale=CO))
    ens = sga.run(10, K=3, seed=2)
    single = sga.run(10, streams=Streams([ens.metadata["seeds"][1]]))
    assert torch.equal(single.states[:, 0], ens.states[:, 1])
    x = torch.randn(4, game.d, generator=torch.Generator().manual_seed(0))
    c = torch.cat([torch.full((game.p,), CT), torch.full((game.q,), CO)])
    sme = SME(sga, order="1")
    torch.testing.assert_close(sme.drift(x), 0.5 * c * game.expected_field(x))
    owner = torch.arange(game.d) >= game.p  # fresh minibatches: one per player, no cross-covariance
    same = (owner[:, None] == owner[None, :]).double()
    expected = 0.25 * c[:, None] * game.gradient_covariance(x, 4) * c[None, :] * same
    torch.testing.assert_close(sme.noise_covariance(x), expected)
    assert sme.name == "SME-1 (damped)" and sga.describe()["rule"] == {"name": "damped", "beta": 0.5}


def test_docs_rules_page_is_what_the_code_computes():
    """docs/rules-table.md is the output of analysis.rules_table (regenerate: python -m analysis.rules_table)."""
    from pathlib import Path

    from analysis.rules_table import markdown

    page = Path(__file__).resolve().parents[1] / "docs" / "rules-table.md"
    assert page.read_text() == markdown(), "docs/rules-table.md is stale: python -m analysis.rules_table > docs/rules-table.md"
