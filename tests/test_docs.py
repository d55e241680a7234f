"""The documentation: a short front door, links that resolve, every module named, and text
that describes the software rather than how it was made."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pe_utils"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINKED_PAGES = [ROOT / "README.md", *DOCS]

#: pages the README and docs link to that are written beside these; they must exist
REQUIRED = ("docs/rsna-gpu.md", "docs/settings-history.md")

#: words about the making of the software, not the software
PROCESS_WORDS = [re.compile(p, re.IGNORECASE) for p in (
    r"\bissue \d+", r"\bissue\s*#?\d+", r"\bsession\b", r"this commit", r"\blent\b", r"\.\./shared")]

def _process_word_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", ROOT / "Makefile",
             ROOT / "data_manifest" / "README.md", *DOCS]
    files += sorted((ROOT / "notebooks").glob("*.ipynb"))
    files += sorted(PACKAGE.rglob("*.py"))
    return [p for p in files if p.is_file()]


def process_words(text: str) -> list[str]:
    """Every development-process phrase in ``text``, as found."""
    found = {m.span(): m.group(0) for pattern in PROCESS_WORDS for m in pattern.finditer(text)}
    return [found[span] for span in sorted(found)]


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; move detail into docs/"


@pytest.mark.parametrize("text, found", [
    ("as issue 8 asked", ["issue 8"]),
    ("see issue #12", ["issue #12"]),
    ("in the previous session", ["session"]),
    ("Before this commit the demo", ["this commit"]),
    ("no GPU was lent", ["lent"]),
    ("see ../shared/gpu/README.md", ["../shared"]),
    ("the session_id key, the lentil, an issue with 8 runs", []),
])
def test_the_process_word_check_catches_them(text, found):
    assert sorted(process_words(text)) == sorted(found)


@pytest.mark.parametrize("path", _process_word_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_development_process_words(path):
    hits = [(n, w) for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            for w in process_words(line)]
    assert hits == [], f"{path.relative_to(ROOT)}: {hits} (say what the software does, not how it was made)"


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in page.read_text().splitlines() if re.match(r"#{1,6} ", line)}


def _relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in _relative_links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)}: links to nothing: {broken}"


@pytest.mark.parametrize("name", REQUIRED)
def test_pages_written_beside_these_exist(name):
    assert (ROOT / name).is_file(), f"{name} is linked from the README and docs/ but missing"


def test_the_slug_is_githubs():
    assert _slug(" What the clot masks cost (`bench/masks.py`)") == "what-the-clot-masks-cost-benchmaskspy"
    assert _slug(" What every run writes: `metrics.json`") == "what-every-run-writes-metricsjson"


def test_architecture_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text()
    modules = [p.relative_to(PACKAGE).as_posix() for p in sorted(PACKAGE.rglob("*.py"))
               if p.name != "__init__.py"]
    missing = [m for m in modules if f"`{m}`" not in text]
    assert modules and missing == [], f"docs/architecture.md does not name {missing}"


def test_command_line_docstring_names_every_command():
    source = (PACKAGE / "__main__.py").read_text()
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or ""
    commands = next(ast.literal_eval(node.value) for node in tree.body
                    if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "COMMANDS" for t in node.targets))
    missing = [c for c in commands if c not in doc]
    assert missing == [], f"pe_utils/__main__.py's docstring leaves out {missing}"


def test_make_bench_runs_every_benchmark():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    scripts = [p.name for p in sorted((ROOT / "bench").glob("*.py")) if p.name != "clock.py"]
    missing = [s for s in scripts if f"bench/{s}" not in recipe]
    assert missing == [], f"make bench leaves out {missing}"
