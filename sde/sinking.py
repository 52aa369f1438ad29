"""Concatenations sunk through the element-wise maps that follow them, so that a compiled step's pieces
reach its output unjoined.

A step joins its pieces early (the players' fields into one drift, a noise product per minibatch) and
then maps the joined tensor element-wise (times dt, plus the state, plus the noise). inductor stores
each join as a buffer (on the CPU it never reads a concatenation's pieces in place), so the step becomes
several loops that write and read those buffers. Element-wise maps commute with joins,

    op(cat(a₁, …, aₙ), b) = cat(op(a₁, b[s₁]), …, op(aₙ, b[sₙ])),

with s_i the slice of a_i along the joined dimension (b taken whole where it broadcasts along it), and
so do permutations, selections and slices off the joined dimension; a selection or slice on it picks
pieces. ``sink_concatenations`` rewrites an aten graph so, down to the first operation that is none of
these (or the output), where one concatenation, laid out with the paths innermost (``sde.layout``),
joins what is left: the pieces are computed where that join stores them, in one loop where they share
their shape. Each element is computed by the same operations as before, so the values are the same bits.
"""
from __future__ import annotations
import hashlib
import inspect
import sys
from typing import Optional

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass

aten, prims = torch.ops.aten, torch.ops.prims
POINTWISE = {aten.neg.default, aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor,
             prims.convert_element_type.default}  # the element-wise maps a join is sunk through


class _Split:
    """A node's value as the join of ``pieces`` along ``dim``, piece i covering ``bounds[i]``."""

    def __init__(self, dim, bounds, pieces):
        self.dim, self.bounds, self.pieces = dim, bounds, pieces


def sink_concatenations(graph: torch.fx.Graph, K: int) -> int:
    """Sink every concatenation of ``graph`` (an aten graph whose nodes carry their fake ``val``) through the
    element-wise maps, permutations, selections and slices that follow it, joining the pieces once where
    they meet anything else.

    Args:
        graph: the graph, rewritten in place.
        K: the number of paths: a join is made with the dimension of that size innermost.

    Returns:
        The number of nodes now computed piece by piece or read off one piece.
    """
    splits, done, picked = {}, set(), 0
    fake_mode = next((n.meta["val"].fake_mode for n in graph.nodes if _is_fake(n.meta.get("val"))), None)
    if fake_mode is None:
        return 0

    def add(node, target, args, kwargs=None):
        with graph.inserting_before(node), fake_mode:
            new = graph.call_function(target, tuple(args), kwargs or {})
            values = torch.fx.node.map_arg(tuple(args), lambda a: a.meta["val"])
            new.meta["val"] = target(*values, **(kwargs or {}))
        return new

    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        if node.target is aten.cat.default:
            split = _joined(node)
            if split is None:
                continue
        elif node.target is aten.permute.default and node.args[0] in splits:
            split = _permuted(node, splits[node.args[0]], add)
        elif node.target is aten.select.int and node.args[0] in splits:
            split = _selected(node, splits[node.args[0]], add)
            if split is None:  # a piece picked, or a slice across pieces
                picked += not node.users
                continue
        elif node.target is aten.slice.Tensor and node.args[0] in splits:
            split = _sliced(node, splits[node.args[0]], add)
            if split is None:
                picked += not node.users
                continue
        elif node.target in POINTWISE and any(a in splits for a in node.args if isinstance(a, torch.fx.Node)):
            split = _mapped(node, splits, add)
            if split is None:
                continue
        else:
            continue
        splits[node] = split
        if node.target is not aten.cat.default:
            done.add(node)
    for node, split in splits.items():
        readers = [user for user in node.users if user not in done]
        if node.target is aten.cat.default or not readers:
            continue
        joined = _join(node, split, K, add)
        for user in readers:
            user.replace_input_with(node, joined)
    graph.eliminate_dead_code()
    return len(done) + picked


def _join(node, split: _Split, K: int, add):
    """cat(pieces, d), made as permute(cat(permute(pieces, π), π⁻¹(d)), π⁻¹) with π moving the paths'
    dimension (size K, other than d) last, so that the pieces are stored along the paths."""
    shape = _shape(node)
    paths = next((i for i in range(len(shape)) if i != split.dim and shape[i] == K), None)
    if paths is None or paths == len(shape) - 1:
        return add(node, aten.cat.default, [split.pieces, split.dim])
    order = [i for i in range(len(shape)) if i != paths] + [paths]
    moved = [add(node, aten.permute.default, [p, order]) for p in split.pieces]
    joined = add(node, aten.cat.default, [moved, order.index(split.dim)])
    return add(node, aten.permute.default, [joined, [order.index(i) for i in range(len(shape))]])


def _is_fake(value) -> bool:
    return isinstance(value, torch.Tensor) and hasattr(value, "fake_mode")


def _shape(node) -> tuple:
    return tuple(node.meta["val"].shape)


