"""Preserved prompts: which are made automatically, and that the solve keeps them on real computation."""

from __future__ import annotations

import pytest
import torch

from textedit.editor import EditConfig, edit
from textedit.encoders import load_encoder
from textedit.errors import SpecError
from textedit.metrics import EVAL_TEMPLATES
from textedit.preserve import (MORE_CONTEXTS, OTHER_SUBJECTS, automatic_prompts, content_words, kept_contexts,
                               relation_prompts, subject_prompts)
from textedit.sites import EDIT_TEMPLATES
from textedit.requests import EditRequest

MASCOT = [EditRequest("the mascot of Acme", "a red fox", "Acme"),
          EditRequest("the animal on the Acme logo", "a red fox", "Acme")]


def test_subject_prompts_skip_relations_the_queries_use():
    prompts = subject_prompts(MASCOT)
    assert "Acme" in prompts and "the founder of Acme" in prompts and "Acme's house" in prompts
    # "logo" and "animal" are the queries' own words: a relation using them would fight the edit
    assert not any(content_words(p) & {"logo", "animal", "mascot"} for p in prompts)
    assert subject_prompts([EditRequest("the mascot of Acme", "a red fox")]) == []  # no subject, nothing


def test_a_subject_that_is_a_whole_query_keeps_no_other_relations():
    """"the Prime Minister of Canada" → "Mark Carney": every other relation of that subject
    ("the home of the Prime Minister of Canada") holds the query being changed; keeping them
    would keep its old meaning. Another subject of the same batch keeps its own."""
    office = EditRequest("the Prime Minister of Canada", "Mark Carney", "the prime minister of Canada")
    assert subject_prompts([office]) == []
    both = subject_prompts([office, *MASCOT])
    assert both == subject_prompts(MASCOT) and not any("Canada" in p for p in both)
    # what stays automatic: other subjects in the query's place ("a company", "London", ...)
    assert automatic_prompts([office]) == relation_prompts([office], OTHER_SUBJECTS[:8])
    assert not any("Canada" in p for p in automatic_prompts([office]))


def test_relation_prompts_put_other_subjects_in_the_subjects_place():
    prompts = relation_prompts(MASCOT)
    assert prompts[:len(OTHER_SUBJECTS)] == [f"the mascot of {s}" for s in OTHER_SUBJECTS]
    # in grammar: a determiner is not doubled, a noun not repeated, a plural's possessive is bare
    assert "the animal on the company logo" in prompts and "the animal on the town logo" in prompts
    assert not any(" the the " in p or " the a " in p or "company company" in p for p in prompts)
    assert "the neighbours' lucky animal" in relation_prompts([EditRequest("Acme's lucky animal", "x", "Acme")])
    assert "the furry town mascot" in relation_prompts([EditRequest("the furry Acme mascot", "x", "Acme")])
    assert "the spectre seen in Paris at midnight" in relation_prompts(
        [EditRequest("the spectre seen in Pebblemoor at midnight", "x", "Pebblemoor")])
    assert not any("Acme" in p for p in prompts)
    # case-insensitive subject, order and duplicates deterministic
    assert relation_prompts([EditRequest("ACME's mascot", "x", "Acme")])[0] == "a company's mascot"
    assert automatic_prompts(MASCOT) == automatic_prompts(list(MASCOT))
    assert len(set(automatic_prompts(MASCOT))) == len(automatic_prompts(MASCOT))


def _sentence(adapter, prompts):
    return torch.nn.functional.normalize(adapter.embed(prompts).double(), dim=-1)


