"""Compiled ensemble steps with the paths innermost in memory.

A compiled step of K paths is a graph of small per-path tensors ([K, d], [K, m], [G, K, d] …). inductor
fuses the element-wise work into loops, but it stores every concatenation (``torch.cat``, ``torch.stack``:
the players' fields joined into one state, one noise block per minibatch) as a separate buffer,
contiguous in the order the tensor is written: the paths outermost and the few coordinates innermost.
The loops that fill and read such a buffer then run along its few coordinates, and vectorise over
them, not over the many paths.

``paths_innermost`` drops the concatenations that rebuild a tensor from its consecutive slices (a state
split into the players' parts and joined again), or an element-wise map of it (each player's part of
a field scaled by the same scalar), and rewrites the others so that they are built with the paths
dimension last,

    cat(xs, c) = permute(cat([permute(x, π) for x in xs], π⁻¹(c)), π⁻¹),

π the permutation that moves the paths dimension (the one of size K, other than the concatenated
one) to the end: the same tensor, element for element, whose buffer the loops fill and read along
the paths. ``compile_step`` compiles a step with that rewrite and, on the CPU, with its concatenations
sunk through the element-wise maps that follow them (``sde.sinking``), so that most are never stored.
"""
from __future__ import annotations

import operator
from typing import Callable, Optional

import torch

from games.compiled import options_for, own_code

from .sinking import SinkConcatenations

CONCATENATIONS = (torch.cat, torch.concat, torch.concatenate)
ELEMENTWISE = (operator.add, operator.sub, operator.mul, operator.truediv, operator.neg,
               torch.add, torch.sub, torch.mul, torch.div, torch.neg)  # with scalar arguments: op(x[s], c) = op(x, c)[s]


def paths_innermost(graph_module: torch.fx.GraphModule, K: int) -> int:
    """Drop the concatenations of ``graph_module`` (a dynamo graph: its nodes carry their ``example_value``)
    that rejoin a tensor's consecutive slices or one scalar map of them, and rewrite every other
    concatenation and stack whose tensors share a paths dimension of size K, other than the concatenated
    one, so that it concatenates with that dimension innermost. The values are unchanged: only the
    buffers written, and the order in which they are laid out.

    Args:
        graph_module: the graph, rewritten in place (and recompiled).
        K: the number of paths, the size of the dimension to put innermost.

    Returns:
        The number of concatenations rewritten.
    """
    graph, rewritten = graph_module.graph, 0
    for node in list(graph.nodes):
        if node.op != "call_function" or not (node.target in CONCATENATIONS or node.target is torch.stack):
            continue
        tensors, dim = _concatenation_args(node)
        shapes = [_shape(t) for t in tensors]
        if not shapes or None in shapes or len({len(s) for s in shapes}) != 1:
            continue
        whole = None if node.target is torch.stack else _rejoined(tensors, dim) or _mapped(graph, node, tensors, dim)
        if whole is not None:  # cat([x[..., :a], x[..., a:]], -1) = x, cat([x[..., :a]·c, x[..., a:]·c], -1) = x·c
            node.replace_all_uses_with(whole)
            graph.erase_node(node)
            rewritten += 1
            continue
        if node.target is torch.stack:  # stack(xs, c) = cat([x.unsqueeze(c) for x in xs], c)
            dim = dim % (len(shapes[0]) + 1)
            shapes = [s[:dim] + (1,) + s[dim:] for s in shapes]
        n = len(shapes[0])
        dim %= n
        paths = next((i for i in range(n) if i != dim and all(s[i] == K for s in shapes)), None)
        if paths is None or paths == n - 1:
            continue
        order = [i for i in range(n) if i != paths] + [paths]  # π: the paths last
        with graph.inserting_before(node):
            if node.target is torch.stack:
                tensors = [graph.call_function(torch.unsqueeze, (t, dim)) for t in tensors]
            moved = [graph.call_function(torch.permute, (t, order)) for t in tensors]
            joined = graph.call_function(torch.cat, (moved, order.index(dim)))
            restored = graph.call_function(torch.permute, (joined, [order.index(i) for i in range(n)]))
        node.replace_all_uses_with(restored)
        graph.erase_node(node)
        rewritten += 1
    if rewritten:
        graph.lint()
        graph_module.recompile()
    return rewritten


