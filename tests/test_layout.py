"""Compiled steps with the paths innermost (sde.layout): the rewrite keeps every value, and it lays
every concatenation it keeps out along the paths."""
import torch
from torch.fx.passes.shape_prop import ShapeProp

from games import SGA, GaussianGame
from games.random import Streams
from sde import SME, integrate
from sde.layout import compile_step, paths_innermost

K = 7


def mixed(x, y, w):
    """Concatenations of every kind a step makes: x [K, 3], y [K, 2], w [2, K, 2]."""
    joined = torch.cat([x, y], dim=-1)  # [K, 5]: rewritten
    pairs = torch.stack([x[:, 0], y[:, 1]], dim=1)  # [K, 2]: rewritten
    blocks = torch.cat([w, 2 * w], dim=2)  # [2, K, 4]: rewritten (the paths are dim 1)
    rejoined = torch.cat([x[..., :1], x[..., 1:]], dim=-1)  # x itself: dropped
    scaled = torch.cat([x[:, :2] * -1.5, x[:, 2:] * -1.5], dim=1)  # x · (−1.5): dropped
    unscaled = torch.cat([x[:, :2] * 2.0, x[:, 2:] * 3.0], dim=1)  # two scalars: rewritten
    along_paths = torch.cat([y, y], dim=0)  # [2K, 2]: the paths are concatenated, left alone
    return joined * 2, pairs + 1, blocks, 3 * rejoined, along_paths, scaled, unscaled  # no order of summation


def rewritten_graph(fn, *inputs):
    """The dynamo graph of fn after ``paths_innermost``, with the number of rewrites."""
    captured = {}

    def backend(graph_module, example_inputs):
        captured["count"] = paths_innermost(graph_module, K)
        captured["graph"] = graph_module
        return graph_module.forward

    torch._dynamo.reset()
    out = torch.compile(fn, backend=backend, dynamic=False)(*inputs)
    return out, captured["graph"], captured["count"]


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(K, 3, generator=g, dtype=torch.float64), torch.randn(K, 2, generator=g, dtype=torch.float64),
            torch.randn(2, K, 2, generator=g, dtype=torch.float64))


def test_the_rewrite_keeps_every_value_exactly():
    args = inputs()
    out, _, count = rewritten_graph(mixed, *args)
    assert count == 6
    assert all(torch.equal(a, b) for a, b in zip(out, mixed(*args)))


def test_every_rewritten_concatenation_runs_along_the_paths():
    args = inputs(1)
    _, graph, _ = rewritten_graph(mixed, *args)
    ShapeProp(graph).propagate(*args)
    cats = [node for node in graph.graph.nodes if node.op == "call_function" and node.target is torch.cat]
    assert not any(node.target is torch.stack for node in graph.graph.nodes)
    shapes = [[tuple(t.meta["tensor_meta"].shape) for t in node.args[0]] for node in cats]
    innermost = [all(s[-1] == K for s in group) for group in shapes]
    assert sorted(innermost) == [False, True, True, True, True]  # all but the concatenation of the paths themselves
    assert shapes[innermost.index(False)] == [(K, 2), (K, 2)]


def test_slices_that_do_not_cover_the_tensor_are_concatenated():
    def gapped(x):
        return torch.cat([x[:, :1], x[:, 2:]], dim=1)  # drops column 1: not x

    x = torch.arange(3.0 * K).reshape(K, 3)
    out, _, count = rewritten_graph(gapped, x)
    assert count == 1 and torch.equal(out, x[:, [0, 2]])


def test_a_compiled_sme_step_gives_the_eager_step_to_rounding():
    """The Gaussian game's SME-1 (its state and noise joined by concatenations) compiled with the
    rewrite, against the same step in eager mode."""
    sme = SME(SGA(GaussianGame(), lr=0.05, batch_size=4), order="1")
    n = 64
    x = sme.game.init(n, Streams.from_seed(0, n)) + 0.1 * torch.randn(n, sme.d, dtype=torch.float64)
    z = torch.randn(n, sme.m, dtype=torch.float64)

    def step(x, z):
        return x + sme.f(0.0, x) * 0.05 + sme.g_prod(0.0, x, z)

    compiled = compile_step(step, n)(x.t().contiguous().t(), z)
    assert torch.allclose(compiled, step(x, z), rtol=1e-12, atol=1e-12)
    assert (step(x, -z) - step(x, z)).abs().max() > 1e-3  # the tolerance resolves the noise


def test_compiled_integration_of_an_sme_follows_the_eager_paths():
    """Four steps to a compiled call (records every 4 steps), and one (every 2), against eager steps; 22
    steps, so that the last two are taken one by one."""
    sme = SME(SGA(GaussianGame(), lr=0.05, batch_size=4), order="1")
    x0 = sme.game.equilibrium()
    eager = integrate(sme, x0, 1.1, 0.05, K=32, seed=3, block=8, record_every=2)
    fours = integrate(sme, x0, 1.1, 0.05, K=32, seed=3, block=8, record_every=4, compile=True)
    twos = integrate(sme, x0, 1.1, 0.05, K=32, seed=3, block=8, record_every=2, compile=True)
    assert (fours.metadata["fused_steps"], twos.metadata["fused_steps"]) == (4, 2)
    assert fours.times.tolist() == eager.times[::2].tolist() + [eager.times[-1].item()]
    # the normals are float32 Box–Muller, whose log/cos/sin round differently when fused
    assert torch.allclose(twos.states, eager.states, rtol=1e-5, atol=1e-6)
    assert torch.allclose(fours.states, torch.cat([eager.states[::2], eager.states[-1:]]), rtol=1e-5, atol=1e-6)


def test_steps_made_by_one_def_each_keep_their_compilation():
    """dynamo keeps at most ``recompile_limit`` compilations per code object (8) and runs the function
    eagerly past them; more closures of one def (as a step for each of several SDEs) are all compiled.
    Here with a limit of 2, and 3 closures."""
    from torch._dynamo.utils import counters

    def scaled(c):
        return lambda x: x * c

    torch._dynamo.reset()
    counters.clear()
    x = torch.ones(K, 2)
    with torch._dynamo.config.patch(recompile_limit=2):
        outs = [compile_step(scaled(float(c)), K)(x) for c in range(3)]
    assert all(torch.equal(out, x * c) for c, out in enumerate(outs))
    assert counters["stats"]["unique_graphs"] == 3
