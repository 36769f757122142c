"""JSON files read with one-line errors, without torch: the spec parser reads a spec with
these before any library is loaded, so a missing or malformed spec is answered at once.

A missing file, a directory, an unreadable file, a symlink loop, text that is not UTF-8, bad
JSON, JSON nested too deeply and an integer past Python's digit limit each raise the caller's
``error`` with one line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Collection


def read_json(path: str | Path, error: type[Exception], what: str):
    """Parse the JSON file ``path``; a missing file or bad JSON raises ``error`` with one line
    naming the file (``what``: "spec file", "benchmark file")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} '{path}' does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} '{path}' is a directory, not a JSON file") from None
    except PermissionError:
        raise error(f"{what} '{path}' cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    except OSError as exc:  # a symlink loop, a name too long, an I/O error
        raise error(f"{what} '{path}' cannot be read: {exc.strerror or exc}") from None
    return parse_json(text, error, str(path))


def parse_json(text: str, error: type[Exception], where: str):
    """``json.loads(text)``; anything the reader refuses (bad syntax, nesting too deep for the
    interpreter's stack, an integer longer than Python converts) raises ``error`` in one line
    beginning with ``where``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion"
        reason = str(exc).split(";")[0].strip()[:200] or type(exc).__name__
        raise error(f"{where}: a JSON value Python cannot read ({reason})") from None

def check_fields(item: dict, known: Collection[str], where: str, fail: Callable[[str, str], None]) -> None:
    """Call ``fail(where.key, message)`` for the first key of the JSON object ``item`` (at
    ``where``) that is not ``known``: a typo is an error, never a field that does nothing."""
    for key in item:
        if key not in known:
            fail(f"{where}.{key}", f"unknown field (known: {', '.join(sorted(known))})")
