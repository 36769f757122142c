"""Exported LoRAs, loaded by the ecosystem's own code (diffusers, peft, diffusers' kohya
converter), do exactly what ``Patch.apply`` does: on tiny SD 1.x, SDXL, SD3 and FLUX.1
pipelines and on the real default MiniLM. Merged model folders (``--to model``), loaded with
transformers' ``from_pretrained`` alone, hold ``W + ΔW`` and read prompts as the patched
encoder does: a bare BERT, FLUX's T5 and Qwen-Image's Qwen2.5-VL."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from safetensors import safe_open
from tiny_models import encode_prompt

from textedit.corpus import Corpus, load_corpus
from textedit.editor import EditConfig, edit
from textedit.encoders import load_encoder
from textedit.errors import PatchError, WriteError
from textedit.export import MODEL_PROVENANCE, to_lora, to_model
from textedit.patch import Patch
from textedit.requests import EditRequest
from textedit.sequential import edit_after
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


def test_peft_and_merged_exports_of_the_default_minilm_give_the_same_sentence_vectors(tmp_path):
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
    # the merged folder, read back as a model of its own, means what the patched MiniLM means
    [folder] = to_model(patch, {"encoder": adapter}, tmp_path / "merged")
    torch.testing.assert_close(load_encoder(str(folder)).embed(prompts), edited, rtol=0, atol=1e-6)
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
    code, out, err = run(monkeypatch, capsys, "export", tmp_path / "patch", "--to", "model", "--model", bert_path,
                         "--out", tmp_path / "m")
    assert code == 0, err
    assert "BertModel.from_pretrained" in " ".join(out.split()) and (tmp_path / "m" / MODEL_PROVENANCE).is_file()
    code, _, err = run(monkeypatch, capsys, "export", tmp_path / "patch", "--to", "model", "--out", tmp_path / "n")
    assert code == 2 and "--to model needs --model" in err and not (tmp_path / "n").exists()
    code, _, err = run(monkeypatch, capsys, "export", tmp_path / "patch", "--to", "peft", "--model", bert_path,
                       "--out", tmp_path / "n")
    assert code == 2 and "go with --to model" in err and "Traceback" not in err


def merged_weight(before: dict[str, torch.Tensor], module: str, *patches: Patch) -> torch.Tensor:
    """``module``'s weight ``W + Σ left @ rightᵀ`` over ``patches``, in float64, computed here on its own."""
    return before[f"{module}.weight"].double() + sum(d.delta.left.double() @ d.delta.right.double().T
                                                     for p in patches for d in p.deltas if d.module == module)


def assert_merged(model, adapter, before: dict[str, torch.Tensor], *patches: Patch) -> None:
    """The exported weights are what applying ``patches`` in order gives, bit for bit, and the
    published sum to float32's rounding."""
    with contextlib.ExitStack() as stack:
        for p in patches:
            stack.enter_context(p.applied(adapter))
        applied = {d.module: adapter.model.get_submodule(d.module).weight.detach().clone()
                   for p in patches for d in p.deltas}
    for module, weight in applied.items():
        exported = model.get_submodule(module).weight
        assert torch.equal(exported, weight)
        torch.testing.assert_close(exported.double(), merged_weight(before, module, *patches), rtol=2 ** -23,
                                   atol=1e-6)  # one float32 rounding of the sum


def test_model_export_of_a_bare_encoder_loads_with_transformers_alone(bert, small_corpus, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    patch = edit(bert, REQUEST, EditConfig(value="match", layers=[0, 1], auto_preserve=False), corpus=small_corpus,
                 cache_dir=tmp_path / "cache")
    before = {n: p.detach().clone() for n, p in bert.model.named_parameters()}
    [folder] = to_model(patch, {"encoder": bert}, tmp_path / "merged")
    assert folder == tmp_path / "merged"
    assert all(torch.equal(p, before[n]) for n, p in bert.model.named_parameters())  # the user's model is untouched
    model, tokenizer = AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    assert_merged(model, bert, before, patch)
    prompts = [QUERY, "a dog on the beach"]
    batch = tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        base = bert.model(**batch).last_hidden_state
        with patch.applied(bert):
            edited = bert.model(**batch).last_hidden_state
        got = model(**batch).last_hidden_state
    assert (edited - base).abs().max() > 1e-3
    torch.testing.assert_close(got, edited, rtol=0, atol=1e-6)
    record = json.loads((folder / MODEL_PROVENANCE).read_text())
    assert [m["id"] for m in record["merged"]] == [patch.id]
    # textedit reads the folder as another model: the patch no longer fits it
    with pytest.raises(PatchError, match="cannot be applied"):
        patch.apply(load_encoder(str(folder)))
    # the same export again replaces the folder, byte for byte the same
    weights = (folder / "model.safetensors").read_bytes()
    to_model(patch, {"encoder": bert}, folder)
    assert (folder / "model.safetensors").read_bytes() == weights
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".merged")] == []  # no staging left


