"""S∞ particle flows (MMD, KL) and the GA-NTK closed-form kernel critic (THEORY §5)."""
import pytest
import torch

from flows.best_response import (gaussian_target_score, kl_field, kl_flow, kl_flow_euler, kl_gaussians,
                                 mmd_field, mmd_flow, mmd_flow_euler, particles, relative_fisher_gaussians,
                                 score_kde)
from flows.kernel_critic import (critic_labels, critic_rate, critic_values, empirical_ntk, ga_ntk,
                                 ga_ntk_descent, gram, make_mlp)
from games.errors import ConfigError
from games.maths.kernels import mmd2, mmd_witness, rbf_kernel
from games.maths.wasserstein import gaussian_fit

M_P = torch.tensor([1.0, -0.5])
S_P = torch.tensor([[1.0, 0.3], [0.3, 0.5]])


def _gaussian_start(K=2, N=2000, seed=1):
    g = torch.Generator().manual_seed(seed)
    L0 = torch.tensor([[0.5, 0.0], [0.2, 0.3]])
    return torch.tensor([-1.0, 1.0]) + torch.randn(K, N, 2, generator=g) @ L0.T


def _blob_and_mixture(K=3, N=100, M=200, seed=2):
    g = torch.Generator().manual_seed(seed)
    X0 = torch.tensor([0.0, -1.0]) + 0.3 * torch.randn(K, N, 2, generator=g)
    modes = torch.tensor([[-1.5, 1.0], [1.5, 1.0]])
    Y = modes[torch.arange(M) % 2] + 0.3 * torch.randn(M, 2, generator=g)
    return X0, Y


# -- closed forms ---------------------------------------------------------------------------------
def test_gaussian_closed_forms_match_monte_carlo():
    g = torch.Generator().manual_seed(0)
    m1, S1 = torch.tensor([-1.0, 1.0]), torch.tensor([[0.25, 0.1], [0.1, 0.13]])
    x = m1 + torch.randn(200_000, 2, generator=g) @ torch.linalg.cholesky(S1).T
    logp = torch.distributions.MultivariateNormal(M_P, S_P).log_prob(x)
    logq = torch.distributions.MultivariateNormal(m1, S1).log_prob(x)
    assert kl_gaussians(m1, S1, M_P, S_P) == pytest.approx((logq - logp).mean().item(), rel=0.01)
    v = gaussian_target_score(M_P, S_P)(x) + torch.linalg.solve(S1, (x - m1).T).T
    assert relative_fisher_gaussians(m1, S1, M_P, S_P) == pytest.approx((v * v).sum(-1).mean().item(), rel=0.01)
    assert kl_gaussians(M_P, S_P, M_P, S_P).abs() < 1e-12


def test_kde_score_is_gradient_of_log_kde():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(2, 30, 2, generator=g)
    x = X.clone().requires_grad_(True)
    h = 0.4
    logkde = torch.logsumexp(-((x.unsqueeze(-2) - X.unsqueeze(-3)) ** 2).sum(-1) / (2 * h * h), dim=-1)
    (grad,) = torch.autograd.grad(logkde.sum(), x)
    torch.testing.assert_close(score_kde(X, h), grad, rtol=1e-10, atol=1e-10)


# -- KL flow ---------------------------------------------------------------------------------------
def test_kl_flow_dissipation_identity():
    """d/dt KL(ρ_t‖p) = −E_ρ|∇log(p/ρ_t)|² along the flow (Gaussian target and start)."""
    tr = kl_flow(_gaussian_start(), gaussian_target_score(M_P, S_P), 2.0, n_records=161)
    assert tr.metadata["method"] == "kl-flow" and tr.states.shape == (161, 2, 4000) and tr.p == 4000
    m, S = gaussian_fit(particles(tr))
    kl = kl_gaussians(m, S, M_P, S_P)                                  # [T, K]
    dt = (tr.times[1] - tr.times[0]).item()
    dkl = (kl[2:] - kl[:-2]) / (2 * dt)
    fisher_mc = tr["fisher"][1:-1]                                      # particle average of |v|²
    fisher_cf = relative_fisher_gaussians(m, S, M_P, S_P)[1:-1]
    assert kl[-1].max() < 0.05 * kl[0].min()                            # the flow does converge
    assert ((dkl + fisher_mc) / fisher_mc).abs().max() < 0.05
    assert ((dkl + fisher_cf) / fisher_cf).abs().max() < 0.05


