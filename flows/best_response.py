"""S∞ flows: particle flows of the generator law with the discriminator at its best response.

THEORY §5 (S∞). N particles X_i ∈ R^n per run stand for the generator law ρ_t; K runs are simulated
together, X has shape [K, N, n]. With the critic at its best response (time-scale ratio α → ∞) the
generator's particles follow a Wasserstein gradient flow of a divergence to the target p:

MMD gradient flow (Arbel, Korba, Salim, Gretton, NeurIPS 2019), best response of a critic in the unit
ball of an RKHS with kernel k. The critic is the (unnormalised) witness function

    f(x) = (1/N) Σ_j k(x, X_j) − (1/M) Σ_j k(x, Y_j),          Y [M, n] target samples,
    dX_i/dt = −∇_x f(X_i).

This is exactly gradient descent on the V-statistic MMD²(X, Y) scaled by N/2:
∂MMD²_V/∂X_i = (2/N) ∇f(X_i), so MMD²_V is non-increasing along the flow. Kernel: Gaussian (RBF)
k(x, y) = exp(−|x − y|²/(2h²)), characteristic. Arbel et al.'s noise injection is not implemented.

KL gradient flow (the Wasserstein gradient flow of KL(ρ‖p), Jordan–Kinderlehrer–Otto 1998) without
diffusion, as a deterministic particle flow:

    dX/dt = ∇log p(X) − ∇log ρ_t(X) = ∇D*(X),     D* = log(p/ρ_t),

where D* is the best response of a logistic critic (the density-ratio critic; Goodfellow et al.
2014, Nowozin et al. 2016 — a standard construction, not the exact formulation of Turinici 2020,
which was not available). Along it d/dt KL(ρ_t‖p) = −E_ρ|∇log(p/ρ_t)|² (the relative Fisher
information). ∇log p is given (a callable; ``gaussian_target_score`` builds the Gaussian one);
∇log ρ_t must be estimated from the particles, in one of two families:

- "gaussian": ρ̂ = N(m̂, Ŝ) with the particles' mean and (1/N) covariance, ∇log ρ̂(x) = −Ŝ⁻¹(x − m̂).
  Exact when ρ_t stays Gaussian: with a Gaussian target and a Gaussian start the velocity is affine,
  so the particles' empirical moments follow the Gaussian flow ṁ = −S_p⁻¹(m − m_p),
  Ṡ = 2I − S_p⁻¹S − SS_p⁻¹ exactly, whatever N. Wrong (a moment-matching projection) otherwise.
- "kde": ρ̂_h = (1/N) Σ_j N(X_j, h²I) (Gaussian kernel density estimate, self term included),
  ∇log ρ̂_h(x) = Σ_j w_j(x)(X_j − x)/h², w = softmax_j(−|x − X_j|²/(2h²)). General but biased: it
  is the score of ρ_t smoothed by N(0, h²I), so the flow's fixed point is p deconvolved, not p.

Both flows come as a vector field (particles → velocities), a continuous-time integrator
(torchdiffeq.odeint) and the explicit Euler scheme x ← x + τ v(x) at rate τ (the particle analogue
of training the generator at rate τ against a best-responding critic; Nitanda & Suzuki's gradient
layer). Each returns a ``Trajectory`` with states [T, K, N·n] (p = N·n, no discriminator block:
the critic is a function of the particles) and metadata naming the flow; ``particles(traj)``
reshapes the states back to [T, K, N, n].

Closed forms for checks: ``kl_gaussians`` and ``relative_fisher_gaussians``.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from games.driver import Stepper, drive
from games.errors import ConfigError, check_choice, check_int, check_positive
from games.maths.kernels import mmd2, mmd_witness_grad, rbf_kernel, sq_dists
from games.maths.wasserstein import gaussian_fit
from games.trajectory import Trajectory

from .ode import integrate_flow

KERNELS = ("rbf",)
SCORES = ("gaussian", "kde")

Score = Callable[[torch.Tensor], torch.Tensor]


# -- checks ------------------------------------------------------------------------------------
def _check_particles(field: str, X) -> torch.Tensor:
    """Return X if it is a floating tensor [K, N, n]."""
    if not isinstance(X, torch.Tensor) or X.ndim != 3 or not X.is_floating_point():
        shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
        raise ConfigError(field, f"expected a floating tensor [K, N, n], got {shape}")
    return X


def _check_target(field: str, Y, X: torch.Tensor) -> torch.Tensor:
    """Return target samples as [K or 1, M, n], matching the particles' K and n."""
    if not isinstance(Y, torch.Tensor) or Y.ndim not in (2, 3):
        shape = tuple(Y.shape) if isinstance(Y, torch.Tensor) else type(Y).__name__
        raise ConfigError(field, f"expected [M, n] or [K, M, n], got {shape}")
    Y = Y.unsqueeze(0) if Y.ndim == 2 else Y
    if Y.shape[-1] != X.shape[-1] or Y.shape[0] not in (1, X.shape[0]):
        raise ConfigError(field, f"shape {tuple(Y.shape)} does not match particles {tuple(X.shape)}")
    return Y.to(X)


