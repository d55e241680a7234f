"""pe_utils installed from its wheel (not editable), used from a folder outside the repository.

The wheel is built from a copy of the package's sources (building in the checkout would leave
``build/`` and ``*.egg-info`` there) with the venv's setuptools, offline (``--no-deps
--no-index --no-build-isolation``), and installed with ``--target`` into a temporary folder.
The command line then runs with only that folder on ``PYTHONPATH``: the thesis's specs must
ship as package data, and the batch must find the course's plan only where it is told to.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_manifest import fake_train_csv  # the RSNA-like train.csv the manifest tests use

pytestmark = pytest.mark.slow  # a wheel build and five interpreters: about 15 s on 2 cores

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p.name for p in (ROOT / "pe_utils" / "data" / "specs").glob("*.json"))


def _pip(*args: str | Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *map(str, args)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """``{"wheel", "site", "elsewhere"}``: the built wheel, the folder it is installed into, and
    an empty working folder outside the repository."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pe_utils", src / "pe_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _pip("wheel", "--no-deps", "--no-index", "--no-build-isolation", "-q", "-w", tmp / "wheels", src)
    (wheel,) = (tmp / "wheels").glob("*.whl")
    _pip("install", "--no-deps", "--no-index", "-q", "--target", tmp / "site", wheel)
    (tmp / "elsewhere").mkdir()
    return {"wheel": wheel, "site": tmp / "site", "elsewhere": tmp / "elsewhere"}


def _python(installed: dict[str, Path], *args: str | Path) -> subprocess.CompletedProcess:
    """``python *args`` in the folder outside the repository, importing only the install."""
    env = {**os.environ, "PYTHONPATH": str(installed["site"])}   # not the caller's (the checkout)
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=installed["elsewhere"], env=env, timeout=300)


def test_wheel_ships_the_package_its_specs_and_the_command(installed):
    with zipfile.ZipFile(installed["wheel"]) as whl:
        names = set(whl.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "pe-utils = pe_utils.__main__:main" in whl.read(entry_points).decode()
    assert SPECS == ["case2_test.json", "dataset1.json", "dataset2.json"]
    assert {f"pe_utils/data/specs/{name}" for name in SPECS} <= names
    assert {"pe_utils/__main__.py", "pe_utils/batch/cli.py", "pe_utils/data/manifest.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "notebooks/")) or "__pycache__" in n]


def test_the_install_is_imported_not_the_checkout(installed):
    proc = _python(installed, "-c", "import pe_utils; print(pe_utils.__file__)")
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == installed["site"] / "pe_utils" / "__init__.py"


def test_manifest_build_finds_its_spec_in_the_package(installed):
    csv = installed["elsewhere"] / "train.csv"
    fake_train_csv(n_series=200).to_csv(csv, index=False)
    proc = _python(installed, "-m", "pe_utils", "manifest", "build", "--train-csv", csv,
                   "--spec", "dataset1", "--out", "dataset1.csv", "--workers", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((installed["elsewhere"] / "dataset1.json").read_text())
    assert summary["spec"] == "dataset1" and summary["within_tolerance"]
    assert summary["target"]["n_images"] == 15556                # read from the shipped spec


def test_batch_runs_a_plan_given_from_another_folder(installed):
    proc = _python(installed, "-m", "pe_utils", "batch", "--list", "--profile", "smoke",
                   "--plan", ROOT / "notebooks" / "plan.json")
    assert proc.returncode == 0, proc.stderr
    runs = [line.split()[4] for line in proc.stdout.splitlines()]
    assert runs[0] == "00_preprocessing/00_preprocessing" and runs[-1] == "07_summary/07_summary"
    assert "01_case1_supervised/rate-1_4" in runs


def test_batch_without_a_plan_says_to_pass_one(installed):
    proc = _python(installed, "-m", "pe_utils", "batch", "--list")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "no plan found" in proc.stderr and "pass --plan FILE" in proc.stderr
    assert str(installed["elsewhere"] / "notebooks" / "plan.json") in proc.stderr
