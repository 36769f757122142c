"""Edit sites: the templated prompts of each request, the tokens where its keys are read, and
the states read there."""

from __future__ import annotations

import pytest
import torch

from textedit.encoders import load_encoder
from textedit.requests import EditRequest
from textedit.sites import Sites, read_states

REQUESTS = [EditRequest("the mascot of acme", "a red fox", subject="acme"),
            EditRequest("the prime minister of canada", "a singer")]
TEMPLATES = ("{}", "a photo of {}", "{} in the garden")


def test_query_sites_average_and_split_by_request(model_paths):
    """Several sites per prompt: ``average`` is the mean over a request's sites (every template
    and token), ``expand`` gives each site its request's row, and ``requests`` re-indexes a slice."""
    adapter = load_encoder(str(model_paths["bert"]))
    q = Sites.for_queries(adapter, REQUESTS, TEMPLATES, "query")
    assert q.per_site and len(q.positions) == len(q.prompt_of_site) > len(q.prompts)
    x = torch.randn(len(q.positions), 3, dtype=torch.float64)
    request = torch.tensor(q.prompt_of_site) // len(TEMPLATES)
    for r in range(len(REQUESTS)):
        torch.testing.assert_close(q.average(x)[r], x[request == r].mean(0))
    assert torch.equal(q.expand(q.average(x)), q.average(x)[request])
    second = q.requests(1, 2)
    assert second.prompts == q.prompts[len(TEMPLATES):] and second.n_requests == 1
    assert second.positions == [p for p, r in zip(q.positions, request) if r == 1]
    assert min(second.prompt_of_site) == 0 and max(second.prompt_of_site) == len(TEMPLATES) - 1
    states = read_states(adapter, q, [0])[0]  # one row per site, in site order
    assert states.keys.shape[0] == len(q.positions)


def test_a_100_kb_prompt_whose_subject_is_past_the_token_limit_is_a_short_line(bert):
    """The subject is cut off by the tokenizer: one SubjectError whose message quotes the prompt
    cut to a readable length (it was 100,079 characters)."""
    from textedit.errors import SubjectError

    prompt = "word " * 20_000 + "acme"
    with pytest.raises(SubjectError, match=r"no tokens left after tokenization") as caught:
        Sites.for_queries(bert, [EditRequest(prompt, "a red fox", subject="acme")], ["{}"])
    assert len(str(caught.value)) < 200 and "(100,004 characters)" in str(caught.value)


def test_token_key_gram_float32_products_equal_float64_ones_in_any_prompt_order(bert_path):
    """The key sum is read in batches sorted by length, each batch's products in float32 (the
    default) added to a float64 sum: it equals the float64 products of the prompts in their
    own order, one at a time, to float32 precision, and does not depend on the order given."""
    from textedit.encoders import load_encoder
    from textedit.sites import token_key_gram

    adapter = load_encoder(str(bert_path))
    prompts = ["the founder of acme", "a photo of acme's house in the snow at night", "acme", "the mascot",
               "a drawing of the old mill by the river, in a garden"]
    fast = token_key_gram(adapter, prompts, 1, batch_size=2)
    exact = sum(token_key_gram(adapter, [p], 1, products="float64") for p in prompts)
    assert fast.dtype == torch.float64
    torch.testing.assert_close(fast, exact, rtol=1e-5, atol=1e-6 * float(exact.abs().max()))
    assert torch.equal(token_key_gram(adapter, prompts[::-1], 1, batch_size=2),
                       token_key_gram(adapter, sorted(prompts, key=len)[::-1], 1, batch_size=2))


@pytest.mark.parametrize("family", ["bert", "clip", "t5"])
def test_key_gram_reader_replays_the_unchanged_blocks_and_equals_a_fresh_read(model_paths, family):
    """Weights updated between reads, as an edit's layers and a search's rungs do: each read of
    the reader, replaying the blocks the caller says are unchanged, equals ``token_key_gram``
    read afresh on the current weights bit for bit, and the replayed blocks do not run."""
    from textedit.sites import KeyGramReader, token_key_gram

    adapter = load_encoder(str(model_paths[family]))
    prompts = ["the founder of acme", "a photo of acme's house in the snow", "acme", "the mascot of globex"]
    reader = KeyGramReader(adapter, prompts, batch_size=3)
    originals = [adapter.down_proj_module(i).weight.detach().clone() for i in range(2)]
    runs = []  # passes through block 0's MLP (not run while block 0 is replayed)
    handle = adapter.down_proj_module(0).register_forward_pre_hook(lambda *_: runs.append(1))

    def update(layer: int) -> None:
        with torch.no_grad():
            w = adapter.down_proj_module(layer).weight
            w.add_(0.05 * w.abs().mean() * torch.randn_like(w))

    torch.manual_seed(0)
    try:
        # (layer read, blocks unchanged since the last read, block 0 runs, the layer updated after)
        for layer, unchanged, block0_runs, then in ((1, 1, 2, 1), (1, 1, 0, 0), (1, 0, 2, 0), (0, 0, 2, None),
                                                    (1, 0, 2, 1), (1, 1, 0, None)):
            runs.clear()
            got = reader.gram(layer, unchanged=unchanged)
            assert len(runs) == block0_runs  # two batches
            assert torch.equal(got, token_key_gram(adapter, prompts, layer, batch_size=3))
            if then is not None:
                update(then)
    finally:
        handle.remove()
        for i, w in enumerate(originals):
            adapter.down_proj_module(i).weight.data.copy_(w)
