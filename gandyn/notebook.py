"""Helpers for the notebooks: an entry's figures and key figures from its output directory."""
from __future__ import annotations

import json
from pathlib import Path


def show(out, *names) -> None:
    """Display the entry's figures NAME.png from its output directory ``out`` (in a notebook).

    Args:
        out: the entry's output directory.
        *names: the figures' names, without ``.png``.
    """
    from IPython.display import Image, display

    for name in names:
        display(Image(filename=str(Path(out) / f"{name}.png")))


def key_figures(out, *names) -> dict:
    """Print the named keys of the entry's summary.json and return the whole summary.

    Args:
        out: the entry's output directory.
        *names: the keys to print.

    Returns:
        The whole summary, {key: value}.
    """
    summary = json.loads((Path(out) / "summary.json").read_text())
    for name in names:
        value = summary.get(name)
        print(f"{name:42s} {value:.4g}" if isinstance(value, float) else f"{name:42s} {value}")
    return summary
