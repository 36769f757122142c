"""The reach rule (which outputs an edit of a layer changes, checked against the real
encoders), its warnings, the default pipeline layers, and the layers a patch edits."""

from __future__ import annotations

import pytest
import torch

from textedit import EditConfig, EditRequest, edit
from textedit.encoders import adapter_for
from textedit.errors import PatchError, SpecError
from textedit.hooks import add_to_output
from textedit.pipelines import (FAMILIES, default_pipeline_layers, edited_layers, load_pipeline,
                                load_pipeline_encoder, reach_warnings)
from textedit.pipelines.families import Family, Reading
from textedit.pipelines.reach import deepest_read, fully_visible_layers, reached_by


def test_reach_table():
    """Per family, for a 12-layer encoder: which outputs an edit of layer 0 / 10 / 11 reaches."""
    def reached(family, component, layer):
        return reached_by(FAMILIES[family].readings[component], layer, 12)
    assert reached("sd", "text_encoder", 11) == ("per-token states",)
    for family, component in (("sdxl", "text_encoder"), ("sdxl", "text_encoder_2"), ("sd3", "text_encoder"),
                              ("flux", "text_encoder")):
        assert reached(family, component, 11) == ()  # the last layer reaches nothing these pipelines read
        assert reached(family, component, 10) != ()
    assert reached("sdxl", "text_encoder_2", 10) == ("per-token states (hidden_states[-2])", "pooled vector")
    assert reached("flux", "text_encoder", 0) == ("pooled vector",)
    assert reached("sd3", "text_encoder_3", 11) == reached("flux", "text_encoder_2", 11) == ("per-token states",)
    assert fully_visible_layers(FAMILIES["sdxl"].readings["text_encoder_2"], 12) == list(range(11))
    assert fully_visible_layers(FAMILIES["sd"].readings["text_encoder"], 12) == list(range(12))


def test_reach_warnings_name_the_problem():
    sdxl = reach_warnings(FAMILIES["sdxl"], {"text_encoder": ([9, 10], 12), "text_encoder_2": ([11], 12)})
    assert len(sdxl) == 1 and "text_encoder_2 layer 11 cannot reach the SDXL denoiser" in sdxl[0]
    assert "hidden_states[-2]" in sdxl[0] and "EOS" in sdxl[0]
    flux = reach_warnings(FAMILIES["flux"], {"text_encoder": ([2, 3], 12), "text_encoder_2": ([11], 24)})
    assert len(flux) == 1 and "reads only the pooled vector of text_encoder" in flux[0]
    assert "text_encoder_2" in flux[0]  # where to edit instead
    assert reach_warnings(FAMILIES["sd"], {"text_encoder": ([11], 12)}) == []
    assert reach_warnings(FAMILIES["sd3"], {"text_encoder_3": ([23], 24)}) == []


def test_default_layers_never_unseen():
    penultimate = FAMILIES["sdxl"].readings["text_encoder_2"]
    assert default_pipeline_layers([0, 1, 2], penultimate, 3) == [0, 1]
    assert default_pipeline_layers([2], penultimate, 3) == [1]  # falls back to the deepest visible layer
    assert default_pipeline_layers([5, 6, 7, 8, 9, 10, 11], penultimate, 12) == [5, 6, 7, 8, 9, 10]
    assert default_pipeline_layers([0, 1, 2], FAMILIES["sd"].readings["text_encoder"], 3) == [0, 1, 2]
    with pytest.raises(SpecError, match="no layer"):
        default_pipeline_layers([0], penultimate, 1)


@pytest.mark.parametrize("family, component", [("sdxl", "text_encoder_2"), ("flux", "text_encoder"),
                                               ("sd", "text_encoder")])
def test_reach_model_matches_the_real_encoder(family, component, pipeline_paths):
    """Perturb the MLP output of one layer at one token and see which outputs move, exactly."""
    pipe = load_pipeline(pipeline_paths[family], FAMILIES[family])
    encoder = getattr(pipe, component)
    n = encoder.config.num_hidden_layers
    reading = FAMILIES[family].readings[component]
    ids = pipe.tokenizer(["a photo of the mascot of acme on the beach"], padding="max_length", max_length=77,
                         return_tensors="pt").input_ids
    key_token = 7  # "acme"
    base = encode_bumped(reading, encoder, ids, None)
    for layer in (n - 2, n - 1):
        per_token, pooled = encode_bumped(reading, encoder, ids, None, layer, key_token)
        reached = reached_by(reading, layer, n)
        if reading.hidden_state is not None:
            assert (not torch.equal(per_token, base[0])) == any(r.startswith("per-token") for r in reached)
        if reading.pooled:
            assert (not torch.equal(pooled, base[1])) == ("pooled vector" in reached)


def encode_bumped(reading, encoder, ids, mask, layer=None, key_token=0):
    """``reading.encode`` (what the pipeline reads: checked in test_families.py), with 1 added
    to every channel of layer ``layer``'s MLP output at ``key_token`` (none: unperturbed)."""
    def bump(y):
        delta = torch.zeros_like(y)
        delta[:, key_token] = 1.0
        return delta
    with torch.no_grad():
        if layer is None:
            return reading.encode(encoder, ids, mask)
        with add_to_output(adapter_for(encoder, None).down_proj_module(layer), bump):
            return reading.encode(encoder, ids, mask)


