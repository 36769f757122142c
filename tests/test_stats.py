"""Key statistics against a brute-force computation, the on-disk cache, resuming, corpora."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch

from textedit.corpus import DEFAULT_CORPUS, Corpus, load_corpus
from textedit.errors import LayerError, SpecError
from textedit.io import atomic_save_tensors
from textedit.solvers import batched
from textedit.stats import SecondMoment, StatsKey, compute_stats, consumer_tag

BATCH = 8  # 40 prompts -> 5 batches


def brute_force(adapter, layers, prompts, pad_to: int | None = None) -> dict[int, SecondMoment]:
    """Σ k kᵀ in float64 per layer, one prompt at a time, from plain forward hooks.

    Each prompt runs alone and unpadded (so every token is real) unless ``pad_to`` is set,
    in which case it is padded to that length and every position counts.
    """
    dims = {layer: adapter.down_proj_module(layer).weight.shape[1] for layer in layers}
    out = {layer: SecondMoment(torch.zeros(dims[layer], dims[layer], dtype=torch.float64), 0) for layer in layers}
    captured = {}
    handles = [adapter.down_proj_module(layer).register_forward_hook(
        lambda _m, args, _out, layer=layer: captured.__setitem__(layer, args[0].detach()))
        for layer in layers]
    try:
        with torch.no_grad():
            for prompt in prompts:
                enc = adapter.tokenizer(prompt, return_tensors="pt", truncation=True,
                                        max_length=pad_to or adapter.consumer.max_length,
                                        padding="max_length" if pad_to else False)
                adapter.model(input_ids=enc["input_ids"])
                for layer in layers:
                    keys = captured[layer][0].double()  # [tokens, d_in]
                    out[layer].sum += keys.T @ keys
                    out[layer].count += keys.shape[0]
    finally:
        for handle in handles:
            handle.remove()
    return out


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def assert_same(got: dict[int, SecondMoment], want: dict[int, SecondMoment], tol: float) -> None:
    assert sorted(got) == sorted(want)
    for layer in want:
        assert got[layer].count == want[layer].count
        assert got[layer].sum.dtype == torch.float64
        assert rel_err(got[layer].sum, want[layer].sum) <= tol, layer


def count_forward(monkeypatch, adapter, fail_after: int | None = None) -> list[int]:
    """Wrap ``adapter.forward`` to record batch sizes (and raise after ``fail_after`` calls)."""
    calls: list[int] = []
    real = adapter.forward

    def forward(batch, **kwargs):
        calls.append(len(batch))
        if fail_after is not None and len(calls) > fail_after:
            raise RuntimeError("simulated interruption")
        return real(batch, **kwargs)

    monkeypatch.setattr(adapter, "forward", forward)
    return calls


def cache_files(cache_dir, layer):
    return sorted(cache_dir.rglob(f"layer{layer}.safetensors"))


def cache_meta(path) -> dict:
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


# -- correctness ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["bert", "clip"])
def test_matches_brute_force(request, model, small_corpus):
    adapter = request.getfixturevalue(model)
    layers = list(range(adapter.num_layers))
    got = compute_stats(adapter, layers, small_corpus, batch_size=BATCH, use_cache=False)
    want = brute_force(adapter, layers, small_corpus.prompts)
    # float64 products; what is left is float32 noise of padded vs unpadded forward passes
    assert_same(got, want, 1e-6)
    real_tokens = int(adapter.tokenize(list(small_corpus.prompts)).attention_mask.sum())
    for layer in layers:
        assert got[layer].count == real_tokens
        assert torch.allclose(got[layer].mean, want[layer].sum / want[layer].count, rtol=1e-4, atol=1e-7)


def test_ill_conditioned_corpus_gives_positive_definite_c(bert):
    """200 prompts that differ only in a number: C is positive definite but ill-conditioned
    (cond ≈ 1e10). Products formed in float32 made it indefinite, and MEMIT's Cholesky then
    reported it singular."""
    corpus = Corpus(tuple(f"a photo of a dog and a cat number {i} in the garden" for i in range(200)), "digits")
    stats = compute_stats(bert, [0, 1], corpus, use_cache=False)
    key = torch.randn(64, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for layer in (0, 1):
        C = stats[layer].mean
        eigenvalues = torch.linalg.eigvalsh(C)
        assert eigenvalues.min() > 0 and eigenvalues.max() / eigenvalues.min() > 1e8
        assert torch.linalg.cholesky_ex(C).info == 0
        W = bert.down_proj_module(layer).weight
        batched(W, C, key, torch.zeros(W.shape[0], 1, dtype=torch.float64), 1e4)  # does not raise


def test_layer_subset_and_negative_index(bert, small_corpus):
    full = compute_stats(bert, [0, 1], small_corpus, use_cache=False)
    only_last = compute_stats(bert, [-1], small_corpus, use_cache=False)
    assert list(only_last) == [1]
    assert torch.equal(only_last[1].sum, full[1].sum)


def test_pipeline_scope_counts_every_clip_position(clip, small_corpus):
    prompts = small_corpus.prompts[:12]
    got = compute_stats(clip, [0, 2], Corpus(prompts, "twelve"), scope="pipeline", batch_size=5, use_cache=False)
    for layer in (0, 2):
        assert got[layer].count == 77 * len(prompts)
    assert_same(got, brute_force(clip, [0, 2], prompts, pad_to=77), 1e-5)
    prompt_scope = compute_stats(clip, [0], Corpus(prompts, "twelve"), scope="prompt", use_cache=False)
    assert prompt_scope[0].count < got[0].count


def test_unknown_scope_raises(bert, small_corpus):
    with pytest.raises(SpecError, match="scope"):
        compute_stats(bert, [0], small_corpus, scope="everything", use_cache=False)


@pytest.mark.parametrize("layers", [[2], [-3], [0, 5]])
def test_out_of_range_layer_raises(bert, small_corpus, layers):
    with pytest.raises(LayerError, match="out of range"):
        compute_stats(bert, layers, small_corpus, use_cache=False)


@pytest.mark.parametrize("split, tol", [(16, 1e-12), (17, 1e-6)])
def test_split_corpus_adds_up(bert, small_corpus, split, tol):
    """Sums of two halves equal the whole: exactly when the batches coincide (16 = 2 batches),
    up to float32 noise from other padding when they do not (17)."""
    prompts = small_corpus.prompts
    whole = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, use_cache=False)
    first = compute_stats(bert, [0, 1], Corpus(prompts[:split], "a"), batch_size=BATCH, use_cache=False)
    second = compute_stats(bert, [0, 1], Corpus(prompts[split:], "b"), batch_size=BATCH, use_cache=False)
    merged = {layer: first[layer] + second[layer] for layer in (0, 1)}
    assert_same(merged, whole, tol)
    assert first[0].count + second[0].count == whole[0].count


def test_second_moment_arithmetic():
    keys = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    moment = SecondMoment.zeros(3)
    moment.add_keys(keys[:1])
    moment.add_keys(keys[1:])
    assert moment.count == 4
    expected = keys.double().T @ keys.double()
    assert torch.equal(moment.sum, expected)
    assert torch.allclose(moment.mean, expected / 4)
    with pytest.raises(SpecError):
        SecondMoment.zeros(3).mean


# -- cache ---------------------------------------------------------------------------------


def test_second_call_reads_the_cache(bert, small_corpus, tmp_path, monkeypatch):
    first = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    for layer in (0, 1):
        [path] = cache_files(tmp_path, layer)
        assert path == StatsKey(bert.fingerprint(), layer, small_corpus.hash, "prompt", "float32",
                                consumer_tag(bert.consumer)).path(tmp_path)
        meta = cache_meta(path)
        assert meta["prompts_done"] == str(len(small_corpus)) and meta["count"] == str(first[layer].count)
        assert meta["fingerprint"] == bert.fingerprint() and meta["corpus_hash"] == small_corpus.hash

    def broken(*args, **kwargs):
        raise AssertionError("the model must not run when the cache is complete")

    monkeypatch.setattr(bert, "forward", broken)
    second = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    assert_same(second, first, 0.0)


def test_cached_layer_is_reused_for_a_new_layer_set(bert, small_corpus, tmp_path, monkeypatch):
    whole = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, use_cache=False)
    compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    calls = count_forward(monkeypatch, bert)
    both = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    assert len(calls) == 5  # one pass over the corpus, for layer 1 only
    assert_same(both, whole, 1e-12)


def test_other_corpus_does_not_hit_the_cache(bert, small_corpus, tmp_path, monkeypatch):
    compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    other = Corpus(small_corpus.prompts[:-1], "test")
    calls = count_forward(monkeypatch, bert)
    result = compute_stats(bert, [0], other, batch_size=BATCH, cache_dir=tmp_path)
    assert calls and result[0].count < compute_stats(bert, [0], small_corpus, cache_dir=tmp_path)[0].count


def test_use_cache_false_writes_nothing(bert, small_corpus, tmp_path):
    compute_stats(bert, [0], small_corpus, cache_dir=tmp_path, use_cache=False)
    assert not list(tmp_path.rglob("*.safetensors"))


def test_corrupt_cache_is_recomputed(bert, small_corpus, tmp_path, monkeypatch):
    want = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    [path] = cache_files(tmp_path, 1)
    path.write_bytes(b"\x00\xffgarbage, not a safetensors file" * 10)
    calls = count_forward(monkeypatch, bert)
    with pytest.warns(UserWarning, match="corrupt"):
        got = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    assert len(calls) == 5
    assert_same(got, want, 1e-12)
    assert cache_meta(path)["prompts_done"] == str(len(small_corpus))  # rewritten


def test_silently_corrupted_cache_is_detected_moved_aside_and_recomputed(bert, small_corpus, tmp_path, monkeypatch):
    """One mantissa bit flipped in 10 entries: finite, plausible, and caught by the checksum."""
    from corrupt import flip_low_bits

    want = compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    [path] = cache_files(tmp_path, 0)
    flip_low_bits(path, 10)
    with pytest.warns(UserWarning, match="corrupted: its tensor data does not match the checksum") as caught:
        got = compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    assert "moved to" in str(caught[0].message)
    assert_same(got, want, 1e-12)
    assert path.with_name(path.name + ".corrupt").exists()  # kept for inspection, out of the way
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the recomputed file is good: no warning the next time
        again = compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    assert_same(again, want, 0.0)


def test_truncated_cache_is_recomputed(bert, small_corpus, tmp_path):
    want = compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    [path] = cache_files(tmp_path, 0)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.warns(UserWarning, match="statistics cache"):
        got = compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    assert_same(got, want, 1e-12)


@pytest.mark.parametrize("tamper", ["fingerprint", "layer", "scope", "format", "shape", "count", "nan"])
def test_mismatched_cache_is_recomputed(bert, small_corpus, tmp_path, monkeypatch, tamper):
    want = compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    [path] = cache_files(tmp_path, 0)
    meta = dict(cache_meta(path))
    total = torch.ones(64, 64, dtype=torch.float64)  # would be wrong if it were used
    if tamper == "shape":
        total = torch.ones(32, 32, dtype=torch.float64)
    elif tamper == "count":
        meta["count"] = "many"
    elif tamper == "nan":
        total[0, 0] = float("nan")
    else:
        meta[tamper] = "something else"
    atomic_save_tensors({"sum": total}, path, meta)
    calls = count_forward(monkeypatch, bert)
    with pytest.warns(UserWarning, match="does not match"):
        got = compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    assert calls
    assert_same(got, want, 1e-12)


def test_interrupted_run_resumes(bert, small_corpus, tmp_path, monkeypatch):
    want = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, use_cache=False)
    count_forward(monkeypatch, bert, fail_after=2)
    with pytest.raises(RuntimeError, match="simulated"):
        compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path, checkpoint_seconds=0)
    for layer in (0, 1):
        [path] = cache_files(tmp_path, layer)
        meta = cache_meta(path)
        assert meta["prompts_done"] == str(2 * BATCH) and meta["prompts_total"] == str(len(small_corpus))
    monkeypatch.undo()
    calls = count_forward(monkeypatch, bert)
    got = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path, checkpoint_seconds=0)
    assert len(calls) == 3  # only the 24 prompts left
    assert_same(got, want, 1e-9)


def test_resume_with_layers_at_different_points(bert, small_corpus, tmp_path, monkeypatch):
    want = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, use_cache=False)
    count_forward(monkeypatch, bert, fail_after=1)
    with pytest.raises(RuntimeError):
        compute_stats(bert, [1], small_corpus, batch_size=BATCH, cache_dir=tmp_path, checkpoint_seconds=0)
    monkeypatch.undo()
    # layer 1 holds the first batch already, layer 0 nothing: the run starts at 0 for both
    calls = count_forward(monkeypatch, bert)
    got = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    assert len(calls) == 5
    assert_same(got, want, 1e-9)


def test_no_checkpoint_before_the_interval(bert, small_corpus, tmp_path, monkeypatch):
    count_forward(monkeypatch, bert, fail_after=2)
    with pytest.raises(RuntimeError):
        compute_stats(bert, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path, checkpoint_seconds=3600)
    assert not cache_files(tmp_path, 0)


# -- corpora -------------------------------------------------------------------------------


def test_default_corpus_loads():
    corpus = load_corpus(limit=25)
    assert len(corpus) == 25 and all(p.strip() == p and p for p in corpus.prompts)
    lines = [line.strip() for line in DEFAULT_CORPUS.read_text("utf-8").splitlines() if line.strip()]
    assert corpus.prompts == tuple(lines[:25])
    assert len(load_corpus()) == len(lines)


def test_txt_corpus(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red car\n\n   \n  a blue sky  \na dog\n", "utf-8")
    corpus = load_corpus(path)
    assert corpus.prompts == ("a red car", "a blue sky", "a dog")
    assert load_corpus(path, limit=2).prompts == ("a red car", "a blue sky")


def test_jsonl_corpus(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = ['"a plain string"', json.dumps({"prompt": "from prompt"}), "",
            json.dumps({"text": "from text", "id": 3}), json.dumps({"caption": " from caption "})]
    path.write_text("\n".join(rows) + "\n", "utf-8")
    assert load_corpus(path).prompts == ("a plain string", "from prompt", "from text", "from caption")


@pytest.mark.parametrize("line, match", [
    ("{not json", "line 2: invalid JSON"),
    (json.dumps({"url": "x"}), "line 2: expected"),
    ("42", "line 2: expected"),
    (json.dumps({"prompt": "  "}), "line 2: expected"),
])
def test_bad_jsonl_line_raises(tmp_path, line, match):
    path = tmp_path / "bad.jsonl"
    path.write_text('"fine"\n' + line + "\n", "utf-8")
    with pytest.raises(SpecError, match=match):
        load_corpus(path)


def test_corpus_file_errors(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_corpus(tmp_path / "missing.txt")
    with pytest.raises(SpecError, match="does not exist"):
        load_corpus(tmp_path)  # a folder is not a corpus file
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", "utf-8")
    with pytest.raises(SpecError, match="no prompts"):
        load_corpus(empty)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SpecError, match="UTF-8"):
        load_corpus(binary)


def test_corpus_hash():
    a = Corpus(("one", "two"), "x")
    assert a.hash == Corpus(("one", "two"), "another name").hash
    assert a.hash != Corpus(("two", "one"), "x").hash
    assert a.hash != Corpus(("one", "two", "three"), "x").hash


def test_no_warning_on_clean_cache(bert, small_corpus, tmp_path):
    compute_stats(bert, [0], small_corpus, cache_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compute_stats(bert, [0], small_corpus, cache_dir=tmp_path)


def test_pipeline_scope_of_a_masked_consumer_is_its_real_tokens(bert, small_corpus):
    """BERT's consumer passes an attention mask and pads to the longest prompt: padding is
    never read, so the pipeline scope equals the prompt scope."""
    corpus = Corpus(small_corpus.prompts[:12], "twelve")
    pipeline = compute_stats(bert, [0], corpus, scope="pipeline", batch_size=5, use_cache=False)[0]
    prompt = compute_stats(bert, [0], corpus, scope="prompt", batch_size=5, use_cache=False)[0]
    assert pipeline.count == prompt.count
    assert torch.allclose(pipeline.sum, prompt.sum, rtol=1e-9, atol=1e-12)


def test_the_cache_key_holds_how_the_consumer_reads_the_encoder(t5_path, small_corpus, tmp_path):
    """A T5 read as SD3 reads it (padded to a fixed length, no mask), or in a prompt template
    (as Qwen-Image reads its encoder in a chat template), has other statistics than the same
    T5 alone; each reading gets its own cache entry, equal to its uncached sums."""
    from textedit.encoders import ConsumerTokenization, load_encoder

    alone = load_encoder(str(t5_path))
    sd3_style = load_encoder(str(t5_path), consumer=ConsumerTokenization(max_length=32, pad_to_max_length=True,
                                                                          passes_attention_mask=False))
    templated = load_encoder(str(t5_path), consumer=dataclasses.replace(alone.consumer, template="a photo of {}"))
    assert alone.fingerprint() == sd3_style.fingerprint() == templated.fingerprint()  # the same weights
    readings = (("alone", alone), ("sd3", sd3_style), ("templated", templated))
    cached = {name: compute_stats(adapter, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)[0]
              for name, adapter in readings}
    assert len(cache_files(tmp_path, 0)) == 3
    assert cached["templated"].count > cached["alone"].count  # the template's tokens are read too
    for name, adapter in readings:
        fresh = compute_stats(adapter, [0], small_corpus, batch_size=BATCH, cache_dir=None)[0]
        assert cached[name].count == fresh.count and torch.equal(cached[name].sum, fresh.sum), name
        again = compute_stats(adapter, [0], small_corpus, batch_size=BATCH, cache_dir=tmp_path)[0]
        assert torch.equal(again.sum, fresh.sum), name
    difference = (cached["alone"].mean - cached["sd3"].mean).norm() / cached["alone"].mean.norm()
    assert difference > 0.05, difference


def test_float32_products_are_close_to_float64_ones_and_cached_apart(bert, small_corpus, tmp_path):
    """Each batch's Σkkᵀ formed in float32 and summed in float64: within float32 rounding of
    the float64 products (a float64 brute force over the recorded keys), never the same cache
    entry; an unknown precision is refused in one line."""
    exact = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path)
    fast = compute_stats(bert, [0, 1], small_corpus, batch_size=BATCH, cache_dir=tmp_path, products="float32")
    assert len(cache_files(tmp_path, 0)) == 2
    for layer in (0, 1):
        assert fast[layer].count == exact[layer].count
        error = ((fast[layer].sum - exact[layer].sum).norm() / exact[layer].sum.norm()).item()
        assert 0 < error < 1e-6, error
    with pytest.raises(SpecError, match="unknown product precision 'float16'"):
        compute_stats(bert, [0], small_corpus, cache_dir=tmp_path, products="float16")


def test_pipeline_scope_of_a_padded_masked_consumer_counts_the_padding_it_reads(t5_path, small_corpus):
    """A T5 padded to a fixed length and masked, as PixArt-Σ reads it, counts only its real
    tokens in the pipeline scope (the padded states are computed but never read), as Chroma
    reads it also the first padding token after each prompt; the three readings have three
    cache keys (lower-casing too changes the keys)."""
    from textedit.encoders import ConsumerTokenization, load_encoder

    corpus = Corpus(small_corpus.prompts[:12], "twelve")
    pixart = ConsumerTokenization(max_length=128, pad_to_max_length=True, passes_attention_mask=True,
                                  reads_padding=False)
    chroma = dataclasses.replace(pixart, padding_read=1)
    every = dataclasses.replace(pixart, reads_padding=True)
    stats = {}
    for name, consumer in (("pixart", pixart), ("chroma", chroma), ("every", every)):
        adapter = load_encoder(str(t5_path), consumer=consumer)
        stats[name] = compute_stats(adapter, [0], corpus, scope="pipeline", batch_size=5, use_cache=False)[0]
    prompt = compute_stats(load_encoder(str(t5_path)), [0], corpus, scope="prompt", batch_size=5, use_cache=False)[0]
    assert stats["pixart"].count == prompt.count
    assert torch.allclose(stats["pixart"].sum, prompt.sum, rtol=1e-5, atol=1e-8)  # float32 forward rounding
    assert stats["chroma"].count == prompt.count + len(corpus)  # one padding token per prompt
    assert stats["every"].count == 128 * len(corpus)
    tags = {consumer_tag(c) for c in (pixart, chroma, every, dataclasses.replace(pixart, lowercase=True))}
    assert len(tags) == 4
    with pytest.raises(ValueError, match="padding_read"):
        dataclasses.replace(every, padding_read=1)


def test_a_reading_counted_in_its_templates_tokens_keys_the_statistics_by_its_length_for_that_tokenizer(
        pipeline_paths, small_corpus, tmp_path):
    """Sana pads to its instruction's token count + 298, which depends on the tokenizer: the
    cache key holds the resolved length (another tokenizer, here Lumina 2's, gives another),
    the instruction's hash and the lower-casing, so the same Gemma-2 alone is cached apart.
    The statistics count the instruction's tokens that the transformer skips (the prompt's
    tokens attend to them, as keys and edits are read); only the reader skips them."""
    from textedit.encoders import load_encoder
    from textedit.pipelines import FAMILIES, load_pipeline_encoder

    reading = FAMILIES["sana"].reading("text_encoder")
    sana = load_pipeline_encoder(pipeline_paths["sana"], "text_encoder", FAMILIES["sana"])
    alone = load_encoder(str(pipeline_paths["sana"]), component="text_encoder")
    instruction = reading.template.split("{}")[0]
    length = len(sana.tokenizer.encode(instruction)) + 298
    tag = consumer_tag(sana.consumer)
    assert tag.startswith(f"len{length}-pad-mask-readpad0-lower-template") and sana.consumer.max_length == length
    lumina = load_pipeline_encoder(pipeline_paths["lumina2"], "text_encoder", FAMILIES["lumina2"])
    other = reading.consumer_for(lumina.tokenizer)  # the instruction's words are no single tokens there
    assert other.max_length > length and consumer_tag(other) != tag

    corpus = Corpus(small_corpus.prompts[:12], "twelve")
    sana_stats = compute_stats(sana, [0], corpus, scope="pipeline", batch_size=6, cache_dir=tmp_path)[0]
    alone_stats = compute_stats(alone, [0], corpus, scope="pipeline", batch_size=6, cache_dir=tmp_path)[0]
    assert len(cache_files(tmp_path, 0)) == 2
    batch = sana.tokenize(list(corpus.prompts), pad_to_consumer=True)
    assert sana_stats.count == int(batch.attention_mask.sum())  # every real token, the instruction's included
    assert alone_stats.count < sana_stats.count
    read = sana.consumer.read_positions(batch.attention_mask, padded=True, skip_prefix=True)
    first, start = sana.consumer.read_first, sana.consumer.read_from
    assert (first, start) == (1, length - 299)
    assert read[:, 0].all() and not read[:, first:start].any()
    assert torch.equal(read[:, start:], batch.attention_mask[:, start:])


def test_a_consumer_that_adds_no_special_tokens_reads_one_bos_and_is_cached_apart(pipeline_paths):
    """FLUX.2 tokenizes its chat template as ``apply_chat_template`` does, adding no special
    tokens (the template writes the BOS): keys and statistics are read with one BOS in front,
    and the cache key says how (a plain call would add a second one)."""
    from textedit.pipelines import FAMILIES, load_pipeline_encoder

    adapter = load_pipeline_encoder(pipeline_paths["flux2"], "text_encoder", FAMILIES["flux2"])
    batch = adapter.tokenize(["a red fox", "the mascot of acme"])
    bos = adapter.tokenizer.bos_token_id
    for row, mask in zip(batch.input_ids, batch.attention_mask):
        real = row[mask.bool()]
        assert real[0] == bos and int((real == bos).sum()) == 1
    assert not adapter.consumer.add_special_tokens and "-nospecial" in consumer_tag(adapter.consumer)
    assert "-nospecial" not in consumer_tag(dataclasses.replace(adapter.consumer, add_special_tokens=True))


def test_sums_that_do_not_fit_the_device_are_one_line_naming_the_way_out(bert, small_corpus, monkeypatch):
    """The sums of the layers to do are made on the model's device before the pass; where they do
    not fit, the error says how much they need and to compute fewer layers at a time."""
    from textedit.errors import CacheError

    def full(dim, device=None):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(SecondMoment, "zeros", staticmethod(full))
    with pytest.raises(CacheError, match=r"^the float64 sums of layers 0, 1 need 0\.0 GiB on cpu, .*--layers\)$"):
        compute_stats(bert, [0, 1], small_corpus, use_cache=False)


def test_the_sums_come_back_on_the_cpu_in_float64_and_move_between_devices(bert, small_corpus):
    stats = compute_stats(bert, [0, 1], small_corpus, use_cache=False)
    assert list(stats) == [0, 1]
    assert all(m.sum.device.type == "cpu" and m.sum.dtype == torch.float64 for m in stats.values())
    moment = stats[0]
    assert moment.to("cpu") is moment  # already there: the same object, its factor kept
    moved = moment.to("meta")
    assert moved.sum.device.type == "meta" and moved.count == moment.count
