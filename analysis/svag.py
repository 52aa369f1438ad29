"""SVAG as a check of the SDE model (Li, Malladi & Arora 2021, arXiv:2102.12470).

Training with SVAG's l runs at rate η/l with l times the gradient noise covariance (``SGA.svag``); as
l → ∞ it converges weakly to SME-1 at rate η, with weak error O(η/l). If discrete training at l = 1
is already close to the l → ∞ curves, the SDE describes it; if the curves keep moving with l, it
does not. The check needs no closed form, so it applies to neural-network games as well.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

from analysis.compare import weak_error
from games.sga import SGA
from games.trajectory import Trajectory


def svag_runs(sga: SGA, ls: Sequence[int], steps: int, **run_options) -> dict:
    """{l: Trajectory} of ``sga`` with SVAG's l for each l, over the time of ``steps`` plain iterations
    (l·steps SVAG iterations); ``run_options`` go to ``SGA.run`` (K, x0, seed, record_every…).

    Args:
        sga: the training, at l = 1.
        ls: SVAG's l values, integers ≥ 1.
        steps: the number of plain (l = 1) iterations whose time each run covers.
        **run_options: passed to ``SGA.run``.

    Returns:
        {l: Trajectory}.
    """
    return {l: dataclasses.replace(sga, svag=l).run(l * steps, **run_options) for l in ls}


def svag_errors(runs: dict, reference: Trajectory, phi: Optional[Callable] = None) -> dict:
    """{l: Estimate of E φ(x_l) − E φ(X) at the last record} against ``reference`` (SME-1's paths, an
    independent ensemble), with Monte Carlo standard errors.

    Args:
        runs: {l: Trajectory} from ``svag_runs``.
        reference: SME-1's Trajectory, an ensemble independent of the runs.
        phi: the test function, [.., K, d] → [.., K, n]; None for ``analysis.compare.moments``.

    Returns:
        {l: Estimate with value and se [n]}.
    """
    return {l: weak_error(traj.states[-1], reference.states[-1], phi) for l, traj in runs.items()}
