"""Coupled-SDE approximations of discrete training (stochastic modified equations, THEORY §2)."""
from .integrate import brownian_from_increments, euler_maruyama, sdeint
from .linear import LinearSDE
from .sme import SME

__all__ = ["SME", "LinearSDE", "euler_maruyama", "sdeint", "brownian_from_increments"]
