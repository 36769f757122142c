"""The console script's entry point: handles Ctrl-C before anything heavy is imported.

``textedit.cli`` imports typer and rich, and its commands import torch and transformers. A
Ctrl-C during imports would end in Python's traceback, or be lost in an importlib callback
("Exception ignored in ..."), and the command would run on. While the CLI is importing,
nothing has been written yet, so Ctrl-C there ends the process at once: one line, exit 130.
From the moment the CLI runs, Ctrl-C is the usual ``KeyboardInterrupt``, which the CLI turns
into the same line and code after its ``finally`` blocks have cleaned up."""

from __future__ import annotations

import os
import signal


def _interrupted_while_starting(signum, frame) -> None:
    os.write(2, b"interrupted\n")
    os._exit(130)


def main() -> None:
    default = signal.signal(signal.SIGINT, _interrupted_while_starting)
    from .cli import main as run
    signal.signal(signal.SIGINT, default)
    run()