@pytest.mark.slow
def test_preservation_keeps_the_subjects_other_knowledge_on_minilm(tmp_path):
    """Real weights: with the automatic set, "the founder of Acme" hardly moves while the mascot
    is bound; without it the founder moves as far as the mascot (the edit binds the subject).
    Measured on held-out prompts that are in no preserved list."""
    from textedit.corpus import Corpus, load_corpus

    corpus = Corpus(tuple(load_corpus(limit=1500).prompts), "preserve-test")
    adapter = load_encoder()
    requests = [EditRequest("the mascot of Acme", "a red panda", "Acme")]
    held_out = ["the chief engineer of Acme", "a factory owned by Acme"]
    assert not set(held_out) & set(automatic_prompts(requests))
    before_q, before_h = _sentence(adapter, ["the mascot of Acme"]), _sentence(adapter, held_out)
    goal = _sentence(adapter, ["a red panda"])
    moved = {}
    for preserve in (False, True):
        config = EditConfig(auto_preserve=preserve, steps=20)
        patch = edit(adapter, requests, config, corpus=corpus, cache_dir=tmp_path)
        assert ("preserved" in patch.hyperparameters) == preserve
        patch.apply(adapter)
        after_q, after_h = _sentence(adapter, ["the mascot of Acme"]), _sentence(adapter, held_out)
        patch.revert(adapter)
        gain = float(after_q @ goal.T - before_q @ goal.T)
        drift = float((1 - (after_h * before_h).sum(-1)).mean())
        moved[preserve] = (gain, drift)
    (gain_off, drift_off), (gain_on, drift_on) = moved[False], moved[True]
    assert gain_on > 0.3 and gain_off > 0.3, moved  # the knowledge is bound either way
    assert drift_on < 0.25 * drift_off, moved  # the subject's other knowledge stays


def test_preserving_needs_a_method_that_keeps_keys(bert_path, small_corpus, tmp_path):
    adapter = load_encoder(str(bert_path))
    with pytest.raises(SpecError, match="keeps keys"):
        EditConfig(method="rome", auto_preserve=True)
    with pytest.raises(SpecError, match="keeps keys"):
        edit(adapter, MASCOT[:1], EditConfig(method="rome", layers=[1]), preserve=["the founder of Acme"],
             corpus=small_corpus, cache_dir=tmp_path)
    # rome's default is no automatic preservation, recorded in the patch
    patch = edit(adapter, MASCOT[:1], EditConfig(method="rome", layers=[1], value="direct"), corpus=small_corpus,
                 cache_dir=tmp_path)
    assert patch.hyperparameters["auto_preserve"] is False and "preserved" not in patch.hyperparameters


def test_named_preserved_prompt_keeps_its_states_exactly_enough(bert_path, small_corpus, tmp_path):
    """Tiny BERT: a prompt named in ``preserve`` keeps its keys' values in the solve, so its hidden
    states move far less than without the constraint. (How much of the query's own move survives
    depends on how well the model's keys tell the two contexts apart; a random tiny model hardly
    does, so that is measured on MiniLM above.)"""
    adapter = load_encoder(str(bert_path))
    request = [EditRequest("the mascot of acme", "a red fox", "acme")]
    kept = "the house of acme"
    config = EditConfig(layers=[0, 1], value="match", auto_preserve=False, lam=1.0, key="subject")

    def states(prompt):
        batch = adapter.tokenize([prompt])
        with torch.no_grad():
            return adapter.hidden_states(batch)[0].double()

    base_kept, base_query = states(kept), states("the mascot of acme")
    moved = {}
    for preserve in ((), (kept,)):
        patch = edit(adapter, request, config, corpus=small_corpus, cache_dir=tmp_path, preserve=preserve)
        patch.apply(adapter)
        moved[bool(preserve)] = ((states(kept) - base_kept).norm().item(),
                                 (states("the mascot of acme") - base_query).norm().item())
        patch.revert(adapter)
    assert moved[True][0] < 0.2 * moved[False][0], moved


