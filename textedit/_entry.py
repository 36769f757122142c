"""The console script's entry point: handles Ctrl-C before anything heavy is imported.

``textedit.cli`` imports typer, rich, torch and transformers (its edit options come from the
method registry). A Ctrl-C during imports would end in Python's traceback, be lost in an
importlib callback ("Exception ignored in ..."), so that the command runs on, or, inside
torch's C++ import code, abort the process (pybind11 cannot pass ``KeyboardInterrupt``
through: SIGABRT). While these libraries are importing, nothing has been written yet, so
Ctrl-C there ends the process at once: one line, exit 130. From the moment the CLI runs,
Ctrl-C is the usual ``KeyboardInterrupt``, which the CLI turns into the same line and code
after its ``finally`` blocks have cleaned up."""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading

from .version import version_line


def _interrupted_while_starting(signum, frame) -> None:
    os.write(2, b"interrupted\n")
    os._exit(130)


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
    if sys.argv[1:] == ["--version"]:  # answered without loading the CLI, torch and transformers (seconds)
        print(version_line())
        return
    default = signal.signal(signal.SIGINT, _interrupted_while_starting)
    from .cli import main as run  # deferred: the heavy imports run under the handler above
    signal.signal(signal.SIGINT, default)
    sys.unraisablehook = _keep_interrupts
    run()
