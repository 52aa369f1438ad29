"""Integration of a deterministic flow ẋ = F(t, x), batched over K initial conditions, by
``torchdiffeq.odeint``: adaptive (dopri5, the default) or fixed-step (rk4, euler, midpoint…)."""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

import torch
from torchdiffeq import odeint

from games.driver import threads, threads_for
from games.errors import ConfigError, check_choice, check_int, check_positive
from games.trajectory import Trajectory

ADAPTIVE = ("dopri5", "dopri8", "bosh3", "adaptive_heun")
FIXED_STEP = ("rk4", "midpoint", "euler")


def integrate_flow(rhs: Callable, x0: torch.Tensor, t_end: float, p: int, *, n_records: int = 101,
                   method: str = "dopri5", rtol: float = 1e-9, atol: float = 1e-11,
                   step_size: Optional[float] = None, metadata: Optional[dict] = None) -> Trajectory:
    """ẋ = rhs(t, x) from x0 [K, d] over [0, t_end], recorded at ``n_records`` equally spaced times.

    Fixed-step methods take ``step_size`` (default: the record spacing). torch's threads are those of
    ``games.driver.threads_for`` the state's size. A flow that leaves the
    finite numbers (or makes the adaptive solver's step underflow) keeps the records before it and
    names the time in ``metadata['diverged']``.

    Args:
        rhs: the vector field F(t, x), [K, d] → [K, d].
        x0: the initial states, [K, d].
        t_end: the final time, > 0.
        p: the size of the θ block of x, for the Trajectory.
        n_records: the number of recorded times, ≥ 2 (0 and t_end included).
        method: torchdiffeq's method, adaptive (dopri5, dopri8, bosh3, adaptive_heun) or fixed-step
            (rk4, midpoint, euler).
        rtol: the adaptive solver's relative tolerance.
        atol: the adaptive solver's absolute tolerance.
        step_size: the fixed-step methods' step (default: the record spacing).
        metadata: extra entries for the Trajectory's metadata.

    Returns:
        The Trajectory: times [T] and states [T, K, d] (T < n_records if the flow diverged).
    """
    if x0.ndim != 2:
        raise ConfigError("x0", f"expected initial states [K, d], got shape {tuple(x0.shape)}")
    check_positive("t_end", t_end)
    n_records = check_int("n_records", n_records, minimum=2)
    check_choice("flow.method", method, ADAPTIVE + FIXED_STEP)
    times = torch.linspace(0.0, t_end, n_records, dtype=x0.dtype, device=x0.device)
    options = None
    if method in FIXED_STEP:
        options = {"step_size": check_positive("flow.step_size", step_size or t_end / (n_records - 1))}
    start, diverged = time.perf_counter(), None
    with threads(threads_for(x0.numel())):
        try:
            states = odeint(rhs, x0, times, method=method, rtol=rtol, atol=atol, options=options)
        except AssertionError as error:  # torchdiffeq: "underflow in dt …" once the flow blows up
            states, diverged = _records_until_failure(rhs, x0, times, method, rtol, atol, options), str(error)
    finite = torch.isfinite(states).flatten(1).all(-1)
    if not finite.all():
        first = int((~finite).nonzero()[0])
        states, times = states[:first], times[:first]
        diverged = diverged or f"non-finite state at t = {float(times[-1]) if first else 0.0:.6g}"
    meta = {"solver": method, "rtol": rtol, "atol": atol, "step_size": (options or {}).get("step_size"),
            "diverged": diverged, "wall_time_s": time.perf_counter() - start,
            "versions": {"torch": torch.__version__}, **(metadata or {})}
    return Trajectory(times.double().cpu(), states.detach().cpu(), p, {}, meta)


def _records_until_failure(rhs, x0, times, method, rtol, atol, options) -> torch.Tensor:
    """The records up to the one interval where the solver failed, integrated interval by interval."""
    states = [x0]
    for t0, t1 in zip(times[:-1], times[1:]):
        try:
            states.append(odeint(rhs, states[-1], torch.stack([t0, t1]), method=method, rtol=rtol,
                                 atol=atol, options=options)[-1])
        except AssertionError:
            break
    return torch.stack(states + [torch.full_like(x0, math.nan)])
