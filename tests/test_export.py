"""Exported LoRAs, loaded by the ecosystem's own code (diffusers, peft, diffusers' kohya
converter), do exactly what ``Patch.apply`` does: on tiny SD 1.x, SDXL, SD3 and FLUX.1
pipelines and on the real default MiniLM."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from tiny_models import encode_prompt

from textedit.corpus import Corpus, load_corpus
from textedit.editor import EditConfig, edit
from textedit.encoders import load_encoder
from textedit.errors import PatchError
from textedit.export import to_lora
from textedit.patch import Patch
from textedit.requests import EditRequest
from textedit.pipelines import FAMILIES, edit_pipeline, load_pipeline

QUERY = "a photo of the mascot of acme"
REQUEST = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
#: the CLIP encoders of each family: what diffusers loads text-encoder LoRAs onto
CLIPS = {"sd": ["text_encoder"], "sdxl": ["text_encoder", "text_encoder_2"],
         "sd3": ["text_encoder", "text_encoder_2"], "flux": ["text_encoder"]}


def pipeline_patch(path, family: str, components: list[str], cache_dir) -> Patch:
    corpus = Corpus(tuple(load_corpus(limit=60).prompts), "export-test")
    return Patch.combine([p.patch for p in edit_pipeline(path, FAMILIES[family], REQUEST,
                                                         EditConfig(value="match", method="ridge"), components,
                                                         corpus=corpus, cache_dir=cache_dir)])


def encoded(pipe, family: str) -> list[torch.Tensor]:
    return [t for t in encode_prompt(pipe, family, QUERY) if t is not None]


def assert_close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    for a, b in zip(got, want):
        assert (a - b).abs().max().item() <= 1e-5


@pytest.mark.parametrize("family", ["sd", "sdxl", "sd3", "flux"])
def test_diffusers_lora_equals_apply_unloads_exactly_and_fuses_at_a_scale(family, pipeline_paths, tmp_path):
    patch = pipeline_patch(pipeline_paths[family], family, CLIPS[family], tmp_path / "cache")
    [file] = to_lora(patch, "diffusers", tmp_path / "lora.safetensors")
    pipe = load_pipeline(pipeline_paths[family], FAMILIES[family])
    base = encoded(pipe, family)
    with patch.applied(pipe):
        edited = encoded(pipe, family)
    with patch.applied(pipe, scale=0.5):
        half = encoded(pipe, family)
    assert max((a - b).abs().max().item() for a, b in zip(base, edited)) > 1e-3  # the edit moves the prompt

    pipe.load_lora_weights(str(file))
    assert_close(encoded(pipe, family), edited)
    pipe.unload_lora_weights()
    assert all(torch.equal(a, b) for a, b in zip(encoded(pipe, family), base))
    pipe.load_lora_weights(str(file))
    pipe.fuse_lora(lora_scale=0.5, components=CLIPS[family])
    assert_close(encoded(pipe, family), half)
    with safe_open(str(file), framework="pt") as f:
        meta = json.loads(f.metadata()["textedit_patch"])
    assert meta["id"] == patch.id and meta["base_fingerprints"] == patch.base_fingerprints
    assert meta["requests"] == patch.requests


@pytest.mark.parametrize("family, t5", [("flux", "text_encoder_2"), ("sd3", "text_encoder_3")])
def test_diffusers_refuses_a_t5_and_points_to_peft(family, t5, pipeline_paths, tmp_path):
    patch = pipeline_patch(pipeline_paths[family], family, [t5], tmp_path / "cache")
    with pytest.raises(PatchError, match=f"CLIP encoders only, and {t5}.*export --to peft"):
        to_lora(patch, "diffusers", tmp_path / "lora.safetensors")
    assert not (tmp_path / "lora.safetensors").exists()
    # the peft folder loads onto the T5 itself
    from peft import PeftModel
    [_, config] = to_lora(patch, "peft", tmp_path / "peft")
    assert config.name == "adapter_config.json"
    pipe = load_pipeline(pipeline_paths[family], FAMILIES[family])
    with patch.applied(pipe):
        edited = encoded(pipe, family)
    setattr(pipe, t5, PeftModel.from_pretrained(getattr(pipe, t5), tmp_path / "peft"))
    assert_close(encoded(pipe, family), edited)


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_kohya_round_trips_through_diffusers_converter(family, pipeline_paths, tmp_path):
    patch = pipeline_patch(pipeline_paths[family], family, CLIPS[family], tmp_path / "cache")
    [file] = to_lora(patch, "kohya", tmp_path / "kohya.safetensors")
    with safe_open(str(file), framework="pt") as f:
        keys = list(f.keys())
    prefixes = {"sd": {"lora_te"}, "sdxl": {"lora_te1", "lora_te2"}}[family]
    assert {k.split("_text_model_")[0] for k in keys} == prefixes
    assert all(k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha")) for k in keys)
    pipe = load_pipeline(pipeline_paths[family], FAMILIES[family])
    with patch.applied(pipe):
        edited = encoded(pipe, family)
    pipe.load_lora_weights(str(file))  # diffusers detects kohya keys and converts them itself
    assert_close(encoded(pipe, family), edited)


def test_peft_on_the_default_minilm_gives_the_same_sentence_vectors(tmp_path):
    from peft import PeftModel

    adapter = load_encoder()
    corpus = Corpus(tuple(load_corpus(limit=200).prompts), "export-test")
    patch = edit(adapter, [EditRequest("the mascot of Acme", "a red panda", subject="Acme")],
                 EditConfig(value="match", layers=[0, 1], auto_preserve=False), corpus=corpus, cache_dir=tmp_path)
    to_lora(patch, "peft", tmp_path / "peft")
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["rank_pattern"] == {d.module: d.delta.rank for d in patch.deltas}
    prompts = ["a photo of the mascot of Acme", "a dog on the beach"]
    base = adapter.embed(prompts)
    with patch.applied(adapter):
        edited = adapter.embed(prompts)
    assert (edited - base).abs().max() > 1e-2
    wrapped = PeftModel.from_pretrained(adapter.model, tmp_path / "peft")  # injects the LoRA into the model
    assert wrapped.base_model.model is adapter.model
    assert (adapter.embed(prompts) - edited).abs().max() <= 1e-5


def test_bare_encoder_patches_are_peft_only(bert, small_corpus, tmp_path):
    patch = edit(bert, REQUEST, EditConfig(value="match", layers=[0], auto_preserve=False), corpus=small_corpus,
                 cache_dir=tmp_path)
    for fmt in ("diffusers", "kohya"):
        with pytest.raises(PatchError, match="bare encoder.*--to peft"):
            to_lora(patch, fmt, tmp_path / f"{fmt}.safetensors")
    with pytest.raises(PatchError, match="unknown export format 'lycoris'"):
        to_lora(patch, "lycoris", tmp_path / "x")


def test_export_command(monkeypatch, capsys, tmp_path, bert_path, small_corpus):
    from cli_runner import run

    bert = load_encoder(str(bert_path))
    patch = edit(bert, REQUEST, EditConfig(value="match", layers=[0], auto_preserve=False), corpus=small_corpus,
                 cache_dir=tmp_path)
    patch.save(tmp_path / "patch")
    code, out, err = run(monkeypatch, capsys, "export", tmp_path / "patch", "--to", "peft", "--out", tmp_path / "p",
                         "--scale", "0.5")
    assert code == 0, err
    assert "PeftModel.from_pretrained(encoder" in out
    from safetensors.torch import load_file
    lora = load_file(tmp_path / "p" / "adapter_model.safetensors")
    b = lora[f"base_model.model.{patch.deltas[0].module}.lora_B.weight"]
    torch.testing.assert_close(b, 0.5 * patch.deltas[0].delta.left.float())
    code, _, err = run(monkeypatch, capsys, "export", tmp_path / "patch", "--to", "diffusers", "--out",
                       tmp_path / "d.safetensors")
    assert code == 2 and "bare encoder" in err and "Traceback" not in err
    code, _, err = run(monkeypatch, capsys, "export", tmp_path / "patch", "--to", "onnx", "--out", tmp_path / "x")
    assert code == 2 and "--to 'onnx'" in err
