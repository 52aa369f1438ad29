"""Benchmark: SME-1 of the Gaussian game, fused Euler–Maruyama against torchsde's Euler, same process.

``--update RULE`` (default sim) takes the SME of another update rule (its drift and noise read off the
rule's code, ``games.rules``) and times simultaneous GDA's beside it in the same run: the last line then
also has ``ratio_sim`` and ``ratio_vs_sim`` = ratio / ratio_sim.

Both integrate the same SDE object with the same step over the same horizon, and both take its noise
through the SME's ``g_prod`` (σ(x)ΔW in the game's closed form, no [K, d, m] factor: torchsde's
solvers call it too); repeats are
interleaved and each figure is a median, after one warm-up run of each (which holds the
compilation of the fused step). Prints one JSON line last: "ratio" = torchsde time / fused time
(the steps fused by torch.compile, ``integrate(compile=True)``), "ratio_eager" = the same without
compilation, and the fused path-steps per second.

Beside them, in the same run and on the same SDE (the SME-1 of simultaneous GDA, whatever ``--update``),
two jax baselines (the ``bench`` extra): diffrax's Euler on an ``UnsafeBrownianPath``, vmapped over the K
paths, and a hand-written ``jax.lax.scan`` Euler–Maruyama batched over them, both jitted, with the same
dt and number of steps, in the run's dtype (jax's x64 enabled), keeping the final state alone. Their
drift and diffusion are the game's closed forms written in jax, checked first against the SME's f, g
and g_prod at 8 random states (to 1e-10 relative; the script exits if they differ). Keys:
"ratio_diffrax" and "ratio_jax_scan" = their time / the fused time, "diffrax_s", "jax_scan_s",
"baseline_mean_gap" = the largest gap between diffrax's and the scan's ensemble means at t_end over the
coordinates, in standard errors ("fused_mean_gap": the fused run's against the scan's). Without jax or
diffrax these keys are null and a note goes to stderr. "floor_multiple" = the fused time / "normals_s",
the time to draw the fused run's normals alone (the same draws, into the same buffer layout, on the
threads a block's draw takes in place, "normals_threads": the driver's ``threads_for_kernel``, all of
torch's at the default K): how far the fused run is from its random-number floor. The fused run itself
draws them on a helper thread beside its steps ("draws_ahead": that thread's torch threads, 0 if it
draws in place; ``sde.normals``), and takes "fused_steps" steps per compiled call.

``--large K`` (default 10⁶ on a GPU, off on the CPU) also times the fused step alone at K paths and
sets its memory traffic against the device's copy bandwidth measured in the same run: a step must
at least write the normals once and read them (in the streams' ``buffer_dtype``, float32 for a
float64 run), and read and write the state, 2m + 2d numbers per path ("bandwidth_fraction" = that
traffic per second / the copy's bytes per second).
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import platform
import statistics
import sys
import time

import numpy as np
import torch

from games import SGA, GaussianGame
from games.driver import threads, threads_for_kernel
from games.random import Streams
from sde import SME, euler_maruyama, integrate, sdeint
from sde.integrate import FUSED_STEPS

try:  # the baselines' libraries (the ``bench`` extra)
    import diffrax
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError as error:
    jax, MISSING = None, error


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
        warm = euler_maruyama(one, x0, 8 * dt, dt, compile=True, **options)  # compile (the calls of the timed runs)
    block = inspect.signature(integrate).parameters["block"].default
    draw_threads = threads_for_kernel(args.K * block * sme.m)
    runs["normals"] = normals_run(sme.m, args, dtype, draw_threads)
    runs["normals"]()  # compile
    finals = {}
    for name, solve in jax_solvers(smes["sim"], x0, dt, args).items():
        finals[name] = np.asarray(solve())  # compile
        runs[name] = lambda solve=solve: solve().block_until_ready()
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name].append(timed(run, args.device))
    med = {k: statistics.median(v) for k, v in times.items()}
    large = large_run(sme, x0, dt, args, dtype) if args.large else {}
    baselines = baseline_keys(med, finals, smes["sim"], x0, t_end, dt, options,
                              fused="fused" if args.update == "sim" else "fused_sim")
    beside = {}
    if args.update != "sim":
        ratio_sim = med["torchsde_sim"] / med["fused_sim"]
        beside = {"ratio_sim": round(ratio_sim, 2), "ratio_vs_sim": round(med["torchsde"] / med["fused"] / ratio_sim, 3),
                  "fused_sim_s": round(med["fused_sim"], 3), "torchsde_sim_s": round(med["torchsde_sim"], 3)}
    print(json.dumps({"update": args.update, "ratio": round(med["torchsde"] / med["fused"], 2), **beside,
                      "ratio_eager": round(med["torchsde"] / med["eager"], 2),
                      "fused_s": round(med["fused"], 3), "eager_s": round(med["eager"], 3),
                      "torchsde_s": round(med["torchsde"], 3), **baselines,
                      "floor_multiple": round(med["fused"] / med["normals"], 2),
                      "normals_s": round(med["normals"], 3),
                      "normals_threads": draw_threads, "draws_ahead": warm.metadata["draws_ahead"],
                      "fused_steps": math.gcd(FUSED_STEPS, block, args.steps), "dtype": args.dtype,
                      "path_steps_per_s": round(args.K * args.steps / med["fused"]), "K": args.K,
                      "steps": args.steps, "repeats": args.repeats, "device": args.device,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "jax": jax and jax.__version__, "diffrax": jax and diffrax.__version__,
                      "jax_backend": jax and jax.default_backend(),
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


def normals_run(m, args, dtype, count: int):
    """The normals of a fused (compile=True) run alone: ``integrate``'s draws of one block of steps into
    one [block·m, K] buffer, ⌈steps/block⌉ of them, on ``count`` threads."""
    block = inspect.signature(integrate).parameters["block"].default

    def run():
        streams = Streams.from_seed(0, args.K, device=args.device, dtype=dtype)
        buffer = torch.empty(block * m, args.K, dtype=streams.buffer_dtype, device=streams.device)
        with threads(count):
            for _ in range(-(-args.steps // block)):
                streams.normal(block, m, compiled=True, paths_inner=True, out=buffer)
    return run


def jax_coefficients(sme):
    """The SME-1 of simultaneous GDA on the 1-d Gaussian game in jax, for one state x = (μ, W, v, U): the
    drift (``expected_field``) [d] and g = √η σ [d, m], the generator's minibatch in columns 0–3 and the
    critic's in 4–7 (``gradient_noise_product``: (ξ, z, Q_ξ, Q_z) per minibatch, E = √2 Q for n = 1)."""
    mean, std, ridge = sme.game.mean, sme.game.std, sme.game.ridge
    scale, r2 = math.sqrt(sme.eta / sme.batch_size), math.sqrt(2.0)

    def drift(x):
        mu, W, v, U = x
        return jnp.array([v + 2 * U * mu, 2 * U * W, mean - mu - ridge * v,
                          std**2 + mean**2 - W**2 - mu**2 - ridge * U])

    def diffusion(x):
        mu, W, v, U = x
        a, P, o = v + 2 * U * mu, 2 * U * W, jnp.zeros_like(mu)
        return scale * jnp.array([[o, P, o, o, o, o, o, o], [o, a, o, r2 * P, o, o, o, o],
                                  [o, o, o, o, std + o, -W, o, o],
                                  [o, o, o, o, 2 * mean * std + o, -2 * W * mu, r2 * std**2 + o, -r2 * W**2]])
    return drift, diffusion


