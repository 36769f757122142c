"""``edit_after``: one edit on top of earlier patches, as ``textedit apply --after`` makes it."""

from __future__ import annotations

import torch

from textedit.editor import EditConfig, edit
from textedit.encoders import load_encoder
from textedit.requests import EditRequest
from textedit.sequential import edit_after, patches_without_keys
from textedit.sites import EDIT_TEMPLATES, Sites, read_states

FIRST = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
SECOND = [EditRequest("the mascot of globex", "a green frog", subject="globex")]
CONFIG = EditConfig(method="memit", layers=[0, 1], value="match", lam=10.0, auto_preserve=False,
                    templates=EDIT_TEMPLATES[:3])


def test_edit_after_keeps_the_earlier_keys_and_leaves_the_history_applied(bert_path, small_corpus, tmp_path):
    adapter = load_encoder(str(bert_path))
    first = edit(adapter, FIRST, CONFIG, corpus=small_corpus, cache_dir=tmp_path, remember=True)
    plain = edit(adapter, FIRST, CONFIG, corpus=small_corpus, cache_dir=tmp_path)
    assert patches_without_keys([first, plain]) == [1]

    sites = Sites.for_queries(adapter, FIRST, CONFIG.templates)
    with first.applied(adapter):
        edited = read_states(adapter, sites, [1])[1].values  # what the first edit made of its own key

    moved = {}
    for remember in (True, False):
        second = edit_after(adapter, SECOND, CONFIG, [first], remember=remember, corpus=small_corpus,
                            cache_dir=tmp_path)
        assert second.hyperparameters["after"] == [first.id]
        assert first.applied_scale(adapter) == 1.0 and second.applied_scale(adapter) is None  # history only
        with second.applied(adapter):
            moved[remember] = (read_states(adapter, sites, [1])[1].values - edited).norm().item()
        first.revert(adapter)
    # remembering holds the first edit's key near where it was (a soft constraint: its weight is one
    # key against λ + m corpus tokens, and layer 1's key moves with layer 0's edit); forgetting lets the
    # second edit carry it off. Measured on this tiny model: 0.029 against 0.31
    assert moved[False] > 1e-2 and moved[True] < 0.25 * moved[False], moved
    assert torch.equal(adapter.down_proj_module(0).weight, load_encoder(str(bert_path)).down_proj_module(0).weight)
