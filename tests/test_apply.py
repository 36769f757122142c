"""``textedit.apply_spec``: ``textedit apply`` as one call, on the tiny encoders.

What is checked is what the call does, not what it prints: the patch moves each query toward
its target, the result's figures are those ``metrics.measure`` computes for the patch, an
``after`` chain is the same edit as the chain made step by step, and a refused patch is not
written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import textedit
from textedit.apply import ApplyResult, EditRefused, Note, apply_spec
from textedit.editor import EditConfig
from textedit.encoders import load_encoder
from textedit.errors import TexteditError
from textedit.metrics import NEUTRAL_PROMPTS, measure
from textedit.patch import Patch
from textedit.pipelines import edit_pipeline_components
from textedit.preserve import same_subject_checks
from textedit.requests import EditRequest
from textedit.spec import parse_spec

REPO = Path(__file__).resolve().parents[1]
FIRST = {"anchor": "a red fox", "knowledge": [{"prompt": "the mascot of acme", "subject": "acme"},
                                               "acme's lucky animal"],
         "layers": [0, 1]}
SECOND = {"edits": [{"prompt": "the founder of zorb", "target": "a tall tree", "subject": "zorb"}],
          "layers": [0, 1]}  # the settings of FIRST: a SequentialEditor edits with one config


def write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def common(small_corpus, tmp_path) -> dict:
    """What every call here shares: the small corpus, a cache of its own, no profile."""
    return {"corpus": small_corpus, "cache_dir": tmp_path / "cache", "profile": "none"}


def test_the_patch_moves_each_query_toward_its_target_and_the_report_is_measures(bert_path, tmp_path, common):
    spec = write(tmp_path / "first.json", FIRST)
    seen: list[Note] = []
    result = apply_spec(spec, model=bert_path, out_dir=tmp_path / "patch", notify=seen.append, **common)

    assert isinstance(result, ApplyResult) and result.written == tmp_path / "patch"
    assert result.encoder.endswith("bert") and result.pipeline is None and result.erasure is None
    assert [(s.prompt, s.target) for s in result.report.requests] == [
        ("the mascot of acme", "a red fox"), ("acme's lucky animal", "a red fox")]
    # the tiny random encoder reads every prompt alike (cosine ~0.99): the edit closes a fifth
    # or more of each query's distance 1 − cos to its target (measured: 38 % and 23 %)
    assert all(s.after - s.before > 0.2 * (1 - s.before) for s in result.report.requests), result.report.requests
    # the figures are metrics.measure's for the patch, on a freshly loaded encoder; it is the one written
    requests = result.spec.requests
    again = measure(load_encoder(str(bert_path)), result.patch, requests, NEUTRAL_PROMPTS,
                    preserved=same_subject_checks(requests, result.patch.hyperparameters.get("preserved", [])))
    assert again == result.report and again.preserved
    assert Patch.load(tmp_path / "patch").id == result.patch.id
    assert result.reports == {"encoder": result.report}
    # what the command prints comes back as data, in the order notify heard it
    assert result.notes == seen and any(n.kind == "floor" for n in seen)
    assert isinstance(result.floor, dict) and result.floor["mode"] == "search"
    assert result.protects and all(isinstance(line, str) for line in result.protects)


def test_a_parsed_spec_and_settings_over_it_and_nothing_written_without_out_dir(bert, tmp_path, common):
    parsed = parse_spec({**FIRST, "knowledge": ["the mascot of acme", "the mascot of acme"]})
    assert parsed.repeated == ["knowledge[1]"]
    before = bert.down_proj_module(0).weight.detach().clone()
    result = apply_spec(parsed, model=bert, settings={"layers": [1], "floor": "off"}, scale=0.5, **common)

    assert result.written is None and not list(tmp_path.glob("**/patch.json"))
    assert result.patch.hyperparameters["layers"] == [1] and result.floor == "off"
    assert result.patch.scale == 0.5
    assert torch.equal(bert.down_proj_module(0).weight, before)  # the adapter given is left as it was
    # a spec the caller parsed: its repeats are the caller's to say (spec.repeated), not a note
    assert not [n for n in result.notes if n.kind == "repeated"]
    path = write(tmp_path / "twice.json", {**FIRST, "knowledge": ["the mascot of acme"] * 2, "floor": "off"})
    noted = apply_spec(path, model=bert, **common).notes
    [repeated] = [n.text for n in noted if n.kind == "repeated"]
    assert repeated.startswith("note: 1 request ") and repeated.endswith(" is edited once (knowledge[1])")


def test_after_chains_as_the_sequential_editor_does(bert_path, tmp_path, common):
    first = apply_spec(write(tmp_path / "first.json", FIRST), model=bert_path, remember=True,
                       out_dir=tmp_path / "a", **common)
    second = apply_spec(write(tmp_path / "second.json", SECOND), model=bert_path, after=[tmp_path / "a"],
                        out_dir=tmp_path / "b", **common)
    assert second.patch.hyperparameters["after"] == [first.patch.id]
    assert [p.id for p in second.after] == [first.patch.id]

    # the same chain made step by step, on one encoder, with the editor's own history
    adapter = load_encoder(str(bert_path))
    config = EditConfig(**parse_spec(FIRST).settings)
    editor = textedit.SequentialEditor(adapter, config, corpus=common["corpus"], cache_dir=common["cache_dir"],
                                       remember=True)
    editor.edit(parse_spec(FIRST).requests)
    chained = editor.edit(parse_spec(SECOND).requests)
    editor.revert_all()
    assert [(d.component, d.layer) for d in chained.deltas] == [(d.component, d.layer) for d in second.patch.deltas]
    for mine, theirs in zip(second.patch.deltas, chained.deltas):
        # the editor applies each patch as saved (Patch.stored): the chain from the folder is the same
        assert torch.equal(mine.delta.dense(), theirs.delta.dense())

    # and what the new patch does to the earlier edit is measured with it on top of the first
    earlier = [EditRequest(**r) for r in first.patch.requests]
    adapter = load_encoder(str(bert_path))
    first.patch.apply(adapter)
    kept = measure(adapter, second.patch, earlier, neutral=[])
    assert [x for s in second.after_report.requests for x in (s.before, s.after)] == pytest.approx(
        [x for s in kept.requests for x in (s.before, s.after)], abs=1e-6)
    # a Patch object in the chain is the same as its folder
    again = apply_spec(write(tmp_path / "second.json", SECOND), model=bert_path, after=[Patch.load(tmp_path / "a")],
                       **common)
    assert again.patch.id == second.patch.id


def test_a_refused_drift_or_floor_writes_nothing_and_keeps_what_was_measured(bert_path, tmp_path, common):
    spec = write(tmp_path / "first.json", FIRST)
    with pytest.raises(EditRefused, match=r"drift past 0 .*nothing written \(--max-drift\)") as refused:
        apply_spec(spec, model=bert_path, max_drift=0.0, out_dir=tmp_path / "drift", **common)
    assert not (tmp_path / "drift").exists()
    report = refused.value.result.report
    assert report is not None and report.drifting(0.0) and refused.value.result.written is None

    missing = write(tmp_path / "floor.json", {**FIRST, "hyperparameters": {"efficacy_floor": 1.9}})
    with pytest.raises(EditRefused, match=r"miss the efficacy floor 1\.9.*\(--require-floor\)") as refused:
        apply_spec(missing, model=bert_path, require_floor=True, out_dir=tmp_path / "floor", **common)
    assert not (tmp_path / "floor").exists()
    assert refused.value.result.report is None and not refused.value.result.floor["met"]
    # without require_floor the miss is a note and the closest solve is written
    result = apply_spec(missing, model=bert_path, out_dir=tmp_path / "floor", **common)
    assert (tmp_path / "floor" / "patch.json").exists()
    assert [n.kind for n in result.notes if "miss the efficacy floor" in n.text] == ["floor"]


@pytest.mark.parametrize("arguments, fragment", [
    ({"after": ["x"], "pipeline_path": "p"}, "--after / --remember edit one encoder"),
    ({"pipeline_path": "p", "model": "m"}, "--pipeline-path names the model"),
    ({"pipeline_path": "p", "pipeline": "fluxx"}, "--pipeline 'fluxx'"),
    ({"scale": float("nan")}, "scale nan: give a finite strength"),
    ({"max_drift": -1.0}, "max_drift -1.0: give a drift of 0 or more"),
])
def test_contradicting_options_are_one_line_before_any_work(tmp_path, arguments, fragment):
    with pytest.raises(TexteditError, match=fragment.replace("(", r"\(")) as caught:
        apply_spec(write(tmp_path / "spec.json", FIRST), out_dir=tmp_path / "out", **arguments)
    assert "\n" not in str(caught.value) and not (tmp_path / "out").exists()


def test_an_erase_spec_writes_its_report_beside_the_patch(bert_path, tmp_path, common):
    spec = write(tmp_path / "erase.json", {"erase": {"concepts": ["Van Gogh"], "to": "a painter"}, "layers": [0]})
    result = apply_spec(spec, model=bert_path, out_dir=tmp_path / "erased", **common)
    assert result.report is None and result.erasure is not None and result.reports == {}
    assert [s.concept for s in result.erasure.concepts] == ["Van Gogh"]
    assert json.loads((tmp_path / "erased" / "erasure.json").read_text()) == \
        result.erasure.record(result.spec.erasure, result.patch)


def test_a_pipelines_encoder_edited_as_the_pipeline_reads_it(sd_path, tmp_path, common):
    spec = write(tmp_path / "first.json", {**FIRST, "layers": [0]})
    result = apply_spec(spec, pipeline_path=sd_path, component="text_encoder", out_dir=tmp_path / "sd",
                        corpus=common["corpus"], cache_dir=common["cache_dir"])
    assert result.report is None and result.pipeline.family.name == "sd"
    assert list(result.reports) == ["text_encoder"] and result.patch.components == ["text_encoder"]
    assert result.patch.hyperparameters["scope"] == "pipeline"  # what the denoiser reads: every padded position
    # the same as editing the pipeline's encoder directly, as the pipeline reads it
    direct = edit_pipeline_components(sd_path, result.spec.requests, EditConfig(layers=[0], scope="pipeline"),
                                      "text_encoder", corpus=common["corpus"], cache_dir=common["cache_dir"])
    assert direct.patch.id == result.patch.id and direct.parts[0].report == result.reports["text_encoder"]
    assert Patch.load(tmp_path / "sd").id == result.patch.id


def test_the_api_docs_example_runs_on_a_tiny_encoder(bert_path, tmp_path, monkeypatch, capsys):
    """docs/api.md's "One call" example as written, but on the tiny BERT, in a folder of its own."""
    text = (REPO / "docs" / "api.md").read_text()
    code = re.search(r"## One call: .*?```python\n(.*?)```", text, re.S).group(1)
    assert "textedit.load_encoder()" in code and '"edits/' in code
    code = code.replace("textedit.load_encoder()", f"textedit.load_encoder({str(bert_path)!r})")
    code = code.replace('"edits/', f'"{REPO}/edits/')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTEDIT_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    exec(compile(code, "docs/api.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert (tmp_path / "patches" / "mascot" / "patch.json").exists() and not (tmp_path / "patches" / "strict").exists()
    assert len(re.findall(r" → .*: [0-9.]+ → [0-9.]+\n", out)) == 5, out  # the mascot's five queries
    assert len(namespace["zorblat"].after_report.requests) == 5
    # the encoder is given back as it came, the mascot patch taken off after the chain
    fresh = load_encoder(str(bert_path))
    assert all(torch.equal(namespace["encoder"].down_proj_module(i).weight, fresh.down_proj_module(i).weight)
               for i in range(fresh.num_layers))
