"""Encoder adapters on every tiny family: structure, the residual relation, spans, loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import BertModel, CLIPTextModel, CLIPTextModelWithProjection, MPNetModel, T5EncoderModel

from textedit.encoders import BertAdapter, CLIPAdapter, T5Adapter, adapter_for, load_encoder
from textedit.encoders.base import find_span
from textedit.encoders.mpnet import MPNetAdapter
from textedit.errors import LayerError, ModelLoadError, SubjectError
from textedit.hooks import record_inputs, record_outputs

# name: (adapter class, model class, layers, hidden size, MLP size, sentence vector size)
FAMILIES = {
    "clip": (CLIPAdapter, CLIPTextModel, 3, 32, 64, 32),
    "clip_proj": (CLIPAdapter, CLIPTextModelWithProjection, 3, 32, 64, 16),
    "t5": (T5Adapter, T5EncoderModel, 2, 32, 64, 32),
    "t5_gated": (T5Adapter, T5EncoderModel, 2, 32, 64, 32),
    "bert": (BertAdapter, BertModel, 2, 32, 64, 32),
    "mpnet": (MPNetAdapter, MPNetModel, 2, 32, 64, 32),
}
NAMES = list(FAMILIES)
PROMPT = "a photo of the Acme mascot, zebrafish style"
PROMPTS = [PROMPT, "a dog", "the prime minister of canada in a red hat on the beach at night"]


@pytest.fixture(params=NAMES)
def family(request, model_paths):
    """``(name, adapter)`` for each tiny family, freshly loaded."""
    return request.param, load_encoder(str(model_paths[request.param]))


def _strip(token: str) -> str:
    """A token's text without its tokenizer's decorations."""
    return token.replace("</w>", "").replace("▁", "").replace("##", "")


def _tokens(adapter, batch, row=0):
    return adapter.tokenizer.convert_ids_to_tokens(batch.input_ids[row])


# -- structure -----------------------------------------------------------------------------


def test_load_returns_the_right_adapter(family):
    name, adapter = family
    adapter_cls, model_cls, layers, *_ = FAMILIES[name]
    assert type(adapter) is adapter_cls
    assert type(adapter.model) is model_cls
    assert adapter.num_layers == layers
    assert adapter.family == {"clip": "clip", "clip_proj": "clip", "t5": "t5", "t5_gated": "t5", "bert": "bert",
                              "mpnet": "mpnet"}[name]
    assert not adapter.model.training
    assert adapter.dtype == torch.float32
    assert type(adapter_for(adapter.model, adapter.tokenizer)) is adapter_cls


def test_t5_gated_has_a_gated_mlp(model_paths):
    gated = load_encoder(str(model_paths["t5_gated"]))
    plain = load_encoder(str(model_paths["t5"]))
    assert hasattr(gated.block(0).layer[1].DenseReluDense, "wi_0")
    assert hasattr(plain.block(0).layer[1].DenseReluDense, "wi")


def test_down_proj_is_the_mlp_output_layer(family):
    name, adapter = family
    _, _, layers, hidden, mlp, _ = FAMILIES[name]
    modules = {i: adapter.down_proj_module(i) for i in range(layers)}
    assert len({id(m) for m in modules.values()}) == layers
    for i, module in modules.items():
        assert isinstance(module, nn.Linear)
        assert (module.in_features, module.out_features) == (mlp, hidden)
        assert adapter.model.get_submodule(adapter.down_proj_name(i)) is module
        assert module in list(adapter.block(i).modules())
    rows = adapter.describe_layers()
    assert [r["layer"] for r in rows] == list(range(layers))
    assert all((r["d_in"], r["d_out"], r["dtype"]) == (mlp, hidden, "float32") for r in rows)


def _blocks_by_hand(name: str, model: nn.Module) -> nn.ModuleList:
    """The transformer blocks under transformers' own attribute names (not the adapter's lookup)."""
    if name in ("bert", "mpnet"):
        return model.encoder.layer
    if name == "clip_proj":
        return model.text_model.encoder.layers  # the projection model still wraps `.text_model`
    if name == "clip":
        return model.encoder.layers
    return model.encoder.block


def _mlp_by_hand(name: str, block: nn.Module):
    """``(first, key, down)``: the MLP's first module (its input is the MLP's input ``x``), the
    key ``k(x)`` spelled out from the MLP's parts, and the down-projection ``v = W k + b``."""
    if name in ("bert", "mpnet"):  # MPNet's MLP is BERT's (transformers copies the classes)
        up = block.intermediate
        return up.dense, lambda x: up.intermediate_act_fn(up.dense(x)), block.output.dense
    if name.startswith("clip"):
        mlp = block.mlp
        return mlp.fc1, lambda x: mlp.activation_fn(mlp.fc1(x)), mlp.fc2
    ff = block.layer[1].DenseReluDense
    if name == "t5_gated":
        return ff.wi_0, lambda x: ff.act(ff.wi_0(x)) * ff.wi_1(x), ff.wo
    return ff.wi, lambda x: ff.act(ff.wi(x)), ff.wo


