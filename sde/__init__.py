"""Coupled-SDE approximations of discrete training (stochastic modified equations, THEORY §2)."""
from .estimated import ReferenceBatchGame
from .integrate import brownian_from_increments, euler_maruyama, sdeint
from .linear import LinearSDE
from .sme import SME

__all__ = ["SME", "ReferenceBatchGame", "LinearSDE", "euler_maruyama", "sdeint", "brownian_from_increments"]
