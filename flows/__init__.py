"""Deterministic limits of training: the gradient flow (and, later, modified equations and dual flows)."""
from .gradient_flow import gradient_flow

__all__ = ["gradient_flow"]
