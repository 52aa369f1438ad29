"""Benchmark: SME-1 of the Gaussian game, fused Euler–Maruyama against torchsde's Euler, same process.

``--update RULE`` (default sim) takes the SME of another update rule (its drift and noise read off the
rule's code, ``games.rules``) and times simultaneous GDA's beside it in the same run: the last line then
also has ``ratio_sim`` and ``ratio_vs_sim`` = ratio / ratio_sim.

Both integrate the same SDE object with the same step over the same horizon, and both take its noise
through the SME's ``g_prod`` (σ(x)ΔW in the game's closed form, no [K, d, m] factor: torchsde's
solvers call it too); repeats are
interleaved and each figure is a median, after one warm-up run of each (which holds the
compilation of the fused step). Prints one JSON line last: "ratio" = torchsde time / fused time
(``--compile``, the default: each step fused by torch.compile), "ratio_eager" = the same without
compilation, and the fused path-steps per second.

``--large K`` (default 10⁶ on a GPU, off on the CPU) also times the fused step alone at K paths and
sets its memory traffic against the device's copy bandwidth measured in the same run: a step must
at least write the normals once and read them (in the streams' ``buffer_dtype``, float32 for a
float64 run), and read and write the state, 2m + 2d numbers per path ("bandwidth_fraction" = that
traffic per second / the copy's bytes per second).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from games import SGA, GaussianGame
from games.random import Streams
from sde import SME, euler_maruyama, sdeint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--K", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--large", type=int, default=None,
                        help="also time the fused step alone at this K (default: 10⁶ on a GPU)")
    parser.add_argument("--update", default="sim", help="the update rule whose SME-1 is timed (sga.update)")
    args = parser.parse_args()
    if args.large is None and args.device.startswith("cuda"):
        args.large = 1_000_000
    game, dt = GaussianGame(), 0.01
    smes = {update: SME(SGA(game, lr=dt, batch_size=16, update=update), order="1")
            for update in dict.fromkeys([args.update, "sim"])}
    sme = smes[args.update]
    dtype = getattr(torch, args.dtype)
    x0 = game.equilibrium(device=args.device, dtype=dtype)
    t_end = dt * args.steps
    options = dict(K=args.K, seed=0, record_every=args.steps, device=args.device, dtype=dtype)
    runs = {}
    for update, one in smes.items():
        suffix = "" if update == args.update else "_sim"
        runs.update({f"fused{suffix}": lambda one=one: euler_maruyama(one, x0, t_end, dt, compile=True, **options),
                     f"eager{suffix}": lambda one=one: euler_maruyama(one, x0, t_end, dt, **options),
                     f"torchsde{suffix}": lambda one=one: sdeint(one, x0, t_end, dt, method="euler", **options)})
        euler_maruyama(one, x0, 10 * dt, dt, compile=True, **{**options, "record_every": 1})  # compile
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name].append(timed(run, args.device))
    med = {k: statistics.median(v) for k, v in times.items()}
    large = large_run(sme, x0, dt, args, dtype) if args.large else {}
    beside = {}
    if args.update != "sim":
        ratio_sim = med["torchsde_sim"] / med["fused_sim"]
        beside = {"ratio_sim": round(ratio_sim, 2), "ratio_vs_sim": round(med["torchsde"] / med["fused"] / ratio_sim, 3),
                  "fused_sim_s": round(med["fused_sim"], 3), "torchsde_sim_s": round(med["torchsde_sim"], 3)}
    print(json.dumps({"update": args.update, "ratio": round(med["torchsde"] / med["fused"], 2), **beside,
                      "ratio_eager": round(med["torchsde"] / med["eager"], 2),
                      "fused_s": round(med["fused"], 3), "eager_s": round(med["eager"], 3),
                      "torchsde_s": round(med["torchsde"], 3), "dtype": args.dtype,
                      "path_steps_per_s": round(args.K * args.steps / med["fused"]), "K": args.K,
                      "steps": args.steps, "repeats": args.repeats, "device": args.device,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "machine": platform.machine(), **large}))


def timed(fn, device) -> float:
    """Wall seconds of fn(), synchronised on a GPU."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def copy_bandwidth(device, nbytes: int = 2**28, repeats: int = 5) -> float:
    """Bytes per second (read + written) of a device-to-device copy of ``nbytes``: the median of repeats."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    return 2 * nbytes / statistics.median(timed(lambda: dst.copy_(src), device) for _ in range(repeats))


def large_run(sme, x0, dt, args, dtype) -> dict:
    """The fused step alone at K = ``args.large`` (200 steps, after a compiling run), with its minimum
    traffic (2m normals and 2d state numbers per path-step) as a fraction of the copy bandwidth."""
    steps, options = 200, dict(K=args.large, seed=0, device=args.device, dtype=dtype, compile=True)
    run = lambda n: euler_maruyama(sme, x0, n * dt, dt, record_every=n, **options)  # noqa: E731
    run(64)
    seconds = statistics.median(timed(lambda: run(steps), args.device) for _ in range(args.repeats))
    rate = args.large * steps / seconds
    normal_bytes = torch.finfo(Streams([0], dtype=dtype).buffer_dtype).bits / 8
    traffic = rate * (2 * sme.m * normal_bytes + 2 * sme.d * torch.finfo(dtype).bits / 8)
    bandwidth = copy_bandwidth(args.device)
    return {"large_K": args.large, "large_path_steps_per_s": round(rate),
            "copy_bandwidth_gb_s": round(bandwidth / 1e9, 1), "bandwidth_fraction": round(traffic / bandwidth, 3)}


if __name__ == "__main__":
    main()