def compile_step(step: Callable, K: int, options: Optional[dict] = None) -> Callable:
    """``step`` torch.compile'd for static shapes by inductor, its concatenations laid out with the
    paths innermost (``paths_innermost``).

    Args:
        step: the function of an ensemble's tensors to compile (K paths).
        K: the number of paths it is compiled for (the size of the paths dimension).
        options: inductor's configuration for the compilation (``torch.compile``'s ``options``), over
            ``games.compiled.options_for`` the inputs' device and, on the CPU, the sinking of the step's
            concatenations into its output (``sde.sinking``).

    Returns:
        The compiled function (compiled at its first call, once per input shapes and thread count), on a
        code object of its own (``games.compiled.own_code``).
    """
    from torch._inductor.compile_fx import compile_fx

    def backend(graph_module, example_inputs):
        paths_innermost(graph_module, K)
        device = torch.device(next((x.device for x in example_inputs if isinstance(x, torch.Tensor)), "cpu"))
        config = options_for(device)
        if device.type == "cpu":  # elsewhere inductor reads a concatenation's pieces in place already
            config["post_grad_custom_post_pass"] = SinkConcatenations(K)
        return compile_fx(graph_module, example_inputs, config_patches={**config, **(options or {})})

    return torch.compile(own_code(step), backend=backend, dynamic=False)


def _rejoined(tensors: list, dim: int):
    """The tensor x if ``tensors`` are consecutive slices of x along ``dim`` that cover it, else None."""
    slices = [_slice_of(t) for t in tensors]
    if None in slices or len({source for source, *_ in slices}) != 1:
        return None
    source, shape = slices[0][0], _shape(slices[0][0])
    dims = {axis % len(shape) for _, axis, _, _ in slices}
    if dims != {dim % len(shape)}:
        return None
    bounds = [(start, stop) for _, _, start, stop in slices]
    joined = all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    return source if joined and bounds[0][0] == 0 and bounds[-1][1] == shape[dim % len(shape)] else None


def _mapped(graph: torch.fx.Graph, node: torch.fx.Node, tensors: list, dim: int):
    """A new node op(x, *c) if ``tensors`` are op(x[s_i], *c) for consecutive slices s_i covering x along
    ``dim``, op one element-wise operation and c the same scalars for every piece, else None."""
    if not all(isinstance(t, torch.fx.Node) and t.op == "call_function" and t.target in ELEMENTWISE
               and not t.kwargs for t in tensors):
        return None
    if len({(t.target, tuple(t.args[1:])) for t in tensors}) != 1:
        return None
    target, scalars = tensors[0].target, tensors[0].args[1:]
    source = _rejoined([t.args[0] for t in tensors], dim)
    if source is None or not all(isinstance(c, (int, float)) for c in scalars):
        return None
    with graph.inserting_before(node):
        return graph.call_function(target, (source, *scalars))


def _slice_of(node) -> Optional[tuple]:
    """(x, dim, start, stop) if ``node`` is x[..., start:stop, ...] (one unit-step slice along dim, the
    other dimensions whole), else None."""
    if not (isinstance(node, torch.fx.Node) and node.op == "call_function" and node.target is operator.getitem):
        return None
    source, index = node.args
    shape = _shape(source)
    index = index if isinstance(index, tuple) else (index,)
    if shape is None or any(not (i is Ellipsis or isinstance(i, slice)) for i in index) or index.count(Ellipsis) > 1:
        return None
    if Ellipsis in index:
        cut = index.index(Ellipsis)
        axes = list(range(cut)) + list(range(len(shape) - len(index) + cut + 1, len(shape)))
        index = index[:cut] + index[cut + 1:]
    else:
        axes = list(range(len(index)))
    cuts = [(axis, i) for axis, i in zip(axes, index) if i != slice(None)]
    if len(cuts) != 1 or cuts[0][1].step not in (None, 1):
        return None
    axis, cut = cuts[0]
    start, stop, _ = cut.indices(shape[axis])
    return source, axis, start, max(start, stop)


def _concatenation_args(node) -> tuple:
    tensors = node.args[0] if node.args else node.kwargs["tensors"]
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", node.kwargs.get("axis", 0))
    return list(tensors), dim


def _shape(node) -> Optional[tuple]:
    value = getattr(node, "meta", {}).get("example_value") if isinstance(node, torch.fx.Node) else None
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None
