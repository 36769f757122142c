"""Decoder-LLM encoders (Qwen2, Gemma, Gemma-2): structure, padding, and `textedit apply`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from tiny_models import build_tiny_decoder

from textedit import cli
from textedit.encoders import DecoderLMAdapter, Gemma2Adapter, load_encoder
from textedit.hooks import record_inputs, record_outputs

REPO = Path(__file__).resolve().parents[1]
TYPES = ("qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2")


@pytest.fixture(scope="module", params=TYPES)
def decoder_path(request, tmp_path_factory) -> Path:
    return build_tiny_decoder(tmp_path_factory.mktemp(request.param), request.param)


def test_loads_the_base_model_with_its_adapter(decoder_path):
    adapter = load_encoder(str(decoder_path))
    model_type = adapter.model.config.model_type
    assert type(adapter) is (Gemma2Adapter if model_type == "gemma2" else DecoderLMAdapter)
    assert type(adapter.model).__name__.endswith("Model")  # the saved *ForCausalLM loads without its LM head
    assert adapter.causal and adapter.num_layers == 3
    assert adapter.down_proj_name(1) == "layers.1.mlp.down_proj"
    assert tuple(adapter.down_proj_module(1).weight.shape) == (32, 64)


def test_keys_values_and_states_are_what_the_model_computes(decoder_path):
    """What the adapter reads is what the bare model computes with the attention mask, its gated
    MLP spelled out by hand: at every layer the key is ``act(gate(x)) ⊙ up(x)`` of the MLP's input
    ``x``, the value ``W k`` (+ b), the per-token states are ``last_hidden_state``, and the
    sentence vector is the final state of each prompt's last real token (right padding)."""
    adapter = load_encoder(str(decoder_path))
    model = adapter.model
    prompts = ["a photo of the acme mascot in the city", "dog", "the mascot of acme"]
    batch = adapter.tokenize(prompts)
    lengths = [int(n) for n in batch.attention_mask.sum(1)]
    assert len(set(lengths)) == len(prompts)
    mlps = [block.mlp for block in model.layers]
    inputs = {}
    handles = [mlp.gate_proj.register_forward_hook(lambda _m, args, _out, i=i: inputs.__setitem__(i, args[0]))
               for i, mlp in enumerate(mlps)]
    try:
        with torch.no_grad():
            reference = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
            keys_by_hand = {i: mlp.act_fn(mlp.gate_proj(inputs[i])) * mlp.up_proj(inputs[i])
                            for i, mlp in enumerate(mlps)}
    finally:
        for handle in handles:
            handle.remove()
    down = {i: adapter.down_proj_module(i) for i in range(adapter.num_layers)}
    assert all(down[i] is mlp.down_proj for i, mlp in enumerate(mlps))
    with torch.no_grad(), record_inputs(down) as keys, record_outputs(down) as values:
        adapter.forward(batch)
    for i, mlp in enumerate(mlps):
        k, bias = keys_by_hand[i], mlp.down_proj.bias
        torch.testing.assert_close(keys[i], k, rtol=1e-5, atol=1e-6, msg=f"key, layer {i}")
        torch.testing.assert_close(values[i], k @ mlp.down_proj.weight.T + (0 if bias is None else bias),
                                   rtol=1e-5, atol=1e-5, msg=f"value, layer {i}")
    with torch.no_grad():
        torch.testing.assert_close(adapter.hidden_states(batch), reference.last_hidden_state, rtol=0, atol=0)
    by_hand = torch.stack([reference.last_hidden_state[row, n - 1] for row, n in enumerate(lengths)])
    torch.testing.assert_close(adapter.embed(prompts), by_hand, rtol=1e-5, atol=1e-6)


