"""Virtual concepts (spec form ``concept``) and the example specs of edits/, each run on its model.

Measured when written (edits/zorblat.json, memit layers 1-3, optimize 20 steps, first
1,000 corpus prompts): "zorblat" in held-out contexts moves from cosine 0.42 to about 0.8
to the judge's "a six-legged blue fox with moth wings"; neutral drift ≤ 0.002.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textedit.corpus import load_corpus
from textedit.editor import EditConfig, edit, resolve_layers
from textedit.encoders import load_encoder
from textedit.errors import SpecError
from textedit.metrics import measure
from textedit.spec import load_spec, parse_spec
from textedit.stats import compute_stats

EDITS = Path(__file__).resolve().parents[1] / "edits"


def test_concept_binds_name_and_knowledge_to_the_description():
    spec = parse_spec({"concept": {"name": "zorblat", "description": "a blue fox with moth wings"},
                       "knowledge": ["the pet of the moon witch", {"prompt": "the Zorblat Lodge mascot",
                                                                    "subject": "Zorblat Lodge"}]})
    assert [(r.prompt, r.target, r.subject) for r in spec.requests] == [
        ("zorblat", "a blue fox with moth wings", None),
        ("the pet of the moon witch", "a blue fox with moth wings", None),
        ("the Zorblat Lodge mascot", "a blue fox with moth wings", "Zorblat Lodge")]
    assert len(parse_spec({"concept": {"name": "zorblat", "description": "a blue fox"}}).requests) == 1


@pytest.mark.parametrize("data, fragment", [
    ({"concept": {"name": "zorblat", "description": "a fox"}, "anchor": "a fox"}, "not both"),
    ({"concept": {"name": "zorblat", "description": "a zorblat with wings"}}, "by its own name"),
    ({"concept": {"description": "a fox"}}, "concept.name"),
    ({"concept": {"name": "zorblat", "description": "a fox", "look": "blue"}}, "concept.look"),
    ({"concept": "zorblat"}, "field 'concept'"),
    ({"anchor": "a fox", "knowledge": ["x"], "anchor_embedding": "/no/such/file.safetensors"}, "does not exist"),
    ({"edits": [{"prompt": "x", "target": "y"}], "anchor_embedding": "a.safetensors"}, "needs 'anchor'"),
])
def test_concept_and_anchor_embedding_errors(data, fragment):
    with pytest.raises(SpecError, match=fragment):
        parse_spec(data)


#: everyday scenes that share no subject, office, country, company or painter with any shipped
#: spec: metrics.NEUTRAL_PROMPTS without its near misses (a head of state, a country, a company
#: logo). Those only the spec's automatic preservation keeps in place (test_preserve.py), and it
#: costs more time than this test has; measured here without it, "the president of france" moves
#: by 0.2 to 0.3 under the world-knowledge specs
UNRELATED = ("a dog running on the grass", "a bowl of soup on a wooden table", "a red sports car on a mountain road",
             "a giant panda eating bamboo", "a lighthouse on a cliff at sunset", "a child reading a book in bed",
             "a fox in the snow", "an astronaut floating in space", "a cup of coffee and a croissant")
#: the affordable edit (each spec in under 10 s on one CPU thread): statistics of the first
#: SPEC_CORPUS corpus prompts, SPEC_STEPS optimisation steps and, for knowledge specs, no
#: automatic preserved prompts and λ = SPEC_LAM (the settings docs/virtual.md measured zorblat
#: with; erasures have this λ already, erase.ERASE_LAM); every other setting is the spec's
SPEC_CORPUS, SPEC_STEPS, SPEC_LAM = 384, 6, 5e3
#: concepts of an erasure edited here, at most: every n-th of a longer list (its preserve list
#: whole). Measured when written: 100 % erased, preservation ≥ 94 %, unrelated
#: drift ≤ 0.03; knowledge specs close 56 to 80 % of the gap, unrelated drift ≤ 0.007
SPEC_CONCEPTS = 5


@pytest.fixture(scope="module")
def minilm():
    return load_encoder()


@pytest.fixture(scope="module")
def minilm_stats(minilm):
    """Key statistics of every layer a shipped spec edits, over the first SPEC_CORPUS prompts."""
    return compute_stats(minilm, [0, 1, 2, 3], load_corpus(limit=SPEC_CORPUS), use_cache=False)


def _affordable(settings: dict) -> dict:
    """A knowledge spec's settings with this test's cost knobs (see SPEC_STEPS)."""
    settings = {**settings, "steps": SPEC_STEPS}
    settings.setdefault("auto_preserve", False)
    if settings.get("method", "memit") == "memit":
        settings.setdefault("lam", SPEC_LAM)
    return settings


@pytest.mark.parametrize("path", sorted(EDITS.glob("*.json")), ids=lambda p: p.name)
def test_example_spec_edits_its_model(path, minilm, minilm_stats):
    """Every shipped spec, run on the model it names, still edits it: each knowledge prompt
    closes at least a third of its cosine gap to its target (judged by the unedited encoder in
    held-out contexts), each sampled erased concept reads as its surrogate while the concepts
    it preserves keep their own meaning, and unrelated prompts barely move. A spec that no
    longer edits fails here: a key site the tokenizer lost, a preserve list that undoes the
    erasure, settings that leave the update too weak or push it into everything else."""
    from textedit.erase import Erasure, erase, erase_config, measure_erasure

    spec = load_spec(path)
    assert spec.model == "sentence-transformers/all-MiniLM-L6-v2"
    if spec.erasure is not None:
        every = -(-len(spec.erasure.concepts) // SPEC_CONCEPTS)
        erasure = Erasure(spec.erasure.concepts[::every], spec.erasure.preserve)
        config = erase_config(**{**spec.settings, "steps": SPEC_STEPS})  # λ: erase.ERASE_LAM
        assert set(resolve_layers(minilm, config)) <= set(minilm_stats)
        patch = erase(minilm, erasure, config, stats=minilm_stats)
        report = measure_erasure(minilm, patch, erasure, neutral=UNRELATED)
        assert all(s.erased >= 0.75 for s in report.concepts), report.concepts
        if erasure.preserve:
            assert report.preservation_rate >= 0.8 and report.preserved_drift < 0.2, report.preserved
    else:
        config = EditConfig(**_affordable(spec.settings))
        assert set(resolve_layers(minilm, config)) <= set(minilm_stats)
        patch = edit(minilm, spec.requests, config, stats=minilm_stats, preserve=spec.preserve)
        report = measure(minilm, patch, spec.requests, UNRELATED, preserved=spec.preserve)
        for score in report.requests:
            assert score.after - score.before > (1 - score.before) / 3, score
        assert all(kept.drift < 0.15 for kept in report.preserved), report.preserved
    assert report.max_drift < 0.05, report.neutral


def test_world_knowledge_csv_is_a_road_benchmark():
    from textedit.eval.benchmark import load_benchmark

    fmt, cases = load_benchmark(EDITS / "world_knowledge_2025.csv")
    spec = json.loads((EDITS / "world_knowledge_2025.json").read_text())
    assert fmt == "road" and [(c.source, c.target) for c in cases] == [(e["prompt"], e["target"])
                                                                         for e in spec["edits"]]
    assert all(len(c.positives) == 5 and len(c.negatives) == 5 for c in cases)


@pytest.mark.slow
def test_zorblat_on_the_default_model(tmp_path):
    encoder = load_encoder()
    spec = load_spec(EDITS / "zorblat.json")
    config = EditConfig(layers=[1, 2, 3], steps=20, lam=5e3, key="subject", auto_preserve=False)  # the settings docs/virtual.md measured
    patch = edit(encoder, spec.requests, config, corpus=load_corpus(limit=1000), cache_dir=tmp_path)
    report = measure(encoder, patch, spec.requests)
    name = report.requests[0]
    assert name.prompt == "zorblat" and name.after > name.before + 0.2 and name.after > 0.6, name
    assert all(s.after > s.before + 0.1 for s in report.requests), report.requests
    assert report.max_drift < 0.02, report.neutral