# -- the MMD flow (Arbel et al. 2019) ------------------------------------------------------------
def mmd_field(X: torch.Tensor, Y: torch.Tensor, h: float) -> torch.Tensor:
    """MMD flow velocity −∇f(X_i) (Arbel et al. 2019, eq. 10 without noise), [K, N, n] → [K, N, n].

    Args:
        X: the particles X_i of each run, [K, N, n].
        Y: the target samples Y_j, [K or 1, M, n].
        h: the Gaussian kernel's bandwidth, > 0.

    Returns:
        −∇f(X_i) with f the witness of X against Y, [K, N, n].
    """
    return -mmd_witness_grad(X, X, Y, h)


# -- scores and the KL flow ---------------------------------------------------------------------
def gaussian_target_score(mean: torch.Tensor, cov: torch.Tensor) -> Score:
    """The score ∇log N(m, S)(x) = −S⁻¹(x − m) as a callable on [..., n].

    Args:
        mean: the target's mean m, [n].
        cov: the target's covariance S, [n, n], symmetric positive definite.

    Returns:
        The score x ↦ −S⁻¹(x − m), `[..., n]` → `[..., n]`, in x's dtype and device.
    """
    mean = torch.as_tensor(mean)
    cov = torch.as_tensor(cov, dtype=mean.dtype)
    n = mean.shape[-1] if mean.ndim else 0
    if mean.ndim != 1 or tuple(cov.shape) != (n, n):
        raise ConfigError("cov", f"expected mean [n] and cov [n, n], "
                                 f"got {tuple(mean.shape)}, {tuple(cov.shape)}")
    L, info = torch.linalg.cholesky_ex(cov)
    if info.item() != 0 or not torch.allclose(cov, cov.T):
        raise ConfigError("cov", "must be symmetric positive definite")
    precision = torch.cholesky_inverse(L)

    def score(x: torch.Tensor) -> torch.Tensor:
        return -(x - mean.to(x)) @ precision.to(x)

    return score


def score_gaussian_fit(X: torch.Tensor) -> torch.Tensor:
    """∇log N(m̂, Ŝ) at the particles: −Ŝ⁻¹(X_i − m̂), → [..., N, n]."""
    m, S = gaussian_fit(X)
    Z = X - m.unsqueeze(-2)
    return -torch.linalg.solve(S, Z.transpose(-1, -2)).transpose(-1, -2)


def score_kde(X: torch.Tensor, h: float) -> torch.Tensor:
    """Score of the Gaussian KDE (1/N)Σ_j N(X_j, h²I) at the particles, → [..., N, n].

    Args:
        X: the particles, [..., N, n].
        h: the kernel's bandwidth, > 0.

    Returns:
        ∇log ρ̂_h(X_i) = Σ_j w_ij (X_j − X_i)/h², [..., N, n].
    """
    w = torch.softmax(-sq_dists(X, X) / (2 * h * h), dim=-1)
    return (w @ X - X) / (h * h)


def particle_score(X: torch.Tensor, score: str, bandwidth: Optional[float]) -> torch.Tensor:
    """∇log ρ̂_t at the particles, by the estimator ``score`` ("gaussian" or "kde").

    Args:
        X: the particles, [..., N, n].
        score: "gaussian" (the moment-matched Gaussian) or "kde" (the Gaussian kernel density estimate).
        bandwidth: the KDE's bandwidth h (only for "kde").

    Returns:
        ∇log ρ̂_t(X_i), [..., N, n].
    """
    return score_gaussian_fit(X) if score == "gaussian" else score_kde(X, bandwidth)