def test_keys_values_and_hidden_states_are_what_the_model_computes(family):
    """What the adapter reads is what the bare transformers model computes, called as the consumer
    calls it (BERT and T5 with the attention mask, CLIP without one): at every layer the key it
    records is the MLP's hidden ``act(up(x))`` (gated T5: ``act(wi_0 x) ⊙ wi_1 x``) computed by hand
    from the MLP's input ``x``, the value is ``W k + b`` of that key, and the per-token states it
    hands a pipeline are the model's last (``hidden_state_index=-1``) or penultimate (-2) ones."""
    name, adapter = family
    model, layers = adapter.model, range(adapter.num_layers)
    mlps = [_mlp_by_hand(name, block) for block in _blocks_by_hand(name, model)]
    assert len(mlps) == adapter.num_layers
    batch = adapter.tokenize(PROMPTS)
    assert batch.attention_mask.sum(1).unique().numel() == len(PROMPTS)  # padded rows: the mask matters
    inputs = {}
    handles = [first.register_forward_hook(lambda _m, args, _out, i=i: inputs.__setitem__(i, args[0]))
               for i, (first, _, _) in enumerate(mlps)]
    mask = None if name.startswith("clip") else batch.attention_mask
    try:
        with torch.no_grad():
            reference = model(input_ids=batch.input_ids, attention_mask=mask, output_hidden_states=True)
            keys_by_hand = {i: mlps[i][1](inputs[i]) for i in layers}
    finally:
        for handle in handles:
            handle.remove()

    down = {i: adapter.down_proj_module(i) for i in layers}
    with torch.no_grad(), record_inputs(down) as keys, record_outputs(down) as values:
        adapter.forward(batch)
    for i in layers:
        k = keys_by_hand[i]
        W, b = mlps[i][2].weight, mlps[i][2].bias
        assert k.abs().max() > 0.1 and (b is None or b.abs().max() > 0.05)  # nothing vanishes by chance
        torch.testing.assert_close(keys[i], k, rtol=1e-5, atol=1e-6, msg=f"{name} key, layer {i}")
        torch.testing.assert_close(values[i], k @ W.T + (0 if b is None else b), rtol=1e-5, atol=1e-5,
                                   msg=f"{name} value, layer {i}")
    with torch.no_grad():
        torch.testing.assert_close(adapter.hidden_states(batch), reference.last_hidden_state, rtol=0, atol=0)
        penultimate = adapter_for(model, adapter.tokenizer, hidden_state_index=-2)
        torch.testing.assert_close(penultimate.hidden_states(batch), reference.hidden_states[-2], rtol=0, atol=0)
        assert not torch.allclose(reference.hidden_states[-2], reference.last_hidden_state, atol=1e-3)


def test_gated_t5_key_is_the_gated_product(model_paths):
    adapter = load_encoder(str(model_paths["t5_gated"]))
    mlp = adapter.block(1).layer[1].DenseReluDense
    batch = adapter.tokenize(PROMPTS)
    with torch.no_grad(), record_inputs({"wi_0": mlp.wi_0, "wo": mlp.wo}) as seen:
        adapter.forward(batch)
        x = seen["wi_0"]
        expected = mlp.act(mlp.wi_0(x)) * mlp.wi_1(x)
    assert torch.allclose(seen["wo"], expected, atol=1e-6)


