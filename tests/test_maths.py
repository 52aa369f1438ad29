"""The shared formulas of games.maths against independent values: autograd, closed forms, identities."""
import math

import pytest
import torch

from games.maths import losses, lyapunov


@pytest.mark.parametrize("loss", ["gan", "ns-gan", "wgan", "wgan-gp"])
def test_loss_derivatives_are_autograds(loss):
    t = torch.linspace(-6, 6, 25, dtype=torch.float64, requires_grad=True)
    (d1,) = torch.autograd.grad(losses.f(t, loss).sum(), t, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), t) if d1.requires_grad else (torch.zeros_like(t),)
    assert torch.allclose(losses.f_prime(t, loss), d1, atol=1e-14)
    assert torch.allclose(losses.f_second(t, loss), d2, atol=1e-14)
    (g,) = torch.autograd.grad(losses.generator_loss(t, loss).sum(), t)
    assert torch.allclose(losses.generator_loss_slope(t, loss), g, atol=1e-14)


def test_gan_loss_is_log_sigmoid_and_one_by_one_softplus_agrees():
    t = torch.tensor([-30.0, -1.0, 0.0, 2.0, 40.0], dtype=torch.float64)
    assert torch.allclose(losses.f(t, "gan"), torch.log(torch.sigmoid(t)), atol=1e-13)
    assert torch.allclose(losses.f(t, "gan", one_by_one=True), losses.f(t, "gan"), atol=1e-15)
    assert losses.f_prime(torch.zeros(()), "gan") == 0.5
    # the non-saturating generator loss is −log σ(t); the zero-sum one log(1 − σ(t))
    assert torch.allclose(losses.generator_loss(t, "ns-gan"), -torch.log(torch.sigmoid(t)), atol=1e-13)
    assert float(losses.generator_loss(torch.tensor(0.0), "gan")) == pytest.approx(math.log(0.5))


def test_scalar_lyapunov_solutions_are_the_closed_forms():
    # x' = m x + ξ: P = q/(1 − m²); dX = −a X dt + σ dW: P = σ²/(2a)
    assert float(lyapunov.discrete_lyapunov([[0.6]], [[0.32]])[0, 0]) == pytest.approx(0.32 / (1 - 0.36), rel=1e-12)
    assert float(lyapunov.continuous_lyapunov([[-2.0]], [[0.5]])[0, 0]) == pytest.approx(0.5 / 4, rel=1e-12)
    with pytest.raises(ValueError, match="spectral radius"):
        lyapunov.discrete_lyapunov([[1.0]], [[1.0]])
    with pytest.raises(ValueError, match="real part"):
        lyapunov.continuous_lyapunov([[0.1]], [[1.0]], what="SME-1")

