"""Learning-rate schedules judged on discrete training: many candidates as one ensemble, and their gains.

A candidate gives each player a rate per iteration, rates [2, N] (θ's row, then ω's). ``evaluate``
trains all candidates at once, ``runs`` runs each, as one ensemble of per-run rates
(``games.schedules.Table``); every candidate gets the same seeds, so candidates are compared on common
random numbers and their ratios are paired. The figure of merit is the squared distance to the
equilibrium at the budget, |x_N − x*|², per run; a gain is a ratio of its means,
mean(baseline)/mean(candidate), with the delta method's interval (``analysis.fdr.ratio``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional

import torch

from analysis.compare import Estimate
from analysis.fdr import ratio
from games.random import Streams
from games.optim import make_optimizer
from games.schedules import Constant, InverseTime, Schedule, Step, Table
from games.sga import SGA

DECAY_AT = (0.5, 0.75)  # step decay: ÷10 at these fractions of the budget


def rates_of(schedule: Schedule, steps: int) -> torch.Tensor:
    """[N] the rates η_0 … η_{N−1} of a (global) schedule.

    Args:
        schedule: the schedule, k ↦ η_k.
        steps: the number of iterations N.

    Returns:
        The rates [N], float64.
    """
    return torch.tensor([float(schedule(k)) for k in range(steps)], dtype=torch.float64)


def both(schedule: Schedule, steps: int) -> torch.Tensor:
    """rates [2, N] of a (global) schedule for both players.

    Args:
        schedule: the schedule, k ↦ η_k.
        steps: the number of iterations N.

    Returns:
        The rates [2, N], float64, the two rows equal.
    """
    return rates_of(schedule, steps).expand(2, -1).clone()


def constant(lr: float, steps: int) -> torch.Tensor:
    """rates [2, N] of the constant rate ``lr`` for both players.

    Args:
        lr: the rate, > 0.
        steps: the number of iterations N.

    Returns:
        The rates [2, N].
    """
    return both(Constant(float(lr)), steps)


def step_decay(lr: float, steps: int, gamma: float = 0.1) -> torch.Tensor:
    """rates [2, N] of ``lr`` divided by 1/gamma at 50% and at 75% of the budget, for both players.

    Args:
        lr: the initial rate, > 0.
        steps: the number of iterations N.
        gamma: the factor applied at each milestone, in (0, 1].

    Returns:
        The rates [2, N].
    """
    milestones = tuple(int(round(f * steps)) for f in DECAY_AT)
    return both(Step(float(lr), milestones, gamma), steps)


def log_grid(low: float, high: float, count: int) -> list:
    """``count`` rates from ``low`` to ``high``, equally spaced in log.

    Args:
        low: the smallest rate, > 0.
        high: the largest rate.
        count: the number of rates, ≥ 2.

    Returns:
        The rates, a list of ``count`` floats.
    """
    ratio_ = (high / low) ** (1 / (count - 1))
    return [low * ratio_**i for i in range(count)]


def paired_streams(seed: int, runs: int, candidates: int, device="cpu", dtype=torch.float64) -> Streams:
    """Streams for ``candidates`` blocks of ``runs`` runs, block c reusing the seeds of block 0.

    Args:
        seed: the seed of block 0's streams.
        runs: the runs per block.
        candidates: the number of blocks.
        device: the device the runs' noise streams live on.
        dtype: the floating dtype of the streams.

    Returns:
        Streams of ``candidates``·``runs`` runs, run c·runs + k seeded as run k.
    """
    base = Streams.from_seed(seed, runs, device=device, dtype=dtype).seeds
    return Streams(base.repeat(candidates).tolist(), device=device, dtype=dtype)


def with_schedules(sga: SGA, theta, omega) -> SGA:
    """``sga`` with the players' schedules replaced (a Schedule, Table or Adaptive each).

    Args:
        sga: the training.
        theta: the generator's new schedule.
        omega: the discriminator's new schedule.

    Returns:
        A new SGA (``sga`` is left alone).
    """
    return dataclasses.replace(sga, gen=dataclasses.replace(sga.gen, schedule=theta),
                               disc=dataclasses.replace(sga.disc, schedule=omega))


def distance_over_time(traj, block: int, runs: int, x_star: torch.Tensor) -> tuple:
    """(iterations [T], E|x − x*|² [T]) of the runs of candidate ``block`` of an ``evaluate`` ensemble
    (records every ``record_every`` iterations and at the end).

    Args:
        traj: the Trajectory of ``evaluate`` or ``train_candidates``, with ``record_every`` and ``steps`` in its
            metadata.
        block: the candidate's index, in the order of the candidates.
        runs: the runs per candidate.
        x_star: the equilibrium x* [d].

    Returns:
        (iterations, a list of T ints; mean squared distances [T], float64).
    """
    every = traj.metadata["record_every"]
    iterations = [min(i * every, traj.metadata["steps"]) for i in range(len(traj.times))]
    states = traj.states[:, block * runs:(block + 1) * runs].double()
    return iterations, ((states - x_star.double().cpu()) ** 2).sum(-1).mean(1)


def final_sq_distance(traj, x_star: torch.Tensor) -> torch.Tensor:
    """|x_N − x*|² [K] at the last record (inf for a diverged run).

    Args:
        traj: the Trajectory, states `[T, K, d]`.
        x_star: the equilibrium x* [d].

    Returns:
        The squared distances [K], float64.
    """
    d = traj.states[-1].double() - x_star.double().cpu()
    sq = (d * d).sum(-1)
    return torch.where(torch.isfinite(sq), sq, torch.full_like(sq, math.inf))


def evaluate(sga: SGA, candidates: Dict[str, torch.Tensor], runs: int, seed: int = 0, record_every: Optional[int] = None,
             device="cpu", dtype=torch.float64, progress: bool = False):
    """Train every candidate (rates [2, N], the same N) for ``runs`` runs on common seeds, as one ensemble.

    Args:
        sga: the training; its players' schedules are replaced by the candidates'.
        candidates: {name: rates [2, N]}, all with the same N.
        runs: the runs per candidate.
        seed: the seed shared by every candidate's runs.
        record_every: iterations between records; None to record only the start and the end.
        device: the device the runs' noise streams live on.
        dtype: the floating dtype of the streams.
        progress: whether to show a progress bar.

    Returns:
        ({name: |x_N − x*|² [runs]}, the ensemble's Trajectory, its runs ordered by candidate).
    """
    traj = train_candidates(sga, candidates, runs, seed, record_every, device, dtype, progress)
    sq = final_sq_distance(traj, sga.game.equilibrium()).reshape(len(candidates), runs)
    return dict(zip(candidates, sq)), traj


def train_candidates(sga: SGA, candidates: Dict[str, torch.Tensor], runs: int, seed: int = 0,
                     record_every: Optional[int] = None, device="cpu", dtype=torch.float64, progress: bool = False):
    """The ensemble of ``evaluate``: every candidate's ``runs`` runs on common seeds, in candidate order.

    Args:
        sga: the training; its players' schedules are replaced by the candidates'.
        candidates: {name: rates [2, N]}, all with the same N.
        runs: the runs per candidate.
        seed: the seed shared by every candidate's runs.
        record_every: iterations between records; None to record only the start and the end.
        device: the device the runs' noise streams live on.
        dtype: the floating dtype of the streams.
        progress: whether to show a progress bar.

    Returns:
        The Trajectory of len(candidates)·``runs`` runs, candidate c's runs at c·runs … (c + 1)·runs − 1.
    """
    table = torch.stack(list(candidates.values()))  # [C, 2, N]
    steps = table.shape[-1]
    trainer = with_schedules(sga, Table(table[:, 0], runs), Table(table[:, 1], runs))
    streams = paired_streams(seed, runs, len(candidates), device, dtype)
    return trainer.run(steps, streams=streams, record_every=record_every or steps, progress=progress)


def evaluate_adaptive(sga: SGA, make_schedule, steps: int, runs: int, seed: int = 0, record_every: Optional[int] = None,
                      device="cpu", dtype=torch.float64, progress: bool = False):
    """An adaptive schedule (``make_schedule()`` per player) on the same seeds as ``evaluate``:
    (|x_N − x*|² [runs], Trajectory).

    Args:
        sga: the training; its players' schedules are replaced.
        make_schedule: a callable returning a fresh schedule (called once per player).
        steps: the number of iterations N.
        runs: the number of runs.
        seed: the seed of the runs, as in ``evaluate``.
        record_every: iterations between records; None to record only the start and the end.
        device: the device the runs' noise streams live on.
        dtype: the floating dtype of the streams.
        progress: whether to show a progress bar.

    Returns:
        (squared distances [runs], the Trajectory).
    """
    trainer = with_schedules(sga, make_schedule(), make_schedule())
    streams = paired_streams(seed, runs, 1, device, dtype)
    traj = trainer.run(steps, streams=streams, record_every=record_every or steps, progress=progress)
    return final_sq_distance(traj, sga.game.equilibrium()), traj


def mean_estimate(values: torch.Tensor) -> Estimate:
    """The mean with its standard error (non-finite runs left out and counted)."""
    keep = torch.isfinite(values)
    v = values[keep].double()
    se = float(v.std() / math.sqrt(len(v))) if len(v) > 1 else math.inf
    dropped = int((~keep).sum())
    return Estimate(float(v.mean()) if len(v) else math.inf, se, (dropped, dropped))


def best(results: Dict[str, torch.Tensor], among=None) -> str:
    """The candidate with the smallest mean squared distance (a diverged run counts as infinite).

    Args:
        results: {name: squared distances [runs]}, as from ``evaluate``.
        among: the names to choose from; None for all of them.

    Returns:
        The best candidate's name.
    """
    names = list(among or results)
    return min(names, key=lambda n: float(results[n].mean()))


def gain(baseline: torch.Tensor, candidate: torch.Tensor) -> Estimate:
    """mean(baseline)/mean(candidate) of paired |x_N − x*|² [runs]: > 1 when the candidate does better.

    Args:
        baseline: the baseline's squared distances [runs].
        candidate: the candidate's [runs], run k on the same seed as the baseline's.

    Returns:
        An Estimate of the ratio (value and se as floats).
    """
    return ratio(baseline, candidate)


def per_player(schedule_theta: torch.Tensor, schedule_omega: torch.Tensor) -> torch.Tensor:
    """rates [2, N] from each player's rates [N].

    Args:
        schedule_theta: the generator's rates [N].
        schedule_omega: the discriminator's rates [N].

    Returns:
        The rates [2, N], float64.
    """
    return torch.stack([schedule_theta, schedule_omega]).double()



def inverse_time(lr: float, steps: int, half_life: float = 0.1) -> torch.Tensor:
    """rates [2, N] of lr/(1 + k/k₀), k₀ = half_life·N (the rate halves at k₀), for both players.

    Args:
        lr: the initial rate, > 0.
        steps: the number of iterations N.
        half_life: k₀ as a fraction of N, > 0.

    Returns:
        The rates [2, N].
    """
    return both(InverseTime(float(lr), 1 / (half_life * steps)), steps)


# -- schedules from the moment equations (sde.moments) ------------------------------------------------
U_MAX = 0.05  # the moment-optimised rates stay below this


def moment_problem(sga: SGA) -> tuple:
    """(Linearised, m₀, P₀): the linearised SME-1 of ``sga`` from the game's initial state, P₀ = 0."""
    from sde.moments import linearise

    lin = linearise(sga)
    x0 = sga.game.init(1, Streams([0]))[0].double()
    return lin, x0 - lin.x_star, torch.zeros(lin.d, lin.d, dtype=torch.float64)


def moment_schedule(sga: SGA, steps: int, u_max: float = U_MAX, knots: int = 16, tied: bool = True,
                    progress: bool = False) -> tuple:
    """(rates [2, N], the model's E|X_N − x*|²): the piecewise-linear schedule minimising the linearised
    SME-1's E|X_N − x*|² (``sde.moments.optimise``); ``tied``: one curve for both players.

    Args:
        sga: the training whose linearised SME-1 is optimised (from the game's initial state).
        steps: the number of iterations N.
        u_max: the largest rate allowed.
        knots: the number of knots of the piecewise-linear schedule.
        tied: whether both players share one curve.
        progress: whether to show the optimiser's progress.

    Returns:
        (rates [2, N], float64; the model's E|X_N − x*|² as a float).
    """
    from sde.moments import optimise

    lin, m0, P0 = moment_problem(sga)
    schedule, losses = optimise(lin, m0, P0, steps, u_max, knots=knots, progress=progress, tied=tied)
    return schedule.rates().detach().double(), math.exp(losses[-1])


def moment_prediction(sga: SGA, steps: int, lr: float) -> float:
    """The linearised SME-1's E|X_N − x*|² at the constant rate ``lr`` for both players.

    Args:
        sga: the training whose linearised SME-1 is used.
        steps: the number of iterations N.
        lr: the constant rate.

    Returns:
        The predicted E|X_N − x*|².
    """
    from sde.moments import ConstantSchedule, terminal_loss

    lin, m0, P0 = moment_problem(sga)
    with torch.no_grad():
        return math.exp(terminal_loss(lin, ConstantSchedule([lr, lr]), m0, P0, steps).item())


def with_optimizer(sga: SGA, kind: str, **options) -> SGA:
    """``sga`` with both players on the optimiser ``kind`` (``games.optim.make_optimizer``) with ``options``.

    Args:
        sga: the training.
        kind: the optimiser's name ("sgd", "heavy_ball", "adam", "cg").
        options: its options.

    Returns:
        The new training (``sga`` is left alone).
    """
    optimizer = make_optimizer(kind, field="sga.optimizer", **options)
    return dataclasses.replace(sga, gen=dataclasses.replace(sga.gen, optimizer=optimizer),
                               disc=dataclasses.replace(sga.disc, optimizer=optimizer))


def inverse_sqrt(lr: float, steps: int) -> torch.Tensor:
    """rates [2, N] of η/√(n + 1) for both players (Naganuma & Iiduka 2023's decaying rate).

    Args:
        lr: the initial rate η, > 0.
        steps: the number of iterations N.

    Returns:
        The rates [2, N].
    """
    return both(InverseTime(float(lr), 1.0, 0.5), steps)
