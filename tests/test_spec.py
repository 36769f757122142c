"""Edit specs: every form builds its requests, settings go where EditConfig reads them, and a
mistake is one line naming the file and the field."""

from __future__ import annotations

import json

import pytest

from textedit.editor import EditConfig
from textedit.errors import SpecError
from textedit.requests import EditRequest
from textedit.spec import load_spec, parse_spec


def test_edits_and_anchor_knowledge_build_the_requests_in_order():
    spec = parse_spec({"edits": [{"prompt": "Canada's Prime Minister", "target": "Beyonce", "subject": "Canada"}],
                       "anchor": "a red panda", "knowledge": ["the mascot of Acme",
                                                              {"prompt": "Acme's lucky animal", "subject": "Acme"}],
                       "neutral": ["a dog"], "preserve": [" the founder of Acme "], "model": "m", "component": "c"})
    assert spec.requests == [EditRequest("Canada's Prime Minister", "Beyonce", "Canada"),
                             EditRequest("the mascot of Acme", "a red panda"),
                             EditRequest("Acme's lucky animal", "a red panda", "Acme")]
    assert (spec.model, spec.component, spec.neutral, spec.preserve) == ("m", "c", ["a dog"], ["the founder of Acme"])
    assert spec.settings == {} and spec.anchor is None and spec.erasure is None and spec.repeated == []


def test_settings_and_hyperparameters_are_what_edit_config_takes():
    spec = parse_spec({"anchor": "a fox", "knowledge": ["x"], "method": "alphaedit", "layers": [1, 2],
                       "value": "optimize", "key": "query", "scope": "pipeline", "auto_preserve": False,
                       "templates": ["a photo of {}"], "hyperparameters": {"threshold": 0.1, "steps": 20.0,
                                                                           "alpha": 1}})
    assert spec.settings == {"method": "alphaedit", "layers": [1, 2], "value": "optimize", "key": "query",
                             "scope": "pipeline", "auto_preserve": False, "templates": ["a photo of {}"],
                             "threshold": 0.1, "steps": 20, "alpha": 1.0}
    assert isinstance(spec.settings["steps"], int) and isinstance(spec.settings["alpha"], float)
    config = EditConfig(**spec.settings)
    assert config.get("steps") == 20 and config.get("threshold") == 0.1


def test_repeats_are_edited_once_and_reported_where_they_were_given():
    spec = parse_spec({"anchor": "a fox", "knowledge": ["the mascot of acme", "The  Mascot of Acme"],
                       "edits": [{"prompt": "the mascot of acme", "target": "A fox"}]})
    assert spec.requests == [EditRequest("the mascot of acme", "A fox")]
    assert spec.repeated == ["knowledge[0]", "knowledge[1]"]


def test_a_spec_file_names_itself_in_errors_and_finds_its_anchor_embedding_beside_it(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "learned.safetensors").write_bytes(b"")
    path = folder / "spec.json"
    path.write_text(json.dumps({"anchor": "<acme>", "anchor_embedding": "learned.safetensors",
                                "knowledge": ["the mascot of acme"]}))
    spec = load_spec(path)
    assert spec.anchor_embedding == folder / "learned.safetensors" and spec.anchor == "<acme>"
    assert spec.source == str(path)
    path.write_text(json.dumps({"anchor": "<acme>", "anchor_embedding": "gone.safetensors", "knowledge": ["x"]}))
    with pytest.raises(SpecError, match=f"^{path}: field 'anchor_embedding': file '.*gone.safetensors' does not"):
        load_spec(path)


@pytest.mark.parametrize("data, message", [
    ([], "top level: expected a JSON object"),
    ({}, "top level: no edits"),
    ({"edits": [{"prompt": "a", "target": "b", "weight": 2}]}, "edits[0].weight: unknown field"),
    ({"edits": [{"prompt": "the mascot", "target": "b", "subject": "acme"}]}, "edits[0].subject"),
    ({"anchor": "a fox", "knowledge": ["x"], "layers": [1, True]}, "field 'layers': expected a non-empty list"),
    ({"anchor": "a fox", "knowledge": ["x"], "method": 3}, "field 'method': expected str"),
    ({"anchor": "a fox", "knowledge": ["x"], "auto_preserve": 1}, "field 'auto_preserve': expected bool"),
    ({"anchor": "a fox", "knowledge": ["x"], "templates": ["{} {}"]}, "field 'templates'"),
    ({"anchor": "a fox", "knowledge": ["x"], "hyperparameters": {"lam": "3"}}, "hyperparameters.lam: expected a number"),
    ({"anchor": "a fox", "knowledge": ["x"], "hyperparameters": {"lamda": 3}}, "hyperparameters.lamda: unknown"),
    ({"anchor": "a fox", "knowledge": ["x"], "neutral": [""]}, "field 'neutral'"),
    ({"anchor": "a fox", "knowledge": ["x"], "preserve": ["X"]}, "preserve[0]: 'X' is also edited"),
    ({"anchor": "a fox", "knowledge": ["x"], "edits": [{"prompt": "X", "target": "a cat"}]},
     "edits[0] and knowledge[0]: 'x' is edited to 'a cat' and to 'a fox'"),
    ({"anchor": "a fox", "knowledge": ["x"], "model": " "}, "field 'model'"),
    ({"erase": {"concepts": ["Van Gogh"]}, "anchor": "a fox", "knowledge": ["x"]}, "an erasure is its own spec"),
    ({"anchor": "a fox", "knowledge": ["x"], "seed": 0}, "field 'seed': is no longer read"),
])
def test_a_mistake_is_one_line_naming_the_source_and_the_field(data, message):
    with pytest.raises(SpecError) as raised:
        parse_spec(data, source="my.json")
    assert str(raised.value).startswith("my.json: ") and message in str(raised.value), str(raised.value)


def test_a_negative_layer_counts_from_the_end(tmp_path, bert_path, small_corpus):
    """``"layers": [-1]`` edits the last layer, as Python indexes a list (docs/spec.md); -1 and
    its positive twin are one layer."""
    from textedit.editor import edit
    from textedit.encoders import load_encoder

    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"edits": [{"prompt": "the mascot of acme", "target": "a red fox", "subject": "acme"}],
                                "layers": [-1], "value": "match"}))
    spec = load_spec(path)
    assert spec.settings["layers"] == [-1]
    bert = load_encoder(str(bert_path))
    last = bert.num_layers - 1
    patch = edit(bert, spec.requests, EditConfig(**spec.settings, auto_preserve=False, floor="off"),
                 corpus=small_corpus, cache_dir=tmp_path / "cache")
    assert [d.layer for d in patch.deltas] == [last] and patch.hyperparameters["layers"] == [last]
    assert bert.check_layers([-1, last, -bert.num_layers]) == [0, last]


def test_a_spec_holding_a_5000_digit_integer_is_one_spec_error(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text('{"anchor": "a fox", "knowledge": ["x"], "layers": [' + "9" * 5000 + "]}")
    with pytest.raises(SpecError, match="huge.json") as caught:
        load_spec(path)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
