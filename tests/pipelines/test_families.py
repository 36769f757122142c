"""Pipeline families as data: detection from ``model_index.json``, and each encoder read as
its pipeline reads it (``Reading.encode`` against the pipeline's own ``encode_prompt``)."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest
import torch

from textedit.encoders import COMPONENT_TOKENIZERS
from textedit.errors import ModelLoadError, SpecError
from textedit.pipelines import FAMILIES, detect_family, family_of, load_pipeline, present_components
from tiny_models import encode_prompt

PROMPT = "a photo of the mascot of acme on the beach"


@pytest.mark.parametrize("family", ["sd", "sdxl", "sd3", "flux", "qwenimage", "chroma", "pixart_sigma", "lumina2", "zimage",
                                    "flux2klein", "sana", "flux2", "hidream"])
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


def _defaults(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize("family", ["chroma", "pixart_sigma", "lumina2"])
def test_family_defaults_are_the_pipelines_own(family, pipeline_paths):
    """Steps, guidance scale and the prompt length of each entry are the pipeline's defaults."""
    pipe = load_pipeline(pipeline_paths[family], FAMILIES[family])
    data, call, encode = FAMILIES[family], _defaults(type(pipe).__call__), _defaults(pipe.encode_prompt)
    assert (data.steps, data.guidance_scale) == (call["num_inference_steps"], call["guidance_scale"])
    assert data.reading("text_encoder").max_length == call["max_sequence_length"] == encode["max_sequence_length"]
    assert all(_submodule_exists(pipe, path) for paths in data.text_projection.values() for path in paths)


def _submodule_exists(pipe, path: str) -> bool:
    component, _, rest = path.partition(".")
    return isinstance(getattr(pipe, component).get_submodule(rest), torch.nn.Module)


def _pipeline_read(pipe, family: str, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompt embeddings ``[b, T, d]`` at every position, the transformer's mask ``[b, T]``)."""
    with torch.no_grad():
        if family == "chroma":
            embeds, _, mask = pipe.encode_prompt(prompts, device="cpu", do_classifier_free_guidance=False)[:3]
        else:
            embeds, mask = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, device="cpu")[:2]
    return embeds, mask


def _assert_read_is_the_pipelines(read, embeds: torch.Tensor, mask: torch.Tensor) -> None:
    """``read`` holds, packed, exactly the states the transformer's mask leaves on, and zeros after."""
    length = read.states.shape[1]
    assert read.pooled is None and int(mask.sum(1).max()) == length and not mask[:, length:].any()
    assert torch.equal(read.mask, mask[:, :length].long())
    assert torch.equal(read.states, embeds[:, :length] * mask[:, :length, None])


def test_chroma_reads_t5_masked_and_one_padding_token(pipeline_paths):
    """Chroma calls T5 with its mask on prompts padded to 512 and un-masks one padding token
    for the transformer: ``Reading.read`` is what the transformer reads of ``encode_prompt``
    (real tokens and the first padding token) for two prompts of different lengths."""
    pipe = load_pipeline(pipeline_paths["chroma"], FAMILIES["chroma"])
    reading = FAMILIES["chroma"].reading("text_encoder")
    prompts = [PROMPT, "a red fox"]
    embeds, mask = _pipeline_read(pipe, "chroma", prompts)
    real = pipe.tokenizer(prompts, padding="longest", return_tensors="pt").attention_mask.sum(1)
    assert mask.shape[1] == 512 and torch.equal(mask.sum(1).long(), real + 1)  # one padding token read
    with torch.no_grad():
        read = reading.read(pipe.text_encoder, pipe.tokenizer, prompts)
    _assert_read_is_the_pipelines(read, embeds, mask)
    pad_state = read.states[1, int(real[1])]  # the read padding token carries a state, not zeros
    assert pad_state.norm() > 0


def test_pixart_sigma_reads_lower_cased_prompts_masked(pipeline_paths):
    """PixArt-Σ lower-cases the prompt, pads to 300 and masks T5 and the cross-attention:
    ``Reading.read`` of two prompts of different lengths is ``encode_prompt`` on the real tokens."""
    pipe = load_pipeline(pipeline_paths["pixart_sigma"], FAMILIES["pixart_sigma"])
    reading = FAMILIES["pixart_sigma"].reading("text_encoder")
    prompts = ["A Photo of the Mascot of ACME on the beach", "a red fox"]
    embeds, mask = _pipeline_read(pipe, "pixart_sigma", prompts)
    assert mask.shape[1] == 300
    with torch.no_grad():
        read = reading.read(pipe.text_encoder, pipe.tokenizer, prompts)
        cased = dataclasses.replace(reading, lowercase=False).read(pipe.text_encoder, pipe.tokenizer, prompts)
    _assert_read_is_the_pipelines(read, embeds, mask)
    assert not torch.equal(cased.states[0], read.states[0])  # lower-casing matters here


