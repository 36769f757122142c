"""The committed distinct-facts benchmark is TIMED format, conflict-free and reproducible.

``benchmarks/data/distinct_facts.csv`` is made by ``benchmarks/make_distinct_facts.py`` from
``benchmarks/data/nouns.txt``; these tests read the committed file and rerun the generator's
deterministic parts in-process (a fake embedding for the row builder, the real tokenizer and
encoder only where noted).
"""

from __future__ import annotations

import importlib.util
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from textedit.eval.benchmark import load_benchmark

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "make_distinct_facts.py"
CSV = REPO / "benchmarks" / "data" / "distinct_facts.csv"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_distinct_facts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def noun_of(prompt: str) -> str:
    match = re.fullmatch(r"An? ([a-z]+)", prompt)
    assert match, f"not 'A <noun>': {prompt!r}"
    return match.group(1)


def attribute_of(target: str, noun: str) -> str:
    match = re.fullmatch(rf"An? (\S+) {noun}", target)
    assert match, f"not 'A <attribute> {noun}': {target!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def cases():
    fmt, cases = load_benchmark(CSV)
    assert fmt == "timed"
    return cases


def fake_embed(prompts):
    """Deterministic 16-d vectors from each prompt's CRC (no model)."""
    return np.stack([np.random.default_rng(zlib.crc32(p.encode())).standard_normal(16) for p in prompts])


def test_committed_csv_is_timed_and_conflict_free(cases):
    assert len(cases) >= 1000
    sources = [c.source for c in cases]
    assert len(set(sources)) == len(sources), "a subject is edited twice"
    subjects = {noun_of(c.source) for c in cases}
    for case in cases:
        noun = noun_of(case.source)
        attr = attribute_of(case.target, noun)
        assert attr in gen.ATTRIBUTES
        assert len(case.positives) == 5 and len(case.negatives) == 5
        for probe in case.positives:
            assert re.search(rf"\b{noun}\b", probe.prompt), (case.row, probe.prompt)
            assert f"{attr} {noun}" in probe.new, (case.row, probe.new)
        negative_nouns = [noun_of(p.prompt) for p in case.negatives]
        assert len(set(negative_nouns)) == 5 and noun not in negative_nouns
        assert not set(negative_nouns) & subjects, f"row {case.row}: a negative is an edited subject"
        for probe, neg in zip(case.negatives, negative_nouns):
            assert probe.new == gen.sentence("{}", gen.phrase(neg, attr))


def test_committed_csv_follows_the_seeded_plan(cases):
    """Subjects, attributes and the held-out pool are those of seed 0 on the committed noun list."""
    nouns = gen.load_nouns()
    subjects, attributes, pool = gen.plan(nouns, len(cases), seed=0)
    assert [c.source for c in cases] == [gen.sentence("{}", gen.phrase(n)) for n in subjects]
    assert [c.target for c in cases] == [gen.sentence("{}", gen.phrase(n, a)) for n, a in zip(subjects, attributes)]
    pool = set(pool)
    assert all(noun_of(p.prompt) in pool for c in cases for p in c.negatives)


def test_nouns_file():
    nouns = gen.load_nouns()
    assert len(nouns) >= 1300
    gen.check_nouns(nouns)  # distinct, lowercase words, none a template or attribute word
    assert not set(nouns) & set(gen.ATTRIBUTES)


def test_nouns_are_single_wordpieces():
    from transformers import AutoTokenizer

    from textedit.encoders import DEFAULT_MODEL, packaged_model_path

    path = packaged_model_path(DEFAULT_MODEL)
    if path is None:
        pytest.skip("the packaged all-MiniLM-L6-v2 is not installed")
    gen.check_nouns(gen.load_nouns(), AutoTokenizer.from_pretrained(str(path)))


def test_positive_templates_are_not_edit_templates():
    from textedit.sites import EDIT_TEMPLATES

    assert not {t.lower() for t in gen.POSITIVE_TEMPLATES} & {t.lower() for t in EDIT_TEMPLATES}


def test_articles():
    assert gen.phrase("apple") == "an apple" and gen.phrase("banana") == "a banana"
    assert gen.phrase("apple", "blue") == "a blue apple"
    assert gen.phrase("banana", "inflatable") == "an inflatable banana"
    assert [gen.phrase(w) for w in ("hour", "unicorn", "uniform", "ukulele", "eucalyptus", "umbrella")] == [
        "an hour", "a unicorn", "a uniform", "a ukulele", "a eucalyptus", "an umbrella"]
    assert gen.sentence("{} in a forest", gen.phrase("owl", "golden")) == "A golden owl in a forest"


def test_build_rows_is_deterministic_for_a_seed():
    nouns = gen.load_nouns()[:80]
    first = gen.build_rows(nouns, 30, 7, fake_embed)
    assert first == gen.build_rows(nouns, 30, 7, fake_embed)
    assert first != gen.build_rows(nouns, 30, 8, fake_embed)
    assert len(first) == 30 and list(first[0]) == gen.TIMED_COLUMNS
    subjects, _, pool = gen.plan(nouns, 30, 7)
    for row, noun in zip(first, subjects):
        assert noun_of(row["old"]) == noun
        assert all(noun_of(row[f"negative{i}"]) in pool for i in range(1, 6))


def test_write_csv_round_trips(tmp_path):
    rows = gen.build_rows(gen.load_nouns()[:40], 10, 0, fake_embed)
    out = tmp_path / "small.csv"
    gen.write_csv(rows, out)
    fmt, cases = load_benchmark(out)
    assert fmt == "timed" and len(cases) == 10 and [c.source for c in cases] == [r["old"] for r in rows]
    assert [p.name for p in tmp_path.iterdir()] == ["small.csv"]  # no temporary file left


def test_negatives_are_the_nearest_held_out_nouns(cases):
    """With the real default encoder: the first rows' negatives are the 5 nearest pool nouns."""
    from textedit.encoders import load_encoder

    adapter = load_encoder()
    _, _, pool = gen.plan(gen.load_nouns(), len(cases), seed=0)
    sample = cases[:5]
    vectors = adapter.embed([c.source for c in sample] + [gen.sentence("{}", gen.phrase(n)) for n in pool]).numpy()
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = vectors[:len(sample)] @ vectors[len(sample):].T
    index = {n: j for j, n in enumerate(pool)}
    for i, case in enumerate(sample):
        fifth = np.sort(sims[i])[::-1][4]
        for probe in case.negatives:  # tolerance for float differences between machines
            assert sims[i, index[noun_of(probe.prompt)]] >= fifth - 1e-4, (case.source, probe.prompt)
