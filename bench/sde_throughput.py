"""Benchmark: SME-1 of the Gaussian game, fused Euler–Maruyama against torchsde's Euler, same process.

Both integrate the same SDE object with the same step over the same horizon; repeats are
interleaved and each figure is a median. Prints one JSON line last: "ratio" = torchsde time /
fused time, and the fused path-steps per second.
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
    args = parser.parse_args()
    game, dt = GaussianGame(), 0.01
    sme = SME(SGA(game, lr=dt, batch_size=16), order="1")
    x0 = game.equilibrium(device=args.device)
    t_end = dt * args.steps
    options = dict(K=args.K, seed=0, record_every=args.steps, device=args.device)

    def timed(fn) -> float:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    times = {"fused": [], "torchsde": []}
    for _ in range(args.repeats):
        times["fused"].append(timed(lambda: euler_maruyama(sme, x0, t_end, dt, **options)))
        times["torchsde"].append(timed(lambda: sdeint(sme, x0, t_end, dt, method="euler", **options)))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"ratio": round(med["torchsde"] / med["fused"], 2),
                      "fused_s": round(med["fused"], 3), "torchsde_s": round(med["torchsde"], 3),
                      "path_steps_per_s": round(args.K * args.steps / med["fused"]), "K": args.K,
                      "steps": args.steps, "repeats": args.repeats, "device": args.device,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "machine": platform.machine()}))


if __name__ == "__main__":
    main()
