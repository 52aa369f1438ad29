"""Full-batch training against its gradient flow ẋ = b₁ and its modified flow ẋ = b₁ + η(m₂ − ½Db₁·b₁):
the global error sup_{kη ≤ T} |x_k − X(kη)| (THEORY §3)."""
from __future__ import annotations

from flows import modified_flow
from games.expansion import Expansion

FLOWS = {"flow": "1", "modified": "2"}  # name: the order of ``flows.modified_flow``


def global_errors(sga, x0, horizon: float, flows=FLOWS) -> dict:
    """{flow name: sup_k |x_k − X(kη)|} of ``sga``'s full-batch chain against each flow (the largest over the
    initial conditions), the flows by dopri5 at rtol 1e-9.

    Args:
        sga: the training at rate η.
        x0: initial conditions [K, d].
        horizon: T, rounded to whole steps.
        flows: {name: order of the flow}.

    Returns:
        {name: error}.
    """
    eta = sga.lr
    steps = round(horizon / eta)
    chain = Expansion(sga).mean_chain(steps, x0=x0, record_every=1).states
    errors = {}
    for name, order in flows.items():
        flow = modified_flow(sga, x0, steps * eta, order=order, n_records=steps + 1, rtol=1e-9, atol=1e-11)
        errors[name] = float((chain - flow.states).norm(dim=-1).max())
    return errors
