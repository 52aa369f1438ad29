"""Benchmark: SME-1 of the Gaussian game, fused Euler–Maruyama against torchsde's Euler, same process.

Both integrate the same SDE object with the same step over the same horizon; repeats are
interleaved and each figure is a median, after one warm-up run of each (which holds the
compilation of the fused step). Prints one JSON line last: "ratio" = torchsde time / fused time
(``--compile``, the default: each step fused by torch.compile), "ratio_eager" = the same without
compilation, and the fused path-steps per second.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from games import SGA, GaussianGame
from sde import SME, euler_maruyama, sdeint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--K", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    args = parser.parse_args()
    game, dt = GaussianGame(), 0.01
    sme = SME(SGA(game, lr=dt, batch_size=16), order="1")
    dtype = getattr(torch, args.dtype)
    x0 = game.equilibrium(device=args.device, dtype=dtype)
    t_end = dt * args.steps
    options = dict(K=args.K, seed=0, record_every=args.steps, device=args.device, dtype=dtype)
    runs = {"fused": lambda: euler_maruyama(sme, x0, t_end, dt, compile=True, **options),
            "eager": lambda: euler_maruyama(sme, x0, t_end, dt, **options),
            "torchsde": lambda: sdeint(sme, x0, t_end, dt, method="euler", **options)}

    def timed(fn) -> float:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    euler_maruyama(sme, x0, 10 * dt, dt, compile=True, **{**options, "record_every": 1})  # compile
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name].append(timed(run))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"ratio": round(med["torchsde"] / med["fused"], 2),
                      "ratio_eager": round(med["torchsde"] / med["eager"], 2),
                      "fused_s": round(med["fused"], 3), "eager_s": round(med["eager"], 3),
                      "torchsde_s": round(med["torchsde"], 3), "dtype": args.dtype,
                      "path_steps_per_s": round(args.K * args.steps / med["fused"]), "K": args.K,
                      "steps": args.steps, "repeats": args.repeats, "device": args.device,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "machine": platform.machine()}))


if __name__ == "__main__":
    main()
