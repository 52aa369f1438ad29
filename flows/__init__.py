"""Deterministic limits of training: gradient flows, modified equations and dual metric flows."""
from .best_response import kl_flow, mmd_flow
from .dual import DualFlowGame, dual_flow, dual_training
from .gradient_flow import gradient_flow
from .modified import modified_flow
from .ode import integrate_flow

__all__ = ["gradient_flow", "modified_flow", "integrate_flow", "DualFlowGame", "dual_flow", "dual_training",
           "mmd_flow", "kl_flow"]
