"""Benchmark: K mixture-of-Gaussians GANs trained as one batched computation vs a Python loop over runs.

Both sides run the same code (games.sga.SGA on games.mixture.MixtureGAN, two hidden layers of 64,
alternating updates) in this process; the loop trains one run at a time. The loop's per-run cost
does not depend on K, so it is timed on ``--loop-runs`` runs and scaled to K. Prints one JSON line
last: {"ratio": batched speed-up, ...}, with medians over ``--repeats``.
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
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    sga = SGA(MixtureGAN(hidden=(64, 64)), lr=0.01, update="alt-d", batch_size=args.batch_size)
    streams = Streams.from_seed(0, args.K, dtype=dtype)

    def batched():
        sga.run(args.steps, streams=Streams(streams.seeds, dtype=dtype), record_every=args.steps,
                record_states=False, dtype=dtype)

    def loop():
        for k in range(args.loop_runs):
            sga.run(args.steps, streams=Streams(streams.seeds[k : k + 1], dtype=dtype),
                    record_every=args.steps, record_states=False, dtype=dtype)

    batched_s = statistics.median(timed(batched) for _ in range(args.repeats))
    loop_s = statistics.median(timed(loop) for _ in range(args.repeats)) * args.K / args.loop_runs
    print(json.dumps({"ratio": round(loop_s / batched_s, 2), "batched_s": round(batched_s, 3),
                      "loop_s_scaled_to_K": round(loop_s, 3), "K": args.K, "steps": args.steps,
                      "loop_runs_timed": args.loop_runs, "batch_size": args.batch_size,
                      "dtype": args.dtype, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "machine": platform.machine()}))


if __name__ == "__main__":
    main()
