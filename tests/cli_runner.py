"""Running the ``textedit`` command line in-process, as its users do, for the tests."""

from __future__ import annotations

import sys

from textedit import cli


def run(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """``textedit ARGS…`` through ``cli.main`` → (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["textedit", *map(str, args)])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err
