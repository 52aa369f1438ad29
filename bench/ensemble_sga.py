"""Benchmark: K mixture-of-Gaussians GANs trained as one batched computation vs a Python loop over runs.

All sides run the same code (games.sga.SGA on games.mixture.MixtureGAN, two hidden layers of 64,
alternating updates) in this process: the loop trains one run at a time in eager mode; the batched
side trains all K at once, eagerly and with torch.compile'd losses. The loop's per-run cost does
not depend on K, so it is timed on ``--loop-runs`` runs and scaled to K. Repeats are interleaved
(batched, compiled, loop, batched, …) so that all sides see the same machine; each figure is the
median over ``--repeats``. Compilation happens in a warm-up and is reported as ``compile_s``.
Prints one JSON line last: "ratio" = loop / compiled batched, "ratio_eager" = loop / eager batched.
``--update RULE`` trains by another update rule (sga.update, e.g. eg) on every side.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from games import SGA, MixtureGAN
from games.random import Streams


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--K", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--loop-runs", type=int, default=16, help="runs timed in the loop baseline")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--update", default="alt-d", help="the update rule (sga.update), default alt-d")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    game = MixtureGAN(hidden=(64, 64))
    options = dict(lr=0.01, update=args.update, batch_size=args.batch_size)
    eager, compiled = SGA(game, **options), SGA(game, compile=True, **options)
    seeds = Streams.from_seed(0, args.K).seeds

    def train(sga, runs, steps):
        sga.run(steps, streams=Streams(runs, dtype=dtype), record_every=steps, record_states=False, dtype=dtype)

    def loop():
        for k in range(args.loop_runs):
            train(eager, seeds[k : k + 1], args.steps)

    compile_s = timed(lambda: train(compiled, seeds, 2))
    train(eager, seeds, 2)
    times = {"batched": [], "compiled": [], "loop": []}
    for _ in range(args.repeats):
        times["batched"].append(timed(lambda: train(eager, seeds, args.steps)))
        times["compiled"].append(timed(lambda: train(compiled, seeds, args.steps)))
        times["loop"].append(timed(loop) * args.K / args.loop_runs)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"update": args.update, "ratio": round(med["loop"] / med["compiled"], 2),
                      "ratio_eager": round(med["loop"] / med["batched"], 2),
                      "compiled_s": round(med["compiled"], 3), "batched_eager_s": round(med["batched"], 3),
                      "loop_s_scaled_to_K": round(med["loop"], 3), "compile_s": round(compile_s, 1),
                      "K": args.K, "steps": args.steps, "loop_runs_timed": args.loop_runs,
                      "batch_size": args.batch_size, "dtype": args.dtype, "repeats": args.repeats,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "machine": platform.machine()}))


if __name__ == "__main__":
    main()
