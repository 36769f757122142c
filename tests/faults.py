"""Fault injection for the tests, the way SQLite tests its I/O: the N-th write, rename, fsync,
mkdir or file creation a command makes under a folder fails (ENOSPC, EIO), or the process is
killed right there, for every N.

Nothing in textedit knows about it: :class:`Faults` replaces ``os.open``, ``os.write``,
``os.fsync``, ``os.replace``, ``os.rename``, ``os.mkdir`` and ``open`` (``builtins`` and ``io``:
what pathlib and other libraries write with) by wrappers that count the calls on paths under ``root`` and pass every
other call through. A kill is ``os._exit`` in a forked child (:func:`run_killed`): no
``finally`` block runs, no buffer is flushed, exactly what SIGKILL leaves on the disk.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import re
import shutil
from pathlib import Path
from typing import Callable

#: the exit status of a child killed by :class:`Faults` (any other status: it was not reached)
KILLED = 86
#: what a fault is injected into
OPERATIONS = ("create", "write", "fsync", "rename", "mkdir")

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class Faults:
    """Count (and at ``fail_at``, fail or kill) the file system operations under ``root``.

    ``fail_at``: the 1-based operation to fault, ``None`` to only count; ``error``: the errno
    raised there (``ENOSPC``, ``EIO``), or ``None`` to kill the process (``os._exit(KILLED)``)
    before the operation happens. ``log`` lists ``(operation, path)`` of every counted call."""

    def __init__(self, root: Path, fail_at: int | None = None, error: int | None = errno.ENOSPC):
        self.root = os.path.realpath(root)
        self.fail_at, self.error = fail_at, error
        self.log: list[tuple[str, str]] = []
        self._fds: dict[int, str] = {}  # descriptors opened under root
        self._real: dict[str, Callable] = {}

    # -- counting --------------------------------------------------------------------------

    def _under(self, path, dir_fd=None) -> str | None:
        if dir_fd is not None or isinstance(path, int):
            return None
        try:
            full = os.path.realpath(os.fspath(path))
        except (TypeError, ValueError):
            return None
        return full if full == self.root or full.startswith(self.root + os.sep) else None

    def _step(self, operation: str, path: str) -> None:
        self.log.append((operation, path))
        if self.fail_at is not None and len(self.log) == self.fail_at:
            if self.error is None:
                os._exit(KILLED)
            raise OSError(self.error, os.strerror(self.error), path)

    # -- the wrappers ----------------------------------------------------------------------

    def _open(self, path, flags, mode=0o777, *, dir_fd=None):
        full = self._under(path, dir_fd)
        if full is not None and flags & _WRITE_FLAGS:
            self._step("create", full)
        fd = self._real["open"](path, flags, mode, dir_fd=dir_fd)
        if full is not None:
            self._fds[fd] = full
        return fd

    def _close(self, fd):
        self._fds.pop(fd, None)
        return self._real["close"](fd)

    def _write(self, fd, data):
        if fd in self._fds:
            self._step("write", self._fds[fd])
        return self._real["write"](fd, data)

    def _fsync(self, fd):
        key = fd if isinstance(fd, int) else fd.fileno()
        if key in self._fds:
            self._step("fsync", self._fds[key])
        return self._real["fsync"](fd)

    def _renamer(self, name: str):
        def rename(src, dst, *, src_dir_fd=None, dst_dir_fd=None):
            full = self._under(src, src_dir_fd) or self._under(dst, dst_dir_fd)
            if full is not None:
                self._step("rename", full)
            return self._real[name](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        return rename

    def _mkdir(self, path, mode=0o777, *, dir_fd=None):
        full = self._under(path, dir_fd)
        if full is not None:
            self._step("mkdir", full)
        return self._real["mkdir"](path, mode, dir_fd=dir_fd)

    def _builtin_open(self, file, mode="r", *args, **kwargs):
        full = self._under(file) if isinstance(file, (str, bytes, os.PathLike)) else None
        if full is not None and any(c in mode for c in "wax+"):
            self._step("create", full)
        return self._real["builtin_open"](file, mode, *args, **kwargs)

    def install(self, monkeypatch=None) -> "Faults":
        """Replace the functions (through ``monkeypatch`` where given, undone with it; for good
        in a forked child)."""
        wrappers = {"open": self._open, "close": self._close, "write": self._write, "fsync": self._fsync,
                    "replace": self._renamer("replace"), "rename": self._renamer("rename"), "mkdir": self._mkdir}
        for name, wrapper in wrappers.items():
            self._real[name] = getattr(os, name)
            monkeypatch.setattr(os, name, wrapper) if monkeypatch else setattr(os, name, wrapper)
        self._real["builtin_open"] = builtins.open
        for module in (builtins, io):  # pathlib writes through io.open
            monkeypatch.setattr(module, "open", self._builtin_open) if monkeypatch else \
                setattr(module, "open", self._builtin_open)
        return self


def run_killed(run: Callable[[], int], root: Path, at: int) -> int:
    """Run ``run()`` (a command; returns its exit code) in a forked child that is killed at
    its ``at``-th operation under ``root``; the child's exit status (:data:`KILLED` if the
    operation was reached)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test runner
        code = 99
        try:
            Faults(root, at, error=None).install()
            code = run()
        except BaseException:  # noqa: BLE001 - the status says it; the parent checks the disk
            code = 98
        finally:
            os._exit(code if isinstance(code, int) else 97)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def tree(path: Path) -> dict[str, bytes] | None:
    """Every file under ``path`` by its relative name, with its bytes; ``None`` if ``path`` is
    absent (a single file: ``{"": bytes}``)."""
    if not os.path.lexists(path):
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


#: a temporary sibling textedit's writers make (``io._temporary_name``)
LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)-[0-9a-f]+\.(?P<kind>tmp|old)")


def killed_state(path: Path) -> str:
    """A hash of what the next run after a kill finds at ``path``, all its behaviour depends
    on: the destination's files, and its leftovers by kind (a ``.tmp`` is removed unread; an
    ``.old`` is read only when the destination is missing, to be put back)."""
    digest = hashlib.sha256()
    state = tree(path)
    digest.update(b"absent" if state is None else b"present")
    for name, data in sorted((state or {}).items()):
        match = LEFTOVER.fullmatch(Path(name).name)
        digest.update(f"{Path(name).parent}/{match['kind']}".encode() if match else
                      name.encode() + b"\0" + hashlib.sha256(data).digest())
    for name in leftovers(path):
        kind = name.rsplit(".", 1)[1]
        digest.update(kind.encode())
        if kind == "old" and state is None:
            digest.update(repr(sorted(tree(path.parent / name).items())).encode())
    return digest.hexdigest()[:32]


def leftovers(path: Path) -> list[str]:
    """The temporary siblings of ``path`` a write left (``.NAME.<pid>-<random>.tmp`` / ``.old``)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def put(state: dict[str, bytes] | None, path: Path) -> None:
    """Make ``path`` hold ``state`` (a :func:`tree`) and nothing beside it of its own."""
    for name in leftovers(path):
        shutil.rmtree(path.parent / name) if (path.parent / name).is_dir() else (path.parent / name).unlink()
    if path.is_dir():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if state is None:
        return
    if set(state) == {""}:
        path.write_bytes(state[""])
        return
    for name, data in state.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