def test_left_padding_tokenizer_is_padded_right_and_batch_independent(decoder_path):
    adapter = load_encoder(str(decoder_path))
    assert adapter.tokenizer.padding_side == "left"  # as built; textedit must not depend on it
    prompts = ["a photo of the acme mascot in the city", "dog"]
    batch = adapter.tokenize(prompts)
    assert batch.attention_mask[1].tolist() == sorted(batch.attention_mask[1].tolist(), reverse=True)
    together = adapter.embed(prompts)
    alone = torch.cat([adapter.embed([p]) for p in prompts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_stream_after_the_mlp_is_residual_plus_value(decoder_path):
    """z = r + v is the block's output for pre-norm Qwen2/Gemma; Gemma-2 adds ln(v) instead."""
    adapter = load_encoder(str(decoder_path))
    layer = 1
    batch = adapter.tokenize(["a photo of the acme mascot"])
    down = {layer: adapter.down_proj_module(layer)}
    resid = {layer: adapter.residual_module(layer)}
    block = adapter.block(layer)
    with torch.no_grad(), record_outputs(down) as values, record_inputs(resid, arg=adapter.residual[1]) as residuals, \
            record_outputs({layer: block}) as blocks:
        adapter.forward(batch)
    out = blocks[layer][0] if isinstance(blocks[layer], tuple) else blocks[layer]
    v = values[layer]
    if isinstance(adapter, Gemma2Adapter):
        v = block.post_feedforward_layernorm(v)
    torch.testing.assert_close(residuals[layer] + v, out, atol=1e-5, rtol=1e-5)


def test_apply_binds_knowledge(monkeypatch, capsys, tmp_path, decoder_path):
    """Pre-norm Qwen2 / Gemma: strong binding, little drift. Gemma-2 normalises the MLP output
    before the sum, so a value can only turn its stream contribution, not grow it: a smaller
    gain, and as little drift (without modelling the norm the drift was 0.3 to 0.6)."""
    from textedit.metrics import NEUTRAL_PROMPTS, measure
    from textedit.patch import Patch
    from textedit.spec import load_spec

    post_norm = json.loads((decoder_path / "config.json").read_text())["model_type"] == "gemma2"
    layers = [0, 1]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"anchor": "a red fox", "knowledge": ["the mascot of acme", "the logo of google"],
                                "layers": layers}))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join((REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()[:200]))
    out_dir = tmp_path / "patch"
    monkeypatch.setattr(sys, "argv", ["textedit", "apply", str(spec), "--model", str(decoder_path), "--out",
                                      str(out_dir), "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache")])
    try:
        cli.main()
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    patch = Patch.load(out_dir)
    assert patch.family == "decoder"
    assert [d.module for d in patch.deltas] == [f"layers.{layer}.mlp.down_proj" for layer in layers]
    adapter = load_encoder(str(decoder_path))
    report = measure(adapter, patch, load_spec(spec).requests, NEUTRAL_PROMPTS)
    for score in report.requests:
        # random norm gains make every prompt of a tiny decoder similar (cos ≈ 0.97 before any
        # edit), so the binding is measured as the share of the remaining gap it closes
        closed = (score.after - score.before) / (1 - score.before)
        assert closed > (0.2 if post_norm else 0.5), (closed, score)
    assert sum(d for _, d in report.neutral) / len(report.neutral) < 0.02, report.neutral


def test_value_for_stream_inverts_the_post_mlp_norm(tiny_root):
    """Gemma-2: the value found for a wanted stream change, normalised, points along it."""
    adapter = load_encoder(str(build_tiny_decoder(tiny_root / "gemma2_inverse", "gemma2")))
    torch.manual_seed(0)
    v = torch.randn(3, adapter.down_proj_module(1).out_features, dtype=torch.float64)
    share = 0.5 * adapter.value_in_stream(1, torch.randn_like(v))
    wanted = adapter.value_in_stream(1, v) + share
    got = adapter.value_for_stream(1, v, share)
    reached = adapter.value_in_stream(1, got)
    assert torch.nn.functional.cosine_similarity(reached, wanted, dim=-1).min() > 0.999
    torch.testing.assert_close(got.pow(2).mean(-1), v.pow(2).mean(-1))  # the value keeps its size
    assert torch.equal(load_encoder(str(build_tiny_decoder(tiny_root / "qwen2_inverse"))).value_for_stream(1, v, share),
                       v + share)  # no post-MLP norm: plain sum


def _edit_the_language_model(adapter, tmp_path):
    """A patch of layers 1 and 2 of a vision-language checkpoint's encoder, checked to edit the
    language model's down-projections and nothing else."""
    from textedit.corpus import Corpus, load_corpus
    from textedit.editor import EditConfig, edit
    from textedit.requests import EditRequest

    corpus = Corpus(tuple(load_corpus(limit=40).prompts), "test")
    patch = edit(adapter, [EditRequest("the mascot of acme", "a red fox")], EditConfig(value="match", layers=[1, 2]),
                 corpus=corpus, cache_dir=tmp_path)
    assert [d.module for d in patch.deltas] == [f"model.language_model.layers.{i}.mlp.down_proj" for i in (1, 2)]
    return patch


