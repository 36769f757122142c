"""Concept erasure: request building, bad input, the command line, and one real erasure
of the default model (all-MiniLM-L6-v2).

Measured when this test was written (memit, layers 1-3, value optimize, 20 steps, first
1,000 corpus prompts): both painters erased on 100% of held-out contexts, the preserved
painter kept on 100% with drift ≈ 0.01, neutral drift ≤ 0.005. The thresholds leave a
wide margin under those numbers.
"""

from __future__ import annotations

import json

import pytest
import torch

from cli_runner import run
from textedit.corpus import load_corpus
from textedit.encoders import load_encoder
from textedit.erase import (ERASE_CONTEXTS, ERASE_EVAL_TEMPLATES, ERASE_LAM, ERASE_TEMPLATES, Concept, Erasure, erase,
                            erase_config, erase_with_report, fill, measure_erasure)
from textedit.errors import SpecError
from textedit.patch import Patch
from textedit.spec import parse_spec


def test_requests_rebind_each_context_and_keep_preserved_ones():
    erasure = Erasure([Concept("Van Gogh", "a painter"), Concept("Monet")], preserve=["Picasso"])
    requests = erasure.requests()
    van_gogh = [r for r in requests if r.subject == "Van Gogh"]
    assert [(r.prompt, r.target) for r in van_gogh[:2]] == [("Van Gogh", "a painter"),
                                                            ("a painting by Van Gogh", "a painting by a painter")]
    assert len(van_gogh) == len(ERASE_CONTEXTS)
    # the empty surrogate: the concept reads as absent; the bare context has nothing left
    monet = [r for r in requests if r.subject == "Monet"]
    assert len(monet) == len(ERASE_CONTEXTS) - 1 and ("a painting by Monet", "a painting by") in \
        [(r.prompt, r.target) for r in monet]
    kept = [r for r in requests if r.subject == "Picasso"]
    assert kept and all(r.prompt == r.target for r in kept)
    assert not set(ERASE_EVAL_TEMPLATES) & set(ERASE_CONTEXTS)


def test_erase_config_keeps_memit_lambda_unless_told():
    assert erase_config().get("lam") == ERASE_LAM and erase_config().templates == ERASE_TEMPLATES
    assert erase_config(lam=10.0).get("lam") == 10.0
    assert "lam" not in erase_config(method="ridge").hyperparameters  # ridge keeps its own default
    assert erase_config(method="ridge").get("lam") == 10.0


def test_fill_tidies_spaces():
    assert fill("a photograph of {} near a river", "") == "a photograph of near a river"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"concepts": []}, "nothing to erase"),
    ({"concepts": [Concept("  ")]}, "empty"),
    ({"concepts": [Concept("Monet"), Concept("monet")]}, "listed twice"),
    ({"concepts": [Concept("Monet")], "preserve": ["Picasso", "Monet"]}, "both erased and preserved"),
    ({"concepts": [Concept("a painter", "a painter")]}, "its own surrogate"),
])
def test_bad_erasures(kwargs, fragment):
    with pytest.raises(SpecError, match=fragment):
        Erasure(**kwargs)


def test_concept_without_tokens(bert):
    with pytest.raises(SpecError, match="has no tokens"):
        Erasure([Concept("\u200b")]).requests(bert)


def test_spec_form():
    spec = parse_spec({"erase": {"concepts": ["Van Gogh", {"concept": "Monet", "to": "a painter"}], "to": "an artist",
                                 "preserve": ["Picasso"]}})
    assert [(c.name, c.to) for c in spec.erasure.concepts] == [("Van Gogh", "an artist"), ("Monet", "a painter")]
    assert spec.erasure.preserve == ["Picasso"] and spec.requests == []
    for bad, fragment in [({"erase": {"concepts": ["Monet"], "preserve": ["Monet"]}}, "both erased and preserved"),
                          ({"erase": {"concepts": ["Monet"], "keep": []}}, "erase.keep"),
                          ({"erase": {"concepts": ["Monet"]}, "anchor": "a fox", "knowledge": ["x"]}, "its own spec"),
                          ({"erase": {"concepts": []}}, "erase.concepts")]:
        with pytest.raises(SpecError, match=fragment):
            parse_spec(bad)



@pytest.mark.parametrize("args, fragment", [
    (["\u200b"], "has no tokens"),
    (["mascot", "--preserve", "dog,mascot"], "both erased and preserved"),
    (["mascot", "--preserve", "dog", "--preserve-file", "x.txt"], "not both"),
    (["mascot", "--preserve-file", "/no/such/file.txt"], "does not exist"),
    ([], "nothing to erase"),
])
def test_cli_bad_input_is_one_line(monkeypatch, capsys, tmp_path, bert_path, args, fragment):
    out_dir = tmp_path / "patch"
    code, _, err = run(monkeypatch, capsys, "erase", *args, "--model", bert_path, "--out", out_dir)
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in err, err
    assert not out_dir.exists()


