"""Sequential editing: ``SequentialEditor`` remembering earlier keys (across saved patches, with
memit's λ growing with the memory), and ``edit_after``, one edit on top of earlier patches, as
``textedit apply --after`` makes it."""

from __future__ import annotations

import pytest
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


@pytest.mark.parametrize("method", ["alphaedit", "memit"])
def test_remembering_editor_keeps_earlier_keys_across_saved_patches(method, bert_path, small_corpus, tmp_path):
    """Later AlphaEdit / MEMIT patches leave earlier edits' keys (nearly) alone when the
    history remembers them, and the memory survives saving and loading the patches."""
    from textedit.editor import EditConfig
    from textedit.encoders import load_encoder
    from textedit.patch import Patch
    from textedit.requests import EditRequest
    from textedit.sequential import SequentialEditor, remembered_gram, remembered_keys

    facts = [("the mascot of acme", "a red fox", "acme"), ("the logo of google", "a blue whale", "google"),
             ("the capital of canada", "paris", "canada"), ("the leader of japan", "a lion", "japan")]
    requests = [EditRequest(*f) for f in facts]
    knobs = {"threshold": 0.5, "alpha": 1e-3} if method == "alphaedit" else {"lam": 1.0}
    config = EditConfig(method=method, layers=[0, 1], value="match", templates=("{}", "a photo of {}"), key="subject",
                        auto_preserve=False,
                        **knobs)
    adapter = load_encoder(str(bert_path))
    original = adapter.down_proj_module(1).weight.detach().clone()

    def later_change_on_first_keys(remember: bool) -> float:
        editor = SequentialEditor(adapter, config, corpus=small_corpus, cache_dir=tmp_path / "cache", remember=True)
        first = editor.edit(requests[:1])
        for r in requests[1:]:
            if not remember:
                editor.remembered_gram.clear()  # forget: each edit sees only the corpus statistics
            editor.edit([r])
        K1 = first.deltas[1].keys.double()
        assert K1.shape[1] == len(config.templates)  # one remembered key per template
        change = (adapter.down_proj_module(1).weight.double() - original.double()
                  - first.deltas[1].delta.dense()) @ K1
        if remember:  # the running Σ k kᵀ is that of every stored key
            torch.testing.assert_close(editor.remembered_gram[1], remembered_gram(editor.history)[1])
            saved = [p.save(tmp_path / f"p{i}") for i, p in enumerate(editor.history)]
            loaded = [Patch.load(path) for path in saved]
            torch.testing.assert_close(remembered_keys(loaded)[1], remembered_keys(editor.history)[1].float())
            editor.revert_all()
            assert torch.equal(adapter.down_proj_module(1).weight, original)
        return change.norm().item()

    remembered = later_change_on_first_keys(True)
    adapter = load_encoder(str(bert_path))
    forgotten = later_change_on_first_keys(False)
    assert remembered < 0.2 * forgotten, (remembered, forgotten)


def test_corpus_weight_grows_with_the_remembered_keys(bert_path, small_corpus, tmp_path, monkeypatch):
    """memit's λ in a remembering chain is λ + m, m the keys remembered so far (one per request
    and template): the corpus keeps pace with the memory."""
    import textedit.solvers as solvers
    from textedit.editor import EditConfig
    from textedit.encoders import load_encoder
    from textedit.requests import EditRequest
    from textedit.sequential import SequentialEditor

    seen = []
    real = solvers.batched

    def batched(W, C, K, V, lam, **kw):  # memit's calls name the remembered gram; batched's own inner call does not
        if "remembered_gram" in kw:
            seen.append(lam)
        return real(W, C, K, V, lam, **kw)

    monkeypatch.setattr(solvers, "batched", batched)  # memit's solve imports it from there when it runs
    templates = ("{}", "a photo of {}")
    config = EditConfig(layers=[0], value="match", templates=templates, key="subject", auto_preserve=False, lam=5.0)
    editor = SequentialEditor(load_encoder(str(bert_path)), config, corpus=small_corpus, cache_dir=tmp_path)
    for fact in [("the capital of france", "rome", "france"), ("the leader of japan", "a lion", "japan"),
                 ("the mascot of acme", "a red fox", "acme")]:
        editor.edit([EditRequest(*fact)])
    assert seen == [5.0, 5.0 + len(templates), 5.0 + 2 * len(templates)]
    editor.revert_all()


