"""Ctrl-C while libraries import: one line, exit 130, at once; the handler before comes back after."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from textedit.interrupts import ending_at_once, exit_interrupted


def test_the_handler_is_in_place_inside_and_restored_after_also_on_error():
    before = signal.getsignal(signal.SIGINT)
    with ending_at_once():
        assert signal.getsignal(signal.SIGINT) is exit_interrupted
    assert signal.getsignal(signal.SIGINT) is before
    try:
        with ending_at_once():
            raise ValueError
    except ValueError:
        pass
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_nothing_changes():
    seen = []

    def run():
        with ending_at_once():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGINT)]


def test_ctrl_c_inside_ends_the_process_at_once_with_one_line():
    code = ("import os, signal, time\nfrom textedit.interrupts import ending_at_once\n"
            "try:\n    with ending_at_once():\n        os.kill(os.getpid(), signal.SIGINT)\n        time.sleep(5)\n"
            "finally:\n    print('cleaned up')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "interrupted\n")
