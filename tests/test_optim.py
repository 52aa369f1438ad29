"""Batched optimisers against torch.optim run one run at a time, and CG against its formulas."""
import numpy as np
import pytest
import torch

from games.errors import ConfigError
from games.optim import CG_BETAS, OPTIMIZERS, make_optimizer

K, N, LR, STEPS = 3, 4, 0.05, 25


def quadratic(K=K, n=N, seed=0):
    """K strongly convex quadratics f_r(θ) = ½ θᵀA_rθ − b_rᵀθ, different per run, and θ_0."""
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(K, n, n, generator=g, dtype=torch.float64)
    A = M @ M.transpose(1, 2) / n + 0.5 * torch.eye(n, dtype=torch.float64)
    b = torch.randn(K, n, generator=g, dtype=torch.float64)
    theta0 = torch.randn(K, n, generator=g, dtype=torch.float64)
    return A, b, theta0


def loss(A, b, theta):
    return 0.5 * theta @ A @ theta - b @ theta


def run_ours(opt, A, b, theta0, steps=STEPS, lr=LR):
    theta, state = theta0, opt.init(theta0)
    for n in range(steps):
        grad = torch.einsum("kij,kj->ki", A, theta) - b
        d, state = opt.direction(grad, state, n)
        theta = theta - lr * d
    return theta


def run_torch(make, A, b, theta0, steps=STEPS):
    """The same iterates from a torch.optim optimiser, one run at a time."""
    out = []
    for r in range(theta0.shape[0]):
        p = theta0[r].clone().requires_grad_(True)
        opt = make([p])
        for _ in range(steps):
            opt.zero_grad()
            loss(A[r], b[r], p).backward()
            opt.step()
        out.append(p.detach())
    return torch.stack(out)


@pytest.mark.parametrize(
    "name, options, make",
    [
        ("sgd", {}, lambda ps: torch.optim.SGD(ps, lr=LR)),
        ("heavy_ball", {"momentum": 0.7}, lambda ps: torch.optim.SGD(ps, lr=LR, momentum=0.7)),
        ("heavy_ball", {}, lambda ps: torch.optim.SGD(ps, lr=LR, momentum=0.9)),
        ("adam", {}, lambda ps: torch.optim.Adam(ps, lr=LR)),
        ("adam", {"beta1": 0.5, "beta2": 0.9, "eps": 1e-3},
         lambda ps: torch.optim.Adam(ps, lr=LR, betas=(0.5, 0.9), eps=1e-3)),
    ],
)
def test_matches_torch_optim(name, options, make):
    A, b, theta0 = quadratic()
    ours = run_ours(make_optimizer(name, **options), A, b, theta0)
    ref = run_torch(make, A, b, theta0)
    assert not torch.equal(ours, theta0)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def paper_cg(rule, grads, cap=0.5, coefficient=1.0):
    """The directions −d_n of Naganuma & Iiduka's d_n = −g_n + β_n d_{n−1}, written out per run.

    β is capped as in the authors' code: each formula at ``cap`` (the hybrids cap both parts
    before taking max(0, min(·,·))), then multiplied by ``coefficient``.
    """
    out, g_prev, d_prev = [], None, None
    for g in grads:
        if d_prev is None:
            d = -g
        else:
            y = g - g_prev
            fr, prp = g @ g / (g_prev @ g_prev), g @ y / (g_prev @ g_prev)
            hs, dy = g @ y / (d_prev @ y), g @ g / (d_prev @ y)
            beta = {
                "FR": min(fr, cap), "PRP": min(prp, cap), "HS": min(hs, cap), "DY": min(dy, cap),
                "HS_DY": max(0.0, min(min(hs, cap), min(dy, cap))),
                "FR_PRP": max(0.0, min(min(fr, cap), min(prp, cap))),
            }[rule]
            d = -g + coefficient * beta * d_prev
        out.append(-d)
        g_prev, d_prev = g, d
    return out


# three gradients g_0, g_1, g_2 for each of two runs (2-D), chosen so that the rules differ
GRADS = np.array([
    [[1.0, 2.0], [0.5, -1.0], [0.3, 0.4]],
    [[2.0, -1.0], [1.5, 0.5], [-0.5, 1.0]],
    [[1.0, 0.0], [0.9, 0.1], [0.3, -0.2]],
])


