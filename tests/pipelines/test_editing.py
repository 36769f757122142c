"""Editing a pipeline's own encoders: one part per component with the default layers the
denoiser sees, one combined patch, and ``edit_pipeline_components``, the API call behind
``textedit apply --pipeline-path``, checked against what the command writes."""

from __future__ import annotations

import json

import pytest
import torch

from textedit import EditConfig, EditRequest, Patch, edit_pipeline_components, load_corpus, measure
from textedit.corpus import Corpus
from textedit.encoders import adapter_for
from textedit.errors import PatchError, SpecError
from textedit.pipelines import (FAMILIES, ReachWarning, edit_pipeline, load_pipeline, load_pipeline_encoder,
                                reach_warnings)
from textedit.preserve import subject_prompts
from textedit.spec import load_spec

REQUEST = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
NEUTRAL = ["a dog running on the grass", "a bowl of soup on a wooden table"]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(tuple(load_corpus(limit=60).prompts), "pipelines-test")


def test_edit_pipeline_defaults_skip_the_unseen_layer(pipeline_paths, corpus, tmp_path):
    """Defaults skip the last layer of penultimate readers; explicit unseen layers warn."""
    parts = list(edit_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"], REQUEST, EditConfig(value="match"),
                               ["text_encoder", "text_encoder_2"], corpus=corpus, cache_dir=tmp_path))
    assert [p.component for p in parts] == ["text_encoder", "text_encoder_2"]
    for part in parts:  # 3-layer CLIPs: layer 2 is invisible to SDXL
        assert part.patch.hyperparameters["layers"] == [0, 1] and part.warnings == []
        assert part.adapter.hidden_state_index == -2
    with pytest.warns(ReachWarning, match="text_encoder layer 2 cannot reach the SDXL denoiser"):
        [part] = edit_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"], REQUEST,
                               EditConfig(value="match", layers=[1, 2]), ["text_encoder"], corpus=corpus,
                               cache_dir=tmp_path)
    assert part.warnings == reach_warnings(FAMILIES["sdxl"], {"text_encoder": ([1, 2], 3)})


def test_combined_patch_roundtrip_and_atomic_apply(pipeline_paths, corpus, tmp_path):
    parts = [p.patch for p in edit_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"], REQUEST,
                                            EditConfig(value="match", method="ridge"),
                                            ["text_encoder", "text_encoder_2"], corpus=corpus, cache_dir=tmp_path)]
    patch = Patch.combine(parts)
    assert patch.components == ["text_encoder", "text_encoder_2"] and patch.family == "clip"
    assert set(patch.hyperparameters) == {"text_encoder", "text_encoder_2"}
    loaded = Patch.load(patch.save(tmp_path / "patch"))
    assert loaded.id == patch.id and loaded.base_fingerprints == patch.base_fingerprints
    with pytest.raises(PatchError, match="two parts edit component text_encoder"):
        Patch.combine([parts[0], parts[0]])

    pipe = load_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"])
    first, second = adapter_for(pipe.text_encoder, None), adapter_for(pipe.text_encoder_2, None)
    weights = [first.down_proj_module(0).weight.clone(), second.down_proj_module(0).weight.clone()]
    loaded.apply(pipe)
    assert not torch.equal(first.down_proj_module(0).weight, weights[0])
    assert not torch.equal(second.down_proj_module(0).weight, weights[1])
    loaded.revert(pipe)
    # a misfit second component leaves the first one untouched
    with torch.no_grad():
        second.down_proj_module(2).weight.add_(1.0)
    with pytest.raises(PatchError, match="text_encoder_2"):
        loaded.apply(pipe)
    assert torch.equal(first.down_proj_module(0).weight, weights[0])


