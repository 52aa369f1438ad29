"""Benchmark: an ensemble split over Ray worker processes against the same ensemble in one process.

The work: SME-1 of the Gaussian game integrated for ``--steps`` steps and its coupled chain (the training
run whose minibatches drive it, ``sde.coupled_chain``), K = ``--K`` paths each. In one process with
two threads (``run.threads`` = 2) against ``run.workers`` = 2, one thread each, in the same run; Ray
starts before the timing (once a session). The two give the same bits, which the script checks.
Repeats are interleaved and each figure is a median. Prints one JSON line last: ``ratio`` = in-process
time / workers time (goal ≥ 0.8 on two cores: the split costs at most 25%).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from games import SGA, GaussianGame
from games.execution import using
from games.random import Streams
from sde import SME, coupled_chain, integrate


def work(K: int, steps: int, sme, x0) -> tuple:
    """SME-1 over ``steps`` steps of η and the coupled chain, K paths each; their final states."""
    sde = integrate(sme, x0, steps * sme.eta, sme.eta, K=K, seed=1, record_every=steps)
    chain, dw = coupled_chain(sme, steps, x0, Streams.from_seed(2, K), Streams.from_seed(3, K), record_every=steps)
    return sde.states[-1], chain.states[-1], dw[-1]


def timed(run):
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--K", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    game = GaussianGame()
    sme, x0 = SME(SGA(game, lr=0.01, batch_size=16), order="1"), game.equilibrium()
    settings = {"in_process": {"threads": 2}, "workers": {"workers": 2}}
    for changes in settings.values():  # warm-up: Ray's workers import the project once
        with using(**changes):
            work(1000, 10, sme, x0)
    times, results = {name: [] for name in settings}, {}
    for _ in range(args.repeats):
        for name, changes in settings.items():
            with using(**changes):
                seconds, results[name] = timed(lambda: work(args.K, args.steps, sme, x0))
            times[name].append(seconds)
    same = all(torch.equal(a.nan_to_num(), b.nan_to_num()) for a, b in zip(results["in_process"], results["workers"]))
    med = {name: statistics.median(v) for name, v in times.items()}
    print(json.dumps({"ratio": round(med["in_process"] / med["workers"], 3), "in_process_s": round(med["in_process"], 3),
                      "workers_s": round(med["workers"], 3), "same_bits": same, "K": args.K, "steps": args.steps,
                      "repeats": args.repeats}))


if __name__ == "__main__":
    main()
