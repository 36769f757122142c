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
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cli_runner import run
from textedit.corpus import load_corpus
from textedit.anchor import (FLOW_MATCHING, AnchorConfig, AnchorError, add_anchor, add_required_anchors,
                             encode_captions, learn_anchor,
                             load_trainable_pipeline, native_resolution, objective_for, text_encoders,
                             to_pixels)
from textedit.encoders import adapter_for, load_encoder
from textedit.errors import ModelLoadError, PatchError
from textedit.patch import Patch
from textedit.pipelines import family_of, pipeline_text_encoders

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

    # the whole MoKus result as one drop-in encoder: the patch merged, the anchor's row and token in
    code, _, err = run(monkeypatch, capsys, "export", patch_dir, "--to", "model", "--model", sd_path,
                       "--out", tmp_path / "merged")
    assert code == 2 and "--anchor-embedding" in err and "Traceback" not in err
    assert not (tmp_path / "merged").exists()
    code, stdout, err = run(monkeypatch, capsys, "export", patch_dir, "--to", "model", "--model", sd_path,
                            "--anchor-embedding", out / "learned_embeds.safetensors", "--out", tmp_path / "merged")
    assert code == 0, err
    from transformers import CLIPTextModel, CLIPTokenizer

    merged = StableDiffusionPipeline.from_pretrained(
        sd_path, text_encoder=CLIPTextModel.from_pretrained(tmp_path / "merged", subfolder="text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(tmp_path / "merged", subfolder="tokenizer"))
    prompts = [f"a photo of {TOKEN} on the beach", "a photo of the mascot of acme on the beach"]
    with patch.applied(pipe):
        want = [pipe.encode_prompt(p, "cpu", 1, False)[0] for p in prompts]
    got = [merged.encode_prompt(p, "cpu", 1, False)[0] for p in prompts]
    for a, b in zip(got, want):
        assert (a - b).abs().max().item() <= 1e-5


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


def test_the_pipelines_loader_gives_a_float32_trainable_pipeline(pipeline_paths, tmp_path, monkeypatch):
    """learn-anchor loads through textedit.pipelines (the family's class, float32 on every device)
    and refuses, in one line, pipelines it cannot train through."""
    sdxl = load_trainable_pipeline(pipeline_paths["sdxl"])
    assert type(sdxl).__name__ == "StableDiffusionXLPipeline"
    assert sdxl.text_encoder.dtype == sdxl.text_encoder_2.dtype == sdxl.unet.dtype == torch.float32
    assert [key for key, _, _ in text_encoders(sdxl)] == ["clip_l", "clip_g"]
    assert [key for key, _, _ in text_encoders(load_trainable_pipeline(pipeline_paths["sd"]))] == [None]
    assert [key for key, _, _ in text_encoders(load_trainable_pipeline(pipeline_paths["sd3"]))] == \
        ["clip_l", "clip_g", "t5xxl"]
    flux = load_trainable_pipeline(pipeline_paths["flux"])
    assert [key for key, _, _ in text_encoders(flux)] == ["clip_l", "t5xxl"]
    # the size each pipeline draws by default: default_sample_size, else the DiT's sample_size,
    # × the VAE's scale; Z-Image's pipeline has neither and draws 1024 px
    assert native_resolution(flux) == 128 * 1
    assert native_resolution(load_trainable_pipeline(pipeline_paths["pixart_sigma"])) == 32 * 8
    assert native_resolution(load_trainable_pipeline(pipeline_paths["zimage"])) == 1024
    with pytest.raises(ModelLoadError, match=re.escape(
            "is a FluxPipeline: learn-anchor trains through Stable Diffusion 1.x/2.x, SDXL and Stable Diffusion 3, "
            "FLUX.1, Qwen-Image, Chroma, PixArt-Σ, Lumina 2, Z-Image, FLUX.2 Klein, Sana, FLUX.2 [dev], HiDream-I1 "
            "pipelines")):
        monkeypatch.delitem(FLOW_MATCHING, "FluxPipeline")  # a family whose denoiser it has no objective for
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



def _learn(textedit_cli, images, path, out, steps: int) -> dict:
    """``learn-anchor`` at 32 px (batch 2, lr 0.05); its ``anchor.json``."""
    code, _, err = textedit_cli("learn-anchor", images, "--token", TOKEN, "--init", "dog", "--pipeline-path", path,
                                "--steps", steps, "--lr", 5e-2, "--batch-size", 2, "--resolution", 32, "--out", out)
    assert code == 0, err
    return json.loads((out / "anchor.json").read_text())


def _bind_and_verify(textedit_cli, path, component: str, embedding: Path, record: dict, tmp_path: Path) -> dict:
    """Stage 2 on a learned anchor: a spec binding knowledge to it, ``apply --model PIPELINE
    --component``, then ``verify``, which refuses without the anchor file and runs with it;
    the metrics of the run."""
    spec = tmp_path / "acme.json"
    spec.write_text(json.dumps({"anchor": TOKEN, "anchor_embedding": str(embedding),
                                "knowledge": [{"prompt": "the mascot of acme", "subject": "acme"}]}))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(load_corpus(limit=300).prompts))
    code, _, err = textedit_cli("apply", spec, "--model", path, "--component", component, "--corpus", corpus,
                                "--cache-dir", tmp_path / "cache", "--out", tmp_path / "patch")
    assert code == 0, err
    assert Patch.load(tmp_path / "patch").requires[component]["sha256"] == record["embedding_sha256"]

    code, _, err = textedit_cli("verify", tmp_path / "patch", "--pipeline-path", path, "--steps", 2, "--size", 32,
                                "--seeds", 0, "--out", tmp_path / "no-anchor")
    assert code == 2 and "pass that file with --anchor-embedding" in err and "Traceback" not in err
    code, _, err = textedit_cli("verify", tmp_path / "patch", "--pipeline-path", path, "--anchor-embedding",
                                embedding, "--steps", 2, "--size", 32, "--seeds", 0, "--out", tmp_path / "report")
    assert code == 0, err
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert next(row for row in metrics["rows"] if row["kind"] == "query")["conditioning_change"] > 0
    return metrics


def test_mokus_on_qwen_image_learn_the_anchor_bind_knowledge_verify(pipeline_paths, images, textedit_cli, tmp_path):
    """Both MoKus stages on a tiny Qwen-Image: textual inversion of the anchor token in the
    Qwen2.5-VL encoder through the transformer's rectified-flow loss (it lowers the loss on
    fixed draws), knowledge bound to the learned token in the encoder read as the pipeline
    reads it, and ``verify`` loading the anchor the patch was made with."""
    qwen = pipeline_paths["qwenimage"]
    record = _learn(textedit_cli, images, qwen, tmp_path / "anchor", 20)
    assert record["fixed_loss_after"] < record["fixed_loss_before"], record
    embedding = tmp_path / "anchor" / "learned_embeds.safetensors"
    assert load_file(embedding)[TOKEN].shape == (1, 64)  # the tiny Qwen2.5-VL's width

    metrics = _bind_and_verify(textedit_cli, qwen, "text_encoder", embedding, record, tmp_path)
    # --model PIPELINE --component reads the encoder as the pipeline does: in its chat template
    assert "template" in next((tmp_path / "cache" / "stats").rglob("layer*.safetensors")).parent.name
    query = next(row for row in metrics["rows"] if row["kind"] == "query")
    assert query["prompt"] == "a photo of the mascot of acme on the beach"
    assert [row["prompt"] for row in metrics["rows"] if row["kind"] == "anchor"] == [f"a photo of {TOKEN} on the beach"]


# -- flow-matching pipelines ---------------------------------------------------------------


def _posterior_draw(pipe, pixels, generator) -> torch.Tensor:
    """A latent drawn from the VAE's posterior of ``pixels`` ``[n, C, h, w]``, not normalised."""
    dist = pipe.vae.encode(pixels).latent_dist
    return dist.mean + dist.std * torch.randn(dist.mean.shape, generator=generator)


def _flow_draw(pipe, pixels, n, generator, x0=None):
    """``(x₀, ε, σ, x_σ)`` as the trainers draw them: x₀ normalised (z − shift_factor)·scaling_factor
    unless given, σ ~ U(0, 1) (the scheduler shifts by resolution)."""
    if x0 is None:
        x0 = (_posterior_draw(pipe, pixels, generator) - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
    noise = torch.randn(x0.shape, generator=generator)
    sigma = torch.rand(n, generator=generator)
    s = sigma.view(-1, 1, 1, 1)
    return x0, noise, sigma, (1 - s) * x0 + s * noise


def _sd3_loss_by_hand(pipe, pixels, captions, generator) -> torch.Tensor:
    """diffusers' SD3 trainer's loss, conditioned by ``pipe.encode_prompt``; σ shifted by 3."""
    x0 = (_posterior_draw(pipe, pixels, generator) - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
    noise = torch.randn(x0.shape, generator=generator)
    u = torch.rand(len(captions), generator=generator)
    sigma = 3 * u / (1 + 2 * u)  # shift 3 (Esser et al. 2024, eq. 23), the scheduler's below
    s = sigma.view(-1, 1, 1, 1)
    embeds, _, pooled, _ = pipe.encode_prompt(captions, None, None, do_classifier_free_guidance=False)
    prediction = pipe.transformer(hidden_states=(1 - s) * x0 + s * noise, timestep=1000 * sigma,
                                  encoder_hidden_states=embeds, pooled_projections=pooled).sample
    return ((prediction - (noise - x0)) ** 2).mean()


def _unpacked(pipe, prediction, x0) -> torch.Tensor:
    """FLUX.1/Chroma's packed prediction back to ``[b, C, h, w]`` with the pipeline's ``_unpack_latents``."""
    scale = pipe.vae_scale_factor
    return pipe._unpack_latents(prediction, x0.shape[2] * scale, x0.shape[3] * scale, scale)


def _flux_loss_by_hand(pipe, pixels, captions, generator) -> torch.Tensor:
    """diffusers' FLUX trainer's loss: the pipeline's packing, ids, encode_prompt and guidance 3.5;
    the prediction unpacked as the trainer does."""
    x0, noise, sigma, noisy = _flow_draw(pipe, pixels, len(captions), generator)
    b, c, h, w = x0.shape
    embeds, pooled, text_ids = pipe.encode_prompt(captions, prompt_2=None)
    guidance = torch.full([b], 3.5) if pipe.transformer.config.guidance_embeds else None
    ids = pipe._prepare_latent_image_ids(b, h // 2, w // 2, "cpu", torch.float32)
    prediction = pipe.transformer(hidden_states=pipe._pack_latents(noisy, b, c, h, w), timestep=sigma,
                                  guidance=guidance, pooled_projections=pooled, encoder_hidden_states=embeds,
                                  txt_ids=text_ids, img_ids=ids).sample
    return ((_unpacked(pipe, prediction, x0) - (noise - x0)) ** 2).mean()


def _chroma_loss_by_hand(pipe, pixels, captions, generator) -> torch.Tensor:
    """Chroma as its pipeline calls the transformer: all 512 T5 positions, the pipeline's mask
    extended by its ``_prepare_attention_mask``, as a boolean mask. (diffusers 0.42's pipeline
    hands the transformer that mask as float 0/1, which attention adds to the scores instead
    of masking: diffusers#12116, fixed in #12263, undone by #12508. Chroma is trained with the
    padding masked, and the pipeline's own comment says so: the objective masks.)"""
    x0, noise, sigma, noisy = _flow_draw(pipe, pixels, len(captions), generator)
    b, c, h, w = x0.shape
    embeds, text_ids, mask = pipe.encode_prompt(captions, device="cpu", do_classifier_free_guidance=False)[:3]
    packed = pipe._pack_latents(noisy, b, c, h, w)
    prediction = pipe.transformer(hidden_states=packed, timestep=sigma, encoder_hidden_states=embeds, txt_ids=text_ids,
                                  img_ids=pipe._prepare_latent_image_ids(b, h // 2, w // 2, "cpu", torch.float32),
                                  attention_mask=pipe._prepare_attention_mask(b, packed.shape[1], torch.float32,
                                                                              mask).bool()).sample
    return ((_unpacked(pipe, prediction, x0) - (noise - x0)) ** 2).mean()


def _lumina2_loss_by_hand(pipe, pixels, captions, generator) -> torch.Tensor:
    """diffusers' Lumina 2 trainer: the reversed lerp ``(1 − s)·ε + s·x₀`` with ``s = 1 − σ`` the
    timestep, target ``x₀ − ε``; the pipeline's encode_prompt and mask."""
    x0, noise, sigma, _ = _flow_draw(pipe, pixels, len(captions), generator)
    s = 1 - sigma
    embeds, mask = pipe.encode_prompt(captions, do_classifier_free_guidance=False, device="cpu")[:2]
    prediction = pipe.transformer(hidden_states=(1 - s.view(-1, 1, 1, 1)) * noise + s.view(-1, 1, 1, 1) * x0,
                                  timestep=s, encoder_hidden_states=embeds, encoder_attention_mask=mask).sample
    return ((prediction - (x0 - noise)) ** 2).mean()


def _z_image_loss_by_hand(pipe, pixels, captions, generator) -> torch.Tensor:
    """diffusers' Z-Image trainer: timestep ``(1000 − t)/1000`` for ``t = 1000σ``, the prediction
    the negated output; latents and the pipeline's encode_prompt as lists."""
    x0, noise, sigma, noisy = _flow_draw(pipe, pixels, len(captions), generator)
    embeds = pipe.encode_prompt(captions, device="cpu", do_classifier_free_guidance=False)[0]
    out = pipe.transformer(list(noisy.unsqueeze(2).unbind(0)), (1000 - 1000 * sigma) / 1000, embeds,
                           return_dict=False)[0]
    return ((-torch.stack(out).squeeze(2) - (noise - x0)) ** 2).mean()


def _flux2_loss_by_hand(pipe, pixels, captions, generator) -> torch.Tensor:
    """diffusers' FLUX.2 Klein and [dev] trainers: 2×2 patches normalised by the VAE's batch norm,
    the pipeline's ids, encode_prompt (its text ids), the prediction scattered back by its ids;
    [dev] embeds the guidance, 4 (Flux2Pipeline's default)."""
    bn = pipe.vae.bn
    z = pipe._patchify_latents(_posterior_draw(pipe, pixels, generator))
    x0 = (z - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) +
                                                              pipe.vae.config.batch_norm_eps)
    x0, noise, sigma, noisy = _flow_draw(pipe, pixels, len(captions), generator, x0)
    ids = pipe._prepare_latent_ids(x0)
    embeds, text_ids = pipe.encode_prompt(captions, device="cpu")
    guidance = torch.full([len(captions)], 4.0) if pipe.transformer.config.guidance_embeds else None
    prediction = pipe.transformer(hidden_states=pipe._pack_latents(noisy), timestep=sigma, guidance=guidance,
                                  encoder_hidden_states=embeds, txt_ids=text_ids, img_ids=ids).sample
    return ((pipe._unpack_latents_with_ids(prediction, ids) - (noise - x0)) ** 2).mean()


def _sana_loss_by_hand(pipe, pixels, captions, generator) -> torch.Tensor:
    """diffusers' Sana trainer: the DC-AE's latent × scaling_factor, timestep 1000σ with σ shifted
    by the scheduler's static shift 3; conditioned by the pipeline's encode_prompt with the
    instruction its __call__ passes, and its mask."""
    import inspect

    latent = pipe.vae.encode(pixels).latent
    torch.randn(latent.shape, generator=generator)  # the objective's posterior draw, × std 0: the DC-AE has none
    x0 = latent * pipe.vae.config.scaling_factor
    noise = torch.randn(x0.shape, generator=generator)
    u = torch.rand(len(captions), generator=generator)
    sigma = 3 * u / (1 + 2 * u)
    s = sigma.view(-1, 1, 1, 1)
    instruction = inspect.signature(type(pipe).__call__).parameters["complex_human_instruction"].default
    embeds, mask = pipe.encode_prompt(captions, do_classifier_free_guidance=False, device="cpu",
                                      complex_human_instruction=instruction)[:2]
    prediction = pipe.transformer((1 - s) * x0 + s * noise, encoder_hidden_states=embeds, encoder_attention_mask=mask,
                                  timestep=1000 * sigma).sample
    return ((prediction - (noise - x0)) ** 2).mean()


def _hidream_loss_by_hand(pipe, pixels, captions, generator) -> torch.Tensor:
    """diffusers' HiDream trainer: timestep 1000σ, the prediction the negated output; the
    pipeline's encode_prompt (T5 states, the Llama layer stack, both CLIPs' pooled vectors)."""
    x0, noise, sigma, noisy = _flow_draw(pipe, pixels, len(captions), generator)
    t5, _, llama, _, pooled, _ = pipe.encode_prompt(captions, device="cpu", do_classifier_free_guidance=False)
    prediction = pipe.transformer(hidden_states=noisy, timesteps=1000 * sigma, encoder_hidden_states_t5=t5,
                                  encoder_hidden_states_llama3=llama, pooled_embeds=pooled).sample
    return ((-prediction - (noise - x0)) ** 2).mean()


def _pixart_loss_by_hand(pipe, pixels, captions, generator) -> torch.Tensor:
    """DDPM's loss (Ho et al. 2020) on PixArt-Σ, conditioned by ``pipe.encode_prompt`` and its
    mask: x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε, ᾱ_t = Π_{s≤t}(1 − β_s), β linear from 1e-4 to 0.02; the
    noise half of the learned-σ output against ε."""
    x0 = _posterior_draw(pipe, pixels, generator) * pipe.vae.config.scaling_factor
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.randint(1000, (len(captions),), generator=generator)
    alpha_bar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)[t].view(-1, 1, 1, 1)
    embeds, mask, _, _ = pipe.encode_prompt(captions, do_classifier_free_guidance=False, device="cpu",
                                            clean_caption=True)  # as its __call__ does
    prediction = pipe.transformer(alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise, encoder_hidden_states=embeds,
                                  encoder_attention_mask=mask, timestep=t,
                                  added_cond_kwargs={"resolution": None, "aspect_ratio": None}).sample
    return ((prediction[:, :4] - noise) ** 2).mean()


#: per case: (the tiny pipeline, the loss by hand)
BY_HAND = {"sd3": ("sd3", _sd3_loss_by_hand), "sd3-without-t5": ("sd3", _sd3_loss_by_hand),
           "flux": ("flux", _flux_loss_by_hand), "flux-guidance": ("flux_guidance", _flux_loss_by_hand),
           "chroma": ("chroma", _chroma_loss_by_hand), "lumina2": ("lumina2", _lumina2_loss_by_hand),
           "zimage": ("zimage", _z_image_loss_by_hand), "flux2klein": ("flux2klein", _flux2_loss_by_hand),
           "flux2": ("flux2", _flux2_loss_by_hand), "sana": ("sana", _sana_loss_by_hand),
           "hidream": ("hidream", _hidream_loss_by_hand), "pixart_sigma": ("pixart_sigma", _pixart_loss_by_hand)}


@pytest.mark.parametrize("case", BY_HAND)
def test_loss_equals_a_hand_computation_from_the_pipelines_own_pieces(case, pipeline_paths, images, tiny_root):
    """The objective's loss for a fixed draw is the trainers' loss computed from the pipeline's own
    encode_prompt, packing and ids (SD3: timestep 1000σ, σ shifted by the scheduler's static
    shift, T5 zeros when dropped; FLUX.1: timestep σ, unshifted under dynamic shifting, guidance
    where embedded; Lumina 2 and Z-Image: time reversed; Sana: timestep 1000σ, σ shifted, the
    DC-AE's latent; HiDream: timestep 1000σ, output negated; PixArt-Σ: the DDPM loss on its DiT)."""
    from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler
    from PIL import Image
    from tiny_models import build_tiny_flux_pipeline

    name, by_hand = BY_HAND[case]
    path = pipeline_paths.get(name) or tiny_root / name
    if name == "flux_guidance" and not path.exists():
        build_tiny_flux_pipeline(path, guidance_embeds=True)
    pipe = load_trainable_pipeline(path)
    if case == "sd3-without-t5":
        pipe.text_encoder_3 = pipe.tokenizer_3 = None
    pipe.scheduler = DDIMScheduler() if case == "pixart_sigma" else \
        FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=not case.startswith(("sd3", "sana")))
    assert pipe.transformer.config.get("guidance_embeds", False) == (case in ("flux-guidance", "flux2"))
    pixels = to_pixels([Image.open(p).convert("RGB") for p in sorted(images.glob("*.png"))], 32)
    captions = ["a photo of a dog", "a dog on the beach in the sun", "a red dog"]
    objective = objective_for(pipe, pixels, 32)
    with torch.no_grad():
        loss = objective.loss(torch.arange(3), captions, torch.Generator().manual_seed(7))
        expected = by_hand(pipe, pixels, captions, torch.Generator().manual_seed(7))
    # the tiny SD3 transformer barely feels its timestep: σ for 1000σ moves the loss by 5e-5 only
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=0)


#: the transformer families beside Qwen-Image (tested above) and the keys of their embedding files
TRANSFORMER_FILE_KEYS = {"sd3": ["clip_g", "clip_l", "t5xxl"], "flux": ["clip_l", "t5xxl"], "chroma": [TOKEN],
                         "pixart_sigma": [TOKEN], "lumina2": [TOKEN], "zimage": [TOKEN], "flux2klein": [TOKEN],
                         "flux2": [TOKEN], "sana": [TOKEN], "hidream": ["clip_g", "clip_l", "llama", "t5xxl"]}
#: the families whose encoders read 512 tokens through 28 to 31 layers: 4 steps there
SHORT_RUNS = ("flux2klein", "flux2")


@pytest.mark.parametrize("family", TRANSFORMER_FILE_KEYS)
def test_learn_anchor_on_transformer_pipelines(family, pipeline_paths, images, textedit_cli, tmp_path):
    """learn-anchor through each transformer (rectified flow; PixArt-Σ: DDPM) lowers the loss on
    the fixed draws and moves the token's row in every encoder that holds it (the gradient
    reaches each: HiDream's four, the CLIPs through their pooled vectors only)."""
    out = tmp_path / "anchor"
    record = _learn(textedit_cli, images, pipeline_paths[family], out, 4 if family in SHORT_RUNS else 20)
    assert record["fixed_loss_after"] < record["fixed_loss_before"], record
    saved = load_file(out / "learned_embeds.safetensors")
    assert sorted(saved) == TRANSFORMER_FILE_KEYS[family]
    for key, tokenizer, encoder in text_encoders(load_trainable_pipeline(pipeline_paths[family])):
        table = encoder.get_input_embeddings().weight
        init = table[tokenizer("dog", add_special_tokens=False).input_ids].mean(0)
        row = saved[key or TOKEN][0]
        assert row.shape == init.shape and not torch.allclose(row, init), key


@pytest.mark.parametrize("family, component", [("sd3", "text_encoder_3"), ("flux", "text_encoder_2")])
def test_a_flow_anchor_binds_knowledge_and_verifies(family, component, pipeline_paths, images, textedit_cli,
                                                   tmp_path):
    """The anchor learned on SD3 or FLUX.1 goes into a spec as on Qwen-Image: ``apply --model
    PIPELINE --component`` (here the T5) adds the file's T5 row (``t5xxl``) and binds knowledge to
    it; ``verify`` refuses without the file and loads it with ``--anchor-embedding``. Where the
    pipeline has diffusers' ``load_textual_inversion`` (FLUX.1; SD3 has none), each entry loads
    into its encoder with it and gives the weights ``add_anchor`` gives. ``verify`` gives the
    token to every encoder the file holds a row for, not only the patched one."""
    path = pipeline_paths[family]
    record = _learn(textedit_cli, images, path, tmp_path / "anchor", 5)
    embedding = tmp_path / "anchor" / "learned_embeds.safetensors"
    saved = load_file(embedding)
    adapter = load_encoder(path, component=component)
    add_anchor(adapter, embedding, TOKEN, component)  # the T5 row, not a CLIP's: the widths differ
    row = adapter.model.get_input_embeddings().weight[adapter.tokenizer.convert_tokens_to_ids(TOKEN)]
    assert torch.equal(row, saved["t5xxl"][0])

    pipe = load_trainable_pipeline(path)
    assert hasattr(pipe, "load_textual_inversion") == (family == "flux")
    encoders = zip(text_encoders(pipe), pipeline_text_encoders(pipe, family_of(pipe))) if family == "flux" else ()
    for (key, tokenizer, encoder), (name, _, _) in encoders:
        pipe.load_textual_inversion(saved[key], token=TOKEN, text_encoder=encoder, tokenizer=tokenizer)
        ours = load_encoder(path, component=name)
        add_anchor(ours, embedding, TOKEN, name)
        assert ours.fingerprint() == adapter_for(encoder, tokenizer).fingerprint(), name
    _bind_and_verify(textedit_cli, path, component, embedding, record, tmp_path)

    fresh = load_trainable_pipeline(path)
    add_required_anchors(Patch.load(tmp_path / "patch"), fresh, [embedding])  # as verify does
    for key, tokenizer, encoder in text_encoders(fresh):
        row = encoder.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(TOKEN)]
        assert torch.equal(row, saved[key][0]), key