def kl_field(X: torch.Tensor, target_score: Score, score: str = "gaussian",
             bandwidth: Optional[float] = None) -> torch.Tensor:
    """KL flow velocity ∇log p(X) − ∇log ρ̂_t(X) = ∇D*(X), [K, N, n] → [K, N, n].

    Args:
        X: the particles X_i of each run, [K, N, n].
        target_score: the target's score ∇log p, `[..., n]` → `[..., n]`.
        score: the estimator of ∇log ρ_t, "gaussian" or "kde" (``particle_score``).
        bandwidth: the KDE's bandwidth h (only for "kde").

    Returns:
        The velocities, [K, N, n].
    """
    return target_score(X) - particle_score(X, score, bandwidth)


def kl_gaussians(m1: torch.Tensor, S1: torch.Tensor, m2: torch.Tensor, S2: torch.Tensor) -> torch.Tensor:
    """KL(N(m1,S1)‖N(m2,S2)) = ½[tr(S2⁻¹S1) + δᵀS2⁻¹δ − n + log det S2 − log det S1], δ = m1 − m2.

    Args:
        m1: the first mean, [..., n].
        S1: the first covariance, [..., n, n].
        m2: the second mean, [..., n].
        S2: the second covariance, [..., n, n].

    Returns:
        The divergence, [...].
    """
    d = (m1 - m2).unsqueeze(-1)
    tr = torch.diagonal(torch.linalg.solve(S2, S1), dim1=-2, dim2=-1).sum(-1)
    quad = (d.transpose(-1, -2) @ torch.linalg.solve(S2, d))[..., 0, 0]
    logdet = torch.linalg.slogdet(S2)[1] - torch.linalg.slogdet(S1)[1]
    return 0.5 * (tr + quad - m1.shape[-1] + logdet)


def relative_fisher_gaussians(m1: torch.Tensor, S1: torch.Tensor, m2: torch.Tensor,
                              S2: torch.Tensor) -> torch.Tensor:
    """E_ρ|∇log(p/ρ)|² for ρ = N(m1,S1), p = N(m2,S2): tr(A S1 Aᵀ) + |S2⁻¹δ|², A = S1⁻¹ − S2⁻¹.

    Args:
        m1: ρ's mean, [..., n].
        S1: ρ's covariance, [..., n, n].
        m2: p's mean, [..., n].
        S2: p's covariance, [..., n, n].

    Returns:
        The relative Fisher information, [...].
    """
    P1, P2 = torch.linalg.inv(S1), torch.linalg.inv(S2)
    A = P1 - P2
    b = P2 @ (m1 - m2).unsqueeze(-1)
    return torch.diagonal(A @ S1 @ A.transpose(-1, -2), dim1=-2, dim2=-1).sum(-1) + (b * b).sum((-1, -2))


# -- integrators --------------------------------------------------------------------------------
def particles(traj: Trajectory) -> torch.Tensor:
    """The states of a particle-flow trajectory as [T, K, N, n]."""
    return traj.states.reshape(*traj.states.shape[:2], -1, traj.metadata["n"])


def _record(times, states, observables, meta) -> Trajectory:
    """A Trajectory with states [T, K, N·n] from particle states [T, K, N, n]."""
    T, K, N, n = states.shape
    meta = dict(meta, N=N, n=n)
    obs = {k: v.detach().cpu() for k, v in observables.items()}  # [T, K] each
    return Trajectory(times.double().cpu(), states.detach().reshape(T, K, N * n).cpu(), N * n, obs, meta)


