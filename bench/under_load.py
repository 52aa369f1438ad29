"""Benchmark: the README's getting-started example (training, its SME-1, its gradient flow) on an idle
machine and with one core held by a busy process that this script starts and stops itself, in the same run.

The driver picks torch's thread count from the work per step (``games.driver.threads_for``); the same
parts are also timed with two threads forced (``run.threads`` = 2, what torch would use on two cores),
which on small tensors collapse once another process holds a core. Repeats are interleaved (idle, then
loaded, per repeat) and each figure is a median. Prints one JSON line last: ``ratio`` = the smallest
over the parts of idle time / loaded time with the driver's threads (goal ≥ 0.5), ``ratio_two_threads``
the same with two threads forced, and each part's medians.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from flows import gradient_flow
from games import SGA, Custom
from games.execution import using
from sde import SME, ReferenceBatchGame, integrate


def sample_losses(theta, omega, batch):
    critic = lambda x: omega[:, :1] * torch.sin(x) + omega[:, 1:] * torch.cos(x)  # noqa: E731
    real, fake = batch[..., 0], theta + 0.5 * batch[..., 1]
    return -critic(fake), critic(fake) - critic(real) + 0.25 * (omega**2).sum(-1, keepdim=True)


def losses(theta, omega, batch):
    loss_g, loss_d = sample_losses(theta, omega, batch)
    return loss_g.mean(-1), loss_d.mean(-1)


def sample(K, B, gen):
    z = gen.normal(B, 2)
    return torch.stack([1.0 + 0.5 * z[..., 0], z[..., 1]], dim=-1)


def parts(K: int) -> dict:
    """The getting-started example's three parts, each a callable."""
    game = Custom(p=1, q=2, losses=losses, sample_losses=sample_losses, sample=sample)
    x0 = torch.tensor([0.0, 0.5, -0.5])
    trainer = SGA(game, lr=0.1, batch_size=4)
    sme = SME(SGA(ReferenceBatchGame(game, samples=1024, noise_samples=64, fresh=True), lr=0.1, batch_size=4), order="1")
    flow_game = ReferenceBatchGame(game, samples=10**5)
    return {"training": lambda: trainer.run(40, K=K, x0=x0, seed=0, record_every=4),
            "sme1": lambda: integrate(sme, x0, t_end=4.0, dt=0.05, K=K, seed=1, record_every=8),
            "flow": lambda: gradient_flow(flow_game, x0[None], t_end=4.0, n_records=11)}


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def busy() -> subprocess.Popen:
    """A process that holds one core."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--K", type=int, default=1000, help="runs of training and paths of the SME (README: 1000)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = parts(args.K)
    settings = {"driver": {}, "two_threads": {"threads": 2}}
    for run in runs.values():  # warm-up
        run()
    times = {(s, p, load): [] for s in settings for p in runs for load in ("idle", "loaded")}
    for _ in range(args.repeats):
        for load in ("idle", "loaded"):
            hog = busy() if load == "loaded" else None
            try:
                for setting, changes in settings.items():
                    with using(**changes):
                        for name, run in runs.items():
                            times[setting, name, load].append(timed(run))
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
    med = {key: statistics.median(v) for key, v in times.items()}
    ratio = {s: min(med[s, p, "idle"] / med[s, p, "loaded"] for p in runs) for s in settings}
    print(json.dumps({"ratio": round(ratio["driver"], 3), "ratio_two_threads": round(ratio["two_threads"], 3),
                      **{f"{s}_{p}_{load}_s": round(med[s, p, load], 3) for s, p, load in med},
                      "K": args.K, "repeats": args.repeats, "cores": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
