"""Pipeline families as data: detection from ``model_index.json``, and each encoder read as
its pipeline reads it (``Reading.encode`` against the pipeline's own ``encode_prompt``)."""

from __future__ import annotations

import inspect
import json

import pytest
import torch

from textedit.encoders import COMPONENT_TOKENIZERS
from textedit.errors import ModelLoadError, SpecError
from textedit.pipelines import FAMILIES, detect_family, family_of, load_pipeline, present_components
from tiny_models import encode_prompt

PROMPT = "a photo of the mascot of acme on the beach"


@pytest.mark.parametrize("family", ["sd", "sdxl", "sd3", "flux", "qwenimage", "zimage", "flux2klein"])
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


def test_z_image_is_read_in_the_tokenizers_chat_template_with_thinking_on_and_only_the_real_tokens(pipeline_paths):
    """Z-Image's entry is its pipeline's data (the chat template applied with thinking on,
    512 tokens, the penultimate layer, the mask), and ``Reading.read`` of two prompts of
    different lengths is its ``encode_prompt``: per prompt, the states of its real tokens
    only (the transformer gets a list of them)."""
    pipe = load_pipeline(pipeline_paths["zimage"], FAMILIES["zimage"])
    reading = FAMILIES["zimage"].reading("text_encoder")
    assert inspect.signature(pipe.encode_prompt).parameters["max_sequence_length"].default == reading.max_length
    template = reading.for_tokenizer(pipe.tokenizer).template
    assert template == pipe.tokenizer.apply_chat_template([{"role": "user", "content": "{}"}], tokenize=False,
                                                          add_generation_prompt=True, enable_thinking=True)
    assert template == "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"  # as Qwen3's own template renders it
    prompts = [PROMPT, "a red fox"]
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(list(prompts), device="cpu", do_classifier_free_guidance=False)
        read = reading.read(pipe.text_encoder, pipe.tokenizer, prompts)
    assert read.pooled is None and read.mask.sum(1).tolist() == [len(e) for e in embeds]
    assert len(embeds[1]) < len(embeds[0]) < reading.max_length
    for i in range(2):
        torch.testing.assert_close(read.states[i][read.mask[i] == 1], embeds[i], rtol=0, atol=1e-5)
        assert torch.equal(read.states[i][read.mask[i] == 0], torch.zeros_like(read.states[i][read.mask[i] == 0]))


def test_flux2_klein_is_read_at_its_three_layers_with_thinking_off_and_every_padded_position(pipeline_paths):
    """FLUX.2 Klein's entry is its pipeline's defaults (layers 9, 18, 27 of Qwen3, 512 tokens,
    the chat template with thinking off), and ``Reading.read`` of two prompts of different
    lengths is its ``encode_prompt``: the three layers' states concatenated per token, at all
    512 positions, padding included (the transformer gets no mask)."""
    pipe = load_pipeline(pipeline_paths["flux2klein"], FAMILIES["flux2klein"])
    reading = FAMILIES["flux2klein"].reading("text_encoder")
    defaults = inspect.signature(pipe.encode_prompt).parameters
    assert defaults["text_encoder_out_layers"].default == reading.hidden_state == reading.read_layers
    assert defaults["max_sequence_length"].default == pipe.tokenizer_max_length == reading.max_length
    assert pipe.text_encoder.config.num_hidden_layers > max(reading.read_layers)  # the tiny encoder has them all
    assert reading.for_tokenizer(pipe.tokenizer).template == \
        "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    prompts = [PROMPT, "a red fox"]
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(list(prompts), device="cpu")
        read = reading.read(pipe.text_encoder, pipe.tokenizer, prompts)
    assert embeds.shape == (2, reading.max_length, 3 * pipe.text_encoder.config.hidden_size)
    assert read.pooled is None and torch.equal(read.mask, torch.ones(2, reading.max_length, dtype=torch.long))
    torch.testing.assert_close(read.states, embeds, rtol=0, atol=1e-5)
    # the padding's states are read, and differ per prompt (they attend to it)
    assert not torch.allclose(read.states[0, -1], read.states[1, -1])


@pytest.mark.parametrize("family", ["zimage", "flux2klein"])
def test_a_pipeline_encoder_loads_as_the_class_the_pipeline_holds(family, pipeline_paths):
    """``apply --pipeline-path`` edits the encoder as the pipeline holds it: FLUX.2 Klein's
    ``Qwen3ForCausalLM`` with its LM head, Z-Image's bare ``Qwen3Model``, so that module names
    and fingerprints match the pipeline's component (a patch made on one applies to the other)."""
    from textedit.encoders import adapter_for
    from textedit.pipelines import load_pipeline_encoder

    path = pipeline_paths[family]
    adapter = load_pipeline_encoder(path, "text_encoder", FAMILIES[family])
    pipe = load_pipeline(path, FAMILIES[family])
    assert type(adapter.model) is type(pipe.text_encoder)
    assert type(adapter.model).__name__ == {"zimage": "Qwen3Model", "flux2klein": "Qwen3ForCausalLM"}[family]
    assert adapter.fingerprint() == adapter_for(pipe.text_encoder, None).fingerprint()
    assert adapter.down_proj_name(0) in dict(pipe.text_encoder.named_modules())
    assert adapter.num_layers == pipe.text_encoder.config.num_hidden_layers
