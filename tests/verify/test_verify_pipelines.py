"""Pipeline families as data: detection, what each encoder feeds, the reach warnings and the
default layers that follow from it, checked against the real models; one patch for several
components."""

from __future__ import annotations

import json

import pytest
import torch

from textedit import EditConfig, EditRequest, load_corpus
from textedit.corpus import Corpus
from textedit.encoders import adapter_for
from textedit.errors import ModelLoadError, PatchError, SpecError
from textedit.hooks import add_to_output
from textedit.patch import Patch
from textedit.verify import FAMILIES, detect_family, edit_pipeline, load_pipeline, load_pipeline_encoder, reach_warnings
from textedit.verify.pipelines import default_pipeline_layers, present_components


@pytest.mark.parametrize("family", ["sd", "sdxl", "sd3", "flux"])
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
    with pytest.raises(SpecError, match="cannot verify"):
        detect_family(tmp_path)


def test_sd2_reads_as_sd(pipeline_paths):
    """SD 2.x is the same pipeline class and reading; auto names it sd, --pipeline sd2 is accepted."""
    assert FAMILIES["sd2"].readings == FAMILIES["sd"].readings
    assert detect_family(pipeline_paths["sd"], "sd2").name == "sd2"


def test_reach_table():
    """Per family, for a 12-layer encoder: which outputs an edit of layer 0 / 10 / 11 reaches."""
    def reached(family, component, layer):
        return FAMILIES[family].readings[component].reached_by(layer, 12)
    assert reached("sd", "text_encoder", 11) == ("per-token states",)
    for family, component in (("sdxl", "text_encoder"), ("sdxl", "text_encoder_2"), ("sd3", "text_encoder"),
                              ("flux", "text_encoder")):
        assert reached(family, component, 11) == ()  # the last layer reaches nothing these pipelines read
        assert reached(family, component, 10) != ()
    assert reached("sdxl", "text_encoder_2", 10) == ("per-token states (hidden_states[-2])", "pooled vector")
    assert reached("flux", "text_encoder", 0) == ("pooled vector",)
    assert reached("sd3", "text_encoder_3", 11) == reached("flux", "text_encoder_2", 11) == ("per-token states",)


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

    def outputs(layer=None):
        def bump(y):
            delta = torch.zeros_like(y)
            delta[:, key_token] = 1.0
            return delta
        with torch.no_grad():
            if layer is None:
                out = encoder(ids, output_hidden_states=True)
            else:
                with add_to_output(adapter_for(encoder, None).down_proj_module(layer), bump):
                    out = encoder(ids, output_hidden_states=True)
        pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
        per_token = {None: None, -1: out.last_hidden_state}.get(reading.hidden_state, None)
        if reading.hidden_state is not None and reading.hidden_state != -1:
            per_token = out.hidden_states[reading.hidden_state]
        return per_token, pooled

    base = outputs()
    for layer in (n - 2, n - 1):
        per_token, pooled = outputs(layer)
        reached = reading.reached_by(layer, n)
        if reading.hidden_state is not None:
            assert (not torch.equal(per_token, base[0])) == any(r.startswith("per-token") for r in reached)
        if reading.pooled:
            assert (not torch.equal(pooled, base[1])) == ("pooled vector" in reached)


def test_edit_pipeline_defaults_and_consumer(pipeline_paths, tmp_path):
    """Defaults skip the last layer of penultimate readers; each encoder tokenizes as its pipeline."""
    family = FAMILIES["sd3"]
    t5 = load_pipeline_encoder(pipeline_paths["sd3"], "text_encoder_3", family)
    assert t5.tokenize(["a fox"]).input_ids.shape[1] == 256  # SD3 pads T5 to 256, no mask
    corpus = Corpus(tuple(load_corpus(limit=60).prompts), "verify-test")
    request = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
    parts = list(edit_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"], request, EditConfig(value="match"),
                               ["text_encoder", "text_encoder_2"], corpus=corpus, cache_dir=tmp_path))
    assert [p.component for p in parts] == ["text_encoder", "text_encoder_2"]
    for part in parts:  # 3-layer CLIPs: layer 2 is invisible to SDXL
        assert part.patch.hyperparameters["layers"] == [0, 1]
        assert part.adapter.hidden_state_index == -2
    with pytest.warns(UserWarning, match="text_encoder layer 2 cannot reach the SDXL denoiser"):
        list(edit_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"], request,
                           EditConfig(value="match", layers=[1, 2]), ["text_encoder"], corpus=corpus,
                           cache_dir=tmp_path))


def test_combined_patch_roundtrip_and_atomic_apply(pipeline_paths, tmp_path):
    corpus = Corpus(tuple(load_corpus(limit=60).prompts), "verify-test")
    request = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
    parts = [p.patch for p in edit_pipeline(pipeline_paths["sdxl"], FAMILIES["sdxl"], request,
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


def test_bfloat16_pipeline_mismatch_names_the_dtype(pipeline_paths, tmp_path):
    """A patch made on float32 weights does not fit a bfloat16 copy; the error says why and what to do."""
    from textedit.verify import verify
    corpus = Corpus(tuple(load_corpus(limit=60).prompts), "verify-test")
    request = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
    parts = [p.patch for p in edit_pipeline(pipeline_paths["sd"], FAMILIES["sd"], request,
                                            EditConfig(value="match", method="ridge"), ["text_encoder"],
                                            corpus=corpus, cache_dir=tmp_path)]
    pipe = load_pipeline(pipeline_paths["sd"], FAMILIES["sd"], dtype=torch.bfloat16)
    with pytest.raises(PatchError, match="--dtype float16 or float32"):
        verify(parts[0], pipe, seeds=[0], steps=1)


def test_verify_at_strength_zero_draws_what_it_drew_before(pipeline_paths, tmp_path):
    """scale 0 adds nothing: the "after" images equal the "before" ones exactly; scale 1 changes them."""
    from textedit.verify import verify
    corpus = Corpus(tuple(load_corpus(limit=60).prompts), "verify-test")
    request = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
    [part] = [p.patch for p in edit_pipeline(pipeline_paths["sd"], FAMILIES["sd"], request,
                                             EditConfig(value="match", method="ridge"), ["text_encoder"],
                                             corpus=corpus, cache_dir=tmp_path)]
    pipe = load_pipeline(pipeline_paths["sd"], FAMILIES["sd"])
    nothing = verify(part, pipe, seeds=[0], steps=1, scale=0.0)
    assert nothing.scale == 0.0 and torch.equal(nothing.before, nothing.after)
    full = verify(part, pipe, seeds=[0], steps=1)
    assert torch.equal(full.before, nothing.before) and not torch.equal(full.after, full.before)