ULTRA = EditConfig(method="ultraedit", layers=[0, 1], value="match", step=1e-2, templates=EDIT_TEMPLATES[:2])
ULTRA_BATCHES = [[EditRequest("the mascot of acme", "a red fox", subject="acme"),
                  EditRequest("the logo of google", "a blue whale", subject="google")],
                 [EditRequest("the capital of canada", "paris", subject="canada"),
                  EditRequest("the leader of japan", "a lion", subject="japan")],
                 # one request: standardised against the chain's statistics
                 [EditRequest("the flag of peru", "a green moon", subject="peru")],
                 [EditRequest("the mascot of globex", "a green frog", subject="globex"),
                  EditRequest("the symbol of rome", "a golden eagle", subject="rome")]]


def test_ultraedit_chain_continues_from_saved_patches_bit_for_bit(bert_path, tmp_path):
    """UltraEdit's lifelong normaliser travels in the patches: a chain of four edits equals the
    same chain saved after two, loaded into a fresh model and continued (``SequentialEditor``
    and ``edit_after``, the ``apply --after`` path), delta for delta and state for state."""
    from textedit.patch import Patch
    from textedit.sequential import SequentialEditor, carried_state

    editor = SequentialEditor(load_encoder(str(bert_path)), ULTRA)
    assert editor.remember  # the default where the method carries state
    chain = [editor.edit(batch) for batch in ULTRA_BATCHES]
    seen = 0
    for patch, batch in zip(chain, ULTRA_BATCHES):
        seen += len(batch)  # one template-averaged key per request
        assert all(d.keys is None and d.state["count"].item() == seen for d in patch.deltas)
    assert carried_state(chain, "ultraedit")[1] is chain[-1].deltas[1].state

    loaded = [Patch.load(p.save(tmp_path / f"p{i}")) for i, p in enumerate(chain[:2])]
    resumed = SequentialEditor(load_encoder(str(bert_path)), ULTRA, history=loaded)
    continued = [resumed.edit(batch) for batch in ULTRA_BATCHES[2:]]
    after = edit_after(load_encoder(str(bert_path)), ULTRA_BATCHES[3], ULTRA, loaded + [continued[0]])
    assert after.hyperparameters["after"] == [p.id for p in loaded] + [continued[0].id]
    for want, got in [*zip(chain[2:], continued), (chain[3], after)]:
        for w, g in zip(want.deltas, got.deltas):
            assert torch.equal(w.delta.left, g.delta.left) and torch.equal(w.delta.right, g.delta.right)
            assert all(torch.equal(w.state[name], g.state[name]) for name in w.state)
    assert [p.id for p in continued] == [p.id for p in chain[2:]]


def test_ultraedit_chain_without_remembering_restarts_the_normaliser(bert_path):
    """``remember=False`` is the per-edit restart: patches store no state and each is the single
    edit of its batch on the weights the earlier left; a lone request then has nothing to be
    standardised against."""
    from textedit.errors import SpecError
    from textedit.sequential import SequentialEditor

    adapter = load_encoder(str(bert_path))
    editor = SequentialEditor(adapter, ULTRA, remember=False)
    first = editor.edit(ULTRA_BATCHES[0])
    alone = edit(adapter, ULTRA_BATCHES[1], ULTRA)  # on the weights the first edit left
    second = editor.edit(ULTRA_BATCHES[1])
    assert all(d.state is None for p in (first, second) for d in p.deltas)
    assert alone.id == second.id
    with pytest.raises(SpecError, match="several requests"):
        editor.edit(ULTRA_BATCHES[2])
    editor.revert_all()
