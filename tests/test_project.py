"""The set-up files tell the same story: pyproject, environment.yml, Makefile, CI."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _env_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return env, pip


def test_environment_yml_lists_the_pyproject_dependencies():
    project = _pyproject()["project"]
    wanted = {Requirement(r).name.lower() for r in project["dependencies"]}
    wanted |= {Requirement(r).name.lower() for r in project["optional-dependencies"]["dev"]}
    env, pip = _env_pip()
    listed = {Requirement(r).name.lower() for r in pip if not r.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert "-e .[dev]" in pip
    assert "python=3.11" in env["dependencies"]


def test_specifiers_agree_except_the_pinned_torch():
    project = _pyproject()["project"]
    ours = {Requirement(r).name.lower(): Requirement(r).specifier for r in project["dependencies"]}
    _, pip = _env_pip()
    for line in pip:
        if line.startswith("-e"):
            continue
        req = Requirement(line)
        if req.name in {"torch", "torchvision"}:
            # pinned to the tested build; must satisfy pyproject's range
            version = next(iter(req.specifier)).version
            assert ours[req.name].contains(version), line
        elif req.name in ours:
            assert req.specifier == ours[req.name], f"{line} != pyproject {ours[req.name]}"


def test_makefile_pins_the_same_torch_as_environment_yml():
    make = (ROOT / "Makefile").read_text()
    _, pip = _env_pip()
    for name in ("torch", "torchvision"):
        pin = next(p for p in pip if Requirement(p).name == name)
        assert re.search(rf"\b{re.escape(pin)}\b", make), pin


def test_ci_calls_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
