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

from games.trajectory import atomic_write

from . import catalog
from .runner import reproduce

WIDTH = 640  # pixels: small enough to commit, large enough to read on a README page
DEFAULT_OUT = Path("docs/gallery")


def thumbnail(source: Path, target: Path, width: int = WIDTH) -> Path:
    """``source`` scaled to fit a ``width``-pixel square (never up), as an optimised 8-bit-palette PNG at
    ``target``.

    Args:
        source: the image to shrink.
        target: the PNG to write (its directory is created).
        width: the side in pixels of the square the image must fit.

    Returns:
        ``target``.
    """
    with Image.open(source) as image:
        image = image.convert("RGB")
        scale = min(1.0, width / image.width, width / image.height)
        if scale < 1.0:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        image.quantize(colors=256).save(target, optimize=True)
    return target


def gallery_figure(name: str, run_dir: Path) -> Path:
    """The figure of entry ``name`` that the gallery shows, from its run directory.

    Args:
        name: the catalog entry's name.
        run_dir: the directory its run wrote.

    Returns:
        The path of the figure's PNG in ``run_dir``.
    """
    chosen = catalog.get(name).gallery
    if not chosen:
        report = (run_dir / "report.md").read_text()
        chosen = re.search(r"\]\(([^)]+)\.png\)", report).group(1)
    return run_dir / f"{chosen}.png"


def make_gallery(names=None, out: Path = DEFAULT_OUT, quick: bool = True, overrides=None, quiet: bool = False) -> list:
    """Run each entry of ``names`` (default: the whole catalog) and write its gallery image; the paths.

    Args:
        names: the entries' names; None for the whole catalog.
        out: the directory the images are written to, as NAME.png.
        quick: whether each entry runs its ``--quick`` variant.
        overrides: {dotted key: value} applied to every entry's configuration.
        quiet: whether to silence the runs' progress messages.

    Returns:
        The paths of the images written, in the entries' order.
    """
    written = []
    for name in names or list(catalog.catalog()):
        with tempfile.TemporaryDirectory() as scratch:
            run_dir = reproduce(name, quick, Path(scratch) / name, overrides, quiet)
            written.append(thumbnail(gallery_figure(name, run_dir), Path(out) / f"{name}.png"))
    return written


README_START = "<!-- catalog: written by `python -m gandyn.gallery`; do not edit by hand -->"
README_END = "<!-- end of catalog -->"


def readme_catalog(columns: int = 3) -> str:
    """The README's catalog: each entry's gallery image and title, linked to its documentation page."""
    cells = [f"[![{name}](docs/gallery/{name}.png)](docs/catalog/{name}.md)<br>[`{name}`](docs/catalog/{name}.md): "
             f"{entry.title}" for name, entry in catalog.catalog().items()]
    cells += [""] * (-len(cells) % columns)
    rows = [cells[i:i + columns] for i in range(0, len(cells), columns)]
    lines = ["|" + " |" * columns, "|" + "---|" * columns] + ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([README_START, *lines, README_END])


def write_readme_catalog(readme: Path = Path("README.md")) -> None:
    """Replace the catalog between its markers in ``readme`` by ``readme_catalog()``."""
    text = readme.read_text()
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    new = text[:start] + readme_catalog() + text[end:]
    atomic_write(readme, lambda f: f.write(new.encode()))


if __name__ == "__main__":
    write_readme_catalog()
