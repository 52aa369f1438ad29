"""Stationarity-driven learning rates: cut a player's rate once its fluctuation–dissipation relation holds.

At stationarity of any update θ' = θ − η d with a constant rate, 2E[(θ − c₀)·d] = ηE|d|² (THEORY §4;
``games.maths.fdr``). Per run the scheduler sums the two sides O_L = 2(θ − c₀)·d and O_R = η|d|² over the
updates since its last cut; every ``every`` updates it looks at the second half of them and, where the
relation holds, multiplies the run's rate by ``factor``:

- ``yaida``: |ΣO_L / ΣO_R − 1| < tolerance (Yaida 2018, arXiv:1810.00004, §3.1);
- ``sasa``: SASA+'s equivalence test (Lang, Zhang & Xiao 2019, arXiv:1909.09785, Alg. 2): the
  two-sided (1 − γ) t-interval of the mean of z = O_L − O_R, from batch means over batches of about √N
  updates, lies inside ±tolerance · mean O_R.

Cuts fall on multiples of ``every``, so the sums over any window since a cut are differences of the
cumulative sums kept at those checkpoints. During a transient |θ − c₀|² shrinks, so ΣO_L − ΣO_R =
(|θ_start − c₀|² − |θ_end − c₀|²)/η > 0 and neither test passes. With ``pooled`` the sums also run over
the K runs and all of them share one decision.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from .errors import ConfigError, check_choice, check_int, check_positive
from .maths.fdr import fdr_sides
from .schedules import Adaptive

TESTS = ("sasa", "yaida")


@dataclass(frozen=True)
class FDRScheduler(Adaptive):
    """Start at rate ``lr``; cut a run's rate by ``factor`` when the FDR ``test`` passes (module docstring).

    Args:
        lr: the initial rate η > 0 of every run.
        test: "sasa" (SASA+'s equivalence test) or "yaida" (the ratio of the two sides).
        factor: in (0, 1), what a cut multiplies the rate by.
        every: updates between tests (≥ 1); the batches of SASA+ are whole multiples of it.
        min_updates: no test before this many updates since the run's last cut.
        tolerance: δ > 0 of SASA+ (relative to mean O_R), or Yaida's band around 1.
        confidence: 1 − γ in (0, 1), the level of SASA+'s interval.
        pooled: sum over the K runs too, so that they all share one decision.
    """

    lr: float
    test: str = "sasa"
    factor: float = 0.1
    every: int = 20  # updates between tests; the batches of SASA+ are whole multiples of it
    min_updates: int = 200  # no test before this many updates since the last cut
    tolerance: float = 0.05  # δ of SASA+, or Yaida's band around 1
    confidence: float = 0.8  # 1 − γ of SASA+'s interval
    pooled: bool = False

    @property
    def pathwise(self) -> bool:
        return not self.pooled

    def __post_init__(self):
        check_positive("fdr.lr", self.lr)
        check_choice("fdr.test", self.test, TESTS)
        if not 0 < check_positive("fdr.factor", self.factor) < 1:
            raise ConfigError("fdr.factor", f"must be in (0, 1), got {self.factor!r}")
        check_int("fdr.every", self.every)
        check_int("fdr.min_updates", self.min_updates)
        check_positive("fdr.tolerance", self.tolerance)
        if not 0 < self.confidence < 1:
            raise ConfigError("fdr.confidence", f"must be in (0, 1), got {self.confidence!r}")

    # -- the Adaptive interface -----------------------------------------------------------------------
    def start(self, like: torch.Tensor) -> dict:
        K = like.shape[0]
        zeros = torch.zeros(K, 2, dtype=like.dtype, device=like.device)
        return {"rate": torch.full((K,), self.lr, dtype=like.dtype, device=like.device), "updates": 0,
                "since": torch.zeros(K, dtype=torch.long, device=like.device), "sums": zeros,
                "checkpoints": [zeros], "cuts": []}

    def rate(self, state: dict) -> torch.Tensor:
        return state["rate"]

    def observe(self, state: dict, dot: torch.Tensor, sq: torch.Tensor) -> dict:
        sums = state["sums"] + torch.stack(fdr_sides(dot, sq, state["rate"]), dim=-1)  # (O_L, O_R)
        state = {**state, "sums": sums, "updates": state["updates"] + 1}
        if state["updates"] % self.every:
            return state
        state["checkpoints"] = state["checkpoints"] + [sums]
        return self._cut(state, self.stationary(state))

    def decisions(self, state: dict) -> dict:
        """The cuts as [update, number of runs cut], and each run's count of cuts."""
        counts = torch.zeros_like(state["since"])
        for _, runs in state["cuts"]:
            counts[runs] += 1
        return {"test": self.test, "factor": self.factor, "pooled": self.pooled,
                "cuts": [[update, len(runs)] for update, runs in state["cuts"]],
                "cuts_per_run": counts.tolist() if len(counts) <= 4096 else None,
                "mean_cuts_per_run": float(counts.double().mean())}

    # -- the test ---------------------------------------------------------------------------------------
    def stationary(self, state: dict) -> torch.Tensor:
        """[K] bool: the runs whose relation holds over the second half of their updates since the last cut."""
        c, history = len(state["checkpoints"]) - 1, torch.stack(state["checkpoints"], dim=1)  # [K, C, 2]
        start = state["since"] // self.every
        half = start + (c - start + 1) // 2  # the second half runs over checkpoints half..c
        ready = (c - start) * self.every >= self.min_updates
        if not ready.any():
            return ready
        if self.test == "yaida":
            O_L, O_R = self._pool(_at(history, torch.full_like(half, c)) - _at(history, half)).unbind(-1)
            return ready & ((O_L / O_R - 1).abs() < self.tolerance)
        return ready & self._sasa(history, half, c)

    def _sasa(self, history: torch.Tensor, half: torch.Tensor, c: int) -> torch.Tensor:
        """SASA+'s test on the checkpoints half..c, batches of ≈ √N updates (whole numbers of checkpoints)."""
        span = (c - half).clamp(min=1)
        length = torch.clamp(torch.round(torch.sqrt(span.double() * self.every) / self.every), min=1).long()
        batches = span // length
        j = torch.arange(int(batches.max()) + 1, device=history.device)
        ends = _at(history, (c - j[None] * length[:, None]).clamp(min=0))  # [K, J + 1, 2], newest first
        sums = self._pool(ends[:, :-1] - ends[:, 1:])  # [K, J, 2] batch sums
        used = (j[None, :-1] < batches[:, None]).to(sums.dtype)
        n = used.sum(1)
        z = (sums[..., 0] - sums[..., 1]) / (length[:, None] * self.every)
        mean = (z * used).sum(1) / n
        var = ((z - mean[:, None]) ** 2 * used).sum(1) / (n - 1).clamp(min=1)
        mean_rhs = (sums[..., 1] * used).sum(1) / (n * length * self.every)
        t = torch.as_tensor(stats.t.ppf(0.5 + self.confidence / 2, np.maximum(n.cpu().numpy() - 1, 1)),
                            dtype=z.dtype, device=z.device)
        return (n >= 3) & (mean.abs() + t * torch.sqrt(var / n) < self.tolerance * mean_rhs)

    def _pool(self, sums: torch.Tensor) -> torch.Tensor:
        """The sums over the runs too (broadcast back), if ``pooled``."""
        return sums.sum(0, keepdim=True).expand_as(sums) if self.pooled else sums

    def _cut(self, state: dict, stationary: torch.Tensor) -> dict:
        if not stationary.any():
            return state
        runs = torch.nonzero(stationary).flatten()
        rate = torch.where(stationary, state["rate"] * self.factor, state["rate"])
        since = torch.where(stationary, torch.full_like(state["since"], state["updates"]), state["since"])
        return {**state, "rate": rate, "since": since, "cuts": state["cuts"] + [[state["updates"], runs.tolist()]]}


def _at(history: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """history[r, index[r, ...]] for history [K, C, 2] and index [K] or [K, J]."""
    flat = index.reshape(index.shape[0], -1)
    picked = torch.gather(history, 1, flat[..., None].expand(-1, -1, 2))
    return picked.reshape(*index.shape, 2)

