"""Directional derivatives by reverse mode, for the small batched tensors of gandyn's games.

Eager forward mode (torch.func.jvp) runs many operations through Python decompositions, costly on tensors
of a few coordinates; a Jacobian–vector product is instead
taken as two reverse passes (the double-backward trick: J v = ∂_u[(Jᵀu)·v]). Where x or the vector
already takes part in a derivative (requires grad), the result keeps its graph, so that the outer
derivative stays exact; otherwise it is returned without one.
"""
from __future__ import annotations

from typing import Callable

import torch


def _traced(fn: Callable, x: torch.Tensor):
    """(x as a node that requires grad, fn of it); call under torch.enable_grad()."""
    tracked = x if x.requires_grad else x.detach().requires_grad_()
    return tracked, fn(tracked)


def vjp(fn: Callable, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """J_fn(x)ᵀu for fn: [K, n] → [K, m] acting on x, u [K, m].

    Args:
        fn: the function [K, n] → [K, m].
        x: the point [K, n].
        u: the cotangent [K, m].

    Returns:
        J_fn(x)ᵀu [K, n] (zeros where fn does not depend on x); with a graph when x or u requires grad.
    """
    outer = x.requires_grad or u.requires_grad
    with torch.enable_grad():
        tracked, out = _traced(fn, x)
        if not out.requires_grad:  # fn does not depend on x
            return torch.zeros_like(x)
        return torch.autograd.grad(out, tracked, u, create_graph=outer, materialize_grads=True)[0]


def jvp(fn: Callable, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """J_fn(x)·v for fn: [K, n] → [K, m] acting on x, v [K, n].

    Args:
        fn: the function [K, n] → [K, m].
        x: the point [K, n].
        v: the direction [K, n].

    Returns:
        J_fn(x)·v [K, m] (zeros where fn is constant); with a graph when x or v requires grad.
    """
    outer = x.requires_grad or v.requires_grad
    with torch.enable_grad():
        tracked, out = _traced(fn, x)
        if not out.requires_grad:  # fn does not depend on x
            return torch.zeros_like(out)
        u = torch.zeros_like(out, requires_grad=True)
        (pulled,) = torch.autograd.grad(out, tracked, u, create_graph=True, materialize_grads=True)
        if not pulled.requires_grad:  # fn is constant along every direction: its Jacobian is zero
            return torch.zeros_like(out)
        return torch.autograd.grad(pulled, u, v, create_graph=outer, materialize_grads=True)[0]
