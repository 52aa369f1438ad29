"""Moment equations of the linearised SME-1 under a per-player learning-rate schedule (THEORY §6).

Li, Tai & E's controlled SGD (cSGD; Li, Tai & E 2017, §5), applied to games. Time is step time s
(one unit per training iteration); the players' rates u(s) = (u_θ(s), u_ω(s)) are absolute learning
rates. Near an equilibrium x*, SME-1 of training at these rates is the linear SDE

    dX = D_u J (X − x*) ds + D_u S dW_s,   S Sᵀ = Σ,

with D_u = diag(u_θ on θ's p coordinates, u_ω on ω's), J = Db₁(x*) the Jacobian of SME-1's leading
drift and Σ = Σ̃(x*) its noise covariance, both taken with unit rate scales (``linearise``, whose
``games.linearisation.Linearisation`` holds J as its A). The rate scales c of ``games.expansion`` are per
coordinate, so b₁ = D_c·(unit b₁) and Σ̃ = D_c·(unit Σ̃)·D_c
for every stateless rule (sim; alternating with n_d steps, where J's ω rows count n_d times; fresh or
shared batches); at a constant rate η, ds = dt/η turns dX = b₁ dt + √η σ dW into the SDE above with
u = η c. The mean m = E X − x* and covariance P obey

    ṁ = A m,   Ṗ = A P + P Aᵀ + D_u Σ D_u,   A = D_u J,

and E|X − x*|² = |m|² + tr P.

Integration: both equations are linear, so over a piece [s₀, s₀ + ℓ] the moments move by the affine
map m ↦ Φm, P ↦ ΦPΦᵀ + R, where Φ' = AΦ and R' = AR + RAᵀ + D_uΣD_u from (Φ, R) = (I, 0). ``moments``
cuts [times[0], times[-1]] into short pieces at the requested times and at the schedule's kinks
(``breaks``, e.g. knots), integrates every piece's (Φ, R) at once with torchdiffeq (``MomentODE``:
the pieces as one batch, each in its local time σ ∈ [0, 1], fixed-step rk4 by default) and composes
the maps by a parallel prefix scan. A solver step is as accurate as in a direct integration of
(m, P), but the sequential work is a few solver steps and log₂(pieces) compositions instead of
thousands of solver steps, and the moments are differentiable in the schedule's parameters (autograd
through odeint).

A schedule is a module s ↦ u(s) [..., 2] (θ, ω) for times s [...], with ``u_max`` [2] (a bound on
the rates, which sets the default step) and ``breaks`` (times where u has a kink). ``optimise`` fits
a ``PiecewiseSchedule`` minimising log E|X − x*|² at the budget s = steps by Adam, backpropagating
through the solver; ``known_optimum_1d`` is the closed-form optimum of the scalar problem.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Optional

import torch
from torch import nn
from torchdiffeq import odeint

from games.errors import check_int, check_positive, check_shape
from games.linearisation import Linearisation, jacobian_at
from games.sga import SGA

from .sme import SME

ACCURACY = 0.5  # default step h: h·λ ≤ ACCURACY for the fastest rate λ of the covariance equation
SUBSTEPS = 4  # fixed solver steps per piece (pieces are at most SUBSTEPS·h long): fewer, longer pieces
# mean fewer compositions but more sequential solver stages; 4 was the fastest of 1, 2, 4, 8, 16
EQUILIBRIUM_TOLERANCE = 1e-8  # |b₁(x*)| allowed, relative to 1 + ‖J‖·|x*|
FIXED_STEP_METHODS = ("euler", "midpoint", "rk4", "heun2", "heun3", "explicit_adams", "implicit_adams")


# -- the linearised SDE ----------------------------------------------------------------------------
def linearise(sga: SGA, x_star: Optional[torch.Tensor] = None) -> Linearisation:
    """SME-1 of ``sga`` near x* with both rate scales 1 and η = 1 (THEORY §2, §6): A = J = Db₁(x*)
    (autograd) and Σ = Σ̃(x*); x* defaults to the game's equilibrium and must be a zero of b₁.

    Args:
        sga: the training (a stateless rule; its rates and schedules are replaced by unit ones).
        x_star: the equilibrium x*, [d] (default: the game's).

    Returns:
        The ``Linearisation`` with A = J [d, d], sigma = Σ [d, d], x* [d] and the game's p.
    """
    unit = replace(sga, lr=1.0, compile=False, gen=_unit_rate(sga.gen), disc=_unit_rate(sga.disc))
    sme = SME(unit, "1")
    x_star = sga.game.equilibrium() if x_star is None else torch.as_tensor(x_star, dtype=torch.float64)
    check_shape("x_star", x_star, (sga.game.d,))
    J = jacobian_at(sme.leading_drift, x_star)
    residual = float(sme.leading_drift(x_star[None])[0].norm())
    if residual > EQUILIBRIUM_TOLERANCE * (1 + float(J.norm() * x_star.norm())):
        raise ValueError(f"x_star is not an equilibrium: |b₁(x_star)| = {residual:.3g} (the moment equations "
                         "have no constant drift)")
    sigma = sme.noise_covariance(x_star[None])[0]
    return Linearisation(J.detach(), sigma.detach(), x_star, sga.game.p)


def _unit_rate(player):
    """``player`` with rate scale 1 and no schedule of its own (the rates come from the schedule u)."""
    return replace(player, scale=1.0, schedule=None)


# -- schedules ---------------------------------------------------------------------------------------
class PiecewiseSchedule(nn.Module):
    """u_w(s) = u_max,w · sigmoid(a_w(s)), a_w piecewise linear between ``knots`` equally spaced knots
    over [0, steps] (constant beyond), so that 0 < u_w ≤ u_max,w; ``init``: the initial rates, a
    constant, a pair (θ, ω) or a schedule read at the knots (default u_max/2). ``tied``: one logit curve for
    both players, so u_θ/u_ω = u_max,θ/u_max,ω throughout (a family with fewer ways to overfit the model)."""

    def __init__(self, steps: int, knots: int = 16, u_max=0.1, init=None, tied: bool = False):
        """Sets the knot logits from the initial rates.

        Args:
            steps: the horizon in step time s (iterations); the knots span [0, steps].
            knots: the number of knots, ≥ 2.
            u_max: the rates' bound, a number or a pair (θ, ω).
            init: the initial rates in (0, u_max]: a number, a pair, or a schedule s ↦ u(s) `[..., 2]`
                (default u_max/2).
            tied: one logit curve for both players.
        """
        super().__init__()
        self.steps, self.knots = check_int("steps", steps), check_int("knots", knots, minimum=2)
        self.spacing = self.steps / (self.knots - 1)
        self.register_buffer("u_max", _per_player("u_max", u_max))
        self.register_buffer("knot_times", torch.linspace(0, self.steps, self.knots, dtype=torch.float64))
        initial = self.u_max / 2 if init is None else init
        rates = initial(self.knot_times) if callable(initial) else _per_player("init", initial).expand(self.knots, 2)
        logits = _logit_of_rates(rates, self.u_max).T  # a_w at the knots [2, knots]
        self.raw = nn.Parameter((logits[:1] if tied else logits).contiguous())

    @property
    def logits(self) -> torch.Tensor:
        """a_w at the knots [2, knots] (one row shared by both players if tied)."""
        return self.raw.expand(2, -1)

    @property
    def breaks(self) -> torch.Tensor:
        """The knots (u has kinks there, and ``along`` needs pieces between them)."""
        return self.knot_times

    def forward(self, s) -> torch.Tensor:
        """u(s) [..., 2] for times s [...]: the logits interpolated linearly between the knots."""
        s = torch.as_tensor(s, dtype=self.raw.dtype)
        position = (s / self.spacing).clamp(0, self.knots - 1)
        left = position.detach().floor().clamp(max=self.knots - 2).long()
        raw = self.logits.T
        logit = torch.lerp(raw[left], raw[left + 1], (position - left)[..., None])
        return self.u_max * torch.sigmoid(logit)

    def along(self, starts: torch.Tensor, lengths: torch.Tensor) -> Callable:
        """σ ↦ u(s₀ + σℓ) [n, 2] for pieces [s₀, s₀ + ℓ] that each lie between two knots (or outside
        [0, steps]), where the logit is linear in σ: a = α + σβ, computed once.

        Args:
            starts: the pieces' starts s₀, [n].
            lengths: the pieces' lengths ℓ, [n].

        Returns:
            The map from local time σ ∈ [0, 1] (a scalar) to the rates u(s₀ + σℓ), [n, 2].
        """
        left = (starts + lengths / 2).div(self.spacing).floor().clamp(0, self.knots - 2).long()
        start, end = ((s - self.knot_times[left]) / self.spacing for s in (starts, starts + lengths))
        low, high = self.logits.T[left], self.logits.T[left + 1]
        offset, slope = start.clamp(0, 1)[:, None], (end.clamp(0, 1) - start.clamp(0, 1))[:, None]
        intercept, gradient = torch.lerp(low, high, offset), (high - low) * slope
        return lambda sigma: self.u_max * torch.sigmoid(intercept + sigma * gradient)

    def rates(self) -> torch.Tensor:
        """The per-iteration rates u_w(k) [2, steps], k = 0..steps−1 (for discrete training)."""
        return self(torch.arange(self.steps, dtype=self.raw.dtype)).T


class ConstantSchedule(nn.Module):
    """u(s) = (u_θ, u_ω), constant."""

    breaks = torch.zeros(0, dtype=torch.float64)

    def __init__(self, rates):
        super().__init__()
        self.register_buffer("u_max", _per_player("rates", rates))

    def forward(self, s) -> torch.Tensor:
        """u(s) [..., 2] for times s [...]."""
        s = torch.as_tensor(s, dtype=self.u_max.dtype)
        return self.u_max.expand(*s.shape, 2)


def _per_player(name: str, value) -> torch.Tensor:
    """``value`` (a number or a pair θ, ω) as positive finite rates [2]."""
    rates = torch.as_tensor(value, dtype=torch.float64).detach().clone()
    if rates.ndim == 0:
        rates = rates.expand(2).clone()
    if rates.shape != (2,):
        raise ValueError(f"{name} must be a number or a pair (θ, ω), got shape {tuple(rates.shape)}")
    for who, v in zip(("θ", "ω"), rates.tolist()):
        check_positive(f"{name} ({who})", v)
    return rates


def _logit_of_rates(rates: torch.Tensor, u_max: torch.Tensor) -> torch.Tensor:
    """logit(u/u_max) for rates u in (0, u_max] (u_max itself taken as 1 − 1e-9 of it)."""
    rates = torch.as_tensor(rates, dtype=torch.float64).detach()
    if not ((rates > 0) & (rates <= u_max)).all():
        raise ValueError(f"initial rates must lie in (0, u_max = {u_max.tolist()}], got {rates.min():.3g} to "
                         f"{rates.max():.3g}")
    return torch.logit((rates / u_max).clamp(max=1 - 1e-9))


# -- the moment equations -------------------------------------------------------------------------
class MomentODE(nn.Module):
    """d/dσ (Φᵀ, R) = ℓ (ΦᵀAᵀ, AR + RAᵀ + D_uΣD_u), A = D_u J, u = u(s₀ + σℓ), for a batch of pieces
    [s₀, s₀ + ℓ] (``starts``, ``lengths`` [n]; state [n, 2, d, d]): each piece's moment map (THEORY §6).
    Φ is kept transposed so that both products are X Jᵀ D_u, one matrix product for the whole batch
    (R is symmetric: RAᵀ = (AR)ᵀ). The schedule is read through its ``along`` where it has one."""

    def __init__(self, lin: Linearisation, schedule: Callable, starts: torch.Tensor, lengths: torch.Tensor):
        """Binds the pieces to the schedule.

        Args:
            lin: the linearisation at x*: J (its ``A``) and Σ (its ``sigma``), [d, d] each.
            schedule: the rates s ↦ u(s), `[..., 2]` for times `[...]`.
            starts: the pieces' starts s₀, [n].
            lengths: the pieces' lengths ℓ, [n].
        """
        super().__init__()
        self.lin, self.schedule, self.starts, self.lengths = lin, schedule, starts, lengths
        along = getattr(schedule, "along", None)
        self.rates_at = along(starts, lengths) if along else lambda sigma: schedule(starts + sigma * lengths)

    def forward(self, sigma, state: torch.Tensor) -> torch.Tensor:
        """The right-hand side in the pieces' local time (torchdiffeq's ``func(t, y)``).

        Args:
            sigma: the local time σ ∈ [0, 1], a scalar tensor.
            state: (Φᵀ, R) of every piece, [n, 2, d, d].

        Returns:
            d/dσ (Φᵀ, R) = ℓ (ΦᵀAᵀ, AR + RAᵀ + D_uΣD_u), [n, 2, d, d].
        """
        rates = self.lin.coordinate_rates(self.rates_at(sigma))  # the diagonal of D_u [n, d]
        scaled = self.lengths[:, None] * rates  # ℓ D_u
        transition_t, spread = ((state @ self.lin.A.T) * scaled[:, None, None, :]).unbind(1)  # ℓΦᵀAᵀ, ℓRAᵀ
        injected = (scaled[:, :, None] * rates[:, None, :]) * self.lin.sigma  # ℓ D_u Σ D_u
        return torch.stack([transition_t, spread + spread.transpose(1, 2) + injected], dim=1)

    def initial_state(self) -> torch.Tensor:
        """(Φᵀ, R) = (I, 0) for every piece [n, 2, d, d]."""
        d = self.lin.d
        start = torch.stack([torch.eye(d, dtype=torch.float64), torch.zeros(d, d, dtype=torch.float64)])
        return start.expand(len(self.starts), 2, d, d)


def moments(lin: Linearisation, schedule: Callable, m0, P0, times, method: str = "rk4",
            step_size: Optional[float] = None, **solver) -> tuple:
    """(m [T, d], P [T, d, d]) at ``times`` [T] from (m0, P0) at times[0]: ṁ = Am, Ṗ = AP + PAᵀ +
    D_uΣD_u (THEORY §6), by composing the pieces' maps from ``MomentODE``. ``step_size``: the largest
    solver step in s (default ``default_step``, about 1e-3 relative accuracy); ``method`` and ``solver``
    (rtol, atol, options) go to torchdiffeq.odeint, whose time is a piece's σ ∈ [0, 1].

    Args:
        lin: the linearisation at x* (J as ``A``, Σ as ``sigma``), dimension d.
        schedule: the rates s ↦ u(s) `[..., 2]`, with ``breaks`` and ``u_max`` where it has them.
        m0: the mean m = E X − x* at times[0], [d].
        P0: the covariance at times[0], [d, d].
        times: the step times s, [T], strictly increasing.
        method: torchdiffeq's method (fixed-step ones take SUBSTEPS steps per piece).
        step_size: the largest solver step in s (default ``default_step``).
        **solver: further keywords of torchdiffeq.odeint (rtol, atol, options).

    Returns:
        (m, P): the mean [T, d] and covariance [T, d, d] at ``times``.
    """
    m0, P0 = torch.as_tensor(m0, dtype=torch.float64), torch.as_tensor(P0, dtype=torch.float64)
    check_shape("m0", m0, (lin.d,))
    check_shape("P0", P0, (lin.d, lin.d))
    times = _check_times(times)
    step = default_step(lin, schedule) if step_size is None else check_positive("step_size", step_size)
    breaks = torch.as_tensor(getattr(schedule, "breaks", ()), dtype=torch.float64)
    starts, lengths, ends = _pieces(times, breaks, SUBSTEPS * step)
    if len(starts) == 0:  # a single time
        return m0[None], P0[None]
    ode = MomentODE(lin, schedule, starts, lengths)
    if method in FIXED_STEP_METHODS:
        solver["options"] = {"step_size": 1.0 / SUBSTEPS, **(solver.get("options") or {})}
    maps = odeint(ode, ode.initial_state(), torch.tensor([0.0, 1.0], dtype=torch.float64), method=method,
                  **solver)[-1]
    return _compose(maps, m0, P0, ends)


def default_step(lin: Linearisation, schedule) -> float:
    """ACCURACY/λ with λ = 2 max|eig(D_{u_max} J)|, the fastest rate of the covariance equation (the
    Lyapunov operator's eigenvalues are λ_i + λ_j); infinite when J = 0.

    Args:
        lin: the linearisation at x* (J as ``A``).
        schedule: a schedule with ``u_max`` [2], the rates' bound.

    Returns:
        The step h in step time s (a float; ``math.inf`` when J = 0).
    """
    u_max = getattr(schedule, "u_max", None)
    if u_max is None:
        raise ValueError("the schedule has no u_max: pass step_size")
    rates = lin.coordinate_rates(torch.as_tensor(u_max, dtype=torch.float64))
    fastest = 2 * float(torch.linalg.eigvals(rates[:, None] * lin.A).abs().max())
    return ACCURACY / fastest if fastest > 0 else math.inf


def expected_sq_distance(m: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """E|X − x*|² = |m|² + tr P (over the last axes).

    Args:
        m: the means E X − x*, [..., d].
        P: the covariances, [..., d, d].

    Returns:
        |m|² + tr P, [...].
    """
    return (m * m).sum(-1) + torch.diagonal(P, dim1=-2, dim2=-1).sum(-1)


def _pieces(times: torch.Tensor, breaks: torch.Tensor, longest: float) -> tuple:
    """(starts [n], lengths [n], ends [T]): [times[0], times[-1]] cut at ``times`` and at the ``breaks``
    inside, each gap split into equal pieces no longer than ``longest``; times[j] ends piece ends[j] − 1."""
    inside = breaks[(breaks > times[0]) & (breaks < times[-1])]
    cuts = torch.cat([times, inside]).unique()
    gaps = cuts.diff()
    counts = torch.ceil(gaps / longest).long().clamp_min(1) if math.isfinite(longest) else torch.ones_like(gaps).long()
    lengths = (gaps / counts).repeat_interleave(counts)
    first = torch.cumsum(counts, 0) - counts  # index of each gap's first piece
    within = torch.arange(int(counts.sum())) - first.repeat_interleave(counts)
    starts = cuts[:-1].repeat_interleave(counts) + within * lengths
    ends = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])[torch.searchsorted(cuts, times)]
    return starts, lengths, ends


def _compose(maps: torch.Tensor, m0: torch.Tensor, P0: torch.Tensor, ends: torch.Tensor) -> tuple:
    """The moments after the first ends[j] pieces: m = Φm0, P = ΦP0Φᵀ + R, (Φᵀ, R) the composed map."""
    transition_t, noise = _prefix_maps(maps)[ends].unbind(1)
    return m0 @ transition_t, transition_t.transpose(1, 2) @ P0 @ transition_t + noise


def _prefix_maps(maps: torch.Tensor) -> torch.Tensor:
    """[n + 1, 2, d, d]: the composition (Φᵀ, R) of the first k pieces' maps, k = 0..n, by a parallel prefix
    scan (Hillis & Steele 1986) with (Φ₂, R₂)∘(Φ₁, R₁) = (Φ₂Φ₁, Φ₂R₁Φ₂ᵀ + R₂)."""
    d = maps.shape[-1]
    identity = torch.stack([torch.eye(d, dtype=maps.dtype), torch.zeros(d, d, dtype=maps.dtype)])
    prefix, offset = torch.cat([identity[None], maps]), 1
    while offset < len(prefix):
        (later_t, later_noise), (earlier_t, earlier_noise) = prefix[offset:].unbind(1), prefix[:-offset].unbind(1)
        noise = later_t.transpose(1, 2) @ earlier_noise @ later_t + later_noise
        prefix, offset = torch.cat([prefix[:offset], torch.stack([earlier_t @ later_t, noise], 1)]), 2 * offset
    return prefix


def _check_times(times) -> torch.Tensor:
    """``times`` as a float64 tensor, if it is a non-empty, finite, strictly increasing 1-D sequence."""
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or len(times) == 0 or not torch.isfinite(times).all() or (times.diff() <= 0).any():
        raise ValueError(f"times must be a non-empty, finite, strictly increasing 1-D sequence, got shape "
                         f"{list(times.shape)} from {times.min():.4g} to {times.max():.4g}" if times.numel() else
                         "times must be a non-empty, finite, strictly increasing 1-D sequence, got none")
    return times



# -- the optimal schedule -----------------------------------------------------------------------------
def terminal_loss(lin: Linearisation, schedule: Callable, m0, P0, steps: float,
                  step_size: Optional[float] = None) -> torch.Tensor:
    """log(|m_N|² + tr P_N) at s = ``steps`` from (m0, P0) at s = 0: the objective of cSGD (Li, Tai & E
    2017, §5) for the squared distance to x* (THEORY §6).

    Args:
        lin: the linearisation at x*.
        schedule: the rates s ↦ u(s) `[..., 2]`.
        m0: the initial mean E X_0 − x*, [d].
        P0: the initial covariance, [d, d].
        steps: the budget N in step time s.
        step_size: the largest solver step (default ``default_step``).

    Returns:
        log E|X_N − x*|², a 0-dim tensor, differentiable in the schedule's parameters.
    """
    m, P = moments(lin, schedule, m0, P0, [0, steps], step_size=step_size)
    return torch.log(expected_sq_distance(m[-1], P[-1]))


def optimise(lin: Linearisation, m0, P0, steps: int, u_max, knots: int = 16, iterations: int = 200,
             lr: float = 0.05, init=None, progress: bool = False, step_size: Optional[float] = None,
             tied: bool = False) -> tuple:
    """(schedule, losses): a ``PiecewiseSchedule`` minimising ``terminal_loss`` by Adam on its knot logits,
    backpropagating through the solver. losses[i] is the loss before Adam's step i, losses[-1] that of
    the returned schedule.

    Args:
        lin: the linearisation at x*.
        m0: the initial mean E X_0 − x*, [d].
        P0: the initial covariance, [d, d].
        steps: the budget N (iterations).
        u_max: the rates' bound, a number or a pair (θ, ω).
        knots: the schedule's knots.
        iterations: Adam steps.
        lr: Adam's learning rate on the logits.
        init: the initial rates (``PiecewiseSchedule``'s ``init``).
        progress: show a progress bar.
        step_size: the largest solver step (default ``default_step``).
        tied: one logit curve for both players.

    Returns:
        (schedule, losses): the fitted ``PiecewiseSchedule`` and the list of ``iterations`` + 1 losses.
    """
    iterations = check_int("iterations", iterations, minimum=0)
    schedule = PiecewiseSchedule(steps, knots, u_max, init, tied)
    adam = torch.optim.Adam(schedule.parameters(), lr=check_positive("lr", lr))
    losses, bar = [], _progress(iterations, progress)
    try:
        for _ in range(iterations):
            loss = terminal_loss(lin, schedule, m0, P0, steps, step_size)
            adam.zero_grad()
            loss.backward()
            adam.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)
            bar.update(1)
    finally:
        bar.close()
    with torch.no_grad():
        losses.append(terminal_loss(lin, schedule, m0, P0, steps, step_size).item())
    return schedule, losses


def _progress(total: int, enabled: bool):
    """A tqdm bar over Adam's iterations (silent unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="schedule", unit="it", leave=False)


class GreedyRate(nn.Module):
    """u*(s) for both players: u_max until s_switch, then a·m(s)/σ² with 1/m(s) = 1/m_switch +
    a²(s − s_switch)/σ² (the optimum of ``known_optimum_1d``)."""

    def __init__(self, a: float, sigma2: float, u_max: float, switch: float, m_switch: float):
        """Stores the constants of the greedy control.

        Args:
            a: the curvature a > 0 of ṁ = −2a u m + u²σ².
            sigma2: the noise variance σ² > 0.
            u_max: the rates' bound.
            switch: the time s_switch where u* leaves u_max.
            m_switch: m(s_switch).
        """
        super().__init__()
        self.a, self.sigma2, self.switch, self.m_switch = a, sigma2, switch, m_switch
        self.register_buffer("u_max", _per_player("u_max", u_max))
        self.breaks = torch.tensor([switch], dtype=torch.float64)

    def forward(self, s) -> torch.Tensor:
        """u*(s) [..., 2] for times s [...]."""
        s = torch.as_tensor(s, dtype=torch.float64)
        after = self.a / (self.sigma2 / self.m_switch + self.a**2 * (s - self.switch).clamp_min(0))
        rate = torch.where(s < self.switch, self.u_max[0], after)
        return rate[..., None].expand(*s.shape, 2)


def known_optimum_1d(a: float, sigma2: float, m0: float, steps: float, u_max: float) -> tuple:
    """(min m(steps), u*) for ṁ = −2a u m + u²σ², m(0) = m0, 0 < u ≤ u_max: the greedy control
    u* = min(u_max, a m/σ²) minimises ṁ at every state, hence (comparison principle) m at every time;
    u = u_max relaxes m towards u_max σ²/(2a) until it reaches u_max σ²/a, then ṁ = −a²m²/σ².

    Args:
        a: the curvature a > 0.
        sigma2: the noise variance σ² > 0.
        m0: the initial second moment m(0) > 0.
        steps: the horizon in step time s.
        u_max: the rates' bound.

    Returns:
        (m*, rate): the least m(steps) (a float) and the optimal control u* as a ``GreedyRate``.
    """
    for name, value in (("a", a), ("sigma2", sigma2), ("m0", m0), ("steps", steps), ("u_max", u_max)):
        check_positive(name, value)
    floor, level = u_max * sigma2 / (2 * a), u_max * sigma2 / a  # the u_max fixed point; where u* < u_max
    switch = math.log((m0 - floor) / floor) / (2 * a * u_max) if m0 > level else 0.0
    m_switch = level if m0 > level else m0
    rate = GreedyRate(a, sigma2, u_max, switch, m_switch)
    if steps <= switch:
        return floor + (m0 - floor) * math.exp(-2 * a * u_max * steps), rate
    return 1 / (1 / m_switch + a**2 * (steps - switch) / sigma2), rate
