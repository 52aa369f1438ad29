"""Deterministic limits of training: gradient flows, modified equations and dual metric flows."""
from .gradient_flow import gradient_flow
from .modified import modified_flow
from .ode import integrate_flow

__all__ = ["gradient_flow", "modified_flow", "integrate_flow"]