class _Euler(Stepper):
    """Explicit Euler X ← X + τ v(X) of particles X [K, N, n] as the driver's ``Stepper``, t_k = kτ."""

    observes = False  # the observables are taken from the recorded states afterwards

    def __init__(self, field, X0: torch.Tensor, tau: float):
        self.field, self.X, self.tau, self.K, self.n = field, X0.detach(), tau, X0.shape[0], 0

    def time(self) -> float:
        return self.n * self.tau

    def state(self) -> torch.Tensor:
        return self.X.reshape(self.K, -1)

    def step(self, n: int, observe: bool):
        self.X, self.n = (self.X + self.tau * self.field(self.X)).detach(), n + 1

    def poison(self, runs: torch.Tensor) -> None:
        self.X = self.X.masked_fill(runs[:, None, None], math.nan)

    def state_dict(self) -> dict:
        return {"X": self.X, "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.X, self.n = state["X"].to(self.X), state["n"]


def _euler(field, X0: torch.Tensor, tau: float, steps: int, record_every: int, meta: dict, observe) -> Trajectory:
    """Explicit Euler x ← x + τ v(x) under ``games.driver``, recording every ``record_every`` steps and the
    last, with the observables ``observe(states [T, K, N, n])``."""
    outcome = drive(_Euler(field, X0, tau), steps, record_every=record_every)
    states = torch.stack(outcome.record.states).to(X0.device).reshape(-1, *X0.shape)
    return _record(torch.tensor(outcome.record.times, dtype=torch.float64), states, observe(states),
                   {**meta, **outcome.metadata()})


def _ode(field, X0: torch.Tensor, t_end: float, meta: dict, observe, options: dict) -> Trajectory:
    """Ẋ = v(X) for particles X0 [K, N, n] through ``flows.ode.integrate_flow`` (its options), with the
    observables ``observe(states [T, K, N, n])``."""
    K, N, n = X0.shape
    rhs = lambda t, x: field(x.reshape(K, N, n)).reshape(K, N * n)  # noqa: E731
    traj = integrate_flow(rhs, X0.detach().reshape(K, N * n), t_end, N * n, metadata={**meta, "N": N, "n": n},
                          **{"rtol": 1e-7, "atol": 1e-9, **options})
    states = traj.states.reshape(*traj.states.shape[:2], N, n)
    return Trajectory(traj.times, traj.states, traj.p, {k: v.detach().cpu() for k, v in observe(states).items()},
                      traj.metadata)


def _mmd_setup(X0, target, bandwidth, kernel):
    """Validate MMD-flow options; return (X0, Y [K|1, M, n], h)."""
    X0 = _check_particles("X0", X0)
    check_choice("kernel", kernel, KERNELS)
    h = check_positive("bandwidth", bandwidth)
    return X0, _check_target("target", target, X0), h


def _mmd_observables(states: torch.Tensor, Y: torch.Tensor, h: float) -> dict:
    """MMD²_V(ρ_t, target) per record and run, [T, K]."""
    return {"mmd2": mmd2(rbf_kernel(states, states, h), rbf_kernel(Y, Y, h), rbf_kernel(states, Y, h))}


def mmd_flow(X0: torch.Tensor, target: torch.Tensor, t_end: float, *, bandwidth: float, kernel: str = "rbf",
             **options) -> Trajectory:
    """MMD gradient flow (Arbel et al. 2019) of particles X0 [K, N, n] toward target [M, n] or [K, M, n]
    (``flows.ode.integrate_flow``'s options; rtol 1e-7, atol 1e-9 by default).

    Args:
        X0: the initial particles, [K, N, n].
        target: the target samples, [M, n] or [K, M, n].
        t_end: the final time.
        bandwidth: the Gaussian kernel's bandwidth h, > 0.
        kernel: the kernel ("rbf").
        **options: keywords of ``flows.ode.integrate_flow`` (n_records, method, rtol, atol…).

    Returns:
        The Trajectory: states [T, K, N·n] and the observable ``mmd2`` (MMD²_V to the target) [T, K].
    """
    X0, Y, h = _mmd_setup(X0, target, bandwidth, kernel)
    meta = {"method": "mmd-flow", "kernel": kernel, "bandwidth": h, "M": Y.shape[-2]}
    return _ode(lambda X: mmd_field(X, Y, h), X0, t_end, meta, lambda s: _mmd_observables(s, Y, h), options)


def mmd_flow_euler(X0: torch.Tensor, target: torch.Tensor, tau: float, steps: int, *, bandwidth: float,
                   kernel: str = "rbf", record_every: int = 1) -> Trajectory:
    """Explicit Euler X ← X − τ∇f(X) of the MMD flow at rate τ, ``steps`` steps.

    Args:
        X0: the initial particles, [K, N, n].
        target: the target samples, [M, n] or [K, M, n].
        tau: the step τ > 0.
        steps: the number of steps.
        bandwidth: the Gaussian kernel's bandwidth h, > 0.
        kernel: the kernel ("rbf").
        record_every: record every that many steps (and the last).

    Returns:
        The Trajectory at times kτ: states [T, K, N·n] and the observable ``mmd2`` [T, K].
    """
    X0, Y, h = _mmd_setup(X0, target, bandwidth, kernel)
    tau = check_positive("tau", tau)
    steps, record_every = check_int("steps", steps), check_int("record_every", record_every)
    meta = {"method": "mmd-flow-euler", "tau": tau, "kernel": kernel, "bandwidth": h, "M": Y.shape[-2]}
    return _euler(lambda X: mmd_field(X, Y, h), X0, tau, steps, record_every, meta,
                  lambda s: _mmd_observables(s, Y, h))


def _kl_setup(X0, target_score, score, bandwidth):
    """Validate KL-flow options; return (X0, bandwidth)."""
    X0 = _check_particles("X0", X0)
    if not callable(target_score):
        raise ConfigError("target_score", f"expected a callable ∇log p, got {type(target_score).__name__}")
    check_choice("score", score, SCORES)
    if score == "kde":
        if bandwidth is None:
            raise ConfigError("bandwidth", "required for score='kde'")
        bandwidth = check_positive("bandwidth", bandwidth)
    elif X0.shape[1] <= X0.shape[2]:
        raise ConfigError("X0", f"score='gaussian' needs N > n particles, "
                                f"got N={X0.shape[1]}, n={X0.shape[2]}")
    return X0, bandwidth


def _kl_observables(states: torch.Tensor, field) -> dict:
    """Particle estimate of the relative Fisher information E_ρ|v|² per record and run, [T, K]."""
    T, K, N, n = states.shape
    v = field(states.reshape(T * K, N, n)).reshape(T, K, N, n)
    return {"fisher": (v * v).sum(-1).mean(-1)}


def kl_flow(X0: torch.Tensor, target_score: Score, t_end: float, *, score: str = "gaussian",
            bandwidth: Optional[float] = None, **options) -> Trajectory:
    """Deterministic KL(ρ‖p) Wasserstein gradient flow of particles X0 [K, N, n], ∇log ρ by ``score``
    (``flows.ode.integrate_flow``'s options; rtol 1e-7, atol 1e-9 by default).

    Args:
        X0: the initial particles, [K, N, n] (N > n for "gaussian").
        target_score: the target's score ∇log p, `[..., n]` → `[..., n]`.
        t_end: the final time.
        score: the estimator of ∇log ρ_t, "gaussian" or "kde".
        bandwidth: the KDE's bandwidth h (required for "kde").
        **options: keywords of ``flows.ode.integrate_flow`` (n_records, method, rtol, atol…).

    Returns:
        The Trajectory: states [T, K, N·n] and the observable ``fisher`` (the particles' estimate of
        the relative Fisher information) [T, K].
    """
    X0, h = _kl_setup(X0, target_score, score, bandwidth)
    field = lambda X: kl_field(X, target_score, score, h)  # noqa: E731
    meta = {"method": "kl-flow", "score": score, "bandwidth": h}
    return _ode(field, X0, t_end, meta, lambda s: _kl_observables(s, field), options)


def kl_flow_euler(X0: torch.Tensor, target_score: Score, tau: float, steps: int, *, score: str = "gaussian",
                  bandwidth: Optional[float] = None, record_every: int = 1) -> Trajectory:
    """Explicit Euler X ← X + τ(∇log p − ∇log ρ̂)(X) of the KL flow at rate τ, ``steps`` steps.

    Args:
        X0: the initial particles, [K, N, n] (N > n for "gaussian").
        target_score: the target's score ∇log p, `[..., n]` → `[..., n]`.
        tau: the step τ > 0.
        steps: the number of steps.
        score: the estimator of ∇log ρ_t, "gaussian" or "kde".
        bandwidth: the KDE's bandwidth h (required for "kde").
        record_every: record every that many steps (and the last).

    Returns:
        The Trajectory at times kτ: states [T, K, N·n] and the observable ``fisher`` [T, K].
    """
    X0, h = _kl_setup(X0, target_score, score, bandwidth)
    tau = check_positive("tau", tau)
    steps, record_every = check_int("steps", steps), check_int("record_every", record_every)
    field = lambda X: kl_field(X, target_score, score, h)  # noqa: E731
    meta = {"method": "kl-flow-euler", "tau": tau, "score": score, "bandwidth": h}
    return _euler(field, X0, tau, steps, record_every, meta, lambda s: _kl_observables(s, field))