def test_edited_layers_of_a_patch_on_a_pipeline(pipeline_paths, bert):
    """Per component: the patch's layers and the pipeline encoder's depth; a bare-encoder patch is refused."""
    request = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
    config = EditConfig(value="match", method="ridge", layers=[0, 2])
    encoder = load_pipeline_encoder(pipeline_paths["sdxl"], "text_encoder_2", FAMILIES["sdxl"])
    patch = edit(encoder, request, config, component="text_encoder_2")
    pipe = load_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"])
    assert edited_layers(patch, pipe) == {"text_encoder_2": ([0, 2], encoder.num_layers)}
    assert reach_warnings(FAMILIES["sdxl"], edited_layers(patch, pipe))[0].startswith(
        "text_encoder_2 layer 2 cannot reach")
    bare = edit(bert, request, EditConfig(value="match", method="ridge", layers=[0]))
    with pytest.raises(PatchError, match="made on a bare encoder"):
        edited_layers(bare, pipe)
    with pytest.raises(PatchError, match="no component 'text_encoder_2'"):
        edited_layers(patch, load_pipeline(pipeline_paths["sd"], FAMILIES["sd"]))


def test_several_read_layers_are_reached_up_to_the_deepest():
    """FLUX.2 Klein reads hidden_states 9, 18 and 27 concatenated: hidden_states[k] is the output of
    layer k − 1, so an edit reaches the conditioning up to layer 26 and never from layer 27 on;
    the warning names what is read and where the edit stops counting."""
    stacked = Reading(hidden_state=(9, 18, 27), pooled=False, max_length=512, attention_mask=True)
    assert stacked.read_layers == (9, 18, 27) and deepest_read(stacked, 36) == 26
    assert reached_by(stacked, 26, 36) == ("per-token states (hidden_states[9] + hidden_states[18] + "
                                           "hidden_states[27])",)
    assert reached_by(stacked, 27, 36) == ()
    assert fully_visible_layers(stacked, 36) == list(range(27))
    family = Family("klein-like", "Pipeline", {"text_encoder": stacked}, "Klein-like", steps=4, guidance_scale=1.0,
                    accelerator_dtype=torch.bfloat16)
    [message] = reach_warnings(family, {"text_encoder": ([20, 30], 36)})
    assert "text_encoder layer 30 cannot reach the Klein-like denoiser" in message
    assert "computed by layers ≤ 26" in message


@pytest.mark.parametrize("family, component", [("flux2", "text_encoder"), ("hidream", "text_encoder_4")])
def test_reach_of_several_read_layers_matches_the_real_encoder(family, component, pipeline_paths):
    """FLUX.2 reads Mistral's hidden_states 10, 20 and 30 concatenated per token, HiDream every
    Llama layer's output stacked on a layer axis: perturbing the MLP output of layer l at one
    token moves the read states iff l ≤ deepest_read, and, read layer by read layer,
    hidden_states[h] iff l ≤ h − 1 (in HiDream's stack: exactly the entries from l on)."""
    from textedit.encoders import COMPONENT_TOKENIZERS

    pipe = load_pipeline(pipeline_paths[family], FAMILIES[family])
    encoder, tokenizer = getattr(pipe, component), getattr(pipe, COMPONENT_TOKENIZERS[component])
    reading = FAMILIES[family].readings[component]
    adapter = adapter_for(encoder, None)
    n = adapter.num_layers
    ids, mask = reading.tokenize(tokenizer, ["a photo of the mascot of acme on the beach"])
    key_token = int(mask[0].sum()) - 2  # a token of the prompt

    def read(layer=None) -> list[torch.Tensor]:
        """The read states, one tensor per read layer."""
        states, _ = encode_bumped(reading, encoder, ids, mask, layer, key_token)
        if reading.layers == "stacked":
            return list(states.unbind(dim=2))
        return list(states.chunk(len(reading.read_layers), dim=-1))

    base = read()
    deepest = deepest_read(reading, n)
    assert deepest == {"flux2": 29, "hidream": n - 1}[family]
    for layer in sorted({0, deepest - 1, deepest, min(deepest + 1, n - 1)}):
        moved = read(layer)
        for h, before, after in zip(reading.read_layers, base, moved):
            assert (not torch.equal(before, after)) == (layer <= h - 1), (layer, h)
        assert any(not torch.equal(b, a) for b, a in zip(base, moved)) == bool(reached_by(reading, layer, n))
    if family == "hidream":  # every layer reaches the stack: nothing to warn about, every layer a default
        assert fully_visible_layers(reading, n) == list(range(n))
        assert reach_warnings(FAMILIES["hidream"], {component: ([n - 1], n)}) == []
    else:
        [message] = reach_warnings(FAMILIES["flux2"], {component: ([30], n)})
        assert "layer 30 cannot reach the FLUX.2 [dev] denoiser" in message and "layers ≤ 29" in message
