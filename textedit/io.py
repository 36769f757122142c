"""Atomic file writes and checked tensor reads.

A reader never sees a half-written cache or patch (write to a temporary name, rename), and
every tensor file textedit writes carries a SHA-256 of its tensor data in its metadata, which
:func:`read_tensors` verifies: a flipped byte is an error, never a wrong result.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import struct
import warnings
from pathlib import Path
from typing import Callable, Collection, Iterator, Mapping

import torch
from PIL import Image, UnidentifiedImageError
from safetensors import safe_open
from safetensors.torch import save

from .errors import TexteditError, WriteError, quote
from .jsonfile import check_fields, parse_json, read_json  # noqa: F401  # re-exported: JSON is read in one place

#: the safetensors metadata entry holding :func:`tensor_checksum` of the file's tensors
CHECKSUM_KEY = "textedit_sha256"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# -- writing whole or not at all ------------------------------------------------------------
#
# Every file and folder textedit writes is made under a temporary sibling name,
# ``.NAME.<pid>-<random>.tmp``, written, fsynced, and renamed into place; a folder that
# replaces an earlier one moves it aside first (``.NAME.<pid>-<random>.old``) and removes it only
# after the new one is in place. After a crash at any moment NAME is the old whole thing, the
# new whole thing, or (a folder, between its two renames) absent, with the old one aside. The
# next write of NAME removes what a dead process left and puts an aside folder back when
# nothing took its place (:func:`clean_leftovers`). A failed write is one
# :class:`~textedit.errors.WriteError` line naming the path, never an OSError traceback.

_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)-[0-9a-f]+\.(?P<kind>tmp|old)")


def _stem(name: str) -> str:
    """``name`` as its temporary siblings carry it: a name near the file system's limit of 255
    bytes is shortened (with a hash of the whole), so that they fit where the name itself fits."""
    if len(name.encode()) <= 200:
        return name
    return f"{name.encode()[:150].decode(errors='ignore')}~{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _temporary_name(name: str, kind: str) -> str:
    """``.NAME.<pid>-<random>.tmp`` (or ``.old``): the pid says whether its writer still runs."""
    return f".{_stem(name)}.{os.getpid()}-{secrets.token_hex(4)}.{kind}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process; a number no process has: not ours to judge
        return True
    return True


def clean_leftovers(path: str | Path) -> list[str]:
    """Remove what writes of ``path`` that died (their process is gone) left beside it, and put
    back an earlier folder moved aside by a replace that was cut between its two renames, when
    nothing took its place. Returns one line per thing done; a folder put back is also warned
    about. Leftovers of a live writer (this process, or another still running) are kept."""
    path = Path(path)
    done: list[str] = []
    try:
        entries = sorted(path.parent.iterdir()) if path.parent.is_dir() else []
    except OSError:
        return done
    for entry in entries:
        match = _LEFTOVER.fullmatch(entry.name)
        if match is None or match["name"] != _stem(path.name) or _alive(int(match["pid"])):
            continue
        try:
            if match["kind"] == "old" and not os.path.lexists(path):
                os.rename(entry, path)
                _fsync_dir(path.parent)
                done.append(f"put back '{path}', moved aside by an interrupted write")
                warnings.warn(done[-1])
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
                done.append(f"removed '{entry}', left by an interrupted write")
            else:
                entry.unlink()
                done.append(f"removed '{entry}', left by an interrupted write")
        except OSError:
            continue  # a leftover that cannot go now stays for a later run; it harms nothing
    return done


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first: what a write
    makes, and removes again if it fails."""
    return [f for f in (folder, *folder.parents) if not os.path.lexists(f)]


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def _fsync_dir(folder: Path) -> None:
    """Make ``folder``'s entries (a rename into it) durable; file systems that cannot sync a
    folder (EINVAL) are let be."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes, sync: bool = True) -> None:
    """Create ``path`` (it must not exist) holding ``data``, with the permissions a plain
    ``open`` gives (the umask), fsynced unless told not to."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _cannot_write(path: Path, exc: OSError) -> WriteError:
    return WriteError(f"cannot write '{path}': {exc.strerror or exc}"
                      + ("; it is kept as it was" if os.path.lexists(path) else ""))


def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes or str, not {type(data).__name__}")
    return bytes(data)


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary sibling, fsynced, renamed
    over ``path``, the folder fsynced. A failure is one :class:`WriteError` line; ``path``
    keeps what it held."""
    path = Path(path)
    data = _as_bytes(data)
    made = _missing_folders(path.parent)
    try:
        clean_leftovers(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(_temporary_name(path.name, "tmp"))
        try:
            _write_new(tmp, data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            _remove_empty(made)
            raise
        _fsync_dir(path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None


def atomic_write_text(text: str, path: str | Path) -> None:
    if not isinstance(text, str):
        raise TypeError(f"expected str, not {type(text).__name__}")
    atomic_write_bytes(text.encode("utf-8"), path)


def _sync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (what other libraries wrote there too),
    giving them the umask's permissions (``mkdtemp`` makes 0700, ``mkstemp`` 0600)."""
    mask = _umask()
    for root, folders, files in os.walk(folder, topdown=False):
        for name in files:
            file = os.path.join(root, name)
            os.chmod(file, 0o666 & ~mask)
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(root, 0o777 & ~mask)
        _fsync_dir(Path(root))


