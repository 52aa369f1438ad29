"""sde.sinking: concatenations sunk through the element-wise maps, permutations, selections and slices
that follow them compute the same bits with fewer stored joins."""
import importlib

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from games import SGA, GaussianGame
from sde import SME
from sde.layout import compile_step
from sde.sinking import sink_concatenations
from sde.solvers import SOLVERS

integrate_module = importlib.import_module("sde.integrate")
K = 5
aten = torch.ops.aten


def mapped_join(a, b, x):  # a join mapped element-wise, with a tensor sliced along the join
    return (torch.cat([a, b], 1) * 0.5 + x).neg()


def picked_row(a, b, x):  # a selection on the joined dimension: one piece
    return torch.cat([a.t(), b.t()], 0)[3] * 2.0 + x[:, 0]


def picked_piece(a, b, x):  # a slice on the joined dimension covering one piece
    return torch.cat([a, b], 1)[:, 2:] + 1.0


def permuted_join(a, b, x):  # a permutation, then a selection off the joined dimension
    return (torch.cat([a, b], 1).permute(1, 0) * 3.0)[:, 1]


def summed_join(a, b, x):  # a reader the pass does not follow: the pieces are joined for it
    return (torch.cat([a, b], 1) - x).sum(1)


@pytest.mark.parametrize("fn, joins", [(mapped_join, 1), (picked_row, 0), (picked_piece, 0), (permuted_join, 1),
                                       (summed_join, 1)])
def test_sunk_concatenations_give_the_same_bits(fn, joins):
    """Each graph, rewritten, computes the bits of the original; the joins left are those its output needs
    (none where a piece is picked), and none of them joins the inputs themselves."""
    g = torch.Generator().manual_seed(0)
    a, b, x = (torch.randn(K, n, generator=g, dtype=torch.float64) for n in (2, 3, 5))
    traced = make_fx(fn, tracing_mode="fake")(a, b, x)
    inputs = {node for node in traced.graph.nodes if node.op == "placeholder"}
    assert sink_concatenations(traced.graph, K) > 0
    traced.recompile()
    assert torch.equal(traced(a, b, x), fn(a, b, x))
    cats = [node for node in traced.graph.nodes if node.target is aten.cat.default]
    assert len(cats) == joins
    assert all(not set(cat.all_input_nodes) & inputs for cat in cats)


def test_a_compiled_sme_step_stores_fewer_buffers_to_the_same_bits():
    """The Gaussian game's SME-1 step compiled with and without the sinking: the same bits, fewer loops."""
    from torch._inductor import metrics

    sme = SME(SGA(GaussianGame(), lr=0.05, batch_size=4), order="1")
    n = 64
    x = sme.game.equilibrium(dtype=torch.float64).expand(n, -1).clone()
    x = x.t().contiguous().t() + 0.1 * torch.randn(n, sme.d, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    z = torch.randn(n, sme.m, generator=torch.Generator().manual_seed(2), dtype=torch.float32)
    step = integrate_module._scaled_steps(SOLVERS["euler"](), sme, 1)
    args = (torch.tensor(0.0, dtype=torch.float64), x, 0.05, z, torch.tensor(0.1, dtype=torch.float64))
    results, loops = [], []
    for options in ({"post_grad_custom_post_pass": None}, {}):
        torch._dynamo.reset()
        metrics.reset()
        with torch._inductor.config.patch(fx_graph_cache=False):
            results.append(compile_step(step, n, options)(*args))
        loops.append(metrics.generated_kernel_count)
    assert torch.equal(results[0], results[1]) and torch.allclose(results[1], step(*args), rtol=1e-12, atol=1e-12)
    assert loops[1] < loops[0]


@pytest.mark.slow
@pytest.mark.parametrize("update", ["eg", "ogda"])
def test_compiled_sme_steps_of_the_update_rules_follow_their_eager_steps(update):
    """A rule's SME-1 (its drift and noise read off the rule's code: its own joins and maps) compiled,
    concatenations sunk, against the eager steps, two steps to a call; for two rules."""
    sme = SME(SGA(GaussianGame(), lr=0.05, batch_size=4, update=update), order="1")
    n = 32
    g = torch.Generator().manual_seed(3)
    x = sme.game.equilibrium(dtype=torch.float64) + 0.1 * torch.randn(n, sme.d, generator=g, dtype=torch.float64)
    z = torch.randn(2, n, sme.m, generator=g, dtype=torch.float32)
    steps = integrate_module._scaled_steps(SOLVERS["euler"](), sme, 2)
    args = (torch.arange(2, dtype=torch.float64) * 0.05, x.t().contiguous().t(), 0.05, z, torch.tensor(0.2, dtype=torch.float64))
    assert torch.allclose(compile_step(steps, n)(*args), steps(*args), rtol=1e-10, atol=1e-12)
