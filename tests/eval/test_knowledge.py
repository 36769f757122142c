"""The knowledge benchmark: its files load and are checked, its scores match a hand computation,
and the evaluator runs it in every mode, leaving the encoder as it found it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from textedit.editor import EditConfig
from textedit.encoders import load_encoder
from textedit.eval.benchmark import BenchmarkError
from textedit.eval.knowledge import KnowledgeSummary, load_knowledge, score_knowledge
from textedit.eval.run import Evaluator

REPO = Path(__file__).resolve().parents[2]
SPLITS = {"dev": 12, "test": 36}
#: the dev split ships with the package (``textedit tune`` reads it); the test split stays out
SPLIT_FOLDERS = {"dev": Path("textedit") / "data", "test": Path("benchmarks") / "data"}

CONCEPT = {"subject": "acme", "anchor": "a red fox", "kind": "fictional brand",
           "queries": ["the mascot of acme", "acme's lucky animal"],
           "paraphrases": ["the animal of acme"], "same_subject": ["the house of acme"],
           "same_relation": ["the mascot of the city"]}


def write(tmp_path, concepts, **extra) -> Path:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"contexts": ["a photo of {}", "{} in the garden"], "unrelated": ["a dog", "a cup"],
                                "concepts": concepts, **extra}))
    return path


@pytest.mark.parametrize("split", SPLITS)
def test_shipped_splits_load_and_are_disjoint(split):
    cases = load_knowledge(REPO / SPLIT_FOLDERS[split] / f"knowledge_{split}.json")
    assert len(cases) == SPLITS[split]
    assert all(len(c.queries) == 5 and len(c.paraphrases) == 3 and len(c.same_subject) == 3 and
               len(c.same_relation) == 2 and len(c.contexts) == 4 and len(c.unrelated) == 20 for c in cases)
    other_split = "test" if split == "dev" else "dev"
    other = load_knowledge(REPO / SPLIT_FOLDERS[other_split] / f"knowledge_{other_split}.json")
    assert not {c.subject for c in cases} & {c.subject for c in other}
    from textedit.metrics import EVAL_TEMPLATES
    from textedit.sites import EDIT_TEMPLATES
    assert not set(cases[0].contexts) & set(EDIT_TEMPLATES)  # scored in contexts the edit never saw
    assert set(cases[0].contexts) == set(EVAL_TEMPLATES)


@pytest.mark.parametrize("change, message", [
    ({"queries": []}, "queries: expected a non-empty list"),
    ({"same_subject": ["the house of globex"]}, "does not contain the subject 'acme'"),
    ({"colour": "red"}, "unknown field"),
    ({"anchor": ""}, "anchor: expected a non-empty string"),
])
def test_malformed_concepts_name_the_field(tmp_path, change, message):
    with pytest.raises(BenchmarkError, match=message):
        load_knowledge(write(tmp_path, [{**CONCEPT, **change}]))


def test_contexts_need_one_placeholder(tmp_path):
    with pytest.raises(BenchmarkError, match="contexts"):
        load_knowledge(write(tmp_path, [CONCEPT], contexts=["a {} of {}"]))


def test_scores_are_the_cosine_comparisons(tmp_path):
    """Scores from chosen vectors, checked against the definitions by hand."""
    case = load_knowledge(write(tmp_path, [CONCEPT]))[0]
    edited_prompts, judged_prompts = case.prompts()
    generator = torch.Generator().manual_seed(0)
    judge = {p: torch.randn(8, generator=generator, dtype=torch.float64) for p in set(judged_prompts)}
    edited = {p: torch.randn(8, generator=generator, dtype=torch.float64) for p in set(edited_prompts)}
    score = score_knowledge(case, edited, judge)
    cos = torch.nn.functional.cosine_similarity
    expected_efficacy = [bool(cos(edited[c.format(q)], judge[c.format("a red fox")], 0) >
                              cos(edited[c.format(q)], judge[c.format(q)], 0))
                         for q in CONCEPT["queries"] for c in case.contexts]
    assert [m > 0 for m in score.margins["efficacy"]] == expected_efficacy
    p = "the house of acme"
    expected_subject = [bool(cos(edited[c.format(p)], judge[c.format(p)], 0) >
                             cos(edited[c.format(p)], judge[c.format("a red fox")], 0)) for c in case.contexts]
    assert [m > 0 for m in score.margins["same_subject"]] == expected_subject
    assert score.drift == pytest.approx([1 - float(cos(edited[u], judge[u], 0)) for u in case.unrelated])
    unedited = KnowledgeSummary.of([score_knowledge(case, judge, judge)])
    assert (unedited.efficacy, unedited.same_subject, unedited.same_relation) == (0, 1, 1)
    assert unedited.max_drift == pytest.approx(0, abs=1e-12)


def test_every_mode_runs_and_reverts(bert_path, small_corpus, tmp_path):
    adapter = load_encoder(str(bert_path))
    concepts = [CONCEPT, {**CONCEPT, "subject": "globex", "anchor": "a green car",
                          "queries": ["the car of globex"], "paraphrases": ["globex's car"],
                          "same_subject": ["the founder of globex"], "same_relation": ["the car of the city"]}]
    cases = load_knowledge(write(tmp_path, concepts))
    before = [p.detach().clone() for p in adapter.model.parameters()]
    evaluator = Evaluator(adapter, cases, corpus=small_corpus, cache_dir=tmp_path)
    # λ small and no automatic preservation: a random tiny encoder hardly tells a subject's contexts apart
    config = EditConfig(layers=[0, 1], value="match", lam=1.0, auto_preserve=False)
    results = {mode: evaluator.run(config, mode) for mode in ("single", "batch", "sequential")}
    assert all(torch.equal(a, b) for a, b in zip(before, adapter.model.parameters()))  # bit for bit
    assert [r.edits for r in results.values()] == [2, 1, 2]
    assert results["sequential"].hyperparameters["remember"] is True
    def mean_margin(result):
        return sum(m for s in result.scores for m in s.margins["efficacy"]) / sum(
            len(s.margins["efficacy"]) for s in result.scores)
    baseline = mean_margin(evaluator.baseline())
    for result in results.values():
        assert mean_margin(result) > baseline + 1e-3  # the queries move toward their anchors
        row = result.to_dict()["rows"][0]
        assert set(row) >= {"efficacy", "same_subject", "same_relation", "drift_max", "failures"}
    # the chain differs from the batch: each concept is solved on the weights the earlier left
    assert results["sequential"].scores[1].margins != results["batch"].scores[1].margins
