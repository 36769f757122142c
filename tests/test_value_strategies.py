"""The ``optimize`` value strategy: δs trained per request, all requests together in micro-batches,
stopped by patience or a tolerance, with the blocks below the δ's layer run once instead of at every step."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from textedit.encoders import load_encoder
from textedit.requests import EditRequest

REQUESTS = [
    EditRequest("the mascot of Acme", "a red panda", subject="Acme"),
    EditRequest("the logo of Globex", "a green dragon", subject="Globex"),
]


def test_optimize_trains_requests_in_chunks_with_the_same_result(bert_path):
    """δs of different requests never interact, so micro-batches of one request's prompts give
    what one micro-batch of all gives."""
    from textedit.sites import EDIT_TEMPLATES, Sites, read_states
    from textedit.settings import OptimizeConfig
    from textedit.value_strategies import optimize_deltas

    adapter = load_encoder(str(bert_path))
    requests = REQUESTS + [EditRequest("the flag of Initech", "a blue square", subject="Initech")]
    templates = EDIT_TEMPLATES[:3]
    queries = Sites.for_queries(adapter, requests, templates)
    targets = Sites.for_targets(adapter, requests, templates)
    streams = queries.average(read_states(adapter, queries, [1])[1].streams)
    seen = []
    every_step = {"steps": 10, "tolerance": 0}
    together = optimize_deltas(adapter, queries, targets, 1, streams, OptimizeConfig(chunk=16, **every_step))
    one_by_one = optimize_deltas(adapter, queries, targets, 1, streams, OptimizeConfig(chunk=1, **every_step),
                                 on_chunk=seen.append)
    assert seen == [3]  # all three finish at the last step
    assert together.shape == (3, streams.shape[1]) and together.abs().max() > 0
    # the loss sums the requests' losses, so each δ sees its own gradient in any chunk: equal up to
    # the float rounding of other batch shapes (a mean loss scaled gradients by the chunk, and
    # Adam's ε then made chunks of 1 and 3 differ by up to 5 %)
    torch.testing.assert_close(one_by_one, together, rtol=0, atol=1e-4 * float(together.abs().max()))


def test_patience_stops_early_and_keeps_the_best_delta_seen(bert_path):
    """Checked against brute force: δ_k (the plain run stopped after k steps, patience 0) for every
    k, each scored by an independent forward pass; the patient run returns the best of those it
    saw, and stops before its step budget once no step has improved the loss by 1e-3 for 3 steps."""
    import torch.nn.functional as F

    from textedit.hooks import add_to_output
    from textedit.sites import EDIT_TEMPLATES, Sites, read_states
    from textedit.settings import OptimizeConfig
    from textedit.value_strategies import optimize_deltas

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

    steps = []  # one per optimisation step: the passes with gradients (not the target's or the lower blocks')
    forward = adapter.forward

    def counting(b):
        if torch.is_grad_enabled():
            steps.append(1)
        return forward(b)

    adapter.forward = counting
    patient = optimize_deltas(adapter, queries, targets, layer, streams,
                              OptimizeConfig(steps=200, patience=3, tolerance=0))
    adapter.forward = forward
    assert len(steps) < 200  # stopped early
    seen = [torch.zeros_like(patient)] + [optimize_deltas(adapter, queries, targets, layer, streams,
                                                          OptimizeConfig(steps=k, tolerance=0))
                                          for k in range(1, len(steps))]
    losses = [loss_of(d) for d in seen]
    best = min(range(len(seen)), key=losses.__getitem__)
    torch.testing.assert_close(patient, seen[best], rtol=0, atol=1e-6)
    assert losses[best] < losses[0]


def _setup(adapter, requests, layer, templates=3):
    from textedit.sites import EDIT_TEMPLATES, Sites, read_states

    queries = Sites.for_queries(adapter, requests, EDIT_TEMPLATES[:templates], adapter.default_key)
    targets = Sites.for_targets(adapter, requests, EDIT_TEMPLATES[:templates])
    streams = queries.average(read_states(adapter, queries, [layer])[layer].streams)
    return queries, targets, streams


@pytest.fixture(scope="module")
def decoder_paths(tmp_path_factory) -> dict:
    from tiny_models import build_tiny_decoder, build_tiny_qwen2_5_vl

    paths = {kind: build_tiny_decoder(tmp_path_factory.mktemp(kind), kind) for kind in ("qwen2", "gemma2")}
    return {**paths, "qwen2_5_vl": build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("qwen2_5_vl"))}


@pytest.mark.parametrize("family", ["bert", "clip", "t5", "t5_gated", "qwen2", "gemma2", "qwen2_5_vl"])
def test_running_the_lower_blocks_once_gives_the_deltas_of_running_them_every_step(model_paths, decoder_paths,
                                                                                  monkeypatch, family):
    """The blocks below the δ's layer see no δ: replaying their outputs gives the δs that
    recomputing them at every step gives, and they run once, not once per step."""
    import textedit.value_strategies as values

    adapter = load_encoder(str({**model_paths, **decoder_paths}[family]))
    # every block but the last is replayed; CLIP pools its last token, which a δ at the subject
    # reaches only through a later block's attention
    layer = adapter.num_layers - (2 if adapter.family == "clip" else 1)
    assert layer >= 1
    queries, targets, streams = _setup(adapter, REQUESTS, layer)
    config = values.OptimizeConfig(steps=6, tolerance=0)
    runs = []  # passes through block 0's MLP (not run while block 0 is replayed)
    with contextlib.ExitStack() as stack:
        handle = adapter.down_proj_module(0).register_forward_pre_hook(lambda *_: runs.append(1))
        stack.callback(handle.remove)
        replayed = values.optimize_deltas(adapter, queries, targets, layer, streams, config)
        replayed_runs = len(runs)
        monkeypatch.setattr(values, "REPLAY", False)
        recomputed = values.optimize_deltas(adapter, queries, targets, layer, streams, config)
    assert replayed_runs == 2  # the targets' sentence vectors, then the replayed pass: once
    assert len(runs) - replayed_runs == 1 + config.steps  # the targets again, then every step
    assert replayed.abs().max() > 0
    torch.testing.assert_close(replayed, recomputed, rtol=0, atol=1e-5 * float(recomputed.abs().max()))


def test_tolerance_stops_each_request_at_the_first_step_that_reaches_it(bert_path):
    """Checked against brute force: the δ after k plain steps (δ_k, tolerance 0), each scored
    by an independent forward pass, for every k. A request stops at the first δ_k whose
    mean miss 1 − cos is within the tolerance and half its miss at δ = 0, and keeps it,
    after k + 1 passes, far before its step budget; its prompts leave the batch, and its
    result does not depend on the request trained beside it (which runs every step)."""
    from textedit.hooks import add_to_output
    from textedit.settings import OptimizeConfig
    from textedit.value_strategies import optimize_deltas

    adapter = load_encoder(str(bert_path))
    layer = 1
    queries, targets, streams = _setup(adapter, REQUESTS, layer)
    goal = F.normalize(adapter.embed(targets.prompts), dim=-1)
    batch = adapter.tokenize(queries.prompts)
    rows, positions, request = queries.site_prompts(), torch.tensor(queries.positions), queries.request_of_site()

    def misses_of(delta: torch.Tensor) -> torch.Tensor:  # [n_requests]: the mean miss, from the definition
        def add(output):
            plus = torch.zeros_like(output)
            plus[rows, positions] = delta[request].to(output.dtype)
            return plus
        with torch.no_grad(), add_to_output(adapter.mlp_output_module(layer), add):
            vectors = F.normalize(adapter.sentence_vector(batch, adapter.forward(batch)), dim=-1)
        return (1 - (vectors * goal).sum(-1)).reshape(len(REQUESTS), -1).mean(1)

    budget = 30
    plain = [torch.zeros_like(streams)] + [optimize_deltas(adapter, queries, targets, layer, streams,
                                                           OptimizeConfig(steps=k, tolerance=0))
                                           for k in range(1, budget)]
    last = optimize_deltas(adapter, queries, targets, layer, streams, OptimizeConfig(steps=budget, tolerance=0))
    misses = torch.stack([misses_of(d) for d in plain])  # [step, request]

    def stop_steps(tolerance: float) -> list[int | None]:
        """Each request's first δ_k within the tolerance and half its start (None: none in the budget)."""
        limits = torch.clamp(misses[0] / 2, max=tolerance)
        return [next((k for k in range(budget) if misses[k, r] <= limits[r]), None) for r in range(len(REQUESTS))]

    def expected(first: list[int | None]) -> torch.Tensor:  # a request never within it runs every step
        return torch.stack([plain[k][r] if k is not None else last[r] for r, k in enumerate(first)])

    # on this tiny encoder the first request can halve its miss, the second cannot: a tolerance
    # between the first's half start and its best stops the first early and leaves the second
    # to run every step (the halving rule binds it)
    assert misses[:, 0].min() < misses[0, 0] / 2 and misses[:, 1].min() > misses[0, 1] / 2
    tolerance = float(misses[0, 0] / 2 + misses[:, 0].min()) / 2
    first = stop_steps(tolerance)
    assert first[1] is None and 0 < first[0] < budget // 2, first

    steps = []
    forward = adapter.forward

    def counting(b):
        if torch.is_grad_enabled():
            steps.append(len(b))
        return forward(b)

    adapter.forward = counting
    stopped = optimize_deltas(adapter, queries, targets, layer, streams, OptimizeConfig(steps=budget,
                                                                                        tolerance=tolerance))
    adapter.forward = forward
    again = optimize_deltas(adapter, queries, targets, layer, streams,
                            OptimizeConfig(steps=budget, tolerance=tolerance))
    assert torch.equal(again, stopped)  # deterministic, to the bit
    assert len(steps) == budget  # the second request ran every step
    # the first request's prompts leave the batch once it stops
    assert steps.count(len(queries.prompts)) == first[0] + 1
    assert set(steps) == {len(queries.prompts), len(queries.prompts) // 2}
    torch.testing.assert_close(stopped, expected(first), rtol=0, atol=1e-5 * float(stopped.abs().max()))
    assert misses_of(stopped)[0] <= tolerance + 1e-6

    # a tolerance every request meets at δ = 0 (as on an encoder whose unrelated sentences all sit
    # within it of each other) still asks each to halve its starting miss: the first moves and stops
    loose = optimize_deltas(adapter, queries, targets, layer, streams, OptimizeConfig(steps=budget, tolerance=2.0))
    halved = stop_steps(2.0)
    assert halved[0] is not None and halved[0] > 0, halved
    torch.testing.assert_close(loose, expected(halved), rtol=0, atol=1e-5 * float(loose.abs().max()))
    assert misses_of(loose)[0] <= misses[0, 0] / 2 + 1e-6


def test_all_requests_at_once_give_each_request_the_delta_it_gets_alone(bert_path):
    """One optimisation for every request, its prompts cut by token length into micro-batches
    that mix requests (chunk 1: three prompts a batch), gives each request the δ that
    optimising it alone gives, also when a tolerance stops requests at different steps."""
    from textedit.sites import EDIT_TEMPLATES, Sites, read_states
    from textedit.settings import OptimizeConfig
    from textedit.value_strategies import _micro_batches, optimize_deltas

    adapter = load_encoder(str(bert_path))
    requests = REQUESTS + [EditRequest("the flag of Initech", "a blue square", subject="Initech"),
                           EditRequest("a long and winding description of the old mill", "a windmill")]
    templates = EDIT_TEMPLATES[:4]
    layer = 1
    queries = Sites.for_queries(adapter, requests, templates)
    targets = Sites.for_targets(adapter, requests, templates)
    streams = queries.average(read_states(adapter, queries, [layer])[layer].streams)
    lengths = adapter.tokenize(queries.prompts).attention_mask.sum(1)
    parts = _micro_batches(adapter, queries, torch.ones(len(requests), dtype=torch.bool), lengths,
                           torch.zeros(len(queries.prompts), 4), 3)
    assert sum(len(p.owner) for p in parts) == len(queries.prompts) and max(len(p.owner) for p in parts) <= 3
    assert any(len(set(p.owner.tolist())) > 1 for p in parts)  # requests share micro-batches
    for config in (OptimizeConfig(steps=8, tolerance=0), OptimizeConfig(steps=30, tolerance=0.3)):
        together = optimize_deltas(adapter, queries, targets, layer, streams,
                                   OptimizeConfig(**{**vars(config), "chunk": 1}))
        alone = torch.cat([optimize_deltas(adapter, queries.requests(i, i + 1), targets.requests(i, i + 1), layer,
                                           streams[i:i + 1], config) for i in range(len(requests))])
        assert together.abs().max() > 0
        torch.testing.assert_close(together, alone, rtol=0, atol=1e-4 * float(alone.abs().max()))