def cg_directions(opt, grads):
    g = torch.as_tensor(grads, dtype=torch.float64)
    state = opt.init(g[:, 0])
    out = []
    for n in range(g.shape[1]):
        d, state = opt.direction(g[:, n], state, n)
        out.append(d)
    return torch.stack(out, dim=1).numpy()


@pytest.mark.parametrize("rule", CG_BETAS)
@pytest.mark.parametrize("cap, coefficient", [(0.5, 1.0), (0.5, 0.75), (0.1, 0.5), (10.0, 1.0)])
def test_cg_two_steps_match_formulas(rule, cap, coefficient):
    opt = make_optimizer("cg", beta=rule, beta_cap=cap, coefficient=coefficient)
    expected = np.stack([np.stack(paper_cg(rule, run, cap, coefficient)) for run in GRADS])
    np.testing.assert_allclose(cg_directions(opt, GRADS), expected, rtol=1e-13, atol=1e-13)


def test_cg_fixed_numbers():
    # g_0 = (1, 0), g_1 = (0, 2): FR = 4 → capped at 1/2, times 0.5; D_1 = g_1 + 0.25 D_0.
    # PRP = g_1ᵀ(g_1 − g_0)/‖g_0‖² = 4 → also capped.  DY = 4/(d_0ᵀy) = 4/1 → capped.
    # HS = 4/1 → capped.  A second run with g_1 = (−1, 0): FR = 1 → ½; PRP = 2 → ½;
    # y = (−2, 0), d_0ᵀy = 2: HS = 2/2 = 1 → ½, DY = 1/2; hybrids ½.
    grads = np.array([[[1.0, 0.0], [0.0, 2.0]], [[1.0, 0.0], [-1.0, 0.0]]])
    for rule in CG_BETAS:
        opt = make_optimizer("cg", beta=rule, coefficient=0.5)
        d = cg_directions(opt, grads)
        np.testing.assert_allclose(d[:, 0], grads[:, 0])
        np.testing.assert_allclose(d[0, 1], [0.25, 2.0])
        np.testing.assert_allclose(d[1, 1], [-0.75, 0.0])
    # an uncapped negative β: PRP with g_0 = (1, 0), g_1 = (0.5, 0): β = 0.5·(−0.5)/1 = −0.25
    opt = make_optimizer("cg", beta="PRP")
    d = cg_directions(opt, np.array([[[1.0, 0.0], [0.5, 0.0]]]))
    np.testing.assert_allclose(d[0, 1], [0.25, 0.0])
    # ... which the hybrid clips at 0
    d = cg_directions(make_optimizer("cg", beta="FR_PRP"), np.array([[[1.0, 0.0], [0.5, 0.0]]]))
    np.testing.assert_allclose(d[0, 1], [0.5, 0.0])
    # negative β is not capped below: HS with g_1 = (0.9, 0.1): y = (−0.1, 0.1), d_0ᵀy = 0.1,
    # β = −0.08/0.1 = −0.8; DY with g_1 = (1.5, 0): d_0ᵀy = −0.5, β = 2.25/−0.5 = −4.5
    d = cg_directions(make_optimizer("cg", beta="HS"), np.array([[[1.0, 0.0], [0.9, 0.1]]]))
    np.testing.assert_allclose(d[0, 1], [0.1, 0.1])
    d = cg_directions(make_optimizer("cg", beta="DY"), np.array([[[1.0, 0.0], [1.5, 0.0]]]))
    np.testing.assert_allclose(d[0, 1], [-3.0, 0.0])


@pytest.mark.parametrize("rule", CG_BETAS)
def test_cg_zero_denominator_gives_zero_beta(rule):
    # g_1 = g_0 makes y = 0 (HS, DY); g_0 = 0 makes ‖g_0‖ = 0 (FR, PRP): β = 0, D_1 = g_1.
    grads = torch.tensor([[[1.0, 2.0], [1.0, 2.0]], [[0.0, 0.0], [3.0, -1.0]]], dtype=torch.float64)
    opt = make_optimizer("cg", beta=rule)
    state = opt.init(grads[:, 0])
    _, state = opt.direction(grads[:, 0], state, 0)
    g1 = grads[:, 1].clone().requires_grad_(True)
    d, _ = opt.direction(g1, state, 1)
    if rule in ("FR", "PRP", "FR_PRP"):
        torch.testing.assert_close(d[1], grads[1, 1])
    if rule in ("HS", "DY", "HS_DY"):
        torch.testing.assert_close(d[0], grads[0, 1])
    d.sum().backward()
    assert torch.isfinite(g1.grad).all()


