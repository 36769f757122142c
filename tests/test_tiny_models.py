"""Quick checks that the offline tiny-model builders in tiny_models.py work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    T5EncoderModel,
)

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import (  # noqa: E402
    WORDS,
    build_tiny_bert,
    build_tiny_clip,
    build_tiny_mpnet,
    build_tiny_sd_pipeline,
    build_tiny_t5,
)

PROMPT = "A photo of the Acme mascot, Canada's prime minister! zebrafish 1984"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def clip_path(tiny_dir):
    return build_tiny_clip(tiny_dir / "clip")


@pytest.fixture(scope="session")
def sd_path(tiny_dir):
    return build_tiny_sd_pipeline(tiny_dir / "sd")


def _check_offsets(tok, text=PROMPT):
    enc = tok(text, return_offsets_mapping=True)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    special = set(tok.all_special_tokens)
    spans = [text[a:b] for (a, b), t in zip(enc["offset_mapping"], tokens) if t not in special]
    assert spans and all(spans), spans
    # the spans cover the words of the prompt in order
    assert "photo" in spans and "mascot" in spans and "minister" in spans
    return enc


def _known_words_are_single_tokens(tok, strip=lambda t: t):
    for word in WORDS:
        ids = tok(word, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and strip(tok.convert_ids_to_tokens(ids)[0]) == word, (word, ids)


def test_clip_round_trip(clip_path):
    assert (clip_path / "model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(clip_path)
    assert tok.is_fast
    assert tok.model_max_length == 77
    assert tok.bos_token == "<|startoftext|>"
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"
    _known_words_are_single_tokens(tok, strip=lambda t: t.removesuffix("</w>"))
    _check_offsets(tok)
    # arbitrary text (unknown words, digits, accents, symbols) tokenizes without <unk>
    odd = tok("xylophonic zebrafish café №42 ~~ it's", add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in odd

    enc = tok([PROMPT, "a dog"], padding="max_length", max_length=tok.model_max_length,
              truncation=True, return_tensors="pt")
    assert enc.input_ids.shape == (2, 77)
    assert enc.input_ids[1, 0] == tok.bos_token_id
    assert (enc.input_ids[1, 3:] == tok.pad_token_id).all()

    model = AutoModel.from_pretrained(clip_path)
    assert isinstance(model, CLIPTextModel)
    cfg = model.config
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (32, 64, 3)
    assert cfg.vocab_size >= len(tok)
    with torch.no_grad():
        out = model(**enc)
    assert out.last_hidden_state.shape == (2, 77, 32)
    assert out.pooler_output.shape == (2, 32)
    # transformers 5 flattened CLIPTextModel: no `.text_model`, layers at `encoder.layers`
    assert model.encoder.layers[0].mlp.fc2.weight.shape == (32, 64)


def test_clip_is_deterministic(clip_path, tmp_path):
    again = build_tiny_clip(tmp_path / "clip")
    assert (again / "tokenizer.json").read_text() == (clip_path / "tokenizer.json").read_text()
    a = CLIPTextModel.from_pretrained(clip_path).state_dict()
    b = CLIPTextModel.from_pretrained(again).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_clip_with_projection(tmp_path):
    path = build_tiny_clip(tmp_path / "clip_proj", with_projection=True)
    assert AutoConfig.from_pretrained(path).architectures == ["CLIPTextModelWithProjection"]
    model = CLIPTextModelWithProjection.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        out = model(**tok(["a cat"], padding="max_length", return_tensors="pt"))
    assert out.text_embeds.shape == (1, 16)
    # ...but the projection model still wraps it in `.text_model`
    assert model.text_model.encoder.layers[0].mlp.fc2.weight.shape == (32, 64)
    assert out.last_hidden_state.shape == (1, 77, 32)


@pytest.mark.parametrize("gated", [False, True])
def test_t5_round_trip(tmp_path, gated):
    path = build_tiny_t5(tmp_path / "t5", gated=gated)
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.is_fast
    assert (tok.pad_token, tok.eos_token, tok.unk_token) == ("<pad>", "</s>", "<unk>")
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    _known_words_are_single_tokens(tok, strip=lambda t: t.removeprefix("▁"))
    enc = _check_offsets(tok)
    assert enc["input_ids"][-1] == tok.eos_token_id

    # T5's config says model_type "t5", which AutoModel maps to the full T5Model:
    # load the encoder with its own class.
    model = T5EncoderModel.from_pretrained(path)
    assert model.config.feed_forward_proj == ("gated-gelu" if gated else "relu")
    assert model.config.vocab_size >= len(tok)
    ff = model.encoder.block[0].layer[1].DenseReluDense
    assert ff.wo.weight.shape == (32, 64)
    assert hasattr(ff, "wi_0") == gated
    batch = tok([PROMPT, "a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    assert out.last_hidden_state.shape == (2, batch.input_ids.shape[1], 32)


def test_bert_round_trip(tmp_path):
    path = build_tiny_bert(tmp_path / "bert")
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.is_fast
    _known_words_are_single_tokens(tok)
    _check_offsets(tok)
    odd = tok("xylophonic zebrafish 1984 it's", add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in odd

    model = AutoModel.from_pretrained(path)
    assert type(model).__name__ == "BertModel"
    assert model.encoder.layer[0].output.dense.weight.shape == (32, 64)
    batch = tok([PROMPT, "a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    assert out.last_hidden_state.shape == (2, batch.input_ids.shape[1], 32)


def test_mpnet_round_trip(tmp_path):
    """MPNet's tokenizer (fast, WordPiece, ``<s> … </s>``, ``<pad>`` = 1 as MPNet's positions
    need) and a tiny ``MPNetModel`` with random biases, read back with the Auto classes."""
    path = build_tiny_mpnet(tmp_path / "mpnet")
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.is_fast and type(tok).__name__ == "MPNetTokenizer"  # transformers 5: MPNetTokenizerFast is it
    assert (tok.cls_token, tok.pad_token, tok.sep_token, tok.unk_token) == ("<s>", "<pad>", "</s>", "[UNK]")
    assert (tok.cls_token_id, tok.pad_token_id, tok.sep_token_id) == (0, 1, 2)
    _known_words_are_single_tokens(tok)
    enc = _check_offsets(tok)
    assert enc["input_ids"][0] == tok.cls_token_id and enc["input_ids"][-1] == tok.sep_token_id
    odd = tok("xylophonic zebrafish 1984 it's", add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in odd

    model = AutoModel.from_pretrained(path)
    assert type(model).__name__ == "MPNetModel" and model.config.pad_token_id == tok.pad_token_id
    dense = model.encoder.layer[0].output.dense
    assert dense.weight.shape == (32, 64) and dense.bias.abs().min() > 0
    batch = tok([PROMPT, "a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    assert out.last_hidden_state.shape == (2, batch.input_ids.shape[1], 32)
    again = build_tiny_mpnet(tmp_path / "again")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 AutoModel.from_pretrained(again).state_dict().values()))


def test_sd_pipeline_folder(sd_path):
    index = json.loads((sd_path / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    text_encoder = CLIPTextModel.from_pretrained(sd_path / "text_encoder")
    assert text_encoder.config.hidden_size == 32
    tok = AutoTokenizer.from_pretrained(sd_path / "tokenizer")
    assert tok.is_fast and tok.model_max_length == 77


def test_sd_pipeline_generates(sd_path):
    """The tiny pipeline draws an image in [0, 1], the same for the same seed, and what it draws
    depends on the prompt through the tiny CLIP's per-token states: those states, computed here
    from the prompt padded to 77 tokens and handed in as ``prompt_embeds``, draw the very same
    image; another prompt, or another seed, draws another one."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(sd_path)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size

    def draw(seed=0, **prompt):
        out = pipe(num_inference_steps=2, guidance_scale=6.0, output_type="np",
                   generator=torch.Generator("cpu").manual_seed(seed), **prompt)
        return torch.from_numpy(out.images)

    image = draw(prompt="a photo of the acme mascot")
    assert image.shape == (1, 64, 64, 3)
    assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1 and image.std() > 0.01
    assert torch.equal(draw(prompt="a photo of the acme mascot"), image)
    ids = pipe.tokenizer(["a photo of the acme mascot"], padding="max_length", max_length=77,
                         return_tensors="pt").input_ids
    with torch.no_grad():
        states = pipe.text_encoder(ids).last_hidden_state
    torch.testing.assert_close(draw(prompt_embeds=states), image, rtol=0, atol=1e-6)
    assert (draw(prompt="a dog in the snow") - image).abs().max() > 1e-3
    assert (draw(seed=1, prompt="a photo of the acme mascot") - image).abs().max() > 0.1
