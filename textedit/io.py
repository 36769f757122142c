"""Atomic file writes and checked tensor reads.

A reader never sees a half-written cache or patch (write to a temporary name, rename), and
every tensor file textedit writes carries a SHA-256 of its tensor data in its metadata, which
:func:`read_tensors` verifies: a flipped byte is an error, never a wrong result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Callable, Collection

import torch
from PIL import Image, UnidentifiedImageError
from safetensors import safe_open
from safetensors.torch import save

#: the safetensors metadata entry holding :func:`tensor_checksum` of the file's tensors
CHECKSUM_KEY = "textedit_sha256"


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


def atomic_replace_folder(staging: Path, out: Path) -> None:
    """Put the finished folder ``staging`` (made beside ``out``) at ``out``: a rename, with an
    earlier ``out`` moved aside first and removed after, so a reader finds the old folder or
    the new one, never a mix of the two."""
    mask = _umask()  # mkdtemp makes 0700 and some writers 0600: awkward for a folder meant to be shared
    for folder, _, files in os.walk(staging):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~mask)
    if not out.exists():
        os.replace(staging, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, aside / out.name)
    os.replace(staging, out)
    shutil.rmtree(aside, ignore_errors=True)


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """``safetensors`` save to a temporary name in the same folder, then rename; the
    metadata gets the tensors' checksum (``CHECKSUM_KEY``). The header is written with
    sorted keys (safetensors orders metadata by a hash map), so equal tensors and metadata
    give equal bytes."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {**(metadata or {}), CHECKSUM_KEY: tensor_checksum(tensors)}
    data = save(tensors, metadata=metadata)
    size = struct.unpack("<Q", data[:8])[0]
    header = json.dumps(json.loads(data[8:8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # safetensors aligns the data to 8 bytes
    atomic_write_bytes(struct.pack("<Q", len(header)) + header + data[8 + size:], path)


def read_tensors(path: str | Path, error: type[Exception], what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of the safetensors file ``path``, its checksum verified.

    An unreadable file or tensor data that does not match the checksum written with it
    raises ``error`` naming the file (``what``: "patch weights", "statistics cache"). Files
    without a checksum (written by other tools, or by textedit before 0.1.0 had one) are
    read as they are."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as exc:  # safetensors' own error types for corrupt headers and data
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise error(f"{what} '{path}' is not a readable safetensors file ({reason})") from None
    expected = metadata.pop(CHECKSUM_KEY, None)
    if expected is not None and tensor_checksum(tensors) != expected:
        raise error(f"{what} '{path}' is corrupted: its tensor data does not match the checksum written with it")
    return tensors, metadata


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


#: image files read from folders (anchor images, CLIP-I reference images); PIL decodes all
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def check_fields(item: dict, known: Collection[str], where: str, fail: Callable[[str, str], None]) -> None:
    """Call ``fail(where.key, message)`` for the first key of the JSON object ``item`` (at
    ``where``) that is not ``known``: a typo is an error, never a field that does nothing."""
    for key in item:
        if key not in known:
            fail(f"{where}.{key}", f"unknown field (known: {', '.join(sorted(known))})")


def read_image_folder(folder: str | Path, error: type[Exception], what: str) -> tuple[list[Path], list]:
    """``(files, RGB PIL images)`` of the image files directly in ``folder``, sorted by name; a
    missing or empty folder or an unreadable image raises ``error`` naming it (``what``:
    "image folder", "--reference-images")."""
    folder = Path(folder)
    if not folder.is_dir():
        raise error(f"{what} '{folder}' {'is not a folder' if folder.exists() else 'does not exist'}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise error(f"{what} '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
    images = []
    for path in files:
        try:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise error(f"image '{path}' cannot be read ({type(exc).__name__})") from None
    return files, images