def _block_output(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def test_residual_relation_reproduces_the_block_output(family):
    """z = r + v is the stream after the MLP: the block output itself (CLIP, T5) or its
    pre-LayerNorm sum (post-norm BERT)."""
    name, adapter = family
    layers = range(adapter.num_layers)
    down = {i: adapter.down_proj_module(i) for i in layers}
    resid = {i: adapter.residual_module(i) for i in layers}
    blocks = {i: adapter.block(i) for i in layers}
    batch = adapter.tokenize(PROMPTS)
    with torch.no_grad(), record_outputs(down) as values, record_inputs(resid, arg=adapter.residual[1]) as streams, \
            record_outputs(blocks) as outputs:
        adapter.forward(batch)
    for i in layers:
        z = streams[i] + values[i]
        out = _block_output(outputs[i])
        assert z.shape == out.shape
        if isinstance(adapter, (BertAdapter, MPNetAdapter)):  # post-norm
            z = blocks[i].output.LayerNorm(z)
        assert torch.allclose(z, out, atol=1e-5), (name, i)
        assert not torch.allclose(streams[i], out, atol=1e-3)  # v is not negligible


@pytest.mark.parametrize("name, attention_norm", [("bert", "attention.output.LayerNorm"),
                                                   ("mpnet", "attention.LayerNorm")])
def test_attention_out_is_what_attention_adds_to_the_stream(model_paths, name, attention_norm):
    """Post-norm blocks: the attention sublayer's output projection (``attention_out``, what
    ``textedit locate`` restores) plus the block's input, normalised, is the stream the MLP's
    value is added to (``residual``): MPNet's ``attention.attn.o``, whose scores carry the
    relative position bias, as BERT's ``attention.output.dense``."""
    adapter = load_encoder(str(model_paths[name]))
    layers = range(adapter.num_layers)
    attn = {i: adapter.attention_out_module(i) for i in layers}
    resid = {i: adapter.residual_module(i) for i in layers}
    blocks = {i: adapter.block(i) for i in layers}
    batch = adapter.tokenize(PROMPTS)
    with torch.no_grad(), record_outputs(attn) as attended, record_inputs(blocks) as inputs, \
            record_inputs(resid, arg=adapter.residual[1]) as streams:
        adapter.forward(batch)
    for i in layers:
        assert isinstance(attn[i], nn.Linear) and attn[i] in list(blocks[i].modules())
        norm = blocks[i].get_submodule(attention_norm)
        torch.testing.assert_close(norm(attended[i] + inputs[i]), streams[i], rtol=1e-5, atol=1e-5)


def test_mpnet_reads_the_relative_position_bias_and_positions_from_the_padding_id(mpnet_path):
    """MPNet's scores take a relative position bias (in the encoder, not a block), and its
    position ids count real tokens from the padding id (1): the tiny model's bias is far from
    zero, so without it the states are others, and right padding leaves the real tokens'
    states as they are."""
    adapter = load_encoder(str(mpnet_path))
    assert adapter.tokenizer.pad_token_id == 1 == adapter.model.config.pad_token_id
    bias = adapter.model.encoder.relative_attention_bias.weight
    assert bias.std() > 0.5
    with torch.no_grad():
        alone = adapter.hidden_states(adapter.tokenize([PROMPTS[1]]))
        padded = adapter.hidden_states(adapter.tokenize(PROMPTS))[1, :alone.shape[1]]
        bias.zero_()
        unbiased = adapter.hidden_states(adapter.tokenize([PROMPTS[1]]))
    torch.testing.assert_close(padded, alone[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(unbiased, alone, atol=1e-2)


# -- tokenization and spans ----------------------------------------------------------------


@pytest.mark.parametrize("subject, word", [("Acme mascot", "mascot"), ("Acme", "acme"), ("acme", "acme"),
                                           ("the Acme", "acme"), ("zebrafish", None), (None, "style")])
def test_subject_last_token(family, subject, word):
    name, adapter = family
    batch = adapter.tokenize([PROMPT])
    start, end = find_span(PROMPT, subject)
    assert PROMPT[start:end].lower() == (subject or PROMPT).lower()
    index = adapter.last_token_in_span(batch.offsets[0], batch.attention_mask[0], start, end, PROMPT)
    a, b = batch.offsets[0][index]
    assert b == end  # the span's last character is covered by this token
    if word is not None:
        assert _strip(_tokens(adapter, batch)[index]).lower() == word
    # no later real token overlaps the span
    later = [(x, y) for (x, y), m in zip(batch.offsets[0][index + 1:], batch.attention_mask[0][index + 1:])
             if m and y > x and x < end]
    assert not later


def test_subject_in_a_padded_batch(family):
    _, adapter = family
    prompts = ["a dog", "a photo of the acme mascot"]
    batch = adapter.tokenize(prompts, pad_to_consumer=True)
    start, end = find_span(prompts[0], "dog")
    index = adapter.last_token_in_span(batch.offsets[0], batch.attention_mask[0], start, end, prompts[0])
    assert _strip(_tokens(adapter, batch)[index]) == "dog"
    assert batch.attention_mask[0, index] == 1


def test_missing_subject_raises():
    with pytest.raises(SubjectError, match="Globex"):
        find_span(PROMPT, "Globex")
    with pytest.raises(SubjectError):
        find_span(PROMPT, "   ")
    assert find_span(PROMPT, None) == (0, len(PROMPT))
    assert find_span("The ACME logo", "acme") == (4, 8)


def test_truncated_subject_raises(clip):
    prompt = " ".join(["dog"] * 100) + " acme"
    batch = clip.tokenize([prompt])
    assert batch.input_ids.shape[1] == 77
    start, end = find_span(prompt, "acme")
    with pytest.raises(SubjectError, match="truncated"):
        clip.last_token_in_span(batch.offsets[0], batch.attention_mask[0], start, end, prompt)


def test_clip_pads_to_77_for_the_consumer(clip):
    batch = clip.tokenize(PROMPTS, pad_to_consumer=True)
    assert batch.input_ids.shape == (3, 77)
    assert len(batch.offsets) == 3 and all(len(o) == 77 for o in batch.offsets)
    loose = clip.tokenize(PROMPTS)
    assert loose.input_ids.shape[1] < 77
    assert torch.equal(batch.attention_mask.sum(1), loose.attention_mask.sum(1))
    n = int(batch.attention_mask[1].sum())
    assert torch.all(batch.input_ids[1, n:] == clip.tokenizer.pad_token_id)
    assert batch.input_ids[1, 0] == clip.tokenizer.bos_token_id
    assert batch.input_ids[1, n - 1] == clip.tokenizer.eos_token_id
    # CLIP is causal: padding changes nothing on real tokens
    with torch.no_grad():
        padded = clip.hidden_states(batch)
        short = clip.hidden_states(loose)
    m = short.shape[1]
    real = loose.attention_mask.bool()
    assert torch.allclose(padded[:, :m][real], short[real], atol=1e-5)


@pytest.mark.parametrize("name", ["t5", "t5_gated", "bert", "mpnet"])
def test_attention_mask_families_pad_to_longest(model_paths, name):
    adapter = load_encoder(str(model_paths[name]))
    batch = adapter.tokenize(PROMPTS)
    assert batch.input_ids.shape[1] == int(batch.attention_mask.sum(1).max())
    # these consumers pad to the longest prompt themselves, so "as the consumer does" is the same
    full = adapter.tokenize(PROMPTS, pad_to_consumer=True)
    assert full.input_ids.shape == batch.input_ids.shape


# -- outputs -------------------------------------------------------------------------------


def test_sentence_vectors(family):
    """The sentence vector computed by hand from the model's last states: the mean over real
    tokens (BERT, T5: sentence-transformers' pooling), or CLIP's state at its EOS token, the last
    real one (projected by ``text_projection`` when the model has one)."""
    name, adapter = family
    dim = FAMILIES[name][5]
    vectors = adapter.embed(PROMPTS)
    assert vectors.shape == (3, dim) and vectors.dtype == torch.float32
    assert torch.isfinite(vectors).all()
    batch = adapter.tokenize(PROMPTS)
    lengths = [int(n) for n in batch.attention_mask.sum(1)]
    clip_model = name.startswith("clip")
    with torch.no_grad():
        states = adapter.model(input_ids=batch.input_ids,
                               attention_mask=None if clip_model else batch.attention_mask).last_hidden_state
        if clip_model:
            assert [int(batch.input_ids[row, n - 1]) for row, n in enumerate(lengths)] == \
                [adapter.tokenizer.eos_token_id] * len(PROMPTS)
            by_hand = torch.stack([states[row, n - 1] for row, n in enumerate(lengths)])
            if name == "clip_proj":
                by_hand = by_hand @ adapter.model.text_projection.weight.T
        else:
            by_hand = torch.stack([states[row, :n].mean(0) for row, n in enumerate(lengths)])
    torch.testing.assert_close(vectors, by_hand, rtol=1e-5, atol=1e-6)
    one_by_one = adapter.embed(PROMPTS, batch_size=1)  # other padding, same vectors
    assert torch.allclose(vectors, one_by_one, atol=1e-5)
    assert not torch.allclose(vectors[0], vectors[1], atol=1e-3)


# -- layers --------------------------------------------------------------------------------


def test_check_layers(bert):
    assert bert.check_layers([1, -2, 0, 1]) == [0, 1]
    for bad in ([2], [-3], []):
        with pytest.raises(LayerError):
            bert.check_layers(bad)


def test_adapter_for_unknown_model_raises():
    with pytest.raises(LayerError, match="no adapter"):
        adapter_for(nn.Linear(2, 2), None)


# -- loading -------------------------------------------------------------------------------


def test_pipeline_folder_needs_a_component(sd_path):
    with pytest.raises(ModelLoadError, match="pipeline.*text_encoder"):
        load_encoder(str(sd_path))
    adapter = load_encoder(str(sd_path), component="text_encoder")
    assert isinstance(adapter, CLIPAdapter) and adapter.name.endswith(":text_encoder")
    assert adapter.tokenize(["a dog"], pad_to_consumer=True).input_ids.shape == (1, 77)
    with pytest.raises(ModelLoadError, match="no component 'text_encoder_2'"):
        load_encoder(str(sd_path), component="text_encoder_2")
    with pytest.raises(ModelLoadError, match="unknown component"):
        load_encoder(str(sd_path), component="unet")


def test_missing_folder_raises_with_its_path(tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(ModelLoadError) as info:
        load_encoder(str(missing))
    assert str(missing) in str(info.value)


def test_home_relative_folder_loads(bert_path, monkeypatch):
    monkeypatch.setenv("HOME", str(bert_path.parent))
    adapter = load_encoder(f"~/{bert_path.name}")
    assert isinstance(adapter, BertAdapter)
    assert adapter.fingerprint() == load_encoder(str(bert_path)).fingerprint()
    with pytest.raises(ModelLoadError, match="~/missing"):
        load_encoder("~/missing")


def test_folder_without_a_model_raises(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model", "utf-8")
    with pytest.raises(ModelLoadError) as info:
        load_encoder(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_unknown_dtype_raises(bert_path):
    with pytest.raises(ModelLoadError, match="dtype"):
        load_encoder(str(bert_path), dtype="float8")


@pytest.mark.parametrize("name", NAMES)
def test_fingerprint(model_paths, name):
    path = str(model_paths[name])
    fp32 = load_encoder(path)
    fp16 = load_encoder(path, dtype="fp16")
    assert fp16.model.get_input_embeddings().weight.dtype == torch.float16
    assert fp32.fingerprint() == fp16.fingerprint() == load_encoder(path).fingerprint()
    before = fp32.fingerprint()
    weight = fp32.down_proj_module(0).weight
    with torch.no_grad():
        weight[3, 5] += 0.25
    assert fp32.fingerprint() != before
    with torch.no_grad():
        weight[3, 5] -= 0.25
    assert fp32.fingerprint() == before


def test_fingerprints_differ_between_models(model_paths):
    prints = {name: load_encoder(str(path)).fingerprint() for name, path in model_paths.items()}
    assert len(set(prints.values())) == len(prints)


def test_parameters_left_on_the_meta_device_are_a_one_line_load_error(bert_path, monkeypatch):
    """A model whose loading left a parameter without data (a loader patched into meta mode by
    another thread, a checkpoint that lacks an untied weight) is refused in one line naming it."""
    from torch import nn
    from transformers import BertModel

    from textedit.encoders import load_encoder
    from textedit.errors import ModelLoadError

    real = BertModel.from_pretrained.__func__

    def half_loaded(cls, *args, **kwargs):
        model = real(cls, *args, **kwargs)
        weight = model.embeddings.word_embeddings.weight
        model.embeddings.word_embeddings.weight = nn.Parameter(torch.empty(weight.shape, device="meta"))
        return model

    monkeypatch.setattr(BertModel, "from_pretrained", classmethod(half_loaded))
    with pytest.raises(ModelLoadError, match=r"1 parameter\(s\) hold no data after loading \(e.g. "
                                             r"embeddings.word_embeddings.weight\)"):
        load_encoder(str(bert_path))
