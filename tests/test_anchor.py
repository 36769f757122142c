"""Stage-1 anchors: textual inversion on the tiny Stable Diffusion pipeline, the embedding in
diffusers' format, and a spec that binds knowledge to the learned token.

The tiny pipeline's UNet is random and reads text through one small cross-attention, so
the step-to-step loss is dominated by the sampled noise and timestep (about ±0.3 around
1.15 here), far more than by the token (a few 1e-4). The test therefore compares the loss
on one fixed set of draws (``AnchorResult.fixed_loss_*``) before and after training, which
has no sampling noise and only moves if the embedding learned something.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cli_runner import run
from textedit.corpus import load_corpus
from textedit.anchor import (AnchorConfig, AnchorError, add_anchor, encode_captions, learn_anchor,
                             load_trainable_pipeline, text_encoders)
from textedit.encoders import adapter_for, load_encoder
from textedit.errors import ModelLoadError, PatchError
from textedit.patch import Patch

TOKEN = "<acme-mascot>"


@pytest.fixture(scope="module")
def learned(sd_path, images, tmp_path_factory):
    out = tmp_path_factory.mktemp("anchor")
    config = AnchorConfig(steps=40, lr=5e-2, batch_size=2, checkpoint_every=20)
    return learn_anchor(sd_path, images, TOKEN, "dog", out, config), out, config


def test_training_lowers_the_loss_and_writes_diffusers_format(learned, sd_path):
    result, out, _ = learned
    assert len(result.losses) == 40 and all(torch.isfinite(torch.tensor(result.losses)))
    assert result.fixed_loss_after < result.fixed_loss_before, (result.fixed_loss_before, result.fixed_loss_after)
    saved = load_file(out / "learned_embeds.safetensors")
    assert list(saved) == [TOKEN] and saved[TOKEN].shape == (1, 32)
    assert [p.name for p in result.checkpoints] == ["learned_embeds-step-20.safetensors"]
    record = json.loads((out / "anchor.json").read_text())
    assert record["token"] == TOKEN and len(record["images"]) == 3

    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(sd_path)
    init = pipe.text_encoder.get_input_embeddings().weight[pipe.tokenizer.convert_tokens_to_ids("dog")].clone()
    pipe.load_textual_inversion(out)
    row = pipe.text_encoder.get_input_embeddings().weight[pipe.tokenizer.convert_tokens_to_ids(TOKEN)]
    assert torch.equal(row, saved[TOKEN][0])
    assert not torch.allclose(row, init)  # it moved away from its initialiser


def test_training_is_deterministic(learned, sd_path, images, tmp_path):
    result, out, config = learned
    again = learn_anchor(sd_path, images, TOKEN, "dog", tmp_path, config)
    assert again.losses == result.losses
    assert (tmp_path / "learned_embeds.safetensors").read_bytes() == (out / "learned_embeds.safetensors").read_bytes()



def test_spec_binding_knowledge_to_the_learned_token(monkeypatch, capsys, learned, sd_path, tmp_path):
    from diffusers import StableDiffusionPipeline

    result, out, _ = learned
    spec = tmp_path / "acme.json"
    spec.write_text(json.dumps({"anchor": TOKEN, "anchor_embedding": str(out / "learned_embeds.safetensors"),
                                "knowledge": ["the mascot of acme", "the acme company's lucky animal"],
                                "method": "memit", "layers": [1], "value": "match"}))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(load_corpus(limit=300).prompts))
    patch_dir = tmp_path / "patch"
    code, stdout, err = run(monkeypatch, capsys, "apply", spec, "--model", sd_path, "--component", "text_encoder",
                            "--out", patch_dir, "--corpus", corpus, "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    assert TOKEN in stdout
    patch = Patch.load(patch_dir)
    assert patch.requires["text_encoder"]["token"] == TOKEN
    assert patch.requires["text_encoder"]["sha256"] == json.loads((out / "anchor.json").read_text())["embedding_sha256"]
    code, stdout, err = run(monkeypatch, capsys, "show", patch_dir)
    assert code == 0 and "requires (text_encoder)" in stdout and TOKEN in stdout, err

    # a pipeline without the anchor: the error says which embedding to load
    pipe = StableDiffusionPipeline.from_pretrained(sd_path)
    with pytest.raises(PatchError, match="learned_embeds.safetensors"):
        patch.apply(pipe)
    # with it, the patch applies and reverts exactly
    pipe.load_textual_inversion(out)
    weight = adapter_for(pipe.text_encoder, pipe.tokenizer).down_proj_module(1).weight.clone()
    patch.apply(pipe)
    assert not torch.equal(adapter_for(pipe.text_encoder, None).down_proj_module(1).weight, weight)
    patch.revert(pipe)
    assert torch.equal(adapter_for(pipe.text_encoder, None).down_proj_module(1).weight, weight)


def test_add_anchor_matches_load_textual_inversion(learned, sd_path):
    from diffusers import StableDiffusionPipeline

    _, out, _ = learned
    encoder = load_encoder(sd_path, component="text_encoder")
    add_anchor(encoder, out / "learned_embeds.safetensors", component="text_encoder")
    pipe = StableDiffusionPipeline.from_pretrained(sd_path)
    pipe.load_textual_inversion(out)
    assert adapter_for(pipe.text_encoder, pipe.tokenizer).fingerprint() == encoder.fingerprint()
    with pytest.raises(AnchorError, match="already in the vocabulary"):
        add_anchor(encoder, out / "learned_embeds.safetensors", component="text_encoder")
    bert_like = load_encoder()  # dimension 384, not 32
    with pytest.raises(AnchorError, match="dimension"):
        add_anchor(bert_like, out / "learned_embeds.safetensors")


@pytest.mark.parametrize("case, fragment", [
    ("empty", "holds no images"),
    ("unreadable", "broken.png"),
    ("known token", "already in the vocabulary"),
    ("bad init", "has no tokens"),
    ("missing", "does not exist"),
])
def test_bad_input_is_one_line_and_writes_nothing(monkeypatch, capsys, tmp_path, sd_path, images, case, fragment):
    folder = tmp_path / "images"
    folder.mkdir()
    token, init = TOKEN, "dog"
    if case == "unreadable":
        (folder / "ok.png").write_bytes((images / "dog0.png").read_bytes())
        (folder / "broken.png").write_bytes(b"not an image")
    elif case in ("known token", "bad init"):
        folder = images
        token, init = ("dog", "dog") if case == "known token" else (TOKEN, "   ")
    elif case == "missing":
        folder = tmp_path / "nowhere"
    out_dir = tmp_path / "out"
    code, _, err = run(monkeypatch, capsys, "learn-anchor", folder, "--token", token, "--init", init,
                       "--pipeline-path", sd_path, "--out", out_dir, "--steps", "2")
    assert code == 2 and "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in err, err
    assert not out_dir.exists()


def test_sdxl_anchor_in_both_encoders(images, tiny_root, tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from tiny_models import build_tiny_sdxl_pipeline

    path = tiny_root / "sdxl_anchor"
    if not path.exists():
        build_tiny_sdxl_pipeline(path)
    result = learn_anchor(path, images, TOKEN, "dog", tmp_path, AnchorConfig(steps=20, lr=5e-2, batch_size=2))
    assert result.fixed_loss_after < result.fixed_loss_before, (result.fixed_loss_before, result.fixed_loss_after)
    saved = load_file(tmp_path / "learned_embeds.safetensors")
    assert sorted(saved) == ["clip_g", "clip_l"] and saved["clip_l"].shape == saved["clip_g"].shape == (1, 32)

    pipe = StableDiffusionXLPipeline.from_pretrained(path)
    pipe.load_textual_inversion(saved["clip_l"], token=TOKEN, text_encoder=pipe.text_encoder,
                                tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(saved["clip_g"], token=TOKEN, text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    for component, encoder, tokenizer in (("text_encoder", pipe.text_encoder, pipe.tokenizer),
                                          ("text_encoder_2", pipe.text_encoder_2, pipe.tokenizer_2)):
        row = encoder.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(TOKEN)]
        assert torch.equal(row, saved["clip_l" if component == "text_encoder" else "clip_g"][0])
        adapter = load_encoder(path, component=component)
        add_anchor(adapter, tmp_path / "learned_embeds.safetensors", TOKEN, component)
        assert adapter.fingerprint() == adapter_for(encoder, tokenizer).fingerprint()


def test_the_pipelines_loader_gives_a_float32_trainable_pipeline(pipeline_paths, tmp_path):
    """learn-anchor loads through textedit.pipelines (the family's class, float32 on every device)
    and refuses, in one line, pipelines it cannot train through."""
    sdxl = load_trainable_pipeline(pipeline_paths["sdxl"])
    assert type(sdxl).__name__ == "StableDiffusionXLPipeline"
    assert sdxl.text_encoder.dtype == sdxl.text_encoder_2.dtype == sdxl.unet.dtype == torch.float32
    assert [key for key, _, _ in text_encoders(sdxl)] == ["clip_l", "clip_g"]
    assert [key for key, _, _ in text_encoders(load_trainable_pipeline(pipeline_paths["sd"]))] == [None]
    with pytest.raises(ModelLoadError, match="is a FluxPipeline: learn-anchor trains through Stable Diffusion "
                                             "1.x/2.x, SDXL and Qwen-Image pipelines"):
        load_trainable_pipeline(pipeline_paths["flux"])
    with pytest.raises(ModelLoadError, match="not a diffusers pipeline folder"):
        load_trainable_pipeline(tmp_path)


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_captions_are_conditioned_as_the_pipeline_does(family, pipeline_paths):
    """What the UNet is trained on is what the pipeline's own encode_prompt gives (SDXL: the
    penultimate states of both CLIPs, encoder 2's pooled projection as text_embeds)."""
    from tiny_models import encode_prompt

    pipe = load_trainable_pipeline(pipeline_paths[family])
    caption = "a photo of a <acme-mascot> on the beach"
    with torch.no_grad():
        states, added = encode_captions(pipe, [caption], 64)
    embeds, pooled = encode_prompt(pipe, family, caption)
    assert torch.equal(states, embeds)
    if family == "sd":
        assert added is None
    else:
        assert torch.equal(added["text_embeds"], pooled)
        assert added["time_ids"].tolist() == [[64, 64, 0, 0, 64, 64]]



def test_mokus_on_qwen_image_learn_the_anchor_bind_knowledge_verify(pipeline_paths, images, textedit_cli, tmp_path):
    """Both MoKus stages on a tiny Qwen-Image: textual inversion of the anchor token in the
    Qwen2.5-VL encoder through the transformer's rectified-flow loss (it lowers the loss on
    fixed draws), knowledge bound to the learned token in the encoder read as the pipeline
    reads it, and ``verify`` loading the anchor the patch was made with."""
    qwen = pipeline_paths["qwenimage"]
    anchor_dir = tmp_path / "anchor"
    code, stdout, err = textedit_cli("learn-anchor", images, "--token", TOKEN, "--init", "dog", "--pipeline-path", qwen,
                                     "--steps", 20, "--lr", 5e-2, "--batch-size", 2, "--resolution", 32, "--out",
                                     anchor_dir)
    assert code == 0, err
    record = json.loads((anchor_dir / "anchor.json").read_text())
    assert record["fixed_loss_after"] < record["fixed_loss_before"], record
    embedding = anchor_dir / "learned_embeds.safetensors"
    assert load_file(embedding)[TOKEN].shape == (1, 64)  # the tiny Qwen2.5-VL's width

    spec = tmp_path / "acme.json"
    spec.write_text(json.dumps({"anchor": TOKEN, "anchor_embedding": str(embedding),
                                "knowledge": [{"prompt": "the mascot of acme", "subject": "acme"}]}))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(load_corpus(limit=300).prompts))
    code, stdout, err = textedit_cli("apply", spec, "--model", qwen, "--component", "text_encoder", "--corpus", corpus,
                                     "--cache-dir", tmp_path / "cache", "--out", tmp_path / "patch")
    assert code == 0, err
    patch = Patch.load(tmp_path / "patch")
    assert patch.requires["text_encoder"]["sha256"] == record["embedding_sha256"]
    # --model PIPELINE --component reads the encoder as the pipeline does: in its chat template
    assert "template" in next((tmp_path / "cache" / "stats").rglob("layer*.safetensors")).parent.name

    code, _, err = textedit_cli("verify", tmp_path / "patch", "--pipeline-path", qwen, "--steps", 2, "--size", 32,
                                "--seeds", 0, "--out", tmp_path / "no-anchor")
    assert code == 2 and "pass that file with --anchor-embedding" in err and "Traceback" not in err
    code, stdout, err = textedit_cli("verify", tmp_path / "patch", "--pipeline-path", qwen, "--anchor-embedding",
                                     embedding, "--steps", 2, "--size", 32, "--seeds", 0, "--out", tmp_path / "report")
    assert code == 0, err
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    query = next(row for row in metrics["rows"] if row["kind"] == "query")
    assert query["prompt"] == f"a photo of the mascot of acme on the beach" and query["conditioning_change"] > 0
    assert [row["prompt"] for row in metrics["rows"] if row["kind"] == "anchor"] == [f"a photo of {TOKEN} on the beach"]
