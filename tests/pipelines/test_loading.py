"""One loader for whole pipelines (verify, learn-anchor) and one for an encoder as its
pipeline reads it: dtypes per device, one-line errors, the encoders a pipeline holds."""

from __future__ import annotations

import json

import pytest
import torch

from textedit.encoders import COMPONENT_TOKENIZERS
from textedit.errors import ModelLoadError, SpecError
from textedit.pipelines import (FAMILIES, load_pipeline, load_pipeline_encoder, pipeline_text_encoders,
                                resolve_dtype)


def test_resolve_dtype_per_device_and_name():
    sd, flux = FAMILIES["sd"], FAMILIES["flux"]
    assert resolve_dtype(None, "cpu", sd) == resolve_dtype(None, "cpu", flux) == torch.float32
    assert resolve_dtype(None, "cuda", sd) == torch.float16 and resolve_dtype(None, "cuda:1", flux) == torch.bfloat16
    assert resolve_dtype("bf16", "cpu", sd) == torch.bfloat16
    with pytest.raises(SpecError, match="unknown dtype 'float8'"):
        resolve_dtype("float8", "cpu", sd)


def test_load_pipeline_in_the_dtype_asked_for_and_quietly(pipeline_paths):
    """The family's class, float32 on the CPU by default, and diffusers' logging as it was."""
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    pipe = load_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"])
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    assert pipe.text_encoder.dtype == pipe.text_encoder_2.dtype == pipe.unet.dtype == torch.float32
    assert diffusers_logging.get_verbosity() == verbosity
    half = load_pipeline(pipeline_paths["sd"], FAMILIES["sd"], dtype=torch.bfloat16)
    assert half.text_encoder.dtype == half.unet.dtype == torch.bfloat16


def test_load_pipeline_errors_are_one_line(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ModelLoadError, match=r"cannot load Stable Diffusion 1.x pipeline") as caught:
        load_pipeline(tmp_path, FAMILIES["sd"])
    assert "\n" not in str(caught.value)


def test_load_pipeline_encoder_reads_as_the_pipeline(pipeline_paths):
    """Each encoder pads as its pipeline does (SD3's T5 to 256, no mask) and reads its hidden state."""
    t5 = load_pipeline_encoder(pipeline_paths["sd3"], "text_encoder_3", FAMILIES["sd3"])
    assert t5.tokenize(["a fox"]).input_ids.shape[1] == 256
    assert t5.consumer == FAMILIES["sd3"].readings["text_encoder_3"].consumer
    clip_g = load_pipeline_encoder(pipeline_paths["sdxl"], "text_encoder_2", FAMILIES["sdxl"])
    assert clip_g.hidden_state_index == -2 and clip_g.name.endswith(":text_encoder_2")
    pooled_only = load_pipeline_encoder(pipeline_paths["flux"], "text_encoder", FAMILIES["flux"])
    assert pooled_only.hidden_state_index == -1  # FLUX reads no per-token states of its CLIP
    with pytest.raises(SpecError, match="unknown component 'unet'"):
        load_pipeline_encoder(pipeline_paths["sd"], "unet", FAMILIES["sd"])
    with pytest.raises(SpecError, match="have no text encoder 'text_encoder_2'"):
        load_pipeline_encoder(pipeline_paths["sd"], "text_encoder_2", FAMILIES["sd"])


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_pipeline_text_encoders_in_family_order(family, pipeline_paths):
    pipe = load_pipeline(pipeline_paths[family], FAMILIES[family])
    found = pipeline_text_encoders(pipe, FAMILIES[family])
    assert [c for c, _, _ in found] == FAMILIES[family].components
    assert all(tokenizer is getattr(pipe, COMPONENT_TOKENIZERS[c]) and encoder is getattr(pipe, c)
               for c, tokenizer, encoder in found)
    pipe.text_encoder = None  # a pipeline without one of its encoders lists the others
    assert [c for c, _, _ in pipeline_text_encoders(pipe, FAMILIES[family])] == FAMILIES[family].components[1:]
