"""Stationary covariances of linear(ised) games in closed form (THEORY §2, "the long-run version").

Near an equilibrium x* the expected field is V(x) ≈ A(x − x*) and the minibatch noise ζ has the
constant covariance Σ_B = Σ_B(x*). Then

- one iteration of the chain is affine, x' − x* = M(x − x*) + Σ_g N_g ζ_g over the minibatches g
  it draws, so its stationary covariance solves the discrete Lyapunov equation
  P = M P Mᵀ + Σ_g N_g Σ_B N_gᵀ, exactly. M and N_g are read off the update code itself (autograd
  through ``SGA.step`` with the noise of each draw injected), so every rule is covered whose noise
  enters linearly: simultaneous, alternating, n_D steps, extragradient, lookahead, separate rates,
  fresh or shared batches;
- an SME dX = b(X) dt + √η σ dW with b(x) ≈ Ã(x − x*) has the stationary covariance solving the
  continuous Lyapunov equation Ã P + P Ãᵀ + η σσᵀ = 0.

Both are solved by scipy.linalg; an unstable linearisation is an error naming its spectrum.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from games.errors import ConfigError
from games.oracle import Injected
from games.random import Streams
from games.rules import trace
from games.sga import SGA


def linear_chain(sga: SGA, x_star: torch.Tensor) -> tuple:
    """(M [d, d], [N_g [d, d]]): x' − x* = M(x − x*) + Σ_g N_g ζ_g to first order at x*, by autograd
    through one iteration of ``sga``'s update code on the expected field with a noise vector ζ_g injected
    on each minibatch g it draws (``games.oracle.Injected``; exact for linear games)."""
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


def chain_covariance(sga: SGA, x_star: torch.Tensor) -> np.ndarray:
    """The chain's stationary covariance P = MPMᵀ + Σ_g N_g Σ_B N_gᵀ at x* (discrete Lyapunov)."""
    M, noise_maps = linear_chain(sga, x_star)
    sigma = sga.game.gradient_covariance(x_star.reshape(1, -1), sga.batch_size)[0]
    Q = sum(N @ sigma @ N.T for N in noise_maps)
    M = M.detach().numpy()
    radius = max(abs(np.linalg.eigvals(M)))
    if radius >= 1 - 1e-12:
        raise ValueError(f"the chain is not stable at x*: spectral radius of its linearisation {radius:.4g} ≥ 1")
    return scipy.linalg.solve_discrete_lyapunov(M, Q.detach().numpy())


def sde_covariance(sme, x_star: torch.Tensor) -> np.ndarray:
    """An SME's stationary covariance: Ã P + P Ãᵀ + η σσᵀ(x*) = 0, Ã = Db(x*) (continuous Lyapunov)."""
    x_star = x_star.reshape(1, -1)
    drift = torch.autograd.functional.jacobian(lambda x: sme.drift(x[None])[0], x_star[0]).detach().numpy()
    largest = max(np.linalg.eigvals(drift).real)
    if largest >= -1e-12:
        raise ValueError(f"{sme.name} is not stable at x*: its drift's Jacobian has an eigenvalue with real "
                         f"part {largest:.4g} ≥ 0")
    noise = sme.covariance(x_star)[0].detach().numpy()
    return scipy.linalg.solve_continuous_lyapunov(drift, -sme.eta * noise)


def relative_error(P: np.ndarray, reference: np.ndarray) -> float:
    """‖P − P_ref‖_F / ‖P_ref‖_F."""
    return float(np.linalg.norm(P - reference) / np.linalg.norm(reference))
