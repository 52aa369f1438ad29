"""One-step schemes for Itô SDEs dX = f(t, X) dt + g(t, X) dW, separate from the equations they solve.

A solver maps (sde, t, X_n, dt, ΔW_n) to X_{n+1}, with ΔW_n [K, m] and g [K, d, m]; it needs g only
through g ΔW (``noise_term``), so an SDE with a closed-form ``g_prod`` never forms g. The loop that
draws ΔW, records and screens for divergence is ``sde.integrate.integrate``.
"""
from __future__ import annotations

import torch


def noise_term(sde, t, x: torch.Tensor, dw: torch.Tensor) -> torch.Tensor:
    """g(t, x) ΔW [K, d] for ΔW [K, m]: the SDE's own ``g_prod(t, x, ΔW)`` where it has one (torchsde's
    name, which its solvers use too), else the product of g [K, d, m] with ΔW.

    Args:
        sde: the SDE: its diffusion ``g(t, x)`` [K, d, m], or ``g_prod(t, x, v)``.
        t: the time t_n.
        x: the state X_n, [K, d].
        dw: the Brownian increment ΔW_n, [K, m].

    Returns:
        g(t, x) ΔW, [K, d].
    """
    g_prod = getattr(sde, "g_prod", None)
    if g_prod is not None:
        return g_prod(t, x, dw)
    return torch.bmm(sde.g(t, x), dw.unsqueeze(-1)).squeeze(-1)


class EulerMaruyama:
    """X_{n+1} = X_n + f(t_n, X_n) dt + g(t_n, X_n) ΔW_n: weak order 1, strong order ½ (1 for additive
    noise) (Kloeden & Platen 1992, §10.2 and §14.1)."""

    name = "euler"
    weak_order = 1

    def step(self, sde, t, x, dt, dw):
        """One Euler–Maruyama step from X_n at t_n.

        Args:
            sde: the Itô SDE: drift ``f(t, x)`` [K, d] and diffusion g (``noise_term``).
            t: the time t_n.
            x: the state X_n, [K, d].
            dt: the step dt > 0.
            dw: the Brownian increment ΔW_n ~ N(0, dt·I_m), [K, m].

        Returns:
            X_{n+1}, [K, d].
        """
        # the operations in the order torchsde's Euler uses, so that the two agree bit for bit
        return (x + sde.f(t, x) * dt) + noise_term(sde, t, x, dw)


class PlatenWeak2:
    """Ῡ = X + f(X) dt + g(X) ΔW,  X_{n+1} = X + ½(f(X) + f(Ῡ)) dt + g(X) ΔW: weak order 2 for additive
    noise (Kloeden & Platen 1992, §15.1), and weak error O(dt² + ε² dt) for small noise g = εσ(x)
    (Milstein & Tretyakov 2004, ch. 3), hence O(η²) for an SME (ε² = η) at dt = η."""

    name = "platen2"
    weak_order = 2

    def step(self, sde, t, x, dt, dw):
        """One step of the weak order-2 Platen scheme from X_n at t_n (g taken at X_n only).

        Args:
            sde: the Itô SDE: drift ``f(t, x)`` [K, d] and diffusion g (``noise_term``).
            t: the time t_n; the corrector's drift is taken at t_n + dt.
            x: the state X_n, [K, d].
            dt: the step dt > 0.
            dw: the Brownian increment ΔW_n ~ N(0, dt·I_m), [K, m].

        Returns:
            X_{n+1}, [K, d].
        """
        drift, kick = sde.f(t, x), noise_term(sde, t, x, dw)
        support = x + drift * dt + kick
        return x + 0.5 * (drift + sde.f(t + dt, support)) * dt + kick


SOLVERS = {cls.name: cls for cls in (EulerMaruyama, PlatenWeak2)}
