"""Lookahead: k inner iterations of any rule, then a step of α towards where they reached."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError, check_int, check_positive
from .base import UpdateRule
from .gda import Simultaneous


@dataclass(frozen=True)
class Lookahead(UpdateRule):
    """x_fast = k iterations of ``inner`` from x; x' = x + α(x_fast − x) (Zhang et al. 2019,
    arXiv:1907.08610; for games Chavdarova et al. 2021, arXiv:2006.14567). The inner rule's state and the
    players' optimisers carry over from one outer iteration to the next.

    Continuous limits: b₁ = αk·b₁(inner); the rest is read off the code. An adaptive schedule is refused:
    it would have to judge the fast iterates, which are not the ones kept.

    Args:
        inner: the rule of the fast iterations (not lookahead itself).
        k: the fast iterations per outer one (≥ 1).
        alpha: α in (0, 1], the fraction of the way to x_fast taken.
    """

    inner: UpdateRule = field(default_factory=Simultaneous)
    k: int = 5
    alpha: float = 0.5

    name = "lookahead"
    adaptive_schedules = False

    @property
    def stateful(self) -> bool:
        return self.inner.stateful

    @classmethod
    def checked(cls, field: str, inner, k=5, alpha=0.5) -> "Lookahead":
        alpha = check_positive(f"{field}.alpha", alpha)
        if alpha > 1:
            raise ConfigError(f"{field}.alpha", f"must be in (0, 1], got {alpha!r}")
        return cls(inner, check_int(f"{field}.k", k), alpha)

    def init(self, x):
        return {"inner": self.inner.init(x)}

    def step(self, x, state, ctx):
        fast, inner = x, state["inner"]
        for j in range(self.k):
            fast, inner = self.inner.step(fast, inner, ctx.inner(j))
        return ctx.interpolate(x, fast, self.alpha), {"inner": inner}