def check_coefficients(sme, drift, diffusion, states: int = 8) -> None:
    """Exit unless the jax f, g and g·w equal the torch SME's to 1e-10 (relative) at random states."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(states, sme.d, generator=generator, dtype=torch.float64)
    w = torch.randn(states, sme.m, generator=generator, dtype=torch.float64)
    xj, wj = jnp.asarray(x.numpy()), jnp.asarray(w.numpy())
    g = jax.vmap(diffusion)(xj)
    pairs = {"f": (sme.f(0.0, x), jax.vmap(drift)(xj)), "g": (sme.g(0.0, x), g),
             "g_prod": (sme.g_prod(0.0, x, w), jnp.einsum("kij,kj->ki", g, wj))}
    for name, (ours, theirs) in pairs.items():
        ours, theirs = ours.numpy(), np.asarray(theirs)
        if ours.shape != theirs.shape or np.abs(ours - theirs).max() > 1e-10 * np.abs(ours).max():
            raise SystemExit(f"sde_throughput: the jax {name} differs from {sme.name}'s: the baselines would "
                             "time another SDE")


def jax_solvers(sme, x0, dt, args) -> dict:
    """{"diffrax", "jax_scan"}: () ↦ X_N [K, d], jitted Euler–Maruyama of ``sme`` from x0 over all K paths
    (diffrax's Euler on an UnsafeBrownianPath vmapped over paths; a lax.scan batched over them), after
    checking their coefficients; {} (with a note) without jax or diffrax."""
    if jax is None:
        print(f"sde_throughput: no jax baselines ({MISSING}; pip install .[bench])", file=sys.stderr)
        return {}
    drift, diffusion = jax_coefficients(sme)
    check_coefficients(sme, drift, diffusion)
    K, m, steps, y0 = args.K, sme.m, args.steps, jnp.asarray(x0.cpu().numpy())

    def path(key):
        terms = diffrax.MultiTerm(diffrax.ODETerm(lambda t, y, _: drift(y)), diffrax.ControlTerm(
            lambda t, y, _: diffusion(y), diffrax.UnsafeBrownianPath(shape=(m,), key=key)))
        return diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, steps * dt, dt, y0, saveat=diffrax.SaveAt(t1=True),
                                   adjoint=diffrax.ForwardMode(), max_steps=steps).ys[-1]

    def scan(key):
        f, g = jax.vmap(drift), jax.vmap(diffusion)

        def step(x, key):
            dw = math.sqrt(dt) * jax.random.normal(key, (K, m), x.dtype)
            return x + f(x) * dt + jnp.einsum("kij,kj->ki", g(x), dw), None
        return jax.lax.scan(step, jnp.broadcast_to(y0, (K, sme.d)), jax.random.split(key, steps))[0]

    key = jax.random.key(0)
    diffrax_run, scan_run = jax.jit(lambda key: jax.vmap(path)(jax.random.split(key, K))), jax.jit(scan)
    return {"diffrax": lambda: diffrax_run(key), "jax_scan": lambda: scan_run(key)}


def mean_gap(a, b) -> float:
    """The largest |mean(a) − mean(b)| over coordinates, in standard errors, for independent ensembles [K, d]."""
    error = np.sqrt((a.var(0, ddof=1) + b.var(0, ddof=1)) / a.shape[0])
    return round(float((np.abs(a.mean(0) - b.mean(0)) / error).max()), 2)


def baseline_keys(med, finals, sme, x0, t_end, dt, options, fused) -> dict:
    """The jax baselines' times and ratios to the fused run of ``sme`` (key ``fused`` of med), and the gaps
    of the ensemble means at t_end (diffrax against the scan; the fused run against the scan); nulls without."""
    if not finals:
        return dict.fromkeys(["ratio_diffrax", "ratio_jax_scan", "diffrax_s", "jax_scan_s",
                              "baseline_mean_gap", "fused_mean_gap"])
    ours = euler_maruyama(sme, x0, t_end, dt, compile=True, **options).states[-1].numpy()
    return {"ratio_diffrax": round(med["diffrax"] / med[fused], 2),
            "ratio_jax_scan": round(med["jax_scan"] / med[fused], 2),
            "diffrax_s": round(med["diffrax"], 3), "jax_scan_s": round(med["jax_scan"], 3),
            "baseline_mean_gap": mean_gap(finals["diffrax"], finals["jax_scan"]),
            "fused_mean_gap": mean_gap(ours, finals["jax_scan"])}


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