def test_edit_pipeline_components_is_what_apply_writes(pipeline_paths, textedit_cli, tmp_path):
    """The API call gives the patch `apply --pipeline-path --component all --scale` writes,
    byte for byte, each part's report equals a direct `measure` of that part, and the reach
    warnings are the ones the command printed."""
    sdxl = pipeline_paths["sdxl"]
    spec = tmp_path / "mascot.json"
    spec.write_text(json.dumps({"anchor": "a red fox", "knowledge": [{"prompt": "the mascot of acme",
                                                                      "subject": "acme"}],
                                "neutral": NEUTRAL, "layers": [1, 2], "value": "match", "auto_preserve": False}))
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("\n".join(load_corpus(limit=60).prompts))
    code, out, err = textedit_cli("apply", spec, "--pipeline-path", sdxl, "--component", "all", "--scale", "0.5",
                                  "--corpus", corpus_file, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "cli")
    assert code == 0, err
    written = Patch.load(tmp_path / "cli")

    parsed = load_spec(spec)
    config = EditConfig(**{**parsed.settings, "scope": "pipeline"})  # the CLI's default with --pipeline-path
    with pytest.warns(ReachWarning):
        result = edit_pipeline_components(sdxl, parsed.requests, config, "all", neutral=parsed.neutral, scale=0.5,
                                          corpus=load_corpus(corpus_file), cache_dir=tmp_path / "cache")
    assert result.family is FAMILIES["sdxl"] and result.seconds > 0
    assert result.patch.id == written.id and result.patch.scale == 0.5
    assert result.patch.save(tmp_path / "api").joinpath("patch.safetensors").read_bytes() == \
        (tmp_path / "cli" / "patch.safetensors").read_bytes()
    assert result.warnings == reach_warnings(FAMILIES["sdxl"], {"text_encoder": ([1, 2], 3),
                                                                "text_encoder_2": ([1, 2], 3)})
    assert all(message in " ".join(err.split()) for message in result.warnings)

    assert [p.component for p in result.parts] == ["text_encoder", "text_encoder_2"]
    for part in result.parts:
        assert part.encoder == f"{sdxl}:{part.component}" and part.patch.scale == 0.5
        encoder = load_pipeline_encoder(sdxl, part.component, FAMILIES["sdxl"])
        direct = measure(encoder, part.patch, parsed.requests, NEUTRAL, component=part.component,
                         preserved=subject_prompts(parsed.requests))  # nothing preserved: the same subject checked
        assert part.report == direct
        assert f"{part.report.requests[0].after:.3f}" in out


def test_edit_pipeline_components_chooses_and_refuses(pipeline_paths, corpus, tmp_path):
    sdxl = pipeline_paths["sdxl"]
    config = EditConfig(value="match", method="ridge")
    with pytest.raises(SpecError, match=r"--component text_encoder\|text_encoder_2\|all"):
        edit_pipeline_components(sdxl, REQUEST, config, None)
    with pytest.raises(SpecError, match="has no text encoder 'text_encoder_3'"):
        edit_pipeline_components(sdxl, REQUEST, config, "text_encoder_3")
    with pytest.raises(SpecError, match="not a Stable Diffusion 3 pipeline"):
        edit_pipeline_components(sdxl, REQUEST, config, "all", pipeline="sd3")
    for_second = [EditRequest("the mascot of acme", "a red fox", subject="acme", component="text_encoder_2")]
    with pytest.raises(SpecError, match="no request of the spec is for text_encoder$"):
        edit_pipeline_components(sdxl, for_second, config, "text_encoder", corpus=corpus, cache_dir=tmp_path)
    result = edit_pipeline_components(sdxl, for_second, config, "all", corpus=corpus, cache_dir=tmp_path)
    assert [p.component for p in result.parts] == result.patch.components == ["text_encoder_2"]
    assert result.patch.id == result.parts[0].patch.id and result.patch.scale == 1


def test_a_pipeline_edit_keeps_the_named_prompts_and_reports_the_same_subject(pipeline_paths, corpus, tmp_path):
    """``preserve`` reaches every part's solve (a spec's "preserve" was ignored with
    --pipeline-path before), and each part's report scores the same-subject prompts: the
    preserved ones, or, when nothing was preserved, the subject's other knowledge."""
    request = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
    config = EditConfig(value="match", auto_preserve=False)
    kept = edit_pipeline_components(pipeline_paths["sd"], request, config, "text_encoder", corpus=corpus,
                                    cache_dir=tmp_path, preserve=["the founder of acme"])
    assert kept.patch.hyperparameters["preserved"] == ["the founder of acme"]
    assert [p.prompt for p in kept.parts[0].report.preserved] == ["the founder of acme"]
    plain = edit_pipeline_components(pipeline_paths["sd"], request, config, "text_encoder", corpus=corpus,
                                     cache_dir=tmp_path)
    assert "preserved" not in plain.patch.hyperparameters
    checked = [p.prompt for p in plain.parts[0].report.preserved]
    assert "the founder of acme" in checked and "acme" in checked  # the subject's other knowledge, checked
    founder = {p.prompt: p.drift for p in kept.parts[0].report.preserved}["the founder of acme"]
    assert founder < {p.prompt: p.drift for p in plain.parts[0].report.preserved}["the founder of acme"]
