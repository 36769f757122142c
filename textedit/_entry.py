"""The console script's entry point: handles Ctrl-C before anything heavy is imported.

``--version`` is answered without importing the CLI. While the CLI imports (typer, rich),
Ctrl-C ends the process at once, one line and exit 130 (``interrupts.py``); so it does while
a command imports torch and transformers (``_start_libraries`` in ``cli/options.py``). From
the moment a command works, Ctrl-C is the usual ``KeyboardInterrupt``, which the CLI turns
into the same line and code after its ``finally`` blocks have cleaned up; one that lands in a
finalizer is raised again (:func:`_keep_interrupts`)."""

from __future__ import annotations

import _thread
import sys
import threading

from .interrupts import ending_at_once
from .version import version_line


def _keep_interrupts(unraisable) -> None:
    """``sys.unraisablehook``: a Ctrl-C that lands in a finalizer (``__del__``, a weakref
    callback) cannot propagate and would be lost, and the command would run to the end. Raise
    it again in the main flow, where the CLI handles it; other unraisable errors go on to
    Python's own hook. The interrupt is sent a moment later from a timer thread, so that it
    lands after this hook has returned (sent at once, it would be raised inside the hook and
    ignored again)."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        timer = threading.Timer(0.01, _thread.interrupt_main)
        timer.daemon = True
        timer.start()
    else:
        sys.__unraisablehook__(unraisable)


def main() -> None:
    if sys.argv[1:] == ["--version"]:  # answered without loading the CLI
        print(version_line())
        return
    with ending_at_once():
        from .cli import main as run  # deferred: --version needs no CLI, and Ctrl-C while it imports ends at once
    sys.unraisablehook = _keep_interrupts
    run()
