"""Coupled-SDE approximations of discrete training (stochastic modified equations, THEORY §2)."""
from .coupling import bridge, coupled_chain
from .estimated import ReferenceBatchGame
from .integrate import brownian_from_increments, euler_maruyama, integrate, sdeint
from .solvers import EulerMaruyama, PlatenWeak2
from .linear import LinearSDE
from .momentum import AdamSME, HeavyBallSME
from .sme import SME

__all__ = ["SME", "HeavyBallSME", "AdamSME", "coupled_chain", "bridge", "ReferenceBatchGame", "LinearSDE", "euler_maruyama", "integrate", "EulerMaruyama", "PlatenWeak2", "sdeint", "brownian_from_increments"]
