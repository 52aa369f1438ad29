"""Synchronous coupling of discrete training with its SME: the chain's own minibatches drive the SDE.

The game turns each minibatch into exact N(0, I) numbers (``Game.gradient_noise_increments``); those of
one iteration, in the order the chain draws them, are the SME's noise columns (``SME.groups``),
so ΔW_k = √η w_k over [kη, (k+1)η] meets the chain's gradient noise: η(V̂ − V) ≈ √η σ ΔW_k. Each side
keeps its own law, so E φ(x_k) − E φ(X_{kη}) is unchanged, but the paired differences φ(x_k) − φ(X_{kη})
vary far less than either side: weak errors of order η² become measurable with thousands of paths
instead of millions. Finer solver steps split each ΔW by Brownian bridges (``bridge``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from games import chunks
from games.oracle import Minibatch, svag_combine
from games.random import Streams
from games.trajectory import Trajectory


class _Tapped(Minibatch):
    """The chain's minibatches, each also turned into Brownian increments as it is drawn: under SVAG the
    pair's (a₊w₁ + a₋w₂)/√l, exactly N(0, I) as a₊² + a₋² = l, the normals of the combined gradient's noise."""

    def __init__(self, *args, noise_streams: Streams, **kwargs):
        super().__init__(*args, **kwargs)
        self.noise_streams, self.increments = noise_streams, []

    def draw(self):
        batch = super().draw()
        if self.svag == 1:
            w = self.game.gradient_noise_increments(batch, self.noise_streams)
        else:
            pair = [self.game.gradient_noise_increments(b, self.noise_streams) for b in batch]
            w = svag_combine(self.svag, *pair) / math.sqrt(self.svag)
        self.increments.append(w)
        return batch

    def state_dict(self) -> dict:
        return {"increments": list(self.increments), "noise_counter": self.noise_streams.counter}

    def load_state_dict(self, state: dict) -> None:
        self.increments, self.noise_streams.counter = list(state["increments"]), state["noise_counter"]


def coupled_chain(sme, steps: int, x0, streams: Streams, noise_streams: Streams, sga=None,
                  step_time: Optional[float] = None, **run_options):
    """(Trajectory of ``steps`` iterations of ``sga`` (default ``sme.sga``) on ``streams``, the Brownian
    increments [steps, K, m] over the SDE time of an iteration, ``step_time`` (default η), that its
    minibatches make); ``noise_streams`` gives the few fresh normals the game's coupling needs, and the
    columns beyond those of the minibatches (SME-2s, the quadratic part of a rule with Jacobian products).
    ``sme`` gives the minibatches per iteration (``groups``) and the width m. The chain is the one
    ``sga.run`` gives on the same streams.

    Args:
        sme: the SME whose noise columns the increments fill (its ``groups``, ``m``, ``eta`` and ``sga``).
        steps: training iterations N.
        x0: the initial state, [d] or [K, d].
        streams: the K runs' streams the chain draws its minibatches from.
        noise_streams: per-run streams for the fresh normals (the game's coupling, the extra columns).
        sga: the training to run (default ``sme.sga``).
        step_time: the SDE time of one iteration (default η): each ΔW_k has variance ``step_time``·I.
        **run_options: keywords of ``SGA.run`` (record_every, …).

    Returns:
        (chain, increments): the chain's Trajectory, and the Brownian increments ΔW_k = √step_time·w_k
        `[steps, K, m]` that drive the SDE over the chain's N iterations.
    """
    sga = sga or sme.sga
    step_time = sme.eta if step_time is None else step_time
    if sga.pathwise and chunks.splits(streams.K):  # the chain and its increments, a chunk of runs a worker
        x0 = torch.as_tensor(x0)
        job = lambda index, s, ns: coupled_chain(sme, steps, x0[index] if x0.ndim == 2 else x0, s, ns,  # noqa: E731
                                                 sga, step_time, **run_options)
        return chunks.run_split(job, streams.K, [streams, noise_streams],
                                lambda parts: (Trajectory.join_runs([c for c, _ in parts]),
                                               torch.cat([w for _, w in parts], dim=1)))
    tap = _Tapped(sga.game, sga.batch_size, streams, sga.shared_batch, sga.svag, sga.decay, noise_streams=noise_streams)
    chain: Trajectory = sga.run(steps, streams=streams, x0=x0, oracle=tap, **run_options)
    per_iteration = sme.groups
    draws = tap.increments[: steps * per_iteration]
    if len(draws) < steps * per_iteration:
        raise RuntimeError(f"the chain stopped after {len(draws) // per_iteration} of {steps} iterations")
    w = torch.stack([torch.cat(draws[k * per_iteration : (k + 1) * per_iteration], dim=-1) for k in range(steps)])
    if w.shape[-1] < sme.m:  # columns beyond the minibatches': independent of the chain
        w = torch.cat([w, noise_streams.normal(steps, sme.m - w.shape[-1]).transpose(0, 1).to(w)], dim=-1)
    return chain, math.sqrt(step_time) * w


def bridge(increments: torch.Tensor, h: float, streams: Streams) -> torch.Tensor:
    """Increments [2N, K, m] over steps h/2 with the same pairwise sums as ``increments`` [N, K, m] over
    steps h: ΔW/2 ± (√h/2) ν, ν ~ N(0, I) fresh (the Brownian bridge at each midpoint), exact in law.

    Args:
        increments: Brownian increments ΔW_n over steps of length h, [N, K, m].
        h: the length of the coarse steps (SDE time).
        streams: the K runs' streams the midpoint normals ν are drawn from.

    Returns:
        The increments over steps of length h/2, [2N, K, m]: rows 2n and 2n + 1 sum to increments[n].
    """
    N, K, m = increments.shape
    nu = streams.normal(N, m).transpose(0, 1).to(increments) * (math.sqrt(h) / 2)
    return torch.stack([increments / 2 + nu, increments / 2 - nu], dim=1).reshape(2 * N, K, m)
