"""The package's public surface: every re-exported name resolves, lazily."""
from __future__ import annotations

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


def test_cli_help_lists_the_commands(capsys):
    from pe_utils.__main__ import main

    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("synth", "preprocess", "manifest", "batch"):
        assert command in text
    assert main(["nonsense"]) == 2