def _joined(node) -> Optional[_Split]:
    """A concatenation of at least two non-empty tensors as its pieces."""
    tensors = node.args[0]
    dim = (node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)) % len(_shape(node))
    sizes = [_shape(t)[dim] for t in tensors]
    if len(tensors) < 2 or 0 in sizes:
        return None
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return _Split(dim, [(a, a + s) for a, s in zip(starts, sizes)], list(tensors))


def _permuted(node, split: _Split, add) -> _Split:
    """permute(cat(aᵢ, d), π) = cat(permute(aᵢ, π), π⁻¹(d))."""
    order = [o % len(node.args[1]) for o in node.args[1]]
    return _Split(order.index(split.dim), split.bounds, [add(node, aten.permute.default, [p, order]) for p in split.pieces])


def _selected(node, split: _Split, add) -> Optional[_Split]:
    """select(cat(aᵢ, d), e, j): off the joined dimension, cat(select(aᵢ, e, j), d − [e < d]); on it, the
    piece holding j (the node's readers then read that, and None is returned)."""
    source, dim, index = node.args
    rank = len(_shape(source))
    dim, index = dim % rank, index % _shape(source)[dim % rank]
    if dim != split.dim:
        pieces = [add(node, aten.select.int, [p, dim, index]) for p in split.pieces]
        return _Split(split.dim - (dim < split.dim), split.bounds, pieces)
    for (start, stop), piece in zip(split.bounds, split.pieces):
        if start <= index < stop:
            node.replace_all_uses_with(add(node, aten.select.int, [piece, dim, index - start]))
            return None


def _sliced(node, split: _Split, add) -> Optional[_Split]:
    """slice(cat(aᵢ, d), e, a, b): off the joined dimension, cat(slice(aᵢ, e, a, b), d); on it, the pieces
    it covers, where it covers whole pieces (one piece: its readers read that, and None is returned)."""
    source, dim = node.args[0], node.args[1]
    start = node.args[2] if len(node.args) > 2 else 0
    end = node.args[3] if len(node.args) > 3 else None
    step = node.args[4] if len(node.args) > 4 else 1
    rank = len(_shape(source))
    dim %= rank
    size = _shape(source)[dim]
    start = 0 if start is None else max(0, min(size, start if start >= 0 else start + size))
    end = size if end is None else max(0, min(size, end if end >= 0 else end + size))
    if step != 1:
        return None
    if dim != split.dim:
        pieces = [add(node, aten.slice.Tensor, [p, dim, start, end]) for p in split.pieces]
        return _Split(split.dim, split.bounds, pieces)
    inside = [(b, p) for b, p in zip(split.bounds, split.pieces) if b[0] >= start and b[1] <= end]
    if sum(b[1] - b[0] for b, _ in inside) != end - start:
        return None
    if len(inside) == 1:
        node.replace_all_uses_with(inside[0][1])
        return None
    return _Split(split.dim, [(a - start, b - start) for (a, b), _ in inside], [p for _, p in inside])


def _mapped(node, splits: dict, add) -> Optional[_Split]:
    """op(…, cat(aᵢ, d), …, b, …) = cat(op(…, aᵢ, …, b[sᵢ], …)): the joined operands must share their
    dimension (in the output's) and bounds; the others are sliced along it, or taken whole where they
    broadcast along it."""
    rank = len(_shape(node))
    joined = [(splits[a], rank - len(_shape(a))) for a in node.args if isinstance(a, torch.fx.Node) and a in splits]
    dims = {split.dim + offset for split, offset in joined}
    bounds = {tuple(split.bounds) for split, _ in joined}
    if len(dims) != 1 or len(bounds) != 1:
        return None
    (dim,), (bounds,) = dims, bounds

    def piece(arg, i):
        if isinstance(arg, torch.fx.Node) and arg in splits:
            return splits[arg].pieces[i]
        if not isinstance(arg, torch.fx.Node) or not _is_fake(arg.meta.get("val")):
            return arg
        at = dim - (rank - len(_shape(arg)))
        if at < 0 or _shape(arg)[at] == 1:
            return arg
        return add(node, aten.slice.Tensor, [arg, at, *bounds[i]])
    pieces = [add(node, node.target, [piece(a, i) for a in node.args], dict(node.kwargs)) for i in range(len(bounds))]
    return _Split(dim, list(bounds), pieces)


class SinkConcatenations(CustomGraphPass):
    """``sink_concatenations`` for K paths as inductor's post-grad pass (``post_grad_custom_post_pass``)."""

    def __init__(self, K: int):
        self.K = K

    def __call__(self, graph: torch.fx.Graph) -> None:
        sink_concatenations(graph, self.K)

    def uuid(self) -> str:
        """The pass's identity in inductor's caches: its source and K."""
        source = inspect.getsource(sys.modules[__name__])
        return hashlib.sha256(f"{source}{self.K}".encode()).hexdigest()
