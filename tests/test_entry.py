"""The console script's entry point: `--version` without the CLI, and Ctrl-C wherever it lands."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

import textedit
from textedit._entry import _keep_interrupts


def test_version_from_the_console_entry_loads_neither_the_cli_nor_torch():
    code = ("import sys; sys.argv = ['textedit', '--version']; from textedit._entry import main; main(); "
            "print('torch' in sys.modules, 'textedit.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == f"textedit {textedit.__version__}" and out[1] == "False False"


def test_the_cli_runs_after_its_import_with_the_interrupt_handler_given_back():
    code = ("import signal, sys; sys.argv = ['textedit', 'show', '--help']; before = signal.getsignal(signal.SIGINT)\n"
            "from textedit._entry import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(signal.getsignal(signal.SIGINT) is before, sys.unraisablehook.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage" in out and out.strip().splitlines()[-1] == "True _keep_interrupts"


def test_an_interrupt_lost_in_a_finalizer_is_raised_again(monkeypatch):
    """Ctrl-C landing in a ``__del__`` is 'ignored' by Python and the command would run on (seen
    at 3.2 s into `apply`); the console script's hook raises it again in the main flow."""

    class InterruptedWhileCollected:
        def __del__(self):
            raise KeyboardInterrupt

    monkeypatch.setattr(sys, "unraisablehook", _keep_interrupts)
    import time

    # Python's own Ctrl-C handler, as in a terminal: a test run started as a background job of a
    # script (`bash .ci/run &`) inherits an ignored SIGINT, and interrupt_main then does nothing
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            InterruptedWhileCollected()  # collected at once: its finalizer's interrupt is unraisable
            started = time.monotonic()
            while time.monotonic() - started < 10:  # the main flow goes on, and the interrupt reaches it
                pass
    finally:
        signal.signal(signal.SIGINT, before)


def test_other_unraisable_errors_go_to_pythons_own_hook(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "__unraisablehook__", seen.append)

    class Unraisable:
        exc_value = ValueError("in a finalizer")

    _keep_interrupts(Unraisable)
    assert seen == [Unraisable]
