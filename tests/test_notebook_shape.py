"""The course notebooks' shape (STYLE.md 11-16): thin, prose first, one parameters cell, no outputs.

Read from the files, no kernel: a notebook is narrative plus calls into ``pe_utils``; logic that
two notebooks need lives in the package, so each notebook stays short.
"""
from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import nbformat
import pytest

import pe_utils

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_CODE_LINES = 80
MAX_LINE = 120
#: the one sub-module import a notebook may use: the figures facade (its names are top-level too)
FACADES = {("pe_utils.report", "plots")}


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _parameters(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]


def _assigned(source: str) -> set[str]:
    return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def code_lines(nb) -> int:
    """Non-blank, non-comment lines of the code cells after the imports (a wrapped call counts
    every line): the notebook's logic, which belongs in pe_utils once it grows."""
    return sum(1 for c in _code(nb)[1:] for line in c.source.splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


def test_there_are_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    assert {"00_preprocessing", "01_case1_supervised", "07_summary"} <= set(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_with_profile(path):
    nb = _read(path)
    tagged = _parameters(nb)
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters' (has {len(tagged)})"
    assert tagged[0].cell_type == "code"
    assert "profile" in _assigned(tagged[0].source), f"{path.name}: the parameters cell must set `profile`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_goal_then_imports_then_parameters(path):
    cells = _read(path).cells
    assert cells[0].cell_type == "markdown" and "Goal" in cells[0].source
    assert cells[1].cell_type == "code" and "import" in cells[1].source
    assert "parameters" in cells[2].metadata.get("tags", []), f"{path.name}: the parameters cell comes third"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_flat_and_commented(path):
    source = _parameters(_read(path))[0].source
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "=" in line and "#" in line, f"{path.name}: parameter without its reason: {line!r}"
    tree = ast.parse(source)
    assert all(isinstance(node, ast.Assign) for node in tree.body), f"{path.name}: parameters are plain assignments"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ends_with_summary_and_questions(path):
    last = _read(path).cells[-1]
    assert last.cell_type == "markdown" and "Summary" in last.source and "Questions" in last.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for cell in _code(_read(path)):
        assert not cell.outputs and cell.execution_count is None, f"{path.name} carries outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_is_thin(path):
    n = code_lines(_read(path))
    assert n <= MAX_CODE_LINES, f"{path.name}: {n} code lines (> {MAX_CODE_LINES}): move shared logic into pe_utils"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_code_cell_has_its_introduction(path):
    cells = _read(path).cells
    for i, cell in enumerate(cells[3:], start=3):
        if cell.cell_type == "code":
            assert cells[i - 1].cell_type == "markdown", \
                f"{path.name}: code cell {i} has no markdown sentence before it:\n{cell.source[:200]}"


def _imports(source: str) -> list[tuple[str | None, tuple[str, ...]]]:
    """``(module, names)`` of every import statement: ``import x`` gives ``(None, ("x",))``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.append((None, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module, tuple(a.name for a in node.names)))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_imports_only_in_the_imports_cell_a_few_names_per_wing(path):
    """``from pe_utils.<wing> import ...`` (or a top-level module: paths, profiles), each name
    exported by that wing, lines a reader can read (no 400-character import)."""
    cells = _code(_read(path))
    for cell in cells[1:]:
        assert not _imports(cell.source), f"{path.name}: an import outside the imports cell:\n{cell.source[:200]}"
    modules = {f"pe_utils.{wing}" for wing in pe_utils.WINGS if wing != "batch"} | {"pe_utils.paths",
                                                                                  "pe_utils.profiles"}
    for module, names in _imports(cells[0].source):
        if module is None:
            assert not [n for n in names if n.split(".")[0] == "pe_utils"], \
                f"{path.name}: use `from pe_utils.<wing> import name`, not `import {names}`"
            continue
        if module.split(".")[0] != "pe_utils":
            continue
        assert module in modules or all((module, n) in FACADES for n in names), \
            f"{path.name}: `from {module} import ...`: import from a wing ({', '.join(sorted(modules))})"
        exported = importlib.import_module(module)
        missing = [n for n in names if not hasattr(exported, n)]
        assert not missing, f"{path.name}: {module} does not export {missing} (add them to its EXPORTS)"
    for line in cells[0].source.splitlines():
        assert len(line) <= MAX_LINE, f"{path.name}: an import line of {len(line)} characters"


def test_plan_parameters_exist_in_their_notebooks():
    """The batch passes its grid values by name: renaming a parameter would break the plan."""
    plan = json.loads((ROOT / "notebooks" / "plan.json").read_text())
    for entry in plan["notebooks"]:
        path = ROOT / "notebooks" / entry.get("path", f"{entry['name']}.ipynb")
        declared = _assigned(_parameters(_read(path))[0].source)
        wanted = set(entry.get("grid", {})) | set(entry.get("parameters", {})) | set(entry.get("inputs", {}))
        assert wanted <= declared, f"{path.name}: plan.json passes {sorted(wanted - declared)}"
        assert "output_dir" in declared, f"{path.name}: the batch gives every run its output_dir"