def test_kl_euler_converges_to_flow_at_order_one():
    X0, score = _gaussian_start(N=400), gaussian_target_score(M_P, S_P)
    ref = kl_flow(X0, score, 1.0, n_records=2).states[-1]
    errs = [(kl_flow_euler(X0, score, tau, round(1.0 / tau)).states[-1] - ref).abs().max().item()
            for tau in (0.02, 0.01)]
    assert 1.7 < errs[0] / errs[1] < 2.3


# -- MMD flow --------------------------------------------------------------------------------------
def test_mmd_field_is_minus_witness_gradient():
    X0, Y = _blob_and_mixture(K=2, N=20, M=30)
    x = X0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(mmd_witness(x, X0, Y, 0.7).sum(), x)
    torch.testing.assert_close(mmd_field(X0, Y, 0.7), -grad, rtol=1e-10, atol=1e-12)
    # and the flow is gradient descent on the V-statistic, scaled by N/2
    (g2,) = torch.autograd.grad(mmd2(*(rbf_kernel(a, b, 0.7) for a, b in ((x, x), (Y, Y), (x, Y)))).sum(), x)
    torch.testing.assert_close(mmd_field(X0, Y, 0.7), -(X0.shape[1] / 2) * g2, rtol=1e-10, atol=1e-12)


def _own_mmd2(X, Y, h):
    """V-statistic by explicit pairwise differences, independent of the module's kernel code."""
    k = lambda a, b: torch.exp(-((a.unsqueeze(-2) - b.unsqueeze(-3)) ** 2).sum(-1) / (2 * h * h))  # noqa: E731
    return k(X, X).mean((-1, -2)) + k(Y, Y).mean((-1, -2)) - 2 * k(X, Y).mean((-1, -2))


def test_mmd_flow_decreases_mmd_monotonically():
    X0, Y = _blob_and_mixture()
    tr = mmd_flow(X0, Y, 30.0, bandwidth=1.0, n_records=61)
    assert tr.metadata["method"] == "mmd-flow" and tr.states.shape == (61, 3, 200)
    mmd = _own_mmd2(particles(tr), Y, 1.0)                              # [T, K]
    torch.testing.assert_close(tr["mmd2"], mmd)
    assert (mmd[1:] - mmd[:-1] < 0).all()
    assert (mmd[-1] < 0.1 * mmd[0]).all()
    right = (particles(tr)[-1, ..., 0] > 0).double().mean(-1)           # both modes are reached
    assert ((right > 0.35) & (right < 0.65)).all()
    eu = mmd_flow_euler(X0, Y, 0.5, 60, bandwidth=1.0, record_every=5)
    assert eu.metadata["method"] == "mmd-flow-euler" and eu.times[-1] == pytest.approx(30.0)
    assert (eu["mmd2"][1:] - eu["mmd2"][:-1] < 0).all()


# -- GA-NTK ----------------------------------------------------------------------------------------
def _points(seed=4, K=2, M=5, N=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(M, 2, generator=g), torch.randn(K, N, 2, generator=g) + 1.0


def test_ga_ntk_critic_closed_form():
    real, fake = _points()
    P = torch.cat([real.expand(2, -1, -1), fake], 1)
    G = gram(P, "rbf", bandwidth=0.5)
    y = critic_labels(5, 4)
    assert torch.linalg.eigvalsh(G).min() > 1e-3                        # positive definite
    D0, loss0 = ga_ntk(real, fake, t=0.0, bandwidth=0.5)
    assert D0.abs().max() == 0 and torch.allclose(loss0, torch.full((2,), 9.0))
    D_inf, loss_inf = ga_ntk(real, fake, t=1e4, bandwidth=0.5)
    torch.testing.assert_close(D_inf, y.expand(2, -1), rtol=0, atol=1e-10)
    assert torch.allclose(loss_inf, torch.full((2,), 4.0))             # the fake points are scored 0
    lam, V = torch.linalg.eigh(G)                                       # independent: spectral formula
    D_eig = (V @ ((1 - torch.exp(-0.7 * lam)) * (V.mT @ y)).unsqueeze(-1)).squeeze(-1)
    D, _ = ga_ntk(real, fake, t=0.35, eta=2.0, bandwidth=0.5)
    torch.testing.assert_close(D, D_eig, rtol=1e-10, atol=1e-12)
    eps = 1e-5                                                          # Ḋ = ηG(y − D)
    rate_fd = (critic_values(G, y, 2.0 * (0.35 + eps)) - critic_values(G, y, 2.0 * (0.35 - eps))) / (2 * eps)
    torch.testing.assert_close(rate_fd, critic_rate(G, y, D, 2.0), rtol=1e-7, atol=1e-9)


def test_ga_ntk_loss_is_differentiable_and_descends():
    real, fake = _points(K=1, M=3, N=2)
    z = fake.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: ga_ntk(real, z, t=0.5, bandwidth=0.8)[1], (z,))
    net = make_mlp(2, 8, 2, generator=torch.Generator().manual_seed(0))
    assert torch.autograd.gradcheck(lambda z: ga_ntk(real, z, t=0.5, kernel="ntk", model=net)[1], (z,))
    real, fake = _points(K=2, M=6, N=6)
    tr = ga_ntk_descent(real, fake, lr=0.05, steps=60, t=1.0, bandwidth=1.0, record_every=20)
    assert tr.states.shape == (4, 2, 12) and (tr["loss"][1:] < tr["loss"][:-1]).all()


