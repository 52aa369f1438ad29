"""Linearisations at an equilibrium x* (THEORY §2, §6), taken by autograd through the actual field and
update code, and the object that holds one.

Near x* the expected field is V(x) ≈ A(x − x*) and the minibatch noise ζ has the constant covariance
Σ_B = Σ_B(x*). One iteration of training is then affine, x' − x* = M(x − x*) + Σ_g N_g ζ_g over the
minibatches g it draws; M and N_g are read off the update code itself (autograd through ``SGA.step`` with
the noise of each draw injected), so every rule is covered whose noise enters linearly: simultaneous,
alternating, n_D steps, extragradient, lookahead, separate rates, fresh or shared batches. A linear SDE
dX = A(X − x*) dt + S dW, SSᵀ = Σ, is held by the same object (``sde`` builds those of its SMEs).
"""
from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from .errors import ConfigError, check_shape
from .maths.lyapunov import continuous_lyapunov, discrete_lyapunov
from .oracle import Injected
from .random import Streams
from .rules import trace
from .sga import SGA


def jacobian_at(field: Callable, x_star: torch.Tensor) -> torch.Tensor:
    """D field(x*) [d, d] of a field on batches ([K, d] → [K, d]), by autograd.

    Args:
        field: a vector field on ensembles, x `[K, d]` ↦ `[K, d]`, evaluated here with K = 1.
        x_star: the point x*, shape [d].

    Returns:
        The Jacobian ∂field_i/∂x_j at x*, shape [d, d].
    """
    return torch.autograd.functional.jacobian(lambda x: field(x[None])[0], x_star)


def field_jacobian(game, x_star: torch.Tensor) -> torch.Tensor:
    """A = DV(x*) [d, d] of the expected field.

    Args:
        game: a game with a closed-form ``expected_field``.
        x_star: the point x*, shape [d] (usually an equilibrium, V(x*) = 0).

    Returns:
        A, shape [d, d].
    """
    return jacobian_at(game.expected_field, x_star)


def update_map_jacobian(sga: SGA, x_star: torch.Tensor, seed: int = 0, oracle=None) -> torch.Tensor:
    """D Φ at x* [n, n] of one SGA iteration Φ, by autograd through the update code: over the state x alone
    ([d, d]) for a rule without memory and stateless optimisers, else over (x, the tensors of the rule's and
    optimisers' state), at the state one iteration from x* reaches (optimistic GDA: the past direction d(x*)),
    so that a rule with memory is linearised as the map it is on its augmented state. For deterministic
    games, or with ``oracle`` = the expected field (``games.oracle.Mean``).

    Args:
        sga: the training setup whose iteration Φ is differentiated (its rule, rates, optimisers).
        x_star: the point x*, shape [d].
        seed: the seed of the single run's streams (matters only for a stochastic oracle).
        oracle: the gradient oracle (None: the game's minibatches, as ``SGA.step`` draws them).

    Returns:
        DΦ at x*, shape [n, n]: n = d without state, else d plus the number of state entries.
    """
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


def linear_chain(sga: SGA, x_star: torch.Tensor) -> tuple:
    """(M [d, d], [N_g [d, d]]): x' − x* = M(x − x*) + Σ_g N_g ζ_g to first order at x*, by autograd
    through one iteration of ``sga``'s update code on the expected field with a noise vector ζ_g injected
    on each minibatch g it draws (``games.oracle.Injected``; exact for linear games).

    Args:
        sga: the training setup: a rule without memory whose noise enters through its gradients.
        x_star: the point x* (usually an equilibrium), shape [d].

    Returns:
        (M `[d, d]`, [N_g `[d, d]` for each minibatch g of the iteration, in the order it draws them]).

    Raises:
        ConfigError: if the rule keeps state, or multiplies noisy Jacobians on a game whose noise
            depends on x.
    """
    _check_linear_noise(sga)
    x_star = x_star.reshape(1, -1)
    counter = Injected.vectors(sga.game, [], shared=sga.shared_batch, decay=sga.decay)
    _step(sga, counter, x_star)
    zeros = [torch.zeros_like(x_star) for _ in range(len(counter.groups))]

    def one_step(x, *noises):
        return _step(sga, Injected.vectors(sga.game, noises, shared=sga.shared_batch, decay=sga.decay), x)[0]

    jac = torch.autograd.functional.jacobian(one_step, (x_star, *zeros))
    return jac[0][:, 0], [n[:, 0] for n in jac[1:]]


def _check_linear_noise(sga: SGA) -> None:
    """The chain's linearisation needs a rule without memory whose noise enters through its gradients
    alone (a Jacobian product of a noisy Jacobian does not)."""
    if sga.rule.stateful:
        raise ConfigError("sga.update", f"{sga.rule.label} keeps state between iterations: its stationary "
                                         "covariance needs that state in the chain's")
    jacobians = any(e["kind"] != "gradient" for e in trace(sga))
    if jacobians and not sga.game.additive_noise:
        raise ConfigError("sga.update", f"{sga.rule.label} multiplies noisy Jacobians on {sga.game.name}, whose "
                                         "noise depends on x: its one-step noise is not a vector per minibatch")


