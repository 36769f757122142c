"""Prompt corpora: the shipped one, .txt and .jsonl files, and the hash that keys statistics."""

from __future__ import annotations

import json

import pytest

from textedit.corpus import DEFAULT_CORPUS, Corpus, load_corpus
from textedit.errors import SpecError


def test_the_shipped_corpus_is_the_default_and_limit_keeps_the_first_prompts():
    shipped = load_corpus()
    assert shipped.name == str(DEFAULT_CORPUS) and len(shipped) > 100
    assert load_corpus(limit=5).prompts == shipped.prompts[:5]


def test_txt_skips_blank_lines_and_strips_each_prompt(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("  a dog on a beach \n\n\t\na cat\n", encoding="utf-8")
    assert load_corpus(path).prompts == ("a dog on a beach", "a cat")


def test_jsonl_reads_strings_and_the_prompt_text_or_caption_field(tmp_path):
    path = tmp_path / "c.jsonl"
    rows = ["a string", {"prompt": "a prompt", "text": "not this"}, {"text": "a text"}, {"caption": " a caption "}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert load_corpus(path).prompts == ("a string", "a prompt", "a text", "a caption")


@pytest.mark.parametrize("name, content, fragment", [
    ("c.jsonl", '"ok"\n{"prompt": ', "line 2: invalid JSON"),
    ("c.jsonl", '{"url": "x"}', "line 1: expected a string or an object with one of prompt, text, caption"),
    ("c.jsonl", '{"prompt": "  "}', "line 1"),
    ("c.txt", "\n \n", "holds no prompts"),
    ("c.txt", b"caf\xe9", "is not UTF-8 text"),
])
def test_a_bad_file_is_one_line_naming_it(tmp_path, name, content, fragment):
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(SpecError, match=f"corpus file '{path}'") as raised:
        load_corpus(path)
    assert fragment in str(raised.value)
    with pytest.raises(SpecError, match="does not exist"):
        load_corpus(tmp_path / "missing.txt")


def test_the_hash_keys_the_prompts_in_order_not_the_name():
    assert Corpus(("a", "b"), "x").hash == Corpus(("a", "b"), "y").hash
    assert len({Corpus(p, "x").hash for p in [("a", "b"), ("b", "a"), ("a\nb",), ("ab",), ("a", "b", "")]}) == 5