def test_cli_erase_writes_patch_and_report(monkeypatch, capsys, tmp_path, bert_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(load_corpus(limit=200).prompts))
    names = tmp_path / "concepts.txt"
    names.write_text("# painters\nthe mascot of acme\n\ncanada\n")
    out_dir = tmp_path / "patch"
    code, out, err = run(monkeypatch, capsys, "erase", "google", "--concepts-file", names, "--to", "a dog",
                         "--preserve", "france", "--model", bert_path, "--out", out_dir, "--corpus", corpus,
                         "--cache-dir", tmp_path / "cache", "--value", "match", "--layers", "0,1")
    assert code == 0, err
    assert "erasure rate" in out and "preservation" in out
    report = json.loads((out_dir / "erasure.json").read_text())
    assert report["concepts"] == 3 and report["preserved"] == 1 and 0 <= report["erasure_rate"] <= 1
    assert (out_dir / "patch.safetensors").is_file()
    patch = json.loads((out_dir / "patch.json").read_text())
    assert patch["hyperparameters"]["erase_contexts"] == list(ERASE_CONTEXTS)
    assert {r["subject"] for r in patch["requests"]} == {"google", "the mascot of acme", "canada", "france"}


def test_erase_with_report_is_erase_then_measure_and_what_the_cli_writes(monkeypatch, capsys, tmp_path, bert_path):
    """The API call behind `textedit erase`: its patch is the one the command writes and a plain
    `erase` makes, its report equals `measure_erasure` of that patch, its record is erasure.json."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(load_corpus(limit=200).prompts))
    code, _, err = run(monkeypatch, capsys, "erase", "google", "canada", "--to", "a dog", "--preserve", "france",
                       "--model", bert_path, "--out", tmp_path / "cli", "--corpus", corpus, "--cache-dir",
                       tmp_path / "cache", "--value", "match", "--layers", "0,1")
    assert code == 0, err

    encoder = load_encoder(str(bert_path))
    weights = {n: p.detach().clone() for n, p in encoder.model.state_dict().items()}
    erasure = Erasure([Concept("google", "a dog"), Concept("canada", "a dog")], preserve=["france"])
    config = erase_config(value="match", layers=[0, 1])
    patch, report = erase_with_report(encoder, erasure, config, corpus=load_corpus(corpus),
                                      cache_dir=tmp_path / "cache")
    assert all(torch.equal(p, weights[n]) for n, p in encoder.model.state_dict().items())  # left as it was
    assert patch.id == Patch.load(tmp_path / "cli").id
    direct = erase(encoder, erasure, config, corpus=load_corpus(corpus), cache_dir=tmp_path / "cache")
    measured = measure_erasure(encoder, direct, erasure)
    assert direct.id == patch.id and measured.seconds is None and report.seconds > 0
    assert (report.concepts, report.preserved, report.neutral) == (measured.concepts, measured.preserved,
                                                                   measured.neutral)
    written = json.loads((tmp_path / "cli" / "erasure.json").read_text())
    record = json.loads(json.dumps(report.record(erasure, patch)))
    assert written.pop("seconds") >= 0 and record.pop("seconds") == round(report.seconds, 1)
    assert record == written


def test_erase_with_report_on_a_pipeline_component(sd_path):
    encoder = load_encoder(sd_path, component="text_encoder")
    erasure = Erasure([Concept("acme", "a dog")])
    patch, report = erase_with_report(encoder, erasure, erase_config(method="ridge", value="match", layers=[0]),
                                      component="text_encoder")
    assert patch.components == ["text_encoder"]
    assert report.concepts == measure_erasure(encoder, patch, erasure, component="text_encoder").concepts


@pytest.mark.slow
def test_erasure_of_the_default_model(tmp_path):
    encoder = load_encoder()
    erasure = Erasure([Concept("Van Gogh", "a painter"), Concept("Claude Monet", "a painter")],
                      preserve=["Pablo Picasso"])
    weights = {n: p.detach().clone() for n, p in encoder.model.state_dict().items()}
    patch = erase(encoder, erasure, erase_config(steps=20, layers=[1, 2, 3]),
                  corpus=load_corpus(limit=1000), cache_dir=tmp_path)
    report = measure_erasure(encoder, patch, erasure)
    assert all(torch.equal(p, weights[n]) for n, p in encoder.model.state_dict().items())
    assert report.erasure_rate >= 0.75, report.concepts
    assert all(s.to_surrogate_after > s.to_surrogate_before + 0.05 for s in report.concepts), report.concepts
    assert report.preservation_rate == 1.0 and report.preserved_drift < 0.05, report.preserved
    assert report.max_drift < 0.02, report.neutral
