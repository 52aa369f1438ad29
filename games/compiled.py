"""torch.compile for the ensemble kernels: one compilation allowance per use, and kernels that let
other threads run.

- dynamo keeps its compilations per code object, at most ``recompile_limit`` (8) of them, and runs the
  function uncompiled past that, with a warning. The kernels here are compiled for static shapes, one
  compilation per shape, so that a process that draws or steps ensembles of many sizes would exhaust
  that allowance and silently fall back to eager code (other numbers, to rounding). ``own_code`` gives
  each use its own code object, and so its own allowance.
- On the CPU, inductor's Python wrapper calls each kernel holding the GIL, so that two threads running
  compiled kernels take turns. Its C++ wrapper (``cpp_wrapper``) runs the whole graph as one C++ function
  that releases the GIL: a helper thread can then draw the next block's normals while the steps run
  (``sde.integrate``).
"""
from __future__ import annotations

import types
from typing import Callable

import torch

CPU_OPTIONS = {"cpp_wrapper": True}  # inductor's options for CPU kernels: the graph releases the GIL


def own_code(fn: Callable) -> Callable:
    """``fn`` with a copy of its code object, so that its compilations count against an allowance of their own.

    Args:
        fn: a Python function (anything else is returned as it is).

    Returns:
        The same function (globals, defaults, closure) on a new code object.
    """
    if not isinstance(fn, types.FunctionType):
        return fn
    copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__, copy.__qualname__ = fn.__kwdefaults__, fn.__qualname__
    return copy


def options_for(device) -> dict:
    """inductor's options for kernels on ``device``.

    Args:
        device: where the kernels run.

    Returns:
        ``CPU_OPTIONS`` on the CPU, no options (inductor's defaults) elsewhere.
    """
    return dict(CPU_OPTIONS) if torch.device(device).type == "cpu" else {}