@pytest.mark.parametrize("rule", CG_BETAS)
def test_cg_converges_on_strongly_convex_quadratic(rule):
    A, b, theta0 = quadratic()
    theta = run_ours(make_optimizer("cg", beta=rule), A, b, theta0, steps=300, lr=0.25)
    minimiser = torch.linalg.solve(A, b)
    assert (theta - minimiser).norm(dim=-1).max() < 1e-7


ALL = [("sgd", {}), ("heavy_ball", {}), ("adam", {})] + [("cg", {"beta": r}) for r in CG_BETAS]


def _state_after_two_steps(opt, dtype=torch.float64):
    A, b, theta0 = quadratic()
    A, b, theta = A.to(dtype), b.to(dtype), theta0.to(dtype)
    state = opt.init(theta)
    for n in range(2):
        grad = torch.einsum("kij,kj->ki", A, theta) - b
        d, state = opt.direction(grad, state, n)
        theta = theta - LR * d
    return torch.einsum("kij,kj->ki", A, theta) - b, state


@pytest.mark.parametrize("name, options", ALL)
def test_direction_is_functional_and_differentiable(name, options):
    opt = make_optimizer(name, **options)
    grad, state = _state_after_two_steps(opt)
    before = {k: v.clone() for k, v in state.items()}
    grad_before = grad.clone()
    d, new = opt.direction(grad, state, 2)
    assert d.shape == grad.shape and set(new) == set(state)
    assert torch.equal(grad, grad_before)
    assert all(torch.equal(state[k], before[k]) for k in state)
    jac = torch.autograd.functional.jacobian(lambda g: opt.direction(g, state, 2)[0], grad)
    assert jac.shape == (K, N, K, N) and torch.isfinite(jac).all()
    # runs do not mix: the Jacobian is block diagonal over K
    off = jac.clone()
    off[range(K), :, range(K)] = 0
    assert torch.count_nonzero(off) == 0
    assert torch.autograd.gradcheck(lambda g: opt.direction(g, state, 2)[0], grad.clone().requires_grad_(True))


@pytest.mark.parametrize("name, options", ALL)
def test_follows_dtype(name, options):
    opt = make_optimizer(name, **options)
    grad, state = _state_after_two_steps(opt, torch.float32)
    d, new = opt.direction(grad, state, 2)
    assert d.dtype == torch.float32 and all(v.dtype == torch.float32 for v in new.values())
    assert torch.isfinite(d).all()


def test_names():
    assert OPTIMIZERS == ("sgd", "heavy_ball", "adam", "cg")


@pytest.mark.parametrize(
    "name, options, field",
    [
        ("nope", {}, "opt"),
        ("sgd", {"momentum": 0.9}, "opt.momentum"),
        ("heavy_ball", {"lr": 0.1}, "opt.lr"),
        ("heavy_ball", {"momentum": 1.0}, "opt.momentum"),
        ("heavy_ball", {"momentum": -0.1}, "opt.momentum"),
        ("heavy_ball", {"momentum": float("nan")}, "opt.momentum"),
        ("adam", {"beta2": 1.0}, "opt.beta2"),
        ("adam", {"beta1": "a"}, "opt.beta1"),
        ("adam", {"eps": 0.0}, "opt.eps"),
        ("cg", {"beta": "XX"}, "opt.beta"),
        ("cg", {"beta_cap": 0.0}, "opt.beta_cap"),
        ("cg", {"beta_cap": float("inf")}, "opt.beta_cap"),
        ("cg", {"coefficient": 0.0}, "opt.coefficient"),
        ("cg", {"coefficient": 1.5}, "opt.coefficient"),
    ],
)
def test_config_errors(name, options, field):
    with pytest.raises(ConfigError) as err:
        make_optimizer(name, field="opt", **options)
    assert err.value.field == field


def test_default_field():
    with pytest.raises(ConfigError) as err:
        make_optimizer("rmsprop")
    assert err.value.field == "optimizer"
