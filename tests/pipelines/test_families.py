"""Pipeline families as data: detection from ``model_index.json``, and each encoder read as
its pipeline reads it (``Reading.encode`` against the pipeline's own ``encode_prompt``)."""

from __future__ import annotations

import json

import pytest
import torch

from textedit.encoders import COMPONENT_TOKENIZERS
from textedit.errors import ModelLoadError, SpecError
from textedit.pipelines import FAMILIES, detect_family, family_of, load_pipeline, present_components
from tiny_models import encode_prompt

PROMPT = "a photo of the mascot of acme on the beach"


@pytest.mark.parametrize("family", ["sd", "sdxl", "sd3", "flux", "qwenimage"])
def test_detect_family_and_components(family, pipeline_paths):
    path = pipeline_paths[family]
    assert detect_family(path).name == family
    assert detect_family(path, family).name == family
    assert present_components(path, FAMILIES[family]) == FAMILIES[family].components


def test_detection_errors(pipeline_paths, clip_path, tmp_path):
    with pytest.raises(SpecError, match="holds a StableDiffusionXLPipeline, not a FLUX.1"):
        detect_family(pipeline_paths["sdxl"], "flux")
    with pytest.raises(SpecError, match="unknown pipeline family 'sd4'"):
        detect_family(pipeline_paths["sdxl"], "sd4")
    with pytest.raises(ModelLoadError, match="not a diffusers pipeline folder"):
        detect_family(clip_path)
    with pytest.raises(ModelLoadError, match="no such folder"):
        detect_family(tmp_path / "missing")
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(SpecError, match="KandinskyPipeline, which is no pipeline family textedit knows"):
        detect_family(tmp_path)


def test_sd2_reads_as_sd(pipeline_paths):
    """SD 2.x is the same pipeline class and reading; auto names it sd, --pipeline sd2 is accepted."""
    assert FAMILIES["sd2"].readings == FAMILIES["sd"].readings
    assert detect_family(pipeline_paths["sd"], "sd2").name == "sd2"


def test_present_components_of_an_sd3_without_t5(pipeline_paths, tmp_path):
    """SD3 may be saved without its T5 (``[null, null]`` in model_index.json)."""
    index = json.loads((pipeline_paths["sd3"] / "model_index.json").read_text())
    index["text_encoder_3"] = index["tokenizer_3"] = [None, None]
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    assert present_components(tmp_path, FAMILIES["sd3"]) == ["text_encoder", "text_encoder_2"]


def test_family_of_a_pipeline_object(pipeline_paths):
    pipe = load_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"])
    assert family_of(pipe) is FAMILIES["sdxl"]
    with pytest.raises(SpecError, match="a Module is no pipeline family"):
        family_of(torch.nn.Module())


def _read(pipe, family: str, component: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``Reading.encode`` of one encoder, tokenized as the pipeline does (padded, no mask)."""
    reading = FAMILIES[family].readings[component]
    tokenizer = getattr(pipe, COMPONENT_TOKENIZERS[component])
    ids = tokenizer([PROMPT], padding="max_length", max_length=reading.max_length, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        return reading.encode(getattr(pipe, component), ids)


@pytest.mark.parametrize("family", ["sd", "sdxl", "flux"])
def test_reading_encode_is_what_the_pipeline_conditions_on(family, pipeline_paths):
    """The states and pooled vector each Reading picks are exactly the pipeline's own
    ``encode_prompt`` outputs: SDXL concatenates the penultimate states of both CLIPs and
    pools encoder 2; FLUX pools CLIP and reads T5's last states; SD reads CLIP's last states."""
    pipe = load_pipeline(pipeline_paths[family], FAMILIES[family])
    embeds, pooled = encode_prompt(pipe, family, PROMPT)
    parts = {c: _read(pipe, family, c) for c in FAMILIES[family].components}
    states = [s for s, _ in parts.values() if s is not None]
    pooled_reads = [p for _, p in parts.values() if p is not None]
    assert torch.equal(torch.cat(states, dim=-1), embeds)
    if pooled is None:
        assert pooled_reads == []
    else:
        [read] = pooled_reads
        assert torch.equal(read, pooled)


def test_qwen_image_is_read_in_its_chat_template_with_the_mask_and_without_the_prefix(pipeline_paths):
    """Qwen-Image's entry is the pipeline's own data (template, dropped prefix, length), and
    ``Reading.read`` of two prompts of different lengths is its ``encode_prompt``: the states
    of the tokens after the template's 34-token prefix, packed and zero-padded, with the mask.
    (The pipeline pads on the left and textedit on the right; causal attention with position
    ids from the mask gives the same states to rounding.)"""
    pipe = load_pipeline(pipeline_paths["qwenimage"], FAMILIES["qwenimage"])
    reading = FAMILIES["qwenimage"].reading("text_encoder")
    assert reading.template == pipe.prompt_template_encode and reading.read_from == pipe.prompt_template_encode_start_idx
    assert reading.max_length == pipe.tokenizer_max_length + pipe.prompt_template_encode_start_idx
    before_prompt = reading.template.split("{}")[0]
    assert len(pipe.tokenizer(before_prompt).input_ids) == reading.read_from == 34  # as with the real tokenizer
    prompts = [PROMPT, "a red fox"]
    with torch.no_grad():
        embeds, mask = pipe.encode_prompt(prompts, device="cpu")
        read = reading.read(pipe.text_encoder, pipe.tokenizer, prompts)
    assert read.pooled is None and torch.equal(read.mask, mask)
    assert mask[1].sum() < mask[0].sum()  # the shorter prompt is padded, and both are read without the prefix
    torch.testing.assert_close(read.states, embeds, rtol=0, atol=1e-5)
    assert torch.equal(read.states[1][mask[1] == 0], torch.zeros_like(read.states[1][mask[1] == 0]))
