"""Scale: the primal MEMIT solve for many keys, bf16 encoders solved in float64, and
sequential editing that remembers earlier keys."""

from __future__ import annotations

import pytest
import torch

from textedit.solvers import LowRankDelta, batched, batched_primal, dense_factors


def problem(d_out: int, d_in: int, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    X = torch.randn(4 * d_in, d_in, generator=g, dtype=torch.float64)
    C = X.T @ X / X.shape[0]
    K = torch.randn(d_in, n, generator=g, dtype=torch.float64)
    V = torch.randn(d_out, n, generator=g, dtype=torch.float64)
    return W, C, K, V


@pytest.mark.parametrize("d_out, d_in", [(8, 12), (12, 8)])
def test_primal_equals_woodbury(d_out, d_in):
    W, C, K, V = problem(d_out, d_in, n=5)
    woodbury = batched(W, C, K, V, 3.0).dense()
    primal = batched_primal(W, C, K, V, 3.0, chunk=2)
    assert primal.rank == min(d_out, d_in)
    torch.testing.assert_close(primal.dense(), woodbury, rtol=1e-10, atol=1e-12)


def test_many_keys_solve_the_normal_equations():
    """n > d_in: batched() goes primal; ΔW satisfies ΔW (λC + KKᵀ) = R Kᵀ; float32 keys are fine."""
    W, C, K, V = problem(6, 10, n=37)
    delta = batched(W, C, K.float(), V.float(), 0.5)
    R = V.float().double() - W @ K.float().double()
    lhs = delta.dense() @ (0.5 * C + K.float().double() @ K.float().double().T)
    torch.testing.assert_close(lhs, R @ K.float().double().T, rtol=1e-9, atol=1e-9)
    assert delta.rank == 6


def test_dense_factors_are_exact():
    for shape in ((3, 5), (5, 3)):
        delta = torch.randn(*shape, dtype=torch.float64)
        factors = dense_factors(delta)
        assert isinstance(factors, LowRankDelta) and factors.rank == min(shape)
        assert torch.equal(factors.dense(), delta)


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
    import textedit.methods.memit as memit_module
    from textedit.editor import EditConfig
    from textedit.encoders import load_encoder
    from textedit.requests import EditRequest
    from textedit.sequential import SequentialEditor

    seen = []
    real = memit_module.batched
    monkeypatch.setattr(memit_module, "batched", lambda W, C, K, V, lam, **kw: seen.append(lam) or real(W, C, K, V,
                                                                                                        lam, **kw))
    templates = ("{}", "a photo of {}")
    config = EditConfig(layers=[0], value="match", templates=templates, key="subject", auto_preserve=False, lam=5.0)
    editor = SequentialEditor(load_encoder(str(bert_path)), config, corpus=small_corpus, cache_dir=tmp_path)
    for fact in [("the capital of france", "rome", "france"), ("the leader of japan", "a lion", "japan"),
                 ("the mascot of acme", "a red fox", "acme")]:
        editor.edit([EditRequest(*fact)])
    assert seen == [5.0, 5.0 + len(templates), 5.0 + 2 * len(templates)]
    editor.revert_all()
