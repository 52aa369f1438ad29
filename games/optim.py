"""Optimisers batched over K independent runs, one instance per player.

An optimiser turns the player's gradient g_n [K, n] at its n-th update into a direction D_n;
the training loop then steps θ_{n+1} = θ_n − η_n D_n.  ``direction`` is functional: it returns a
new state and never writes into its arguments, so autograd can differentiate through an update.
Every state tensor follows the dtype and device of the parameters it was made from.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from math import sqrt
from typing import Dict, Tuple

import torch
from torch import Tensor

from .errors import ConfigError, check_choice, check_positive

State = Dict[str, Tensor]


class Optimizer(ABC):
    """A map (g_n, s_n, n) ↦ (D_n, s_{n+1}); the caller steps θ ← θ − η_n D_n."""

    @abstractmethod
    def init(self, params: Tensor) -> State:
        """The state s_0 for parameters of shape [K, n]."""

    @abstractmethod
    def direction(self, grad: Tensor, state: State, step: int) -> Tuple[Tensor, State]:
        """The direction D_n [K, n] and the next state, for the gradient g_n at update n = step.

        Args:
            grad: the player's gradient g_n, shape [K, n].
            state: the state s_n (``init`` for n = 0); not modified.
            step: n, the number of updates before this one (0 at the first; sets bias corrections).

        Returns:
            (D_n `[K, n]`, s_{n+1}).
        """

    @classmethod
    def checked(cls, field: str, **options) -> "Optimizer":
        """An instance from ``options`` after validating them; errors name ``field``.<option>.

        Args:
            field: the config key of the optimiser (``sga.gen.optimizer``), prefixed to the options' keys.
            **options: the optimiser's fields, by name (all of them: ``make_optimizer`` fills in defaults).

        Returns:
            The optimiser.

        Raises:
            ConfigError: naming ``field``.<option> for an option out of its range.
        """
        return cls(**options)


@dataclass(frozen=True)
class SGD(Optimizer):
    """Gradient descent: D_n = g_n."""

    def init(self, params: Tensor) -> State:
        return {}

    def direction(self, grad: Tensor, state: State, step: int) -> Tuple[Tensor, State]:
        return grad, {}


@dataclass(frozen=True)
class HeavyBall(Optimizer):
    """Polyak momentum as in torch.optim.SGD: m_n = β m_{n−1} + g_n, m_{−1} = 0, D_n = m_n.

    Args:
        momentum: β in [0, 1).
    """

    momentum: float = 0.9

    def init(self, params: Tensor) -> State:
        return {"m": torch.zeros_like(params)}

    def direction(self, grad: Tensor, state: State, step: int) -> Tuple[Tensor, State]:
        m = self.momentum * state["m"] + grad
        return m, {"m": m}

    @classmethod
    def checked(cls, field: str, momentum) -> "HeavyBall":
        return cls(_unit_interval(f"{field}.momentum", momentum))


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam as in torch.optim.Adam: D_n = m̂_n / (√v̂_n + ε), with bias-corrected moments m̂, v̂.

    Args:
        beta1: β₁ in [0, 1), the decay of the first moment m_n = β₁m_{n−1} + (1 − β₁)g_n.
        beta2: β₂ in [0, 1), the decay of the second moment v_n = β₂v_{n−1} + (1 − β₂)g_n².
        eps: ε > 0, added to √v̂_n.
    """

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def init(self, params: Tensor) -> State:
        return {"m": torch.zeros_like(params), "v": torch.zeros_like(params)}

    def direction(self, grad: Tensor, state: State, step: int) -> Tuple[Tensor, State]:
        m = self.beta1 * state["m"] + (1 - self.beta1) * grad
        v = self.beta2 * state["v"] + (1 - self.beta2) * grad * grad
        correction1 = 1 - self.beta1 ** (step + 1)
        correction2 = 1 - self.beta2 ** (step + 1)
        d = (m / correction1) / (v.sqrt() / sqrt(correction2) + self.eps)
        return d, {"m": m, "v": v}

    @classmethod
    def checked(cls, field: str, beta1, beta2, eps) -> "Adam":
        return cls(
            _unit_interval(f"{field}.beta1", beta1),
            _unit_interval(f"{field}.beta2", beta2),
            check_positive(f"{field}.eps", eps),
        )


CG_BETAS = ("FR", "PRP", "HS", "DY", "HS_DY", "FR_PRP")


