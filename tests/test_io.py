"""Files written whole or not at all, tensors with their checksum, JSON and images read with
one-line errors that name the file."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from PIL import Image

from textedit.errors import PatchError, SpecError
from textedit.io import (CHECKSUM_KEY, IMAGE_SUFFIXES, atomic_save_tensors, atomic_write_bytes, atomic_write_text,
                         check_fields, read_image_folder, read_json, read_tensors, tensor_checksum)


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