def test_model_export_refuses_what_it_cannot_write(bert, small_corpus, tmp_path):
    patch = edit(bert, REQUEST, EditConfig(value="match", layers=[0], auto_preserve=False), corpus=small_corpus,
                 cache_dir=tmp_path / "cache")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(PatchError, match="exists and holds other files than a textedit model export"):
        to_model(patch, {"encoder": bert}, other)
    assert [p.name for p in other.iterdir()] == ["todo.txt"]
    with pytest.raises(PatchError, match="edits encoder: give the base encoder"):
        to_model(patch, {}, tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_a_model_export_that_fails_half_way_leaves_nothing_and_reverts(bert, small_corpus, tmp_path, monkeypatch):
    patch = edit(bert, REQUEST, EditConfig(value="match", layers=[0], auto_preserve=False), corpus=small_corpus,
                 cache_dir=tmp_path / "cache")
    before = {n: p.detach().clone() for n, p in bert.model.named_parameters()}
    save = type(bert.model).save_pretrained

    def save_then_fail(model, folder, **kwargs):
        save(model, folder, **kwargs)  # the weights are on disk, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(bert.model), "save_pretrained", save_then_fail)
    with pytest.raises(WriteError, match="cannot write '.*merged': No space left"):  # one line, naming the folder
        to_model(patch, {"encoder": bert}, tmp_path / "merged")
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # neither the folder nor its staging copy
    assert all(torch.equal(p, before[n]) for n, p in bert.model.named_parameters())


def test_model_export_merges_a_chain_in_order(bert, small_corpus, tmp_path):
    config = EditConfig(value="match", layers=[0, 1], auto_preserve=False)
    first = edit(bert, REQUEST, config, corpus=small_corpus, cache_dir=tmp_path / "cache")
    second = edit_after(bert, [EditRequest("the founder of acme", "a tall tree", subject="acme")], config, [first],
                        corpus=small_corpus, cache_dir=tmp_path / "cache")
    first.revert(bert)  # edit_after leaves the history applied
    before = {n: p.detach().clone() for n, p in bert.model.named_parameters()}
    with pytest.raises(PatchError, match="goes after the patches"):
        to_model(second, {"encoder": bert}, tmp_path / "alone")
    [folder] = to_model(second, {"encoder": bert}, tmp_path / "chain", history=[first])
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder)
    assert_merged(model, bert, before, first, second)
    record = json.loads((folder / MODEL_PROVENANCE).read_text())
    assert [m["id"] for m in record["merged"]] == [first.id, second.id]
    assert all(torch.equal(p, before[n]) for n, p in bert.model.named_parameters())


@pytest.mark.parametrize("family, component", [("flux", "text_encoder_2"), ("qwenimage", "text_encoder")])
def test_model_export_of_a_pipeline_encoder_no_lora_loader_reaches(family, component, pipeline_paths, tmp_path):
    """FLUX's T5 and Qwen-Image's Qwen2.5-VL: diffusers loads no text-encoder LoRA onto either;
    the merged folder, loaded with the component's own class, gives the patched prompt embeddings."""
    path = pipeline_paths[family]
    patch = pipeline_patch(path, family, [component], tmp_path / "cache")
    [folder] = to_model(patch, {component: load_encoder(str(path), component=component)}, tmp_path / "merged")
    assert folder == tmp_path / "merged" / component
    pipe = load_pipeline(path, FAMILIES[family])
    base = encoded(pipe, family)
    with patch.applied(pipe):
        edited = encoded(pipe, family)
    assert max((a - b).abs().max().item() for a, b in zip(base, edited)) > 1e-3
    setattr(pipe, component, type(getattr(pipe, component)).from_pretrained(folder).eval())
    assert_close(encoded(pipe, family), edited)


def test_model_export_keeps_the_checkpoint_dtype(bert, small_corpus, tmp_path):
    """A patch solved on the float32 model merges into a float16 copy of the checkpoint (the
    fingerprint is dtype-independent), and the folder stays float16, as pipelines ship it."""
    patch = edit(bert, REQUEST, EditConfig(value="match", layers=[0], auto_preserve=False), corpus=small_corpus,
                 cache_dir=tmp_path / "cache")
    half = tmp_path / "half"
    bert.model.half().save_pretrained(half)
    bert.model.float()
    bert.tokenizer.save_pretrained(half)
    encoder = load_encoder(str(half))
    assert encoder.dtype == torch.float16
    [folder] = to_model(patch, {"encoder": encoder}, tmp_path / "merged")
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder)
    assert model.dtype == torch.float16 and json.loads((folder / "config.json").read_text())["dtype"] == "float16"
    module = patch.deltas[0].module
    want = encoder.model.get_submodule(module).weight.double() + patch.deltas[0].delta.dense().double()
    torch.testing.assert_close(model.get_submodule(module).weight.double(), want, rtol=1e-3, atol=1e-3)
