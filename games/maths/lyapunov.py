"""Lyapunov equations: the stationary covariances of linear chains and linear SDEs (scipy.linalg's solvers)."""
from __future__ import annotations

import numpy as np
import scipy.linalg


def discrete_lyapunov(M, Q, what: str = "the chain") -> np.ndarray:
    """P solving P = M P Mᵀ + Q: the stationary covariance of x' = Mx + ξ, Cov ξ = Q (Kitagawa 1977).

    Args:
        M: the one-step map [d, d], with spectral radius below 1 (else a ValueError naming ``what``).
        Q: the injected covariance [d, d].
        what: the system's name in the error.

    Returns:
        P [d, d].
    """
    M, Q = np.asarray(M), np.asarray(Q)
    radius = max(abs(np.linalg.eigvals(M)))
    if radius >= 1 - 1e-12:
        raise ValueError(f"{what} is not stable at x*: spectral radius of its linearisation {radius:.4g} ≥ 1")
    return scipy.linalg.solve_discrete_lyapunov(M, Q)


def continuous_lyapunov(A, Q, what: str = "the SDE") -> np.ndarray:
    """P solving A P + P Aᵀ + Q = 0: the stationary covariance of dX = AX dt + σ dW, σσᵀ = Q (Bartels & Stewart 1972).

    Args:
        A: the drift's Jacobian [d, d], with every eigenvalue's real part negative (else a ValueError
            naming ``what``).
        Q: the diffusion's covariance [d, d].
        what: the system's name in the error.

    Returns:
        P [d, d].
    """
    A, Q = np.asarray(A), np.asarray(Q)
    largest = max(np.linalg.eigvals(A).real)
    if largest >= -1e-12:
        raise ValueError(f"{what} is not stable at x*: its drift's Jacobian has an eigenvalue with real "
                         f"part {largest:.4g} ≥ 0")
    return scipy.linalg.solve_continuous_lyapunov(A, -Q)
