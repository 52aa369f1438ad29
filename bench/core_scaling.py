"""Benchmark: how much two threads on this machine's cores gain over one, for the fused integrator's two kinds
of work, measured in the same run.

The two kinds are the compiled Euler steps of the Gaussian game's SME-1 (eight steps to a call, the paths
innermost, as ``integrate(..., compile=True)`` runs them) and the compiled Box–Muller draw of a block of
their normals (``Streams.normal``). Each is timed as one lane alone (K/2 paths on one thread) and as two
lanes at once (two Python threads, K/2 paths and one torch thread each: the compiled kernels release the
GIL). Repeats are interleaved and each figure is a median. Prints one JSON line last: ``steps_efficiency``
and ``normals_efficiency`` = the time of one lane alone / the time of two lanes at once, 1 where the two
threads run on cores that share nothing, 0.5 where they share one core's throughput.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import threading
import time

import torch

from games import SGA, GaussianGame
from games.driver import threads
from sde import SME
from sde.layout import compile_step
from sde.solvers import SOLVERS
from sde_throughput import normals_run

STEPS_PER_CALL = 8


def steps_lane(sme: SME, K: int, steps: int, dt: float):
    """``steps`` Euler steps of ``sme`` on K paths, eight to a compiled call, on fixed normals."""
    game, solver = sme.game, SOLVERS["euler"]()

    def eight(t, x, dw):
        for i in range(STEPS_PER_CALL):
            x = solver.step(sme, t[i], x, dt, dw[i])
        return x

    fused = compile_step(eight, K)
    x = game.equilibrium(dtype=torch.float64).expand(K, -1).t().contiguous().t()  # the paths innermost
    dw = math.sqrt(dt) * torch.randn(STEPS_PER_CALL * sme.m, K, dtype=torch.float64)
    dw = dw.view(STEPS_PER_CALL, sme.m, K).transpose(1, 2)  # [steps, K, m], the paths innermost
    t = dt * torch.arange(STEPS_PER_CALL, dtype=torch.float64)
    with threads(1):
        fused(t, x, dw)  # compile

    def run():
        with threads(1):
            for _ in range(steps // STEPS_PER_CALL):
                fused(t, x, dw)
    return run


def normals_lane(K: int, steps: int, m: int):
    """The compiled draws of the normals of ``steps`` steps on K paths (m per path and step), a block of
    ``integrate``'s steps at a time, on one thread (``sde_throughput.normals_run``)."""
    run = normals_run(m, argparse.Namespace(K=K, steps=steps, device="cpu"), torch.float64, 1)
    run()  # compile
    return run


def two_at_once(one, other) -> None:
    """``one()`` here and ``other()`` on a second Python thread, at the same time."""
    helper = threading.Thread(target=other)
    helper.start()
    one()
    helper.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--K", type=int, default=10_000, help="paths in all: each lane takes half")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dt = 0.01
    sme = SME(SGA(GaussianGame(), lr=dt, batch_size=16), order="1")
    lanes = {"steps": [steps_lane(sme, args.K // 2, args.steps, dt) for _ in range(2)],
             "normals": [normals_lane(args.K // 2, args.steps, sme.m) for _ in range(2)]}
    times = {f"{kind}_{how}": [] for kind in lanes for how in ("alone", "two")}
    for _ in range(args.repeats):
        for kind, (one, other) in lanes.items():
            for how, run in (("alone", one), ("two", lambda: two_at_once(one, other))):
                start = time.perf_counter()
                run()
                times[f"{kind}_{how}"].append(time.perf_counter() - start)
    med = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({**{f"{kind}_efficiency": round(med[f"{kind}_alone"] / med[f"{kind}_two"], 3) for kind in lanes},
                      **{f"{name}_s": round(value, 4) for name, value in med.items()},
                      "K": args.K, "steps": args.steps, "repeats": args.repeats, "cpus": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
