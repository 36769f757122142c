"""The ``optimize`` value strategy: δs trained per request, in chunks, stopped by patience."""

from __future__ import annotations

import torch

from textedit.encoders import load_encoder
from textedit.requests import EditRequest

REQUESTS = [
    EditRequest("the mascot of Acme", "a red panda", subject="Acme"),
    EditRequest("the logo of Globex", "a green dragon", subject="Globex"),
]


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
