"""The README and the documentation pages as the tests read them: their code blocks and commands."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def pages() -> list:
    """README.md and every Markdown page of the site."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def blocks(page: Path, languages=("python",)) -> list:
    """The code of ``page``'s fenced blocks in ``languages``, in page order."""
    return [code for lang, code in FENCE.findall(page.read_text()) if lang in languages]


def python_block(marker: str) -> str:
    """The one Python block, on any page, that contains ``marker``."""
    found = [b for page in pages() for b in blocks(page) if marker in b]
    assert len(found) == 1, f"expected one Python block with {marker!r} across the pages, found {len(found)}"
    return found[0]


def commands() -> list:
    """Every concrete `gandyn …` command of the pages: the lines of their shell blocks, and the inline
    spans with arguments (not placeholders such as NAME or [options])."""
    found = []
    for page in pages():
        text = page.read_text()
        for code in blocks(page, ("", "sh", "bash", "console")):
            found += [line.split("#")[0].strip() for line in code.splitlines() if line.strip().startswith("gandyn ")]
        found += [c for c in re.findall(r"`(gandyn [^`]+)`", text) if len(c.split()) > 2]
    return sorted({c for c in found if "[" not in c and "NAME" not in c and "…" not in c and "..." not in c})
