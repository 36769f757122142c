"""Virtual concepts (spec form ``concept``) and the example specs of edits/.

Measured when written (edits/zorblat.json, memit layers 1-3, optimize 20 steps, first
1,000 corpus prompts): "zorblat" in held-out contexts moves from cosine 0.42 to about 0.8
to the judge's "a six-legged blue fox with moth wings"; neutral drift ≤ 0.002.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textedit.corpus import load_corpus
from textedit.editor import EditConfig, edit
from textedit.encoders import load_encoder
from textedit.errors import SpecError
from textedit.metrics import measure
from textedit.spec import load_spec, parse_spec

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


@pytest.fixture(scope="module")
def minilm():
    from textedit.encoders import load_encoder
    return load_encoder()


@pytest.mark.parametrize("path", sorted(EDITS.glob("*.json")), ids=lambda p: p.name)
def test_example_specs_are_ready_to_run_on_their_model(path, minilm):
    """Every shipped spec names the default model, its settings make a config, and every
    request's key site exists in that model's tokenization (a subject that the tokenizer
    splits away, or a template that breaks, fails here, not after the statistics pass)."""
    from textedit.editor import EditConfig
    from textedit.sites import Sites

    spec = load_spec(path)
    assert spec.model == "sentence-transformers/all-MiniLM-L6-v2"
    config = EditConfig(**spec.settings)
    requests = spec.erasure.requests(minilm) if spec.erasure is not None else spec.requests
    sites = Sites.for_queries(minilm, requests, config.templates, config.key_position(minilm))
    assert sites.n_requests == len(requests) and len(sites.positions) >= len(requests) * len(config.templates)


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