def _step(sga: SGA, oracle, x: torch.Tensor) -> torch.Tensor:
    x_new, _, _ = sga.step(x, sga.init_state(x), 0, Streams([0], dtype=x.dtype), oracle=oracle)
    return x_new


@dataclass(frozen=True)
class Linearisation:
    """A linear(ised) system at x* (module docstring): drift Jacobian ``A`` [d, d], noise covariance
    ``sigma`` [d, d] (Σ_B of training, or an SDE's σσᵀ), x* [d], θ the first ``p`` coordinates, and for a
    discrete chain its one-step maps ``M`` [d, d] and ``N`` = (N_g [d, d], …).

    Args:
        A: the drift's Jacobian at x*, shape [d, d] (stored as float64, as are ``sigma`` and ``x_star``).
        sigma: the noise covariance, shape [d, d].
        x_star: the point x*, shape [d].
        p: the number of θ coordinates, 0 ≤ p ≤ d.
        M: the chain's one-step map, shape [d, d] (None: no chain).
        N: the chain's noise maps N_g, each of shape [d, d], one per minibatch of an iteration.
    """

    A: torch.Tensor
    sigma: torch.Tensor
    x_star: torch.Tensor
    p: int
    M: Optional[torch.Tensor] = None
    N: Tuple[torch.Tensor, ...] = ()

    def __post_init__(self):
        A, sigma, x_star = (torch.as_tensor(v, dtype=torch.float64) for v in (self.A, self.sigma, self.x_star))
        if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
            raise ValueError(f"A must be square [d, d] with d ≥ 1, got shape {list(A.shape)}")
        d = A.shape[0]
        check_shape("sigma", sigma, (d, d))
        check_shape("x_star", x_star, (d,))
        if isinstance(self.p, bool) or not isinstance(self.p, numbers.Integral) or not 0 <= self.p <= d:
            raise ValueError(f"p must be an integer in [0, d={d}], got {self.p!r}")
        for name, value in (("A", A), ("sigma", sigma), ("x_star", x_star), ("p", int(self.p)), ("N", tuple(self.N))):
            object.__setattr__(self, name, value)

    @classmethod
    def of_training(cls, sga: SGA, x_star: torch.Tensor) -> "Linearisation":
        """Training by ``sga`` at x*: A = DV(x*), Σ_B(x*) at its batch size, and its chain's M, N_g.

        Args:
            sga: the training setup (``linear_chain``'s conditions apply).
            x_star: the point x* (usually an equilibrium), shape [d].

        Returns:
            The linearisation, with ``M`` and ``N`` set and ``p`` the game's.
        """
        M, N = linear_chain(sga, x_star)
        sigma = sga.game.gradient_covariance(x_star.reshape(1, -1), sga.batch_size)[0]
        return cls(field_jacobian(sga.game, x_star).detach(), sigma.detach(), x_star.detach(), sga.game.p,
                   M.detach(), tuple(n.detach() for n in N))

    @property
    def d(self) -> int:
        """The state's dimension p + q."""
        return self.A.shape[0]

    @functools.cached_property
    def owner(self) -> torch.Tensor:
        """[d]: 0 on θ's coordinates, 1 on ω's."""
        return (torch.arange(self.d) >= self.p).long()

    def coordinate_rates(self, rates: torch.Tensor) -> torch.Tensor:
        """The diagonal of D_u [..., d] from the players' rates u [..., 2] (θ, ω)."""
        return rates[..., self.owner]

    def chain_covariance(self) -> np.ndarray:
        """The chain's stationary covariance P = MPMᵀ + Σ_g N_g Σ_B N_gᵀ (discrete Lyapunov)."""
        if self.M is None:
            raise ValueError("this linearisation has no chain (M, N_g): build it with Linearisation.of_training")
        Q = sum((N @ self.sigma @ N.T for N in self.N), torch.zeros_like(self.sigma))
        return discrete_lyapunov(self.M.numpy(), Q.numpy())

    def sde_covariance(self, eta: float = 1.0, what: str = "the SDE") -> np.ndarray:
        """The stationary covariance of dX = A(X − x*) dt + √η S dW, SSᵀ = Σ: AP + PAᵀ + ηΣ = 0.

        Args:
            eta: the factor η of the diffusion (the learning rate for an SME; 1 for an SDE whose
                ``sigma`` is its σσᵀ).
            what: the system's name in the error if A is not stable.

        Returns:
            P, shape [d, d].

        Raises:
            ValueError: if an eigenvalue of A has real part ≥ 0.
        """
        return continuous_lyapunov(self.A.numpy(), eta * self.sigma.numpy(), what)

