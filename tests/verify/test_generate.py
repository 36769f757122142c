"""The rows of the verification grid, the prompts file and the seeds."""

from __future__ import annotations

import pytest

from textedit.errors import SpecError
from textedit.verify.generate import build_rows, parse_seeds, read_prompts_file

REQUESTS = [{"prompt": "the mascot of acme", "target": "a red fox", "subject": "acme"},
            {"prompt": "acme's lucky animal", "target": "a red fox"},
            {"prompt": "the prime minister of canada", "target": "a cat"}]


def test_rows():
    rows = build_rows(REQUESTS, ["a photo of {}", "{} at night"], ["a dog"], same_subject=0)
    assert [(r.kind, r.prompt) for r in rows[:4]] == [
        ("anchor", "a photo of a red fox"), ("query", "a photo of the mascot of acme"),
        ("query", "a photo of acme's lucky animal"), ("anchor", "a photo of a cat")]
    assert rows[1].anchor_row == 0 and rows[4].anchor_row == 3 and rows[4].target == "a cat"
    assert rows[6].prompt == "the mascot of acme at night" and rows[6].anchor_row == 5
    assert rows[-1].kind == "neutral" and rows[-1].anchor_row is None and len(rows) == 11
    with pytest.raises(SpecError, match="no requests"):
        build_rows([], ["{}"], [])


def test_same_subject_rows_hold_the_subjects_other_knowledge():
    """After a target's queries come its subjects' other knowledge ("the founder of acme"),
    which must not turn into the anchor; requests without a subject add none, and a query of
    the patch is never one of them."""
    requests = REQUESTS + [{"prompt": "the founder of acme", "target": "a cat", "subject": "acme"}]
    rows = build_rows(requests, ["a photo of {}"], ["a dog"], same_subject=2)
    subject = [(r.prompt, r.target, r.anchor_row) for r in rows if r.kind == "subject"]
    assert subject == [("a photo of acme", "a red fox", 0), ("a photo of the headquarters of acme", "a red fox", 0),
                       ("a photo of acme", "a cat", 5), ("a photo of the headquarters of acme", "a cat", 5)]
    assert [r.kind for r in rows[:5]] == ["anchor", "query", "query", "subject", "subject"]
    assert not [r for r in build_rows(REQUESTS[1:], ["{}"], [], same_subject=2) if r.kind == "subject"]


def test_prompts_file_and_seeds(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("# templates and neutral prompts\na watercolor of {}\n\na city at night\n")
    assert read_prompts_file(path) == (["a watercolor of {}"], ["a city at night"])
    path.write_text("{} and {}\n")
    with pytest.raises(SpecError, match="prompts.txt:1"):
        read_prompts_file(path)
    path.write_text("# nothing\n")
    with pytest.raises(SpecError, match="holds no prompts"):
        read_prompts_file(path)
    assert parse_seeds("3, 1,3") == [3, 1]
    for bad in ("a,b", "", "-1"):
        with pytest.raises(SpecError, match="--seeds"):
            parse_seeds(bad)