def test_lumina2_reads_gemma_penultimate_states_after_its_system_prompt(pipeline_paths):
    """Lumina 2 prefixes its system prompt and " <Prompt Start> ", pads to 256 and reads
    Gemma-2's ``hidden_states[-2]`` of every real token, system prompt included."""
    pipe = load_pipeline(pipeline_paths["lumina2"], FAMILIES["lumina2"])
    reading = FAMILIES["lumina2"].reading("text_encoder")
    assert reading.template == pipe.system_prompt + " <Prompt Start> {}" and reading.read_from == 0
    prompts = [PROMPT, "a red fox"]
    embeds, mask = _pipeline_read(pipe, "lumina2", prompts)
    assert mask.shape[1] == 256
    with torch.no_grad():
        read = reading.read(pipe.text_encoder, pipe.tokenizer, prompts)
        last = dataclasses.replace(reading, hidden_state=-1).read(pipe.text_encoder, pipe.tokenizer, prompts)
    _assert_read_is_the_pipelines(read, embeds, mask)
    system = len(pipe.tokenizer(reading.template.split("{}")[0]).input_ids)
    assert int(mask[1].sum()) > system  # the system prompt's tokens are read with the prompt's
    assert not torch.allclose(last.states, read.states)  # the penultimate layer, not the last


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


def test_flux2_is_read_after_its_system_message_at_three_layers_and_every_padded_position(pipeline_paths):
    """FLUX.2 [dev]'s entry is its pipeline's data (the system message, layers 10, 20, 30 of
    Mistral 3, 512 tokens, the chat template without a generation prompt, tokenized without
    adding a second BOS), and ``Reading.read`` of two prompts of different lengths is its
    ``encode_prompt``: the three layers' states concatenated per token, at all 512 positions."""
    pipe = load_pipeline(pipeline_paths["flux2"], FAMILIES["flux2"])
    reading = FAMILIES["flux2"].reading("text_encoder")
    defaults = inspect.signature(pipe.encode_prompt).parameters
    assert defaults["text_encoder_out_layers"].default == reading.hidden_state == reading.read_layers
    assert defaults["max_sequence_length"].default == pipe.tokenizer_max_length == reading.max_length
    assert reading.system_message == pipe.system_message
    assert pipe.text_encoder.config.text_config.num_hidden_layers > max(reading.read_layers)
    template = reading.for_tokenizer(pipe.tokenizer).template
    assert template == f"<s>[SYSTEM_PROMPT]{pipe.system_message}[/SYSTEM_PROMPT][INST]{{}}[/INST]"
    ids, _ = reading.tokenize(pipe.tokenizer, [PROMPT])
    assert ids[0, :2].tolist() == [pipe.tokenizer.bos_token_id, pipe.tokenizer.convert_tokens_to_ids("[SYSTEM_PROMPT]")]
    prompts = [PROMPT, "a red fox"]
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(list(prompts), device="cpu")
        read = reading.read(pipe.text_encoder, pipe.tokenizer, prompts)
    width = pipe.text_encoder.config.text_config.hidden_size
    assert embeds.shape == (2, reading.max_length, 3 * width)
    assert read.pooled is None and torch.equal(read.mask, torch.ones(2, reading.max_length, dtype=torch.long))
    torch.testing.assert_close(read.states, embeds, rtol=0, atol=1e-5)
    assert not torch.allclose(read.states[0, -1], read.states[1, -1])  # the padding's states are read, per prompt
    with torch.no_grad():  # the second BOS a plain tokenizer call would add changes what is read
        doubled = dataclasses.replace(reading, add_special_tokens=True).read(pipe.text_encoder, pipe.tokenizer, prompts)
    assert not torch.allclose(doubled.states, embeds)


