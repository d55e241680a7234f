"""The package's shape: wings along the data flow, imports only backwards, no cycles, small modules.

Read from the sources (ast), so a lazy import inside a function counts as much as one at the
top: a wing that needs a later wing even once is a wing in the wrong place.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pe_utils

PACKAGE = Path(pe_utils.__file__).parent
WINGS = pe_utils.WINGS
#: top-level modules: the base every wing may use; they import no wing
BASE = {"profiles", "paths", "io", "_lazy"}
MAX_LINES = 300  # STYLE 1: one concept per module, 50-300 lines (a longer one says why)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = ("pe_utils",) + rel.parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = PACKAGE.parent / dotted.replace(".", "/")
    return base.is_dir() or base.with_suffix(".py").is_file()


def _imports(path: Path, name: str | None = None) -> set[str]:
    """Every pe_utils module ``path`` (module ``name``) imports, absolute or relative, at any depth."""
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "pe_utils"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "pe_utils":
                continue
            for alias in node.names:  # ``from .. import phantom`` imports a module, not a name
                sub = f"{target}.{alias.name}"
                found.add(sub if _is_module(sub) else target)
    found.discard(name)
    return found


def _part(module: str) -> str:
    """The wing (or base module) a dotted pe_utils name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "pe_utils"


SOURCES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {_module_name(p): _imports(p) for p in SOURCES}


def test_every_module_lives_in_a_wing_or_the_base():
    loose = [m for m in GRAPH if _part(m) not in set(WINGS) | BASE | {"pe_utils", "__main__", "__init__"}]
    assert loose == [], f"modules outside the wings: {loose}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _part(m) in WINGS))
def test_a_wing_imports_only_wings_before_it(module):
    wing = WINGS.index(_part(module))
    for target in GRAPH[module]:
        part = _part(target)
        if part in BASE:
            continue
        assert part in WINGS, f"{module} imports {target}, which is neither a wing nor the base"
        assert WINGS.index(part) <= wing, f"{module} ({WINGS[wing]}) imports {target} ({part}), a later wing"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _part(m) in BASE))
def test_the_base_imports_no_wing(module):
    wings = [t for t in GRAPH[module] if _part(t) in WINGS]
    assert wings == [], f"{module} imports {wings}"


def test_the_data_wing_never_reaches_learning_evaluation_reports_or_the_batch():
    # the rule DESIGN.md states in words, checked by name so a reordering of WINGS cannot hide it
    for module, targets in GRAPH.items():
        part = _part(module)
        banned = {"data": {"learn", "evaluate", "report", "batch", "experiments"},
                  "learn": {"evaluate", "report", "batch", "experiments"}}.get(part, set())
        assert not {_part(t) for t in targets} & banned, f"{module} imports {sorted(targets)}"


def test_no_import_cycles():
    # package __init__ files only re-export lazily (by name, at attribute access), so they are
    # not edges of the import graph that can deadlock a partial import
    graph = {m: {t for t in ts if t in GRAPH and not (PACKAGE.parent / (t.replace(".", "/") + "/__init__.py")).exists()}
             for m, ts in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_small_or_say_why(path):
    lines = len(path.read_text().splitlines())
    if lines <= MAX_LINES:
        return
    doc = (ast.get_docstring(ast.parse(path.read_text())) or "").lower()
    says_why = "longer than" in doc or "lines because" in doc
    assert says_why, (
        f"{path.relative_to(PACKAGE)} has {lines} lines (> {MAX_LINES}) and its docstring does not say why")


@pytest.mark.parametrize("source, caught", [
    ("from ..learn import losses\n", "pe_utils.learn.losses"),
    ("def f():\n    from pe_utils.report.schema import write_metrics\n", "pe_utils.report.schema"),
    ("from .. import fit\n", "pe_utils"),  # a top-level name may live in any wing
])
def test_the_checker_sees_a_forward_import(tmp_path, source, caught):
    # the rule can fail: a module of the data wing reaching a later wing (or the whole package) is caught
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    targets = _imports(probe, name="pe_utils.data.probe")
    assert caught in targets
    assert any(_part(t) not in BASE and (_part(t) not in WINGS or WINGS.index(_part(t)) > WINGS.index("data"))
               for t in targets)
