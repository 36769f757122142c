"""Atomic file writes: a reader never sees a half-written cache or patch."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _tmp_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _publish(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` to ``path`` with the permissions a plain ``open`` would
    give it (``mkstemp`` makes 0600, awkward for a patch meant to be shared)."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """``safetensors`` save to a temporary name in the same folder, then rename."""
    path = Path(path)
    tmp = _tmp_beside(path)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(text: str, path: str | Path) -> None:
    path = Path(path)
    tmp = _tmp_beside(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    path = Path(path)
    tmp = _tmp_beside(path)
    try:
        tmp.write_bytes(data)
        _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: str | Path, error: type[Exception], what: str):
    """Parse the JSON file ``path``; a missing file or bad JSON raises ``error`` with one line
    naming the file (``what``: "spec file", "benchmark file")."""
    import json

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
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply") from None
