"""Stage 1 with a LoRA on the denoiser (``learn-anchor --lora-rank``): trained with the anchor's
row through peft, saved in diffusers' LoRA format, loaded by ``pipe.load_lora_weights`` and
by ``verify --anchor-lora``.

The tiny pipelines' denoisers are random, so "the LoRA helps" is measured on the fixed
draws of :func:`textedit.anchor.fixed_loss` (no sampling noise), with the same seed and
steps as textual inversion alone; the LoRA starts at B = 0, so both runs start at the same
loss.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import textedit.anchor
from textedit.anchor import AnchorConfig, file_sha256, learn_anchor
from textedit.anchor_lora import LORA_FILE, LoraError, load_anchor_lora

TOKEN = "<acme-mascot>"
#: per family: the textual-inversion settings of tests/test_anchor.py, and a LoRA learning
#: rate that moves a rank-4 LoRA in that many steps (diffusers' 1e-4 is for thousands)
SETTINGS = {"sd": dict(steps=40, lr=5e-2, batch_size=2, checkpoint_every=20),
            "qwenimage": dict(steps=20, lr=5e-2, batch_size=2, resolution=32)}
LORA = dict(lora_rank=4, lora_alpha=8, lora_lr=1e-2)


def pipeline_class(family: str):
    from diffusers import QwenImagePipeline, StableDiffusionPipeline

    return {"sd": StableDiffusionPipeline, "qwenimage": QwenImagePipeline}[family]


def denoiser_output(pipe) -> torch.Tensor:
    """The denoiser's prediction on one fixed random input (latents, timestep, text states)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if getattr(pipe, "unet", None) is not None:
            config = pipe.unet.config
            latents = torch.randn(1, config.in_channels, config.sample_size, config.sample_size, generator=generator)
            states = torch.randn(1, 77, config.cross_attention_dim, generator=generator)
            return pipe.unet(latents, torch.tensor([500]), states).sample
        config = pipe.transformer.config
        side = 4  # 4 × 4 packed latent patches
        latents = torch.randn(1, side * side, config.in_channels, generator=generator)
        states = torch.randn(1, 7, config.joint_attention_dim, generator=generator)
        return pipe.transformer(hidden_states=latents, timestep=torch.tensor([0.5]), encoder_hidden_states=states,
                                img_shapes=[[(1, side, side)]], return_dict=False)[0]


@pytest.fixture(scope="module")
def learned(pipeline_paths, images, tmp_path_factory):
    """Per family: textual inversion alone, and with a LoRA, same seed and steps; with the
    LoRA, the trained denoiser's output on the fixed input when its file was written."""
    results = {}
    for family, settings in SETTINGS.items():
        plain = learn_anchor(pipeline_paths[family], images, TOKEN, "dog", tmp_path_factory.mktemp(family),
                             AnchorConfig(**settings))
        trained = {}
        save = textedit.anchor.save_denoiser_lora

        def save_and_remember(pipe, path):  # learn_anchor writes into a sibling of out, renamed at the end
            final = Path(*[out.name if part.startswith(f".{out.name}.") else part for part in Path(path).parts])
            trained[final] = denoiser_output(pipe)
            save(pipe, path)

        out = tmp_path_factory.mktemp(f"{family}-lora")
        mp = pytest.MonkeyPatch()
        mp.setattr(textedit.anchor, "save_denoiser_lora", save_and_remember)
        try:
            with_lora = learn_anchor(pipeline_paths[family], images, TOKEN, "dog", out,
                                     AnchorConfig(**settings, **LORA))
        finally:
            mp.undo()
        results[family] = plain, with_lora, out, trained[out / LORA_FILE]
    return results


@pytest.mark.parametrize("family", SETTINGS)
def test_the_lora_lowers_the_fixed_loss_further_and_is_recorded(family, learned):
    plain, with_lora, out, _ = learned[family]
    assert with_lora.fixed_loss_before == plain.fixed_loss_before  # B = 0: the same denoiser at the start
    assert with_lora.fixed_loss_after < plain.fixed_loss_after < plain.fixed_loss_before, (
        plain.fixed_loss_before, plain.fixed_loss_after, with_lora.fixed_loss_after)
    record = json.loads((out / "anchor.json").read_text())
    denoiser = {"sd": "UNet2DConditionModel", "qwenimage": "QwenImageTransformer2DModel"}[family]
    assert record["lora"] == {"file": LORA_FILE, "denoiser": denoiser, "rank": 4, "alpha": 8.0,
                              "target_modules": ["to_k", "to_q", "to_v", "to_out.0"], "lr": 1e-2,
                              "sha256": file_sha256(out / LORA_FILE)}
    assert not any(key.startswith("lora") for key in record["config"])
    assert "lora" not in json.loads((plain.embedding_file.parent / "anchor.json").read_text())
    assert plain.lora_file is None and with_lora.lora_file == out / LORA_FILE
    if family == "sd":  # a checkpoint folder per checkpoint step, as load_lora_weights reads it
        assert [p.relative_to(out).as_posix() for p in with_lora.checkpoints] == [
            "checkpoints/learned_embeds-step-20.safetensors", f"checkpoints/lora-step-20/{LORA_FILE}"]


