"""The version in one place: the package, patch.json, `textedit --version` and pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from textedit.version import __version__, version_line

REPO = Path(__file__).resolve().parents[1]


def test_the_version_is_a_release_number_and_the_line_names_the_tool():
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]\d+|rc\d+|\.dev\d+)?", __version__)
    assert version_line() == f"textedit {__version__}"


def test_the_version_lives_in_one_module_that_pyproject_reads():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "textedit.version.__version__"}
    import textedit
    from textedit.patch import Patch

    assert textedit.__version__ == __version__ == Patch([], {}, "bert", "memit").version