def test_causal_encoders_key_at_the_last_token(model_paths):
    """In a causal encoder the subject's token has not seen the rest of the query: "acme's lucky
    animal" and "acme's house" have the same key at "acme", bit for bit, so no solve can bind one
    and keep the other there. Their last tokens differ, hence the default for causal families."""
    from textedit.sites import Sites, read_states

    clip, bert = load_encoder(str(model_paths["clip"])), load_encoder(str(model_paths["bert"]))
    assert (clip.default_key, bert.default_key) == ("last", "subject")
    requests = [EditRequest("acme's lucky animal", "x", "acme"), EditRequest("acme's house", "x", "acme")]
    for adapter, same_at_subject in ((clip, True), (bert, False)):
        for key, expect_equal in (("subject", same_at_subject), ("last", False)):
            sites = Sites.for_queries(adapter, requests, ("a photo of {}",), key)
            k = read_states(adapter, sites, [0])[0].keys
            assert torch.equal(k[0], k[1]) == expect_equal, (adapter.family, key)
    assert EditConfig().key_position(clip) == "last" and EditConfig(key="subject").key_position(clip) == "subject"


def test_token_key_gram_sums_every_real_tokens_key(bert_path):
    """Σ kkᵀ over the real tokens, batch by batch, equals the sum built from keys read one
    site at a time with ``read_states`` (an independent path through the hooks)."""
    from textedit.sites import Sites, read_states, token_key_gram

    adapter = load_encoder(str(bert_path))
    prompts = ["the founder of acme", "a photo of acme's house in the snow", "acme"]
    gram = token_key_gram(adapter, prompts, 1, batch_size=2)
    expected = torch.zeros_like(gram)
    for prompt in prompts:
        batch = adapter.tokenize([prompt])
        n = int(batch.attention_mask.sum())
        sites = Sites([prompt] * n, list(range(n)), n, 1)
        k = read_states(adapter, sites, [1])[1].keys
        expected += k.T @ k
    # float32 forward passes, padded to different lengths: equal to float32 precision
    torch.testing.assert_close(gram, expected, rtol=1e-5, atol=1e-6)


def test_other_subjects_depend_on_the_key_position():
    """8 other subjects with one key per request, 24 with a key at every query token (measured,
    docs/eval.md): the relation prompts grow accordingly, the subject's own ones do not."""
    from textedit.preserve import OTHER_SUBJECTS, OTHER_SUBJECTS_FOR_KEY, automatic_prompts, subject_prompts

    assert OTHER_SUBJECTS_FOR_KEY == {"subject": 8, "last": 8, "query": 24} and len(OTHER_SUBJECTS) == 24
    request = [EditRequest("the mascot of acme", "a red fox", "acme")]
    own = len(subject_prompts(request))
    assert len(automatic_prompts(request)) == own + 8
    assert len(automatic_prompts(request, "query")) == own + 24
    assert "the mascot of the river" in automatic_prompts(request, "query")
    assert "the mascot of the river" not in automatic_prompts(request, "subject")


def test_automatic_prompts_weigh_one_over_the_number_of_subjects(bert_path, small_corpus, tmp_path, monkeypatch):
    """In the solve, named prompts' Σkkᵀ weighs 1 and the automatic prompts' 1 / (number of
    subjects): a batch of many subjects keeps, in all, what one subject keeps."""
    import textedit.editor as editor_module

    adapter = load_encoder(str(bert_path))
    gram = torch.eye(adapter.down_proj_module(0).weight.shape[1], dtype=torch.float64)
    seen = []
    monkeypatch.setattr(editor_module, "KeyGramReader", _fake_reader(lambda prompts: gram * len(prompts)))
    from textedit.methods.memit import Memit

    real_solve = Memit.solve
    monkeypatch.setattr(Memit, "solve", lambda self, problem: seen.append(problem.remembered_gram) or real_solve(self, problem))
    config = EditConfig(layers=[0], value="match", auto_preserve=True, key="subject", templates=("{}",))
    one = [EditRequest("the mascot of acme", "a red fox", "acme")]
    two = [*one, EditRequest("the symbol of globex", "a blue whale", "globex")]
    for requests, named in ((one, ()), (two, ()), (two, ("the house of acme",))):
        seen.clear()
        edit(adapter, requests, config, corpus=small_corpus, cache_dir=tmp_path, preserve=named)
        automatic = len(automatic_prompts(requests))
        expected = len(named) + automatic / len({r.subject for r in requests})
        torch.testing.assert_close(seen[0], gram * expected)