@pytest.mark.parametrize("family", SETTINGS)
def test_load_lora_weights_on_a_fresh_pipeline_gives_the_trained_denoiser(family, learned, pipeline_paths):
    """diffusers' loader reproduces the trained peft model's output, and so does merging the
    file's ``W + (α/r)·B·A`` into the base weights by hand (an independent reading of the
    format: key names, the α in the metadata)."""
    _, _, out, trained = learned[family]
    with safe_open(str(out / LORA_FILE), "pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
        metadata = json.loads(f.metadata()["lora_adapter_metadata"])
    prefix = "unet" if family == "sd" else "transformer"
    assert tensors and all(key.startswith(f"{prefix}.") and (".lora_A." in key or ".lora_B." in key)
                           for key in tensors)
    assert metadata[f"{prefix}.r"] == 4 and metadata[f"{prefix}.lora_alpha"] == 8
    assert metadata[f"{prefix}.target_modules"] == ["to_k", "to_out.0", "to_q", "to_v"]

    base = pipeline_class(family).from_pretrained(pipeline_paths[family])
    untrained = denoiser_output(base)
    assert not torch.allclose(trained, untrained, atol=1e-4)  # the LoRA learned something

    base.load_lora_weights(out)
    torch.testing.assert_close(denoiser_output(base), trained, rtol=1e-5, atol=1e-5)

    merged = pipeline_class(family).from_pretrained(pipeline_paths[family])
    denoiser = getattr(merged, prefix)
    with torch.no_grad():
        for key, down in tensors.items():
            if ".lora_A." in key:
                module = key[len(prefix) + 1:].split(".lora_A.")[0]
                up = tensors[key.replace(".lora_A.", ".lora_B.")]
                denoiser.get_submodule(module).weight += (8 / 4) * up @ down
    torch.testing.assert_close(denoiser_output(merged), trained, rtol=1e-4, atol=1e-4)


def test_the_same_seed_gives_the_same_lora_bytes(learned, pipeline_paths, images, tmp_path):
    _, with_lora, out, _ = learned["sd"]
    again = learn_anchor(pipeline_paths["sd"], images, TOKEN, "dog", tmp_path, AnchorConfig(**SETTINGS["sd"], **LORA))
    assert again.losses == with_lora.losses
    for name in (LORA_FILE, "learned_embeds.safetensors", f"checkpoints/lora-step-20/{LORA_FILE}"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


@pytest.mark.slow
def test_the_lora_bytes_do_not_depend_on_the_hash_seed(learned, pipeline_paths, images, tmp_path):
    """peft keeps the target modules as a set and safetensors orders metadata by a hash map:
    two processes with different string hashing still write the same bytes."""
    script = ("import sys; from textedit.anchor import AnchorConfig, learn_anchor; "
              f"learn_anchor(sys.argv[1], sys.argv[2], '{TOKEN}', 'dog', sys.argv[3], "
              "AnchorConfig(steps=2, lr=5e-2, lora_rank=4, lora_lr=1e-2))")
    files = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed,
               "PYTHONPATH": os.pathsep.join([str(Path(textedit.anchor.__file__).parents[1]),
                                              os.environ.get("PYTHONPATH", "")])}
        subprocess.run([sys.executable, "-c", script, str(pipeline_paths["sd"]), str(images),
                        str(tmp_path / hash_seed)], env=env, check=True, capture_output=True)
        files.append((tmp_path / hash_seed / LORA_FILE).read_bytes())
    assert files[0] == files[1]


def test_without_peft_the_option_is_one_line_naming_the_extra(monkeypatch, textedit_cli, sd_path, images, tmp_path):
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` raises ImportError
    out_dir = tmp_path / "out"
    code, _, err = textedit_cli("learn-anchor", images, "--token", TOKEN, "--init", "dog", "--pipeline-path", sd_path,
                                "--steps", 2, "--lora-rank", 4, "--out", out_dir)
    assert code == 2 and err.strip().splitlines() == ["error: --lora-rank needs peft: pip install textedit[lora]"], err
    assert not out_dir.exists()


@pytest.mark.parametrize("options, fragment", [
    (["--lora-rank", 4, "--lora-targets", "to_q,to_qq"], "LoRA target 'to_qq' matches no module of the "
                                                         "UNet2DConditionModel"),
    (["--lora-rank", -1], "lora-rank must be 0 (no LoRA) or positive"),
    (["--lora-rank", 4, "--lora-lr", 0], "lora-lr and lora-alpha must be positive"),
])
def test_bad_lora_settings_are_one_line_and_write_nothing(options, fragment, textedit_cli, sd_path, images, tmp_path):
    out_dir = tmp_path / "out"
    code, _, err = textedit_cli("learn-anchor", images, "--token", TOKEN, "--init", "dog", "--pipeline-path", sd_path,
                                "--steps", 2, *options, "--out", out_dir)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and fragment in err and "Traceback" not in err, err
    assert not out_dir.exists()


def test_a_lora_for_another_denoiser_or_no_file_is_refused(learned, pipeline_paths, tmp_path):
    _, _, sd_out, _ = learned["sd"]
    qwen = pipeline_class("qwenimage").from_pretrained(pipeline_paths["qwenimage"])
    with pytest.raises(LoraError, match="QwenImagePipeline's transformer"):
        load_anchor_lora(qwen, sd_out)
    with pytest.raises(LoraError, match=f"has no {LORA_FILE}"):
        load_anchor_lora(qwen, tmp_path)
    with pytest.raises(LoraError, match="does not exist"):
        load_anchor_lora(qwen, tmp_path / "nowhere.safetensors")


def test_verify_draws_with_the_anchor_lora(learned, textedit_cli, sd_path, tmp_path):
    """A patch bound to the learned token verifies with the anchor's embedding and its LoRA:
    the images (before and after the patch) are drawn with the LoRA in the UNet."""
    from textedit.corpus import load_corpus

    _, _, out, _ = learned["sd"]
    spec = tmp_path / "acme.json"
    spec.write_text(json.dumps({"anchor": TOKEN, "anchor_embedding": str(out / "learned_embeds.safetensors"),
                                "knowledge": ["the mascot of acme"], "method": "memit", "layers": [1],
                                "value": "match"}))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(load_corpus(limit=300).prompts))
    code, _, err = textedit_cli("apply", spec, "--model", sd_path, "--component", "text_encoder", "--corpus", corpus,
                                "--cache-dir", tmp_path / "cache", "--out", tmp_path / "patch")
    assert code == 0, err
    common = ("verify", tmp_path / "patch", "--pipeline-path", sd_path, "--anchor-embedding",
              out / "learned_embeds.safetensors", "--steps", 2, "--seeds", 0)
    code, _, err = textedit_cli(*common, "--anchor-lora", out, "--out", tmp_path / "with-lora")
    assert code == 0, err
    code, _, err = textedit_cli(*common, "--out", tmp_path / "without")
    assert code == 0, err
    sheets = [(tmp_path / report / "contact_sheet.png").read_bytes() for report in ("with-lora", "without")]
    assert sheets[0] != sheets[1]  # the LoRA changes what the UNet draws
    code, _, err = textedit_cli(*common, "--anchor-lora", tmp_path / "nowhere", "--out", tmp_path / "missing")
    assert code == 2 and "anchor LoRA" in err and "does not exist" in err and "Traceback" not in err, err


@pytest.mark.parametrize("family", ["flux"])
def test_a_lora_on_a_joint_attention_transformer_trains_and_loads_with_diffusers(family, pipeline_paths, images,
                                                                                tmp_path):
    """FLUX.1 (stage 1 through its rectified flow): the default targets, the image and the text
    stream's attention projections, train with the row and load into a fresh pipeline with
    ``load_lora_weights``, where every trained matrix arrives. (The tiny SD3 has one joint
    block, context-pre-only as SD3's last, which has no ``to_add_out``: the default targets
    are refused there in one line, as any target matching no module.)"""
    from diffusers import DiffusionPipeline

    settings = dict(steps=6, lr=5e-2, batch_size=2, resolution=32)
    plain = learn_anchor(pipeline_paths[family], images, TOKEN, "dog", tmp_path / "plain", AnchorConfig(**settings))
    with_lora = learn_anchor(pipeline_paths[family], images, TOKEN, "dog", tmp_path / "lora",
                             AnchorConfig(**settings, **LORA))
    assert with_lora.fixed_loss_before == plain.fixed_loss_before
    assert with_lora.fixed_loss_after < plain.fixed_loss_after
    record = json.loads((tmp_path / "lora" / "anchor.json").read_text())
    assert set(record["lora"]["target_modules"]) == {"to_k", "to_q", "to_v", "to_out.0", "add_k_proj", "add_q_proj",
                                                     "add_v_proj", "to_add_out"}
    with safe_open(str(tmp_path / "lora" / LORA_FILE), "pt") as f:
        saved = {key: f.get_tensor(key) for key in f.keys()}
    assert any(".add_k_proj.lora_B." in key for key in saved) and all(key.startswith("transformer.") for key in saved)
    pipe = DiffusionPipeline.from_pretrained(pipeline_paths[family])
    load_anchor_lora(pipe, tmp_path / "lora")
    loaded = {name: p for name, p in pipe.transformer.named_parameters() if "lora_B" in name}
    assert len(loaded) == sum(".lora_B." in key for key in saved)
    assert any(p.abs().sum() > 0 for p in loaded.values())  # B left zero, trained B arrived
