"""Linear SDEs (Ornstein–Uhlenbeck processes) with closed-form moments: the integrators' test bed.

dX = (A X + c) dt + S dW with constant A [d, d], c [d], S [d, m]. From a deterministic X_0 = x0 the
law at time t is Gaussian with the mean and covariance below (Van Loan's augmented matrix
exponentials), and each solver of ``sde.solvers`` with step dt has exact moments too
(``scheme_mean``, ``scheme_covariance``): on a linear SDE a step is X' = B X + b + C ΔW, so an
integrator's Monte Carlo error and its step bias can be told apart.
"""
from __future__ import annotations

from typing import Optional

import torch


class LinearSDE:
    """dX = (A X + c) dt + S dW, an Itô SDE with general (here constant) noise, in the torchsde interface."""

    noise_type = "general"
    sde_type = "ito"
    name = "linear"

    def __init__(self, A, c, S, p: Optional[int] = None):
        """Stores the coefficients as float64 and checks their shapes.

        Args:
            A: the drift matrix, [d, d].
            c: the drift offset, [d].
            S: the diffusion matrix, [d, m] (m Brownian motions).
            p: the size of the θ block, 0 ≤ p ≤ d (default d), for the Trajectory's split.
        """
        self.A = torch.as_tensor(A, dtype=torch.float64)
        self.c = torch.as_tensor(c, dtype=torch.float64)
        self.S = torch.as_tensor(S, dtype=torch.float64)
        if self.A.ndim != 2 or self.A.shape[0] != self.A.shape[1]:
            raise ValueError(f"A must be square [d, d], got {tuple(self.A.shape)}")
        self.d = self.A.shape[0]
        if self.c.shape != (self.d,):
            raise ValueError(f"c must be [d={self.d}], got {tuple(self.c.shape)}")
        if self.S.ndim != 2 or self.S.shape[0] != self.d:
            raise ValueError(f"S must be [d={self.d}, m], got {tuple(self.S.shape)}")
        self.m = self.S.shape[1]
        self.p = self.d if p is None else int(p)
        if not 0 <= self.p <= self.d:
            raise ValueError(f"p must be in [0, d={self.d}], got {p}")
        self._cache = {}

    def _on(self, like: torch.Tensor):
        """(Aᵀ, c, S) on the device and dtype of ``like`` (cached)."""
        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = tuple(v.to(device=like.device, dtype=like.dtype)
                                     for v in (self.A.T.contiguous(), self.c, self.S))
        return self._cache[key]

    # -- the torchsde interface -------------------------------------------------------------------
    def f(self, t, y: torch.Tensor) -> torch.Tensor:
        """Drift A y + c, [K, d].

        Args:
            t: the time (unused: the SDE is autonomous).
            y: the states, [K, d].

        Returns:
            f(t, y) = A y + c, [K, d], in y's dtype and device.
        """
        At, c, _ = self._on(y)
        return torch.addmm(c, y, At)

    def g(self, t, y: torch.Tensor) -> torch.Tensor:
        """Diffusion S, broadcast to [K, d, m] (a view).

        Args:
            t: the time (unused: the noise is additive).
            y: the states, [K, d] (only their number, dtype and device are used).

        Returns:
            g(t, y) = S for every path, `[K, d, m]`.
        """
        return self._on(y)[2].expand(y.shape[0], self.d, self.m)

    def describe(self) -> dict:
        return {"name": self.name, "d": self.d, "m": self.m, "p": self.p,
                "A": self.A.tolist(), "c": self.c.tolist(), "S": self.S.tolist()}

    # -- exact moments --------------------------------------------------------------------------
    def mean(self, x0, t: float) -> torch.Tensor:
        """E X_t = e^{At} x0 + ∫₀ᵗ e^{As} c ds, the top block of exp([[A, c], [0, 0]] t) (x0; 1); x0 [d] or [K, d].

        Args:
            x0: the deterministic start X_0, [d] or [K, d].
            t: the time t ≥ 0.

        Returns:
            E X_t, float64, of x0's shape.
        """
        x0 = torch.as_tensor(x0, dtype=torch.float64)
        M = torch.zeros(self.d + 1, self.d + 1, dtype=torch.float64)
        M[: self.d, : self.d], M[: self.d, self.d] = self.A, self.c
        E = torch.linalg.matrix_exp(M * float(t))
        return x0 @ E[: self.d, : self.d].T + E[: self.d, self.d]

    def covariance(self, t: float) -> torch.Tensor:
        """Cov X_t = ∫₀ᵗ e^{As} S Sᵀ e^{Aᵀs} ds = F₂₂ᵀ F₁₂ with F = exp([[−A, S Sᵀ], [0, Aᵀ]] t) (Van Loan)."""
        d = self.d
        M = torch.zeros(2 * d, 2 * d, dtype=torch.float64)
        M[:d, :d], M[:d, d:], M[d:, d:] = -self.A, self.S @ self.S.T, self.A.T
        F = torch.linalg.matrix_exp(M * float(t))
        P = F[d:, d:].T @ F[:d, d:]
        return 0.5 * (P + P.T)

    def step_matrices(self, solver: str, dt: float) -> tuple:
        """(B, b, C) with X_{n+1} = B X_n + b + C ΔW_n for ``solver`` "euler" or "platen2":
        Euler: (I + A dt, c dt, S); Platen: (I + A dt + A²dt²/2, c dt + A c dt²/2, (I + A dt/2) S).

        Args:
            solver: "euler" or "platen2".
            dt: the step.

        Returns:
            (B [d, d], b [d], C `[d, m]`), float64.
        """
        eye = torch.eye(self.d, dtype=torch.float64)
        if solver == "euler":
            return eye + self.A * dt, self.c * dt, self.S
        if solver == "platen2":
            half = eye + 0.5 * self.A * dt
            return eye + self.A * dt @ half, half @ self.c * dt, half @ self.S
        raise ValueError(f"no step matrices for solver {solver!r}")

    def scheme_mean(self, x0, dt: float, n: int, solver: str = "euler") -> torch.Tensor:
        """Mean after n steps of ``solver``: m ← B m + b from m = x0 (the scheme's exact mean).

        Args:
            x0: the deterministic start, [d] or [K, d].
            dt: the step.
            n: the number of steps.
            solver: "euler" or "platen2".

        Returns:
            E X_n of the scheme, float64, of x0's shape.
        """
        B, b, _ = self.step_matrices(solver, dt)
        m = torch.as_tensor(x0, dtype=torch.float64).clone()
        for _ in range(int(n)):
            m = m @ B.T + b
        return m

    def scheme_covariance(self, dt: float, n: int, solver: str = "euler") -> torch.Tensor:
        """Covariance after n steps of ``solver``: P ← B P Bᵀ + C Cᵀ dt from P = 0 (the scheme's exact one).

        Args:
            dt: the step.
            n: the number of steps.
            solver: "euler" or "platen2".

        Returns:
            Cov X_n of the scheme, [d, d], float64.
        """
        B, _, C = self.step_matrices(solver, dt)
        P = torch.zeros(self.d, self.d, dtype=torch.float64)
        for _ in range(int(n)):
            P = B @ P @ B.T + C @ C.T * dt
        return P