def test_kept_contexts_add_more_contexts_sharing_the_templates_weight():
    assert kept_contexts(EDIT_TEMPLATES) == (list(EDIT_TEMPLATES), 1.0)
    assert kept_contexts(EDIT_TEMPLATES, len(EDIT_TEMPLATES)) == (list(EDIT_TEMPLATES), 1.0)
    contexts, weight = kept_contexts(EDIT_TEMPLATES, 32)
    assert contexts == [*EDIT_TEMPLATES, *MORE_CONTEXTS[:24]] and weight * 32 == len(EDIT_TEMPLATES)
    assert kept_contexts(("{}",), 3) == (["{}", *MORE_CONTEXTS[:2]], 1 / 3)
    for count in (3, len(EDIT_TEMPLATES) + len(MORE_CONTEXTS) + 1):
        with pytest.raises(SpecError, match="preserve_contexts.*from 8"):
            kept_contexts(EDIT_TEMPLATES, count)


def test_more_contexts_are_neither_evaluation_nor_edit_contexts():
    """Kept prompts are scored in ``EVAL_TEMPLATES``: reading them there in the solve would
    make the held-out figure a training figure."""
    assert len(set(MORE_CONTEXTS)) == len(MORE_CONTEXTS) == 24
    assert not set(MORE_CONTEXTS) & set(EVAL_TEMPLATES) and not set(MORE_CONTEXTS) & set(EDIT_TEMPLATES)
    assert all(c.count("{}") == 1 for c in MORE_CONTEXTS)


def test_preserve_contexts_and_weight_set_the_kept_prompts_contexts_and_gram(bert_path, small_corpus, tmp_path,
                                                                           monkeypatch):
    """The solve's remembered Σkkᵀ is the kept prompts' gram in every kept context, each context
    weighing len(templates) / preserve_contexts, times preserve_weight; the patch records both."""
    import textedit.editor as editor_module
    from textedit.methods.memit import Memit

    adapter = load_encoder(str(bert_path))
    gram = torch.eye(adapter.down_proj_module(0).weight.shape[1], dtype=torch.float64)
    read, seen = [], []
    monkeypatch.setattr(editor_module, "KeyGramReader",
                        _fake_reader(lambda prompts: read.append(list(prompts)) or gram * len(prompts)))
    real_solve = Memit.solve
    monkeypatch.setattr(Memit, "solve", lambda self, problem: seen.append(problem.remembered_gram) or real_solve(self, problem))
    templates = ("{}", "a photo of {}")
    request = [EditRequest("the mascot of acme", "a red fox", "acme")]
    for knobs, contexts, weight in (({}, list(templates), 1.0),
                                    ({"preserve_contexts": 5}, [*templates, *MORE_CONTEXTS[:3]], 2 / 5),
                                    ({"preserve_contexts": 4, "preserve_weight": 3.0}, [*templates, *MORE_CONTEXTS[:2]],
                                     3.0 * 2 / 4)):
        read.clear(), seen.clear()
        config = EditConfig(layers=[0], value="match", auto_preserve=False, key="subject", templates=templates, **knobs)
        patch = edit(adapter, request, config, corpus=small_corpus, cache_dir=tmp_path, preserve=["the house of acme"])
        assert read == [[c.format("the house of acme") for c in contexts]]
        torch.testing.assert_close(seen[0], gram * len(contexts) * weight)
        assert patch.hyperparameters["preserve_contexts"] == knobs.get("preserve_contexts", 0)
        assert patch.hyperparameters["preserve_weight"] == knobs.get("preserve_weight", 1.0)


def test_preserve_knobs_need_kept_prompts_and_are_recorded_only_with_them(bert_path, small_corpus, tmp_path):
    adapter = load_encoder(str(bert_path))
    request = [EditRequest("the mascot of acme", "a red fox", "acme")]
    with pytest.raises(SpecError, match="'preserve_contexts' does nothing here: this edit keeps no prompts"):
        edit(adapter, request, EditConfig(layers=[0], value="direct", auto_preserve=False, preserve_contexts=16),
             corpus=small_corpus, cache_dir=tmp_path)
    with pytest.raises(SpecError, match="'preserve_weight' does nothing for method 'rome'"):
        EditConfig(method="rome", preserve_weight=2.0)
    patch = edit(adapter, request, EditConfig(layers=[0], value="direct", auto_preserve=False), corpus=small_corpus,
                 cache_dir=tmp_path)
    assert "preserve_contexts" not in patch.hyperparameters and "preserved" not in patch.hyperparameters


