"""The documentation site: it builds in strict mode, every catalog entry has a page whose numbers come
from its results, and every code block of every page runs."""
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from gandyn.catalog import catalog
from pages import DOCS, ROOT, blocks, pages
from test_readme import DEDICATED

FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def front_matter(page) -> dict:
    """A page's YAML front matter."""
    match = FRONT.match(page.read_text())
    return yaml.safe_load(match.group(1)) if match else {}


def load_hooks():
    """docs/hooks.py as a module (it is MkDocs' hook file, not part of a package)."""
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_site_builds_in_strict_mode(tmp_path):
    """`mkdocs build --strict` (what `make docs` runs) passes and leaves no token unreplaced."""
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    for name in catalog():
        html = (site / "catalog" / name / "index.html").read_text()
        assert "{{" not in html, name
        assert re.search(r"<summary>Every key of summary.json</summary>\s*<table>", html), name


def test_every_entry_has_a_page_and_results():
    """Each entry's page names it and the command of its results, and no page or results outlive an entry."""
    names = set(catalog())
    assert {p.stem for p in (DOCS / "catalog").glob("*.md")} == names
    assert {p.stem for p in (DOCS / "results").glob("*.json")} == names
    for name in names:
        meta = front_matter(DOCS / "catalog" / f"{name}.md")
        assert meta.get("entry") == name, name
        assert meta.get("command") in (f"gandyn reproduce {name}", f"gandyn reproduce {name} --quick"), name
        summary = json.loads((DOCS / "results" / f"{name}.json").read_text())
        assert summary and all(isinstance(k, str) for k in summary), name


def test_hook_renders_values_intervals_and_refuses_unknown_keys(tmp_path, monkeypatch):
    pytest.importorskip("mkdocs")
    hooks = load_hooks()
    monkeypatch.setattr(hooks, "RESULTS", tmp_path)
    hooks.results.cache_clear()
    (tmp_path / "e.json").write_text(json.dumps({"a": -0.46688, "a_low": -0.5, "a_high": -0.44, "n": 3, "ok": True}))
    assert hooks.render("a", "", "e") == "-0.467"
    assert hooks.render("a", "ci .2f", "e") == "-0.47 [-0.50, -0.44]"
    assert hooks.render("n", "", "e") == "3" and hooks.render("ok", "", "e") == "True"
    assert hooks.render("e/a", ".1f", "other") == "-0.5"
    with pytest.raises(Exception, match="no key 'b'"):
        hooks.render("b", "", "e")
    with pytest.raises(Exception, match="no n_low/n_high"):
        hooks.render("n", "ci", "e")
    hooks.results.cache_clear()


def free_blocks(page) -> list:
    """The Python blocks of ``page`` that no dedicated test runs."""
    return [b for b in blocks(page) if not any(marker in b for marker in DEDICATED)]


@pytest.mark.parametrize("page", [p for p in pages() if free_blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_runs(page, tmp_path, monkeypatch):
    """A page's Python blocks run in order, in one namespace, in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    scope = {}
    for i, code in enumerate(free_blocks(page)):
        exec(compile(code, f"{page.name}, block {i + 1}", "exec"), scope)


def test_readme_is_a_front_door():
    """The README stays short: what gandyn is, set-up, getting started, the catalog; the rest is in docs/."""
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024


def test_every_token_of_every_page_is_in_its_results():
    """The fast tier's check of what the strict build checks: each page's {{ … }} tokens name stored keys."""
    pytest.importorskip("mkdocs")
    hooks = load_hooks()
    for page in sorted(DOCS.rglob("*.md")):
        entry = front_matter(page).get("entry")
        for name, spec in hooks.TOKEN.findall(page.read_text()):
            assert hooks.render(name, spec, entry), (page.name, name)


def test_every_figure_of_a_catalog_page_exists():
    """The fast tier's check of the pages' figures (`make results` copies them from each run by name)."""
    for page in sorted((DOCS / "catalog").glob("*.md")):
        for figure in re.findall(r"\.\./figures/([A-Za-z0-9_]+)\.png", page.read_text()):
            assert (DOCS / "figures" / f"{figure}.png").exists(), (page.name, figure)
