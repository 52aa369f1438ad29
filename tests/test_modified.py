"""Modified equations: the flow of b₁ + η(m₂ − ½Db₁b₁) matches one step of gradient descent to O(η³)."""
import math

import pytest
import torch

from games import SGA, BilinearGame, DiracGAN, GaussianGame, Player
from games.errors import ConfigError
from games.expansion import Expansion
from flows import gradient_flow, integrate_flow, modified_flow

RULES = {"sim": dict(update="sim"), "alt-d": dict(update="alt-d"), "alt-g": dict(update="alt-g"),
         "alt-d n_d=3": dict(update="alt-d", n_d=3)}


def one_step_errors(game, rule, order, etas, x0):
    """|Φ̄_η(x0) − (time-η map of the order-``order`` flow)(x0)| for each η."""
    errors = []
    for eta in etas:
        sga = SGA(game, lr=eta, gen=Player(scale=1.0), disc=Player(scale=0.6), **rule)
        step = Expansion(sga).mean_step(x0, torch.tensor(eta, dtype=x0.dtype))
        flow = modified_flow(sga, x0, eta, order=order, n_records=2, rtol=1e-13, atol=1e-15)
        errors.append(float((step - flow.states[-1]).norm()))
    return errors


def slope(etas, errors):
    return math.log(errors[0] / errors[-1]) / math.log(etas[0] / etas[-1])


@pytest.mark.parametrize("rule", RULES, ids=list(RULES))
@pytest.mark.parametrize("game", [DiracGAN(gamma=0.4), GaussianGame(ridge=0.3)], ids=["dirac-r1", "gaussian"])
def test_modified_equation_one_step_error_is_third_order(game, rule):
    x0 = torch.tensor([[0.7, -0.4]]) if game.d == 2 else torch.tensor([[0.3, 0.8, 0.5, -0.2]])
    etas = [0.04, 0.02, 0.01]
    second = one_step_errors(game, RULES[rule], "2", etas, x0.double())
    first = one_step_errors(game, RULES[rule], "1", etas, x0.double())
    assert 2.8 < slope(etas, second) < 3.2, second
    assert 1.8 < slope(etas, first) < 2.2, first  # the gradient flow is a step behind


def test_gradient_flow_of_the_rule_is_its_leading_drift():
    """modified_flow(order 1) with c_θ, c_ω equals gradient_flow with the same scales."""
    game, x0 = GaussianGame(), torch.tensor([[0.3, 0.8, 0.5, -0.2]], dtype=torch.float64)
    sga = SGA(game, lr=0.1, gen=Player(scale=2.0), disc=Player(scale=0.5))
    a = modified_flow(sga, x0, 1.0, order="1", n_records=5)
    b = gradient_flow(game, x0, 1.0, c_theta=2.0, c_omega=0.5, n_records=5)
    torch.testing.assert_close(a.states, b.states, rtol=1e-8, atol=1e-10)


def test_rotational_system_modified_flow_matches_closed_form():
    """Rosca et al.'s ẋ = −εx + y, ẏ = −x − εy (bilinear game, A = −1, ridge ε): for simultaneous GD
    the modified field is (I − (η/2)M)Mx, linear, so its flow is exp(t(M − (η/2)M²))x0."""
    eps, eta, t = 0.1, 0.2, 3.0
    game = BilinearGame(coupling=[[-1.0]], ridge=eps, noise_offset=0.0)
    M = torch.tensor([[-eps, 1.0], [-1.0, -eps]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    flow = modified_flow(SGA(game, lr=eta), x0, t, n_records=2)
    exact = torch.linalg.matrix_exp(t * (M - 0.5 * eta * M @ M)) @ x0[0]
    torch.testing.assert_close(flow.states[-1, 0], exact, rtol=1e-8, atol=1e-10)


def test_fixed_step_rk4_agrees_with_dopri5():
    game, x0 = DiracGAN(gamma=0.4), torch.tensor([[0.7, -0.4]], dtype=torch.float64)
    sga = SGA(game, lr=0.05, update="alt-d")
    a = modified_flow(sga, x0, 2.0, n_records=5, method="rk4", step_size=0.01)
    b = modified_flow(sga, x0, 2.0, n_records=5)
    torch.testing.assert_close(a.states, b.states, rtol=1e-7, atol=1e-9)


def test_divergent_flow_keeps_the_records_before_it():
    """ẋ = x² blows up at t = 1/x0: the records before it are kept and the failure is named."""
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    traj = integrate_flow(lambda t, x: x**2, x0, 2.0, 1, n_records=21, rtol=1e-6, atol=1e-8)
    assert traj.metadata["diverged"]
    assert 0.85 <= float(traj.times[-1]) < 1.0
    torch.testing.assert_close(traj.states[:, 0, 0], 1 / (1 - traj.times), rtol=1e-4, atol=0)


def test_bad_options_are_named():
    sga, x0 = SGA(DiracGAN(), lr=0.1), torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    with pytest.raises(ConfigError, match="flow.order"):
        modified_flow(sga, x0, 1.0, order="3")
    with pytest.raises(ConfigError, match="flow.method"):
        modified_flow(sga, x0, 1.0, method="rk5")
    with pytest.raises(ConfigError, match="x0"):
        modified_flow(sga, x0[0], 1.0)