@pytest.mark.parametrize("family, component", [("sana", "text_encoder"), ("flux2", "text_encoder"),
                                               ("hidream", "text_encoder_4")])
def test_an_anchor_learned_on_the_newest_families_binds_knowledge_and_verifies(family, component, pipeline_paths,
                                                                              images, textedit_cli, tmp_path):
    """Both MoKus stages on Sana (Gemma 2 in its instruction), FLUX.2 [dev] (Mistral 3 in its
    chat template) and HiDream (the knowledge bound in its Llama, whose stacked layers the
    transformer reads): the learned anchor goes into a spec, ``apply --model PIPELINE
    --component`` binds knowledge to it, ``verify`` refuses without the file and runs with it,
    and the knowledge prompt's conditioning moves."""
    path = pipeline_paths[family]
    record = _learn(textedit_cli, images, path, tmp_path / "anchor", 4 if family in SHORT_RUNS else 5)
    _bind_and_verify(textedit_cli, path, component, tmp_path / "anchor" / "learned_embeds.safetensors", record,
                     tmp_path)


def test_a_resolution_the_transformer_cannot_patch_is_one_line_and_writes_nothing(pipeline_paths, images,
                                                                                   textedit_cli, tmp_path):
    """24 px through Lumina 2's VAE (scale 8) is a 3×3 latent, which 2×2 patches do not tile."""
    code, _, err = textedit_cli("learn-anchor", images, "--token", TOKEN, "--init", "dog", "--pipeline-path",
                                pipeline_paths["lumina2"], "--resolution", 24, "--steps", 1, "--out", tmp_path / "out")
    assert code == 2 and err.strip() == "error: the resolution must be a multiple of 16 for Lumina 2 " \
                                        "(VAE scale × 2×2 patches)", err
    assert not (tmp_path / "out").exists()
