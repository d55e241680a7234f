"""The package's public surface: every re-exported name resolves, lazily."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import pe_utils


@pytest.mark.parametrize("name", pe_utils.__all__)
def test_every_export_resolves(name):
    assert getattr(pe_utils, name) is not None


def test_unknown_name_raises():
    with pytest.raises(AttributeError):
        pe_utils.no_such_thing  # noqa: B018


def test_import_is_cheap():
    # the CLI and preprocessing workers import pe_utils; torch must not come with it
    code = "import sys, pe_utils, pe_utils.__main__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


#: wings whose EXPORTS are notebook API, re-exported by ``pe_utils`` (batch is a command)
NOTEBOOK_WINGS = tuple(w for w in pe_utils.WINGS if w != "batch")


@pytest.mark.parametrize("wing", NOTEBOOK_WINGS)
def test_every_wing_export_is_in_the_top_level_all(wing):
    exports = importlib.import_module(f"pe_utils.{wing}").EXPORTS
    names = [n for names in exports.values() for n in names]
    # a name spelled like a wing (learn's ``evaluate``) stays in its wing only
    assert sorted(set(names) - set(pe_utils.__all__) - set(pe_utils.WINGS)) == []
    wing_all = importlib.import_module(f"pe_utils.{wing}").__all__
    assert sorted(wing_all) == sorted(names)  # the wing re-exports the same names itself


def test_top_level_all_holds_nothing_else():
    wing_names = {n for w in NOTEBOOK_WINGS
                  for names in importlib.import_module(f"pe_utils.{w}").EXPORTS.values() for n in names}
    top = {n for names in pe_utils._TOP.values() for n in names}
    assert set(pe_utils.__all__) == (wing_names - set(pe_utils.WINGS)) | top


@pytest.mark.parametrize("module", ["pe_utils", *[f"pe_utils.{w}" for w in pe_utils.WINGS],
                                    "pe_utils.report.schema"])
def test_importing_a_wing_does_not_import_torch(module):
    # a wing package is a list of names; torch comes only with a module that needs it.
    # report.schema too: the batch index reads its INDEX_FIGURES without a model in sight
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_help_lists_the_commands(capsys):
    from pe_utils.__main__ import main

    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("synth", "preprocess", "manifest", "batch"):
        assert command in text
    assert main(["nonsense"]) == 2


def test_no_export_is_shadowed_by_a_wing():
    # ``from pe_utils import evaluate`` must not silently give the evaluate wing for a function
    import importlib

    for name in pe_utils.__all__:
        value = getattr(pe_utils, name)
        assert not (name in pe_utils.WINGS and isinstance(value, type(importlib))), name
