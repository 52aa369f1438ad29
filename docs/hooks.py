"""MkDocs hooks: a catalog page's numbers come from its entry's summary.json, and the Catalog and API
sections of the navigation are built from the code, so that neither is a registry kept by hand.

A catalog page names its entry in its front matter (``entry: one-layer``); its results are
``docs/results/<entry>.json``, a copy of that entry's ``summary.json`` (``make results`` rewrites them).
On the page, ``{{ key }}`` is the key's value, ``{{ key | .2f }}`` formats it, ``{{ key | ci }}``
writes it with its interval ``[key_low, key_high]``, ``{{ other-entry/key }}`` reads another entry's
results, and ``{{ summary_table }}`` is the table of every key. An unknown key fails the build.
"""
from __future__ import annotations

import json
import pkgutil
import re
from functools import lru_cache
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

DOCS = Path(__file__).parent
RESULTS = DOCS / "results"
PACKAGES = ("games", "sde", "flows", "analysis", "gandyn")
TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.\-/]+)\s*(?:\|\s*([^}]*?))?\s*\}\}")


@lru_cache(maxsize=None)
def results(entry: str) -> dict:
    """The stored summary.json of catalog entry ``entry``."""
    path = RESULTS / f"{entry}.json"
    if not path.exists():
        raise PluginError(f"no results for entry {entry!r}: {path.relative_to(DOCS.parent)} is missing (make results)")
    return json.loads(path.read_text())


def number(value, spec: str = "") -> str:
    """A summary value as text: ``spec`` is a format spec; floats default to 3 significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if spec:
        return format(value, spec)
    return str(value) if isinstance(value, int) else format(value, ".3g")


def render(name: str, spec: str, entry: str) -> str:
    """The text of one ``{{ name | spec }}`` token on the page of ``entry``."""
    if "/" in name:
        entry, name = name.split("/", 1)
    summary = results(entry)
    if name == "summary_table":
        return table(summary)
    if name not in summary:
        raise PluginError(f"{entry}: summary.json has no key {name!r}")
    words = spec.split()
    if words and words[0] == "ci":
        fmt = words[1] if len(words) > 1 else ""
        low, high = summary.get(f"{name}_low"), summary.get(f"{name}_high")
        if low is None or high is None:
            raise PluginError(f"{entry}: {name!r} has no {name}_low/{name}_high interval")
        return f"{number(summary[name], fmt)} [{number(low, fmt)}, {number(high, fmt)}]"
    return number(summary[name], spec)


def table(summary: dict) -> str:
    """Every key of a summary with its value, as a Markdown table."""
    rows = [f"| `{key}` | {number(value)} |" for key, value in summary.items()]
    return "\n".join(["| key | value |", "|---|---|", *rows])


def modules() -> list:
    """The public modules of the library, in import order."""
    names = []
    for package in PACKAGES:
        names.append(package)
        root = DOCS.parent / package
        for info in pkgutil.walk_packages([str(root)], prefix=f"{package}."):
            if not any(part.startswith("_") for part in info.name.split(".")) and ".experiments." not in info.name:
                names.append(info.name)
    return names


def catalog_pages() -> list:
    """The catalog pages, in the order of ``gandyn list``."""
    from gandyn.catalog import catalog

    pages = []
    for name in catalog():
        path = DOCS / "catalog" / f"{name}.md"
        if not path.exists():
            raise PluginError(f"catalog entry {name!r} has no page docs/catalog/{name}.md")
        pages.append({name: f"catalog/{name}.md"})
    return pages


def on_config(config):
    """Fill the navigation's Catalog and API reference sections."""
    api = [{name: f"api/{name}.md"} for name in modules()]
    for item in config.nav or []:
        if isinstance(item, dict) and "Catalog" in item:
            item["Catalog"] = catalog_pages()
        if isinstance(item, dict) and "API reference" in item:
            item["API reference"] = api
    return config


def on_files(files, config):
    """One API page per module, written from its docstrings by mkdocstrings (a package's page shows only its
    docstring: its members are documented where they are defined)."""
    for name in modules():
        package = (DOCS.parent / name.replace(".", "/") / "__init__.py").exists()
        options = "\n    options:\n      members: false\n" if package else "\n"  # a package page: its docstring only
        files.append(File.generated(config, f"api/{name}.md", content=f"# `{name}`\n\n::: {name}{options}"))
    return files


def on_page_markdown(markdown, page, config, files):
    """Replace the ``{{ … }}`` tokens of a page by its entry's results."""
    entry = page.meta.get("entry")
    if entry is None and "{{" not in markdown:
        return markdown
    if entry is not None:
        lead = (f'!!! note "Where the numbers come from"\n    Every number on this page is read from '
                f"`docs/results/{entry}.json`, the `summary.json` of `{page.meta.get('command', f'gandyn reproduce {entry}')}`.\n\n")
        markdown, found = re.subn(r"^(# .*\n)", lambda m: m.group(1) + "\n" + lead, markdown, count=1, flags=re.M)
        if not found:
            raise PluginError(f"{page.file.src_uri}: a catalog page needs a '# title' line")
    return "\n".join(substitute(line, entry) for line in markdown.split("\n"))


def substitute(line: str, entry: str) -> str:
    """A line with its tokens replaced; a token of several lines keeps the line's indentation (in an admonition)."""
    indent = line[:len(line) - len(line.lstrip())]
    return TOKEN.sub(lambda m: render(m.group(1), m.group(2) or "", entry).replace("\n", "\n" + indent), line)