def atomic_replace_folder(staging: Path, out: Path) -> None:
    """Put the finished folder ``staging`` (made beside ``out``) at ``out``: everything in it
    fsynced, then a rename, with an earlier ``out`` moved aside first (``.NAME.….old``) and
    removed only after the new one is in place, so ``out`` is the old folder, the new one, or
    (for the moment between the two renames) absent with the old one aside, never a mix."""
    staging, out = Path(staging), Path(out)
    _sync_tree(staging)
    if not os.path.lexists(out):
        os.rename(staging, out)
        _fsync_dir(out.parent)
        return
    aside = out.with_name(_temporary_name(out.name, "old"))
    os.rename(out, aside)
    try:
        os.rename(staging, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(aside, out)  # the old one back; if even that fails, the next write puts it back
        raise
    try:
        _fsync_dir(out.parent)
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _holds_only(folder: Path, names: Collection[str]) -> bool:
    """Whether every entry of ``folder`` (recursively) is named in ``names`` or is a leftover."""
    for root, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if not _LEFTOVER.fullmatch(f)]
        if any(name not in names and not _LEFTOVER.fullmatch(name) for name in files):
            return False
    return True


def check_destination(out: str | Path, what: str, replaceable: Callable[[Path], bool] | Collection[str],
                      error: type[TexteditError] = WriteError) -> Path:
    """Check that ``out`` may become ``what`` (:func:`folder_written_whole`) before any work:
    it does not exist, is empty, or holds an earlier ``what`` (``replaceable``); returns it."""
    out = Path(out)
    if out.name in ("", ".", ".."):  # "." or "..": the folder by its own name, beside it
        out = out.resolve()
    if os.path.lexists(out):
        if not out.is_dir() or out.is_symlink():
            raise error(f"'{out}' exists and is not a folder: give a new folder for {what}")
        is_earlier = replaceable(out) if callable(replaceable) else _holds_only(out, replaceable)
        if not is_earlier and any(not _LEFTOVER.fullmatch(p.name) for p in out.iterdir()):
            raise error(f"'{out}' exists and holds other files than {what}: give a new or empty folder")
    return out


@contextlib.contextmanager
def folder_written_whole(out: str | Path, what: str, replaceable: Callable[[Path], bool] | Collection[str],
                         error: type[TexteditError] = WriteError) -> Iterator[Path]:
    """``with folder_written_whole(out, "a patch", names) as staging:`` write into ``staging``
    (an empty folder beside ``out``); on leaving, it is fsynced and renamed to ``out``
    (:func:`atomic_replace_folder`). An exception inside leaves ``out`` as it was and removes
    ``staging``; an OSError (a full disk) becomes one :class:`WriteError` line naming ``out``.

    An existing ``out`` is replaced only if it is empty or ``replaceable`` says it holds an
    earlier result (a callable of the folder, or the file names such a folder may hold): any
    other folder is refused with ``error``, untouched."""
    out = check_destination(out, what, replaceable, error)
    staging, made, done = None, _missing_folders(out.parent), False
    try:
        clean_leftovers(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.with_name(_temporary_name(out.name, "tmp"))
        os.mkdir(staging)
        yield staging
        atomic_replace_folder(staging, out)
        done = True
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    finally:
        if staging is not None and os.path.lexists(staging):
            shutil.rmtree(staging, ignore_errors=True)
        if not done:
            _remove_empty(made)


def write_folder(files: Mapping[str, bytes | str], out: str | Path, what: str,
                 replaceable: Callable[[Path], bool] | Collection[str] | None = None,
                 error: type[TexteditError] = WriteError) -> Path:
    """Write the folder ``out`` holding ``files`` (relative name → bytes or text) whole or not
    at all (:func:`folder_written_whole`; ``replaceable``: by default, a folder holding only
    those names). Returns ``out``."""
    contents = {name: _as_bytes(data) for name, data in files.items()}  # encoded before anything is written
    names = {part for name in contents for part in Path(name).parts}
    with folder_written_whole(out, what, names if replaceable is None else replaceable, error) as staging:
        for folder in sorted({(staging / name).parent for name in contents} - {staging}):
            folder.mkdir(parents=True, exist_ok=True)
        for name, data in contents.items():
            _write_new(staging / name, data, sync=False)  # the folder's sync fsyncs every file
    return Path(out)


def library_write(out: Path, save, *args, **kwargs) -> None:
    """``save(*args, **kwargs)``, another library's writer (transformers' ``save_pretrained``), into the
    staging folder of ``out``; its own error for a full disk (safetensors raises its
    ``SafetensorError``, not an OSError) becomes one :class:`WriteError` line naming ``out``."""
    try:
        save(*args, **kwargs)
    except OSError:
        raise  # folder_written_whole names it
    except Exception as exc:  # noqa: BLE001 - safetensors' Rust writer: "Error while serializing: I/O error ..."
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "error" not in reason.lower() or not any(word in reason for word in ("I/O", "IoError", "os error")):
            raise
        raise WriteError(f"cannot write '{out}': {quote(reason, 160)}") from None


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file's bytes; the metadata gets the tensors' checksum (``CHECKSUM_KEY``).
    The header is written with sorted keys (safetensors orders metadata by a hash map), so
    equal tensors and metadata give equal bytes."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {**(metadata or {}), CHECKSUM_KEY: tensor_checksum(tensors)}
    data = save(tensors, metadata=metadata)
    size = struct.unpack("<Q", data[:8])[0]
    header = json.dumps(json.loads(data[8:8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # safetensors aligns the data to 8 bytes
    return struct.pack("<Q", len(header)) + header + data[8 + size:]


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """:func:`tensors_bytes` written whole or not at all (:func:`atomic_write_bytes`)."""
    atomic_write_bytes(tensors_bytes(tensors, metadata), path)


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


#: image files read from folders (anchor images, CLIP-I reference images); PIL decodes all
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


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
