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

import math

import numpy as np
import scipy.linalg
import torch

from games.errors import ConfigError
from games.oracle import Injected
from games.random import Streams
from games.rules import trace
from games.sga import SGA
from sde.sme import SME

from .metrics import sliced_w2


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


def closed_form_errors(game, x_star: torch.Tensor, update: str, etas, batch: int, orders=("1", "2", "2s")) -> dict:
    """{order: [relative error of the SME's stationary covariance against the chain's exact one, per η]}.

    Args:
        game: the game; x_star its equilibrium.
        update: the update rule.
        etas: the rates.
        batch: the batch size.
        orders: the SMEs' orders.

    Returns:
        {order: [errors]}.
    """
    errors = {order: [] for order in orders}
    for eta in etas:
        trainer = SGA(game, lr=eta, update=update, batch_size=batch)
        exact = chain_covariance(trainer, x_star)
        for order in orders:
            errors[order].append(relative_error(sde_covariance(SME(trainer, order=order), x_star), exact))
    return errors


def settling_steps(trainer: SGA, x_star: torch.Tensor, tolerance: float = 1e-4) -> int:
    """Iterations after which the covariance from a point start is within ``tolerance`` of stationary: ρ(M)^{2k}.

    Args:
        trainer: the training; x_star the equilibrium of its linearisation M.
        tolerance: the relative distance to the stationary covariance.

    Returns:
        k.
    """
    M, _ = linear_chain(trainer, x_star)
    radius = float(torch.linalg.eigvals(M).abs().max())
    return math.ceil(math.log(tolerance) / (2 * math.log(radius)))


def law_distances(laws: dict, orders=("1", "2", "2s")) -> dict:
    """{name: (relative covariance error, sliced W₂)} of each SME's stationary samples against the chain's, and
    their Monte Carlo scale ("mc") from two halves of the chain's samples.

    Args:
        laws: {"chain" or order: pooled stationary samples [N, d]}.
        orders: the SMEs among them.

    Returns:
        {order or "mc": (error, sliced W₂)}.
    """
    covariance = lambda x: np.cov(x.numpy().T)  # noqa: E731
    chain = laws["chain"]
    halves = chain[0::2], chain[1::2]  # alternate records of the pooled window: runs × times interleaved
    out = {"mc": (relative_error(covariance(halves[0]), covariance(halves[1])) / math.sqrt(2),
                  sliced_w2(*halves).item() / math.sqrt(2))}
    for order in orders:
        out[order] = (relative_error(covariance(laws[order]), covariance(chain)), sliced_w2(laws[order], chain).item())
    return out


def sample_covariance(samples: torch.Tensor, reference: np.ndarray, resamples: int = 200, seed: int = 0) -> tuple:
    """(the sample covariance of samples [K, d], the Monte Carlo scale of its error relative to ``reference``): the
    mean Frobenius distance of bootstrap resamples' covariances to it, over ‖reference‖_F.

    Args:
        samples: independent states [K, d].
        reference: the covariance the error is relative to [d, d].
        resamples: bootstrap resamples over the K states.
        seed: their generator's seed.

    Returns:
        (covariance [d, d], scale).
    """
    values, K = samples.numpy(), samples.shape[0]
    sample = np.cov(values.T)
    generator = np.random.default_rng(seed)
    resampled = [np.cov(values[generator.integers(0, K, K)].T) for _ in range(resamples)]
    return sample, float(np.mean([np.linalg.norm(r - sample) for r in resampled]) / np.linalg.norm(reference))
