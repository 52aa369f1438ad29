"""Fluctuation–dissipation relations (THEORY §4): stationarity read off one observable at a time.

Discrete side. For θ' = θ − η_θ d_θ and any constant c₀, |θ' − c₀|² − |θ − c₀|² = −2η_θ(θ − c₀)·d_θ
+ η_θ²|d_θ|², so a stationary chain has 2E[(θ − c₀)·d_θ] = η_θ E|d_θ|² exactly, per player and for
every update rule with constant rates (Yaida 2018, FDR1; summed over the sub-steps of an iteration
when a player moves several times). ``SGA`` records both sides as the observables ``dot_*``,
``sq_*`` and ``lr_*``; their ratio is 1 at stationarity and not during the transient.

SDE side. An invariant measure μ of dX = b dt + √η σ dW has E_μ[𝓛φ] = 0 for the generator
𝓛φ = b·∇φ + (η/2) Tr(σσᵀ∇²φ); split b·∇φ into the generator's part b_θ·∇_θφ and the
discriminator's b_ω·∇_ωφ. For φ = L_G that is the generator–discriminator trade-off: the
generator's dissipation −c_θ|∇_θL_G|² is balanced by what the discriminator's motion injects and by
the noise term.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from analysis.compare import Estimate
from games.base import PLAYERS
from games.maths.fdr import fdr_sides


# -- the discrete relation ----------------------------------------------------------------------
def sides(traj, who: str) -> tuple:
    """(2(θ − c₀)·d, η|d|²) [T, K] of player ``who`` ("theta" or "omega") from a discrete Trajectory
    (``games.maths.fdr``).

    Args:
        traj: a discrete Trajectory recording ``dot_*``, ``sq_*`` and ``lr_*`` (``SGA`` with FDR observables).
        who: the player, "theta" or "omega".

    Returns:
        (left side, right side), each [T, K].
    """
    return fdr_sides(traj[f"dot_{who}"], traj[f"sq_{who}"], traj[f"lr_{who}"])


def ratio_of_means(lhs: torch.Tensor, rhs: torch.Tensor, batches: int = 10) -> Estimate:
    """E[lhs]/E[rhs] over a window [T, K], with its standard error by batch means (as SASA+ does):
    each run's window is cut into ``batches`` consecutive batches, and the batch means of all runs
    are taken as independent samples of the ratio's numerator and denominator.

    Args:
        lhs: the left side over the window [T, K].
        rhs: the right side over the window [T, K].
        batches: the number of consecutive batches each run's window is cut into (at most T; the first
            T mod batches records are dropped).

    Returns:
        An Estimate of E[lhs]/E[rhs] (value and se as floats).
    """
    T = lhs.shape[0]
    batches = max(1, min(batches, T))
    size = T // batches
    cut = lambda v: v[T - size * batches :].reshape(batches, size, -1).mean(1).flatten()  # noqa: E731
    return ratio(cut(lhs), cut(rhs))


def ratio(a: torch.Tensor, b: torch.Tensor) -> Estimate:
    """mean(a)/mean(b) over independent samples [N], with the delta method's standard error
    sd(a − r b)/(√N |mean b|); non-finite samples are left out.

    Args:
        a: the numerator's samples [N].
        b: the denominator's samples [N], paired with a's.

    Returns:
        An Estimate (value and se as floats; se is inf with a single sample) and the samples left out.
    """
    keep = torch.isfinite(a) & torch.isfinite(b)
    dropped = int((~keep).sum())
    a, b = a[keep].double(), b[keep].double()
    value = a.mean() / b.mean()
    se = (a - value * b).std() / (b.mean().abs() * math.sqrt(len(a))) if len(a) > 1 else math.inf
    return Estimate(float(value), float(se), (dropped, dropped))


def fdr_ratio(traj, who: str, start: Optional[int] = None, batches: int = 10) -> Estimate:
    """The FDR ratio 2E[(θ − c₀)·d] / (η E|d|²) over the records ``start:`` (default: the second half).

    Args:
        traj: a discrete Trajectory recording the FDR observables (see ``sides``).
        who: the player, "theta" or "omega".
        start: the first record of the window; None for the middle record.
        batches: the number of batch means per run (see ``ratio_of_means``).

    Returns:
        An Estimate of the ratio, 1 at stationarity.
    """
    start = len(traj.times) // 2 if start is None else start
    lhs, rhs = sides(traj, who)
    return ratio_of_means(lhs[start:], rhs[start:], batches)


def moving_ratio(traj, who: str, window: int) -> tuple:
    """(times [W], ratio [W], se [W]): the ensemble FDR ratio over a moving window of ``window``
    records ending at each time, with its standard error over the runs.

    Args:
        traj: a discrete Trajectory recording the FDR observables (see ``sides``).
        who: the player, "theta" or "omega".
        window: the window's length in records, at most T.

    Returns:
        (times [W], ratio [W], se [W]) with W = T − window + 1.
    """
    def window_means(side):  # [W, K], from cumulative sums
        total = torch.cat([torch.zeros_like(side[:1]), side.double().cumsum(0)])
        return (total[window:] - total[:-window]) / window

    lhs, rhs = (window_means(side) for side in sides(traj, who))
    estimates = [ratio(a, b) for a, b in zip(lhs, rhs)]
    values, ses = (torch.tensor([getattr(e, n) for e in estimates]) for n in ("value", "se"))
    return traj.times[window - 1 :], values, ses


def stationary_from(traj, who: str, tolerance: float = 0.05, batches: int = 10, every: int = 1):
    """The first time at which the relation holds: at record i (every ``every``), the ratio over the
    records [i/2, i) (the recent half, as Yaida and SASA+ test) has its 95% interval inside
    [1 − tolerance, 1 + tolerance]; None if it never does.

    Args:
        traj: a discrete Trajectory recording the FDR observables (see ``sides``).
        who: the player, "theta" or "omega".
        tolerance: the half-width around 1 the interval must lie in.
        batches: the number of batch means per run in each test (see ``ratio_of_means``).
        every: test every this many records.

    Returns:
        The time (on the common clock) of the first record passing the test, or None.
    """
    lhs, rhs = sides(traj, who)
    for i in range(2 * batches, len(traj.times) + 1, every):
        low, high = ratio_of_means(lhs[i // 2 : i], rhs[i // 2 : i], batches).interval()
        if 1 - tolerance <= low and high <= 1 + tolerance:
            return float(traj.times[i - 1])
    return None


# -- the SDE relations --------------------------------------------------------------------------
def generator_terms(sme, states: torch.Tensor, phi: Callable) -> dict:
    """The parts of 𝓛φ at ``states`` [..., d] for the SME ``sme``, each [...]: {"theta": b_θ·∇_θφ,
    "omega": b_ω·∇_ωφ, "noise": (η/2) Tr(σσᵀ∇²φ)} with σσᵀ = ``sme.covariance``; φ maps [N, d] → [N].

    Args:
        sme: the SME (``sde.SME``), with ``drift``, ``covariance``, ``eta`` and ``game.p``.
        states: the states [..., d].
        phi: the function φ, [N, d] → [N], differentiable twice by autograd.

    Returns:
        {"theta": [...], "omega": [...], "noise": [...]}.
    """
    x = states.reshape(-1, states.shape[-1]).detach().requires_grad_()
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(phi(x).sum(), x, create_graph=True)
        hessian = torch.stack([torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)[0]
                               for i in range(x.shape[1])], dim=1)  # [K, d, d]
    with torch.no_grad():
        drift, covariance = sme.drift(x.detach()), sme.covariance(x.detach())
        moved = drift * grad.detach()
        p = sme.game.p
        noise = 0.5 * sme.eta * (covariance * hessian).sum((1, 2))
        terms = {"theta": moved[:, :p].sum(-1), "omega": moved[:, p:].sum(-1), "noise": noise}
    return {name: term.reshape(states.shape[:-1]) for name, term in terms.items()}


def balance(terms: dict, dissipating: str) -> Estimate:
    """The relation E[𝓛φ] = 0 as a ratio: (E[the other player's part] + E[noise]) over
    −E[the ``dissipating`` player's part], 1 under the invariant measure. ``terms`` are [T, K]
    (times of a stationary window by independent paths): the paths are the independent samples.

    Args:
        terms: the parts of 𝓛φ from ``generator_terms``, {"theta", "omega", "noise"}, each [T, K].
        dissipating: the player whose part dissipates, "theta" or "omega".

    Returns:
        An Estimate of the ratio, 1 under the invariant measure.
    """
    other = PLAYERS[1 - PLAYERS.index(dissipating)]
    return ratio_of_means(terms[other] + terms["noise"], -terms[dissipating], batches=1)


def squared_distance(who: str, p: int, center) -> Callable:
    """φ(x) = |θ − c₀|² (``who`` = "theta") or |ω − c₀|² ("omega").

    Args:
        who: the player, "theta" or "omega".
        p: the generator's dimension (θ = x[:, :p]).
        center: the point c₀, of the player's dimension.

    Returns:
        φ, mapping states [N, d] → [N].
    """
    part = slice(0, p) if who == "theta" else slice(p, None)
    return lambda x: ((x[:, part] - torch.as_tensor(center).to(x)) ** 2).sum(-1)


def expected_loss(game, who: str) -> Callable:
    """φ(x) = E L_G(x) (``who`` = "theta") or E L_D(x) ("omega"), from ``game.expected_losses``.

    Args:
        game: the game, with ``expected_losses``.
        who: the player, "theta" (L_G) or "omega" (L_D).

    Returns:
        φ, mapping states [N, d] → [N].
    """
    return lambda x: game.expected_losses(x)[PLAYERS.index(who)]