def test_hidream_reads_two_pooled_clips_t5_and_every_llama_layer_stacked(pipeline_paths):
    """HiDream's four readings are its ``encode_prompt``, for two prompts of different lengths:
    the two CLIPs' projected pooled vectors concatenated, T5's last states at all 128 positions,
    and Llama's ``hidden_states[1:]`` (every layer's output) stacked on a leading layer axis,
    ``[L, b, T, d]``, which ``Reading.read`` keeps per token as ``[b, T, L, d]``."""
    pipe = load_pipeline(pipeline_paths["hidream"], FAMILIES["hidream"])
    family = FAMILIES["hidream"]
    llama = family.reading("text_encoder_4")
    assert inspect.signature(pipe.encode_prompt).parameters["max_sequence_length"].default == 128
    assert all(r.max_length == 128 for r in family.readings.values())
    assert llama.read_layers == tuple(range(1, pipe.text_encoder_4.config.num_hidden_layers + 1))  # hidden_states[1:]
    assert llama.outputs() == ("per-token states (hidden_states[1..32], stacked)",)
    prompts = [PROMPT, "a red fox"]
    with torch.no_grad():
        t5, _, stacked, _, pooled, _ = pipe.encode_prompt(prompts, device="cpu", do_classifier_free_guidance=False)
        read = {c: family.reading(c).read(getattr(pipe, c), getattr(pipe, COMPONENT_TOKENIZERS[c]), prompts)
                for c in family.components}
    assert read["text_encoder"].states is None and read["text_encoder_2"].states is None
    assert torch.equal(torch.cat([read["text_encoder"].pooled, read["text_encoder_2"].pooled], dim=-1), pooled)
    assert read["text_encoder_3"].pooled is None and torch.equal(read["text_encoder_3"].mask, torch.ones(2, 128).long())
    torch.testing.assert_close(read["text_encoder_3"].states, t5, rtol=0, atol=1e-5)
    assert stacked.shape == (32, 2, 128, pipe.text_encoder_4.config.hidden_size)
    assert read["text_encoder_4"].states.shape == (2, 128, 32, pipe.text_encoder_4.config.hidden_size)
    torch.testing.assert_close(read["text_encoder_4"].states.permute(2, 0, 1, 3), stacked, rtol=0, atol=1e-5)
    ids, mask = llama.tokenize(pipe.tokenizer_4, prompts)
    assert ids[0, 0] == pipe.tokenizer_4.bos_token_id and mask[1].sum() < mask[0].sum() < 128
    assert (ids[1][mask[1] == 0] == pipe.tokenizer_4.eos_token_id).all()  # padded with the EOS, as the pipeline sets