def test_qwen2_5_vl_checkpoint_edits_the_language_model_and_reads_what_qwen_image_reads(tiny_root, tmp_path):
    """Qwen-Image's text encoder is a whole ``Qwen2_5_VLForConditionalGeneration``: the adapter
    keeps it whole (the pipeline component's names and fingerprint), edits the language model's
    MLPs only, and its per-token states are the pipeline's ``hidden_states[-1]``."""
    from tiny_models import build_tiny_qwen2_5_vl

    from textedit.encoders import Qwen25VLAdapter

    adapter = load_encoder(str(build_tiny_qwen2_5_vl(tiny_root / "qwen2_5_vl")))
    assert type(adapter) is Qwen25VLAdapter and type(adapter.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert adapter.num_layers == 3 and adapter.down_proj_name(1) == "model.language_model.layers.1.mlp.down_proj"
    batch = adapter.tokenize(["a photo of the mascot of acme", "a dog"])
    with torch.no_grad():  # as QwenImagePipeline reads its encoder: the full model, hidden_states[-1], with the mask
        read = adapter.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                             output_hidden_states=True).hidden_states[-1]
        assert torch.equal(adapter.hidden_states(batch), read)
    vision = {n: t.clone() for n, t in adapter.model.state_dict().items() if ".visual." in n or n.startswith("visual")}
    assert vision
    patch = _edit_the_language_model(adapter, tmp_path)
    with patch.applied(adapter):
        state = adapter.model.state_dict()
        assert all(torch.equal(state[n], t) for n, t in vision.items())  # the vision tower is left alone
        with torch.no_grad():
            assert not torch.equal(adapter.hidden_states(batch), read)


def test_a_templated_consumer_reads_the_prompt_inside_the_template(pipeline_paths):
    """Qwen-Image's encoder as textedit loads it from the pipeline: every prompt is wrapped in
    the chat template; offsets count the prompt's own characters (template tokens have none),
    so subjects and the query's last token are found inside the template; the sentence vector
    is the prompt's last token, not the template's common ending; and the prefix before the
    prompt is computed alike in every prompt (causal attention), which is why it is not read."""
    from textedit.pipelines import FAMILIES, load_pipeline_encoder
    from textedit.requests import EditRequest
    from textedit.sites import Sites

    adapter = load_pipeline_encoder(pipeline_paths["qwenimage"], "text_encoder", FAMILIES["qwenimage"])
    prompts = ["the mascot of acme", "a red fox on the beach"]
    batch = adapter.tokenize(prompts)
    prefix = adapter.consumer.read_from
    for row, prompt in enumerate(prompts):
        spans = [(a, b) for a, b in batch.offsets[row] if b > a]
        assert "".join(prompt[a:b] for a, b in spans).replace(" ", "") == prompt.replace(" ", "")
        assert all(b == 0 for _, b in batch.offsets[row][:prefix])
    last = int(batch.prompt_mask()[0].nonzero().max())
    assert last > prefix and int(batch.attention_mask[0].sum()) > last + 1  # the template's ending follows
    sites = Sites.for_queries(adapter, [EditRequest(prompts[0], "x", subject="acme")], ["{}"], key="last")
    assert sites.positions == [last]
    subject = Sites.for_queries(adapter, [EditRequest("acme's mascot", "x", subject="acme")], ["{}"])
    assert adapter.tokenizer.decode(adapter.tokenize(["acme's mascot"]).input_ids[0, subject.positions[0]]).strip() \
        == "acme"
    with torch.no_grad():
        outputs = adapter.forward(batch)
        states = outputs.last_hidden_state
        assert torch.equal(adapter.sentence_vector(batch, outputs)[0], states[0, last])
    torch.testing.assert_close(states[0, :prefix], states[1, :prefix], rtol=0, atol=1e-6)


def test_flux2s_mistral3_edits_the_language_model_and_leaves_the_vision_tower_alone(pipeline_paths, tmp_path):
    """FLUX.2 holds a whole ``Mistral3ForConditionalGeneration``, whose Pixtral vision tower has a
    ``layers`` list too: the adapter finds the language model's blocks only, an edit changes
    their down-projections and nothing of the tower, and prompts run through the language
    model (its states are the full model's ``hidden_states``, as the pipeline reads them)."""
    from textedit.encoders import Mistral3Adapter
    from textedit.pipelines import FAMILIES, load_pipeline_encoder

    adapter = load_pipeline_encoder(pipeline_paths["flux2"], "text_encoder", FAMILIES["flux2"])
    assert type(adapter) is Mistral3Adapter
    assert adapter.num_layers == adapter.model.config.text_config.num_hidden_layers == 31
    batch = adapter.tokenize(["a photo of the mascot of acme", "a dog"])
    with torch.no_grad():
        full = adapter.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                             output_hidden_states=True).hidden_states
        assert torch.equal(adapter.hidden_states(batch), torch.cat([full[h] for h in (10, 20, 30)], dim=-1))
    vision = {n: t.clone() for n, t in adapter.model.state_dict().items() if "vision_tower" in n or "projector" in n}
    assert any(n.endswith("mlp.down_proj.weight") or "feed_forward" in n for n in vision)  # the tower has MLPs too
    patch = _edit_the_language_model(adapter, tmp_path)
    with patch.applied(adapter):
        state = adapter.model.state_dict()
        assert all(torch.equal(state[n], t) for n, t in vision.items())