def test_empirical_ntk_equals_explicit_jacobian_loop():
    net = make_mlp(3, 6, 2, generator=torch.Generator().manual_seed(5))
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(6))
    rows = []
    for xi in x:
        net.zero_grad()
        net(xi.unsqueeze(0)).sum().backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    J = torch.stack(rows)
    torch.testing.assert_close(empirical_ntk(net, x), J @ J.T, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(empirical_ntk(net, x.expand(2, 7, 3))[1], J @ J.T, rtol=1e-10, atol=1e-12)


# -- bad options -----------------------------------------------------------------------------------
@pytest.mark.parametrize("call, field", [
    (lambda X, Y: mmd_flow(X, Y, 1.0, bandwidth=1.0, kernel="laplace"), "kernel"),
    (lambda X, Y: mmd_flow(X, Y, 1.0, bandwidth=-1.0), "bandwidth"),
    (lambda X, Y: mmd_flow_euler(X, Y, 0.1, 3, bandwidth=0.0), "bandwidth"),
    (lambda X, Y: mmd_flow(X[0], Y, 1.0, bandwidth=1.0), "X0"),
    (lambda X, Y: mmd_flow(X, Y[:, :1], 1.0, bandwidth=1.0), "target"),
    (lambda X, Y: kl_flow(X, gaussian_target_score(M_P, S_P), 1.0, score="stein"), "score"),
    (lambda X, Y: kl_flow(X, gaussian_target_score(M_P, S_P), 1.0, score="kde"), "bandwidth"),
    (lambda X, Y: kl_flow_euler(X, gaussian_target_score(M_P, S_P), 0.1, 3, score="kde", bandwidth=-0.1),
     "bandwidth"),
    (lambda X, Y: kl_flow_euler(X, gaussian_target_score(M_P, S_P), -0.1, 3), "tau"),
    (lambda X, Y: gaussian_target_score(M_P, -S_P), "cov"),
    (lambda X, Y: ga_ntk(Y, X, t=1.0, kernel="laplace", bandwidth=1.0), "kernel"),
    (lambda X, Y: ga_ntk(Y, X, t=1.0, bandwidth=-1.0), "bandwidth"),
    (lambda X, Y: ga_ntk(Y, X, t=1.0, kernel="ntk"), "model"),
    (lambda X, Y: ga_ntk(Y[:, :1], X, t=1.0, bandwidth=1.0), "real"),
    (lambda X, Y: ga_ntk(Y, X[0], t=1.0, bandwidth=1.0), "fake"),
    (lambda X, Y: ga_ntk(Y, X, t=-1.0, bandwidth=1.0), "t"),
])
def test_bad_options_raise_config_error(call, field):
    X, Y = _blob_and_mixture(K=2, N=5, M=6)
    with pytest.raises(ConfigError) as err:
        call(X, Y)
    assert err.value.field == field and field in str(err.value)


def test_kernel_helpers_shapes():
    X, Y = _blob_and_mixture(K=2, N=5, M=6)
    assert rbf_kernel(X, Y, 1.0).shape == (2, 5, 6)
    assert kl_field(X, gaussian_target_score(M_P, S_P)).shape == X.shape