def cg_beta(rule: str, grad: Tensor, prev_grad: Tensor, prev_dir: Tensor) -> Tensor:
    """The conjugate-gradient coefficient β_n [K] of ``rule``; 0 where its denominator vanishes.

    With y = g_n − g_{n−1} and the descent direction d_{n−1} = −D_{n−1}:
    FR = ‖g_n‖²/‖g_{n−1}‖², PRP = g_nᵀy/‖g_{n−1}‖², HS = g_nᵀy/d_{n−1}ᵀy, DY = ‖g_n‖²/d_{n−1}ᵀy,
    HS_DY = max(0, min(HS, DY)), FR_PRP = max(0, min(FR, PRP)).

    Args:
        rule: one of ``CG_BETAS``.
        grad: g_n, shape [K, n].
        prev_grad: g_{n−1}, shape [K, n].
        prev_dir: D_{n−1} = −d_{n−1}, shape [K, n].

    Returns:
        β_n, shape [K].
    """
    y = grad - prev_grad
    if rule in ("FR", "PRP", "FR_PRP"):
        denominator = _dot(prev_grad, prev_grad)
    else:
        denominator = -_dot(prev_dir, y)
    norm = _ratio(_dot(grad, grad), denominator)  # FR, DY
    projection = _ratio(_dot(grad, y), denominator)  # PRP, HS
    if rule in ("FR", "DY"):
        return norm
    if rule in ("PRP", "HS"):
        return projection
    return torch.minimum(norm, projection).clamp(min=0)


@dataclass(frozen=True)
class ConjugateGradient(Optimizer):
    """Conjugate gradient for GANs: D_n = g_n + c·min(β_n, β_max)·D_{n−1}, D_0 = g_0.

    Naganuma & Iiduka, "Conjugate Gradient Method for Generative Adversarial Networks",
    AISTATS 2023.  They step θ ← θ + η d_n with d_n = −g_n + β_n d_{n−1}; here D_n = −d_n, so the
    caller's θ ← θ − η D_n is the same step.  β_n is ``cg_beta(beta, ...)``.  As in the authors'
    code, β_n is capped above (not below) at ``beta_cap`` (1/2 there) and then multiplied by
    ``coefficient`` (0.5, 0.75 or 1 there); it is 0 where its denominator is 0, which makes
    β_0 = 0 from the zero initial state.

    Args:
        beta: the formula of β_n, one of ``CG_BETAS``.
        beta_cap: β_max > 0, the cap on β_n.
        coefficient: c in (0, 1].
    """

    beta: str = "FR"
    beta_cap: float = 0.5
    coefficient: float = 1.0

    def init(self, params: Tensor) -> State:
        return {"grad": torch.zeros_like(params), "dir": torch.zeros_like(params)}

    def direction(self, grad: Tensor, state: State, step: int) -> Tuple[Tensor, State]:
        beta = cg_beta(self.beta, grad, state["grad"], state["dir"])
        beta = self.coefficient * beta.clamp(max=self.beta_cap)
        d = grad + beta[:, None] * state["dir"]
        return d, {"grad": grad, "dir": d}

    @classmethod
    def checked(cls, field: str, beta, beta_cap, coefficient) -> "ConjugateGradient":
        coefficient = check_positive(f"{field}.coefficient", coefficient)
        if coefficient > 1:
            raise ConfigError(f"{field}.coefficient", f"must be in (0, 1], got {coefficient!r}")
        return cls(
            check_choice(f"{field}.beta", beta, CG_BETAS),
            check_positive(f"{field}.beta_cap", beta_cap),
            coefficient,
        )


_BY_NAME = {"sgd": SGD, "heavy_ball": HeavyBall, "adam": Adam, "cg": ConjugateGradient}
OPTIMIZERS = tuple(_BY_NAME)


def make_optimizer(name: str, field: str = "optimizer", **options) -> Optimizer:
    """The optimiser ``name`` with ``options``; a ConfigError names ``field`` or ``field``.<option>.

    Args:
        name: one of ``OPTIMIZERS``: "sgd", "heavy_ball", "adam", "cg".
        field: the config key of the optimiser, for errors.
        **options: the optimiser's fields to change from their defaults.

    Returns:
        The optimiser.
    """
    cls = _BY_NAME[check_choice(field, name, OPTIMIZERS)]
    defaults = {f.name: f.default for f in fields(cls)}
    for key in options:
        if key not in defaults:
            accepted = ", ".join(defaults) or "none"
            raise ConfigError(f"{field}.{key}", f"not an option of {name!r}; accepted: {accepted}")
    return cls.checked(field, **{**defaults, **options})


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1)


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator / denominator, and 0 where denominator = 0, with finite gradients everywhere."""
    nonzero = denominator != 0
    safe = torch.where(nonzero, denominator, torch.ones_like(denominator))
    return torch.where(nonzero, numerator / safe, torch.zeros_like(numerator))


def _unit_interval(field: str, value) -> float:
    v = check_positive(field, value, allow_zero=True)
    if v >= 1:
        raise ConfigError(field, f"must be in [0, 1), got {value!r}")
    return v
