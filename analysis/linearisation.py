"""Jacobians at an equilibrium, taken by autograd through the actual field and update code."""
from __future__ import annotations

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from games.random import Streams
from games.sga import SGA


def field_jacobian(game, x_star: torch.Tensor) -> torch.Tensor:
    """DV(x*) [d, d] of the expected field."""
    return torch.autograd.functional.jacobian(lambda x: game.expected_field(x[None])[0], x_star)


def update_map_jacobian(sga: SGA, x_star: torch.Tensor, seed: int = 0, oracle=None) -> torch.Tensor:
    """D Φ at x* [n, n] of one SGA iteration Φ, by autograd through the update code: over the state x alone
    ([d, d]) for a rule without memory and stateless optimisers, else over (x, the tensors of the rule's and
    optimisers' state), at the state one iteration from x* reaches (optimistic GDA: the past direction d(x*)),
    so that a rule with memory is linearised as the map it is on its augmented state. For deterministic
    games, or with ``oracle`` = the expected field (``games.oracle.Mean``)."""
    def step(x, state):
        streams = Streams.from_seed(seed, 1, device=x.device, dtype=x.dtype)
        return sga.step(x, state, 0, streams, oracle=oracle)[:2]

    x = x_star[None]
    _, state = step(x, sga.init_state(x))
    leaves, spec = tree_flatten(state)
    where = [i for i, leaf in enumerate(leaves) if torch.is_tensor(leaf)]
    if not where:
        state = sga.init_state(x)
        return torch.autograd.functional.jacobian(lambda z: step(z[None], state)[0][0], x_star)
    sizes = [leaves[i].numel() for i in where]

    def one_step(flat):
        parts, inner = flat.split([x_star.numel(), *sizes]), list(leaves)
        for i, part in zip(where, parts[1:]):
            inner[i] = part.reshape(leaves[i].shape)
        x_new, new_state = step(parts[0][None], tree_unflatten(inner, spec))
        new_leaves = tree_flatten(new_state)[0]
        return torch.cat([x_new[0]] + [new_leaves[i].reshape(-1) for i in where])

    return torch.autograd.functional.jacobian(one_step, torch.cat([x_star] + [leaves[i].reshape(-1) for i in where]))


def eigenvalues(M: torch.Tensor) -> list:
    """Eigenvalues as Python complex numbers."""
    return torch.linalg.eigvals(M.double()).tolist()


def max_eigen_difference(a: list, b: list) -> float:
    """Largest |λ_a − λ_b| after sorting both spectra by (real, imag), rounded to match conjugates."""
    key = lambda z: (round(z.real, 6), round(z.imag, 6))  # noqa: E731
    return max(abs(x - y) for x, y in zip(sorted(a, key=key), sorted(b, key=key)))


def spectral_radius(values: list) -> float:
    return max(abs(z) for z in values)
