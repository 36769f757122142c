"""Files written whole or not at all, tensors with their checksum, JSON and images read with
one-line errors that name the file."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from PIL import Image

from faults import tree

from textedit.errors import PatchError, SpecError, WriteError
from textedit.io import (CHECKSUM_KEY, IMAGE_SUFFIXES, atomic_save_tensors, atomic_write_bytes, atomic_write_text,
                         check_fields, clean_leftovers, folder_written_whole, read_image_folder, read_json,
                         read_tensors, tensor_checksum, write_folder)


def test_an_atomic_write_leaves_no_temporary_file_and_plain_permissions(tmp_path):
    path = tmp_path / "made" / "here" / "a.json"
    atomic_write_text("é\n", path)
    atomic_write_bytes(b"\x00\x01", tmp_path / "b.bin")
    assert path.read_text(encoding="utf-8") == "é\n" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.json", "b.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_text(None, path)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_tensors_round_trip_with_their_checksum_and_equal_tensors_give_equal_bytes(tmp_path):
    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(2, dtype=torch.float16)}
    atomic_save_tensors(tensors, tmp_path / "one.safetensors", {"kind": "test", "z": "1"})
    atomic_save_tensors(dict(reversed(tensors.items())), tmp_path / "two.safetensors", {"z": "1", "kind": "test"})
    assert (tmp_path / "one.safetensors").read_bytes() == (tmp_path / "two.safetensors").read_bytes()
    read, metadata = read_tensors(tmp_path / "one.safetensors", PatchError, "patch weights")
    assert metadata == {"kind": "test", "z": "1"} and CHECKSUM_KEY not in metadata
    assert all(torch.equal(read[k], tensors[k]) and read[k].dtype == tensors[k].dtype for k in tensors)


def test_the_checksum_sees_name_dtype_shape_and_every_byte():
    base = {"w": torch.zeros(2, 3)}
    others = [{"v": torch.zeros(2, 3)}, {"w": torch.zeros(2, 3, dtype=torch.float64)}, {"w": torch.zeros(3, 2)},
              {"w": torch.zeros(2, 3).index_fill(1, torch.tensor([2]), 1e-30)}]
    assert len({tensor_checksum(t) for t in [base, *others]}) == 5
    assert tensor_checksum(base) == tensor_checksum({"w": torch.zeros(3, 2).T})  # contiguous bytes, not strides


def test_corrupted_or_unreadable_tensors_raise_the_callers_error_naming_the_file(tmp_path):
    path = tmp_path / "w.safetensors"
    atomic_save_tensors({"w": torch.arange(64.0)}, path)
    data = bytearray(path.read_bytes())
    data[-4] ^= 0xFF  # one flipped byte of tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(PatchError, match=f"patch weights '{path}' is corrupted"):
        read_tensors(path, PatchError, "patch weights")
    path.write_bytes(b"not safetensors")
    with pytest.raises(SpecError, match=f"cache '{path}' is not a readable safetensors file"):
        read_tensors(path, SpecError, "cache")


@pytest.mark.parametrize("content, fragment", [
    (None, "spec file '{path}' does not exist"),
    ("dir", "is a directory, not a JSON file"),
    (b"\xff\xfe{", "not UTF-8 text"),
    ('{"a": [1,', "invalid JSON at line 1 column"),
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
])
def test_read_json_errors_are_one_line_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "spec.json"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SpecError) as raised:
        read_json(path, SpecError, "spec file")
    assert fragment.format(path=path) in str(raised.value) and str(path) in str(raised.value)


def test_read_json_reads_json(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"é": [1, 2.5, None]}), encoding="utf-8")
    assert read_json(tmp_path / "a.json", SpecError, "spec file") == {"é": [1, 2.5, None]}


def test_check_fields_names_the_first_unknown_field():
    failed = []
    check_fields({"prompt": 1, "targte": 2, "other": 3}, {"prompt", "target"}, "edits[0]",
                 lambda where, message: failed.append((where, message)))
    assert failed == [("edits[0].targte", "unknown field (known: prompt, target)"),
                      ("edits[0].other", "unknown field (known: prompt, target)")]


def test_an_image_folder_is_read_sorted_as_rgb_and_its_problems_named(tmp_path):
    Image.new("L", (4, 4), 9).save(tmp_path / "b.png")
    Image.new("RGB", (2, 3), (1, 2, 3)).save(tmp_path / "a.JPG")
    (tmp_path / "notes.txt").write_text("not an image")
    files, images = read_image_folder(tmp_path, SpecError, "image folder")
    assert [f.name for f in files] == ["a.JPG", "b.png"] and {i.mode for i in images} == {"RGB"}
    assert images[1].getpixel((0, 0)) == (9, 9, 9)
    (tmp_path / "c.webp").write_bytes(b"broken")
    with pytest.raises(SpecError, match="image '.*c.webp' cannot be read"):
        read_image_folder(tmp_path, SpecError, "image folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="holds no images"):
        read_image_folder(tmp_path / "empty", SpecError, "x")
    with pytest.raises(SpecError, match="'.*missing' does not exist"):
        read_image_folder(tmp_path / "missing", SpecError, "x")
    with pytest.raises(SpecError, match="is not a folder"):
        read_image_folder(tmp_path / "notes.txt", SpecError, "x")
    assert ".png" in IMAGE_SUFFIXES and ".jpg" in IMAGE_SUFFIXES


def _dead_pid() -> int:
    """The id of a process that has ended (a leftover's writer that was killed)."""
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_folder_is_written_whole_and_replaces_only_an_earlier_one(tmp_path):
    out = tmp_path / "out"
    assert write_folder({"a.txt": "one", "sub/b.bin": b"\x00"}, out, "a result") == out
    assert tree(out) == {"a.txt": b"one", "sub/b.bin": b"\x00"}
    write_folder({"a.txt": "two"}, out, "a result", replaceable={"a.txt", "sub", "b.bin"})
    assert tree(out) == {"a.txt": b"two"} and [p.name for p in tmp_path.iterdir()] == ["out"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's 0700

    (out / "mine.txt").write_text("keep")
    with pytest.raises(WriteError, match="holds other files than a result"):
        write_folder({"a.txt": "three"}, out, "a result")
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="exists and is not a folder"):
        write_folder({"a.txt": "three"}, tmp_path / "file", "a result")
    with pytest.raises(ZeroDivisionError), folder_written_whole(out, "a result", lambda f: True) as staging:
        (staging / "a.txt").write_text("half")
        1 / 0  # noqa: B018 - the work fails half way: nothing changes, nothing is left
    assert tree(out) == {"a.txt": b"two", "mine.txt": b"keep"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out"]


def test_a_failed_write_is_one_write_error_naming_the_path_and_keeps_what_was_there(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "a.json"
    atomic_write_text("old", path)
    write_folder({"a": "old"}, tmp_path / "folder", "a result")

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(WriteError, match=f"^cannot write '{path}': No space left on device; it is kept as it was$"):
        atomic_write_text("new", path)
    with pytest.raises(WriteError, match="cannot write '.*folder': No space left on device"):
        write_folder({"a": "new"}, tmp_path / "folder", "a result")
    with pytest.raises(WriteError, match="No space left on device$"):  # the folders made for it go again
        atomic_write_text("new", tmp_path / "made" / "for" / "it.json")
    with pytest.raises(WriteError, match="No space left on device$"):
        write_folder({"a": "new"}, tmp_path / "made" / "for" / "it", "a result")
    monkeypatch.undo()
    assert path.read_text() == "old" and tree(tmp_path / "folder") == {"a": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "folder"]


def test_what_a_killed_writer_left_is_cleaned_and_a_folder_moved_aside_put_back(tmp_path):
    """A writer killed between its two renames left NAME absent and the old folder aside: the
    next write of NAME puts it back (with a warning) before anything else; its temporary
    siblings go; a live writer's (this process's) are kept."""
    out, dead = tmp_path / "patch", _dead_pid()
    aside = tmp_path / f".patch.{dead}-0a1b2c3d.old"
    aside.mkdir()
    (aside / "patch.json").write_text("old")
    (tmp_path / f".patch.{dead}-00ff00ff.tmp").mkdir()
    (tmp_path / f".patch.json.{dead}-12345678.tmp").write_text("another name's: not ours to touch")
    live = tmp_path / f".patch.{os.getpid()}-deadbeef.tmp"
    live.mkdir()
    with pytest.warns(UserWarning, match="put back .*patch', moved aside by an interrupted write"):
        done = clean_leftovers(out)
    assert len(done) == 2 and tree(out) == {"patch.json": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".patch.json.{dead}-12345678.tmp", live.name, "patch"])
    # with the folder in place, an aside copy is only removed
    aside.mkdir()
    clean_leftovers(out)
    assert not aside.exists() and tree(out) == {"patch.json": b"old"}


def test_a_json_file_holding_a_5000_digit_integer_is_one_line(tmp_path):
    path = tmp_path / "big.json"
    path.write_text('{"n": ' + "1" * 5000 + "}")
    with pytest.raises(SpecError, match="big.json: a JSON value Python cannot read .*4300 digits") as caught:
        read_json(path, SpecError, "spec file")
    assert len(str(caught.value)) < 300


def test_a_name_near_the_limit_is_written_and_one_past_it_is_one_line(tmp_path):
    """The temporary sibling of a 250-byte name is shortened so it fits where the name fits; a
    300-byte name is one WriteError line, nothing left."""
    long = tmp_path / ("p" * 250)
    write_folder({"a": "x"}, long, "a result")
    atomic_write_text("y", tmp_path / ("f" * 250))
    assert tree(long) == {"a": b"x"} and (tmp_path / ("f" * 250)).read_text() == "y"
    with pytest.raises(WriteError, match="File name too long"):
        write_folder({"a": "x"}, tmp_path / ("q" * 300), "a result")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f" * 250, "p" * 250]