def test_a_processor_reads_as_its_tokenizer(pipeline_paths):
    """The real FLUX.2 holds a ``PixtralProcessor``: a processor is read through its tokenizer
    (here a ``CLIPProcessor`` around SD's CLIP tokenizer, the processor textedit can build
    without torchvision)."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    pipe = load_pipeline(pipeline_paths["sd"], FAMILIES["sd"])
    reading = FAMILIES["sd"].reading("text_encoder")
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=pipe.tokenizer)
    with torch.no_grad():
        plain = reading.read(pipe.text_encoder, pipe.tokenizer, [PROMPT, "a red fox"])
        wrapped = reading.read(pipe.text_encoder, processor, [PROMPT, "a red fox"])
    assert torch.equal(plain.states, wrapped.states)


@pytest.mark.parametrize("family, component", [("zimage", "text_encoder"), ("flux2klein", "text_encoder"),
                                               ("flux2", "text_encoder"), ("hidream", "text_encoder_4")])
def test_a_pipeline_encoder_loads_as_the_class_the_pipeline_holds(family, component, pipeline_paths):
    """``apply --pipeline-path`` edits the encoder as the pipeline holds it: FLUX.2 Klein's
    ``Qwen3ForCausalLM`` and HiDream's ``LlamaForCausalLM`` with their LM heads, FLUX.2's whole
    ``Mistral3ForConditionalGeneration`` (its language model's blocks, not the vision tower's),
    Z-Image's bare ``Qwen3Model``, so that module names and fingerprints match the pipeline's
    component (a patch made on one applies to the other)."""
    from textedit.encoders import adapter_for
    from textedit.pipelines import load_pipeline_encoder

    path = pipeline_paths[family]
    adapter = load_pipeline_encoder(path, component, FAMILIES[family])
    pipe = load_pipeline(path, FAMILIES[family])
    encoder = getattr(pipe, component)
    assert type(adapter.model) is type(encoder)
    assert type(adapter.model).__name__ == {"zimage": "Qwen3Model", "flux2klein": "Qwen3ForCausalLM",
                                            "flux2": "Mistral3ForConditionalGeneration",
                                            "hidream": "LlamaForCausalLM"}[family]
    assert adapter.fingerprint() == adapter_for(encoder, None).fingerprint()
    assert adapter.down_proj_name(0) in dict(encoder.named_modules())
    assert adapter.num_layers == encoder.config.get_text_config().num_hidden_layers
    if family == "flux2":
        assert adapter.down_proj_name(0) == "model.language_model.layers.0.mlp.down_proj"
    if family == "hidream":  # saved without a padding token, as Llama 3.1's: padded with its EOS, as the pipeline does
        assert adapter.tokenizer.pad_token == adapter.tokenizer.eos_token == "<|eot_id|>"
        assert adapter.tokenize(["a red fox", PROMPT]).input_ids[0, -1] == adapter.tokenizer.eos_token_id


def test_sana_reads_bos_and_the_last_positions_behind_its_instruction(pipeline_paths):
    """Sana's entry is its pipeline's data (the default complex human instruction before the
    lower-cased prompt, padded on the right to the instruction's own token count + 300 − 2,
    BOS and the last 299 positions read, its steps and guidance), resolved per tokenizer; and
    ``Reading.read`` of three prompts (mixed case, short, and one past the length) is exactly
    what its ``encode_prompt`` hands the transformer under its mask."""
    pipe = load_pipeline(pipeline_paths["sana"], FAMILIES["sana"])
    data, call, encode = FAMILIES["sana"], _defaults(type(pipe).__call__), _defaults(pipe.encode_prompt)
    reading = data.reading("text_encoder")
    instruction = "\n".join(call["complex_human_instruction"])
    assert reading.template == instruction + "{}" and reading.lowercase and reading.padding_side == "right"
    assert (data.steps, data.guidance_scale) == (call["num_inference_steps"], call["guidance_scale"])
    length = call["max_sequence_length"]
    assert length == encode["max_sequence_length"] == reading.max_length + 2 == reading.read_last + 1
    assert all(_submodule_exists(pipe, path) for paths in data.text_projection.values() for path in paths)
    resolved = reading.for_tokenizer(pipe.tokenizer)
    assert resolved.max_length == len(pipe.tokenizer.encode(instruction)) + length - 2
    assert (resolved.read_first, resolved.read_from, resolved.read_last) == (1, resolved.max_length - length + 1, None)

    prompts = ["A Photo of the Mascot of ACME on the beach", "a red fox", "a red fox on the grass " * 60]
    with torch.no_grad():
        embeds, mask = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, device="cpu",
                                          complex_human_instruction=call["complex_human_instruction"])[:2]
        read = reading.read(pipe.text_encoder, pipe.tokenizer, prompts)
        cased = dataclasses.replace(reading, lowercase=False).read(pipe.text_encoder, pipe.tokenizer, prompts)
    assert embeds.shape[1] == mask.shape[1] == length and mask[2].all()  # the long prompt fills the window
    assert mask[1].sum() < mask[0].sum() < length
    _assert_read_is_the_pipelines(read, embeds, mask)
    # the window starts at the prompt's first token: BOS, then "a" (the instruction's "▁" joins it)
    ids, _ = reading.tokenize(pipe.tokenizer, prompts)
    assert ids[0, 0] == pipe.tokenizer.bos_token_id and pipe.tokenizer.decode(ids[0, resolved.read_from]).strip() == "a"
    assert not torch.equal(cased.states[0], read.states[0])  # lower-casing matters here


def test_reading_fields_that_depend_on_the_tokenizer_are_resolved_before_use():
    """A reading counted in tokens of its template cannot give its consumer before it meets
    a tokenizer; fields that contradict each other are refused when the data is written."""
    from textedit.pipelines.families import Reading

    sana = FAMILIES["sana"].reading("text_encoder")
    with pytest.raises(ValueError, match="needs its tokenizer"):
        sana.consumer
    with pytest.raises(ValueError, match="padded to max_length on the right"):
        dataclasses.replace(sana, padding_side=None)
    with pytest.raises(ValueError, match="padded to max_length on the right"):
        dataclasses.replace(sana, padding="longest")
    with pytest.raises(ValueError, match="read_first"):
        Reading(hidden_state=-1, pooled=False, max_length=8, read_first=2, read_from=1)
    with pytest.raises(ValueError, match="padded on the right"):
        Reading(hidden_state=-1, pooled=False, max_length=8, padding_side="left")


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "sd2"])
def test_the_padding_side_a_family_names_is_the_one_its_pipeline_sets(family, pipeline_paths):
    """A pipeline that sets its tokenizers' padding side (Sana, Lumina 2: right) says so in its
    readings; the others leave the tokenizer as it is (the tiny ones pad on the left where
    their model's own do: Qwen2, Gemma)."""
    from textedit.encoders import COMPONENT_TOKENIZERS

    loaded = load_pipeline(pipeline_paths[family], FAMILIES[family])
    tokenizers = {c: getattr(loaded, COMPONENT_TOKENIZERS[c]) for c in FAMILIES[family].components}
    for tokenizer in tokenizers.values():
        tokenizer.padding_side = "left"
    pipe = type(loaded)(**loaded.components)  # built anew: Lumina 2 sets the side when built, Sana when encoding
    encode_prompt(pipe, family, PROMPT)
    for component, tokenizer in tokenizers.items():
        sets_right = tokenizer.padding_side == "right"
        assert (FAMILIES[family].reading(component).padding_side == "right") == sets_right, component
