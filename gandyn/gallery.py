"""The README's figure gallery: one small image per catalog entry, made by the entry itself.

``gandyn gallery`` runs each entry (``--quick`` for the committed gallery), takes the figure its
``Experiment.gallery`` names (else the first of its report) and writes it, shrunk to fit ``WIDTH``
pixels square, as OUT/NAME.png.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from PIL import Image

from . import catalog
from .runner import reproduce

WIDTH = 640  # pixels: small enough to commit, large enough to read on a README page
DEFAULT_OUT = Path("docs/gallery")


def thumbnail(source: Path, target: Path, width: int = WIDTH) -> Path:
    """``source`` scaled to fit a ``width``-pixel square (never up), as an optimised 8-bit-palette PNG at
    ``target``."""
    with Image.open(source) as image:
        image = image.convert("RGB")
        scale = min(1.0, width / image.width, width / image.height)
        if scale < 1.0:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        image.quantize(colors=256).save(target, optimize=True)
    return target


def gallery_figure(name: str, run_dir: Path) -> Path:
    """The figure of entry ``name`` that the gallery shows, from its run directory."""
    chosen = catalog.get(name).gallery
    if not chosen:
        report = (run_dir / "report.md").read_text()
        chosen = re.search(r"\]\(([^)]+)\.png\)", report).group(1)
    return run_dir / f"{chosen}.png"


def make_gallery(names=None, out: Path = DEFAULT_OUT, quick: bool = True, overrides=None, quiet: bool = False) -> list:
    """Run each entry of ``names`` (default: the whole catalog) and write its gallery image; the paths."""
    written = []
    for name in names or list(catalog.catalog()):
        with tempfile.TemporaryDirectory() as scratch:
            run_dir = reproduce(name, quick, Path(scratch) / name, overrides, quiet)
            written.append(thumbnail(gallery_figure(name, run_dir), Path(out) / f"{name}.png"))
    return written
