"""The README's gallery: one small committed image per catalog entry, made by `gandyn gallery`."""
from pathlib import Path

import numpy as np
from PIL import Image

from gandyn.catalog import catalog
from gandyn.cli import main
from gandyn.gallery import WIDTH, readme_catalog, thumbnail

ROOT = Path(__file__).resolve().parent.parent


def test_every_entry_has_a_small_gallery_image_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in catalog():
        path = ROOT / "docs" / "gallery" / f"{name}.png"
        assert path.exists(), f"no gallery image for {name}: run `gandyn gallery --quick {name}`"
        assert path.stat().st_size < 200_000, f"{path.name} is {path.stat().st_size} bytes"
        with Image.open(path) as image:
            assert max(image.size) <= WIDTH
        assert f"docs/gallery/{name}.png" in readme


def test_readme_catalog_is_the_generated_one():
    """The README's catalog is what `python -m gandyn.gallery` writes from the entries (rerun it after adding one)."""
    assert readme_catalog() in (ROOT / "README.md").read_text()


def test_thumbnail_fits_the_square_and_never_enlarges(tmp_path):
    sizes = {"wide": (2 * WIDTH, 50), "tall": (100, 4 * WIDTH), "small": (100, 50)}
    expected = {"wide": (WIDTH, 25), "tall": (25, WIDTH), "small": (100, 50)}
    for name, (w, h) in sizes.items():
        Image.fromarray(np.full((h, w, 3), 200, dtype=np.uint8)).save(tmp_path / f"{name}.png")
        with Image.open(thumbnail(tmp_path / f"{name}.png", tmp_path / f"{name}_small.png")) as image:
            assert image.size == expected[name], name


def test_gallery_command_writes_an_entry_image(tmp_path, capsys):
    assert main(["gallery", "svag", "--quick", "--quiet", "--out", str(tmp_path), "--set", "run.paths=300"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "svag.png")
    with Image.open(tmp_path / "svag.png") as image:
        assert image.width <= WIDTH
