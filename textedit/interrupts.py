"""Ctrl-C while libraries import: one line, exit 130, at once.

A ``KeyboardInterrupt`` raised inside torch's C++ import code cannot pass through it (pybind11:
the process aborts, SIGABRT), and one raised in an importlib callback is lost ("Exception
ignored in ..."), so that the command runs on. While the console script imports the CLI
(``_entry.py``) and while a command imports the libraries it computes with (``cli/``),
nothing has been written yet, so Ctrl-C there ends the process at once. From the moment a
command works, Ctrl-C is the usual ``KeyboardInterrupt``, which the CLI turns into the same
line and code after its ``finally`` blocks have cleaned up.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator


def exit_interrupted(signum, frame) -> None:
    """A SIGINT handler: the one word 'interrupted' on stderr, exit code 130, nothing cleaned up."""
    os.write(2, b"interrupted\n")
    os._exit(130)


@contextmanager
def ending_at_once() -> Iterator[None]:
    """Inside, Ctrl-C ends the process at once (:func:`exit_interrupted`); the handler in place
    before is restored after. Outside the main thread, where no handler can be set, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, exit_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
