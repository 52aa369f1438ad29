"""Matrix functions of symmetric matrices against scipy and finite differences."""
import pytest
import scipy.linalg
import torch

from games.linalg import symmetric_expm_multiply


def test_expm_multiply_against_scipy_and_matrix_exp_gradient():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3, 40, 40, generator=g, dtype=torch.float64)
    A = -(X @ X.transpose(1, 2)) / 10
    v = torch.randn(3, 40, generator=g, dtype=torch.float64)
    expected = torch.stack([torch.from_numpy(scipy.linalg.expm(a.numpy()) @ w.numpy()) for a, w in zip(A, v)])
    torch.testing.assert_close(symmetric_expm_multiply(A, v), expected, rtol=1e-10, atol=1e-12)
    A.requires_grad_(True)
    symmetric_expm_multiply(A, v).square().sum().backward()
    ours, A.grad = A.grad, None
    (torch.linalg.matrix_exp(A) @ v[..., None])[..., 0].square().sum().backward()
    theirs = (A.grad + A.grad.transpose(1, 2)) / 2  # the gradient along symmetric directions
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("repeated", [False, True])
def test_expm_multiply_gradcheck_even_with_repeated_eigenvalues(repeated):
    g = torch.Generator().manual_seed(1)
    M = torch.randn(2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    if repeated:  # A = −c I: every eigenvalue the same, where autograd through eigh divides by zero
        c = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda c, v: symmetric_expm_multiply(-c * torch.eye(4, dtype=v.dtype), v), (c, v))
    else:
        assert torch.autograd.gradcheck(lambda M, v: symmetric_expm_multiply(-(M @ M.transpose(1, 2)), v), (M, v))