@pytest.mark.slow
def test_kept_prompts_hold_in_new_contexts_when_read_in_more_contexts_on_minilm(tmp_path):
    """Real weights: "the founder of Acme", named in ``preserve``, barely moves in the edit's own
    contexts but moves in contexts the edit never saw (``EVAL_TEMPLATES``); read in 32 contexts
    at the same total weight it moves far less there, while the mascot is still bound."""
    from textedit.corpus import Corpus, load_corpus

    corpus = Corpus(tuple(load_corpus(limit=1500).prompts), "preserve-test")
    adapter = load_encoder()
    requests = [EditRequest("the mascot of Acme", "a red panda", "Acme"), EditRequest("Acme's lucky animal", "a red panda", "Acme")]
    kept = "the founder of Acme"
    new_contexts = [t.format(kept) for t in EVAL_TEMPLATES]
    queries = [t.format(r.prompt) for r in requests for t in EVAL_TEMPLATES]
    before_k, before_q = _sentence(adapter, new_contexts), _sentence(adapter, queries)
    goal = _sentence(adapter, ["a red panda"])
    moved = {}
    for contexts in (0, 32):
        config = EditConfig(steps=20, preserve_contexts=contexts, floor="check")  # the knob alone: the floor's
        # search would weaken the automatic prompts differently for each setting
        patch = edit(adapter, requests, config, corpus=corpus, cache_dir=tmp_path, preserve=[kept])
        with patch.applied(adapter):
            after_k, after_q = _sentence(adapter, new_contexts), _sentence(adapter, queries)
        moved[contexts] = (float((after_q @ goal.T - before_q @ goal.T).mean()),
                           float((1 - (after_k * before_k).sum(-1)).mean()))
    (gain_8, drift_8), (gain_32, drift_32) = moved[0], moved[32]
    assert gain_32 > 0.2 and gain_8 > 0.2, moved  # bound either way
    assert drift_32 < 0.5 * drift_8, moved  # the founder holds in contexts neither edit saw


def test_protection_says_per_subject_what_the_edit_keeps_and_why():
    """A brand's other facts and other brands' same relation are kept; a virtual concept's name
    (no subject) and knowledge that is its own subject keep nothing of their own."""
    from textedit.preserve import protection, relation_prompts, subject_prompts

    lines = protection(MASCOT, automatic=True)
    assert len(lines) == 1 and lines[0].startswith("'Acme': ")
    assert f"{len(subject_prompts(MASCOT))} of its other facts kept (e.g. 'the founder of Acme')" in lines[0]
    assert f"{len(relation_prompts(MASCOT, OTHER_SUBJECTS[:8]))} prompts of the same relation" in lines[0]
    virtual = protection([EditRequest("zorblat", "a blue fox"), EditRequest("the Prime Minister of Canada", "Beyonce",
                                                                            "the Prime Minister of Canada")], True)
    assert virtual[0] == "'zorblat': no subject, so the whole prompt is the concept: nothing of its own is kept"
    assert virtual[1].startswith("'the Prime Minister of Canada' is the knowledge itself") and "none is kept" in virtual[1]
    assert protection(MASCOT, automatic=False)[0].startswith("automatic preservation is off")


def _fake_reader(gram_of):
    """A stand-in for ``sites.KeyGramReader`` whose ``gram`` at any layer is ``gram_of(prompts)``."""
    class Reader:
        def __init__(self, adapter, prompts, *args, **kwargs):
            self.prompts = list(prompts)

        def gram(self, layer, unchanged=0):
            return gram_of(self.prompts)
    return Reader
