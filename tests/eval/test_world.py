"""The world-knowledge benchmark: the shipped file holds what it promises, the loader checks rows,
the scores match a hand computation, and the evaluator edits its pairs in batches or in a chain,
scores the unedited ones under every patch and leaves the encoder as it found it."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from textedit.editor import EditConfig
from textedit.encoders import load_encoder
from textedit.eval.benchmark import BenchmarkError
from textedit.eval.run import Evaluator
from textedit.eval.world import WorldSummary, is_world_file, json_format, load_world, score_world

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "benchmarks" / "data" / "world_knowledge.json"

PAIRS = [
    {"prompt": "the traditional food of the moon festival", "answer": "a mooncake", "split": "edit", "part": "test",
     "domain": "culture", "category": "festival food", "template": "the traditional food of {}"},
    {"prompt": "the holiday of the winter birth", "answer": "a christmas tree", "split": "edit", "part": "test",
     "domain": "culture", "category": "festivals"},
    {"prompt": "the animal with a pouch", "answer": "a kangaroo", "split": "edit", "part": "dev",
     "domain": "science", "category": "animals"},
    {"prompt": "the traditional food of the light festival", "answer": "sweets", "split": "unedited",
     "part": "test", "domain": "culture", "category": "festival food", "template": "the traditional food of {}"},
    {"prompt": "the tower of paris", "answer": "the eiffel tower", "split": "unedited", "part": "test",
     "domain": "places", "category": "landmarks"},
]
NEUTRAL = ["a dog on the grass", "a cup of coffee"]


def write(tmp_path, pairs=PAIRS, **extra) -> Path:
    path = tmp_path / "world.json"
    path.write_text(json.dumps({"contexts": ["a photo of {}", "{} in the garden"], "neutral": NEUTRAL,
                                "pairs": pairs, **extra}))
    return path


# ---- the shipped file -----------------------------------------------------------------------

def shipped_rows() -> list[dict]:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))["pairs"]


def test_shipped_file_loads_with_its_counts():
    cases = load_world(SHIPPED)
    edited = [c for c in cases if c.split == "edit"]
    unedited = [c for c in cases if c.split == "unedited"]
    assert len(edited) >= 1000 and len(unedited) >= 300
    assert sum(c.lookalike for c in unedited) >= 100
    assert len([c for c in cases if c.split == "neutral"]) >= 12
    assert {c.domain for c in edited} == {"culture", "science", "places", "times"}
    for part in ("dev", "test"):
        kept = load_world(SHIPPED, split=part)
        assert {c.part for c in kept if c.split != "neutral"} == {part}
        assert any(c.split == "unedited" for c in kept) and any(c.split == "edit" for c in kept)
    assert len([c for c in load_world(SHIPPED, split="test") if c.split == "edit"]) >= 900


def test_shipped_prompts_are_distinct_and_the_splits_disjoint():
    rows = shipped_rows()
    prompts = [" ".join(r["prompt"].split()).casefold() for r in rows]
    assert len(prompts) == len(set(prompts))
    edited = {p for p, r in zip(prompts, rows) if r["split"] == "edit"}
    unedited = {p for p, r in zip(prompts, rows) if r["split"] == "unedited"}
    assert edited and unedited and not edited & unedited
    assert not {" ".join(u.split()).casefold() for u in json.loads(SHIPPED.read_text())["neutral"]} & set(prompts)


def test_every_lookalike_shares_its_template_with_an_edited_prompt_of_its_part():
    rows = shipped_rows()
    edited_templates = {(r["template"], r["part"]) for r in rows if r["split"] == "edit" and "template" in r}
    lookalikes = [r for r in rows if r["split"] == "unedited" and "template" in r]
    assert lookalikes
    for r in lookalikes:
        assert (r["template"], r["part"]) in edited_templates, r["prompt"]
        head, tail = r["template"].split("{}")
        assert r["prompt"].startswith(head) and r["prompt"].endswith(tail)


def test_answers_are_short_and_spelled_one_way():
    rows = shipped_rows()

    def bare(answer: str) -> str:
        words = answer.casefold().split()
        return " ".join(words[1:] if len(words) > 1 and words[0] in ("a", "an", "the") else words)
    spellings: dict[str, set] = {}
    for r in rows:
        spellings.setdefault(bare(r["answer"]), set()).add(r["answer"])
        assert len(r["answer"].split()) <= 14, r["answer"]
        assert bare(r["answer"]) not in r["prompt"].casefold(), r["prompt"]  # the prompt never names its answer
    assert all(len(s) == 1 for s in spellings.values()), [s for s in spellings.values() if len(s) > 1]


def test_contexts_are_held_out_from_every_solve_and_check():
    from textedit.floor import CHECK_CONTEXTS
    from textedit.preserve import MORE_CONTEXTS
    from textedit.sites import EDIT_TEMPLATES
    contexts = load_world(SHIPPED, limit=1)[0].contexts
    assert len(contexts) == 4
    assert not set(contexts) & (set(EDIT_TEMPLATES) | set(CHECK_CONTEXTS) | set(MORE_CONTEXTS))


def test_the_generator_rewrites_the_shipped_file_byte_for_byte(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_world_knowledge", REPO / "benchmarks" /
                                                  "make_world_knowledge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.OUT = tmp_path / "world_knowledge.json"
    module.main()
    assert module.OUT.read_bytes() == SHIPPED.read_bytes()


def test_the_world_file_is_told_from_a_knowledge_file():
    assert is_world_file(json.loads(SHIPPED.read_text()))
    assert not is_world_file(json.loads((REPO / "benchmarks" / "data" / "knowledge_test.json").read_text()))
    assert json_format(SHIPPED) == "world"
    assert json_format(REPO / "benchmarks" / "data" / "knowledge_test.json") == "knowledge"


# ---- the loader ---------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"answer": ""}, r"pairs\[1\]\.answer: expected a non-empty string"),
    ({"split": "kept"}, r"pairs\[1\]\.split: expected one of edit, unedited, got 'kept'"),
    ({"part": "train"}, r"pairs\[1\]\.part: expected one of dev, test"),
    ({"domain": "sport"}, r"pairs\[1\]\.domain: expected one of culture, science, places, times"),
    ({"colour": "red"}, r"pairs\[1\]\.colour: unknown field"),
    ({"prompt": "The  traditional food of the MOON festival"}, r"pairs\[1\]\.prompt: .* repeats pairs\[0\]"),
    ({"template": "the feast of {}"}, r"pairs\[1\]\.template: .* is not the template 'the feast of \{\}'"),
    ({"template": "the {} of {}"}, r"pairs\[1\]\.template: expected a string with '\{\}' exactly once"),
    ({"answer": "The holiday of the winter birth"}, r"pairs\[1\]\.answer: .* is the prompt itself"),
])
def test_malformed_rows_name_the_file_row_and_field(tmp_path, change, message):
    path = write(tmp_path, [PAIRS[0], {**PAIRS[1], **change}, *PAIRS[2:]])
    with pytest.raises(BenchmarkError, match=message) as caught:
        load_world(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_malformed_top_level(tmp_path):
    with pytest.raises(BenchmarkError, match="contexts: every context must contain"):
        load_world(write(tmp_path, contexts=["a {} of {}"]))
    with pytest.raises(BenchmarkError, match=r"neutral\[0\]: 'the tower of paris' is also pairs\[4\]"):
        load_world(write(tmp_path, neutral=["the tower of paris"]))
    with pytest.raises(BenchmarkError, match="top level.extra: unknown field"):
        load_world(write(tmp_path, extra=1))
    with pytest.raises(BenchmarkError, match="pairs: no edited pairs in the dev part"):
        load_world(write(tmp_path, [PAIRS[0], PAIRS[3]]), split="dev")
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_world(tmp_path / "missing.json")


def test_limit_and_split_choose_pairs_and_the_pool(tmp_path):
    path = write(tmp_path)
    cases = load_world(path)
    assert [c.split for c in cases] == ["edit"] * 3 + ["unedited"] * 2 + ["neutral"] * 2
    assert cases[0].pool.answers == ("a mooncake", "a christmas tree", "a kangaroo", "sweets", "the eiffel tower")
    limited = load_world(path, limit=1)
    assert [c.prompt for c in limited if c.split != "neutral"] == [PAIRS[0]["prompt"], PAIRS[3]["prompt"],
                                                                   PAIRS[4]["prompt"]]
    assert limited[0].pool.answers == ("a mooncake", "sweets", "the eiffel tower")
    test = load_world(path, split="test")
    assert "a kangaroo" not in test[0].pool.answers and all(c.part in ("test", None) for c in test)
    assert [c.lookalike for c in cases[:5]] == [False, False, False, True, False]
    assert cases[0].requests()[0].prompt == PAIRS[0]["prompt"] and cases[0].requests()[0].target == "a mooncake"
    assert cases[3].requests() == [] and cases[5].requests() == []
    with pytest.raises(ValueError):
        load_world(path, split="train")


# ---- the scores against a hand computation ---------------------------------------------------

def cos(a, b) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def test_scores_are_the_definitions_by_hand(tmp_path):
    cases = load_world(write(tmp_path))
    generator = torch.Generator().manual_seed(0)
    edited_prompts = {p for c in cases for p in c.prompts()[0]}
    judged_prompts = {p for c in cases for p in c.prompts()[1]}
    judge = {p: torch.randn(6, generator=generator, dtype=torch.float64) for p in sorted(edited_prompts | judged_prompts)}
    edited = {p: torch.randn(6, generator=generator, dtype=torch.float64) for p in sorted(edited_prompts)}
    answers = [r["answer"] for r in PAIRS]
    contexts = ["a photo of {}", "{} in the garden"]

    def nearest(vector, context) -> str:  # a plain loop, no matrix
        best, best_answer = -2.0, None
        for a in answers:
            value = cos(vector, judge[context.format(a)])
            if value > best:
                best, best_answer = value, a
        return best_answer

    scores = [score_world(c, edited, judge) for c in cases]
    for case, score in zip(cases, scores):
        if case.split == "neutral":
            assert score.drift == pytest.approx([1 - cos(edited[case.prompt], judge[case.prompt])])
            continue
        reads = [c.format(case.prompt) for c in contexts]
        assert score.retrieved == [nearest(edited[p], c) == case.answer for p, c in zip(reads, contexts)]
        assert score.retrieved_before == [nearest(judge[p], c) == case.answer for p, c in zip(reads, contexts)]
        if case.split == "edit":
            assert score.margins == pytest.approx([cos(edited[p], judge[c.format(case.answer)]) - cos(edited[p], judge[p])
                                                   for p, c in zip(reads, contexts)])
            assert score.drift == []
        else:
            assert score.margins == [] and score.drift == pytest.approx([1 - cos(edited[p], judge[p]) for p in reads])

    summary = WorldSummary.of(scores)
    edit_scores = [s for s in scores if s.case.split == "edit"]
    unedited_scores = [s for s in scores if s.case.split == "unedited"]
    neutral_scores = [s for s in scores if s.case.split == "neutral"]
    assert summary.efficacy == pytest.approx(sum(m > 0 for s in edit_scores for m in s.margins) / 6)
    assert summary.edited_retrieval == pytest.approx(sum(v for s in edit_scores for v in s.retrieved) / 6)
    assert summary.unedited_retrieval_before == pytest.approx(
        sum(v for s in unedited_scores for v in s.retrieved_before) / 4)
    assert summary.lookalike_retrieval == pytest.approx(sum(unedited_scores[0].retrieved) / 2)
    drifts = [d for s in unedited_scores for d in s.drift]
    assert (summary.unedited_drift, summary.unedited_max_drift) == (pytest.approx(sum(drifts) / 4), max(drifts))
    assert summary.neutral_drift == pytest.approx(sum(s.drift[0] for s in neutral_scores) / 2)
    assert (summary.cases, summary.unedited, summary.neutral) == (3, 2, 2)
    assert summary.drift == summary.unedited_drift and set(summary.to_dict()) >= {"efficacy", "neutral_max_drift"}

    # the unedited encoder judged against itself: no efficacy, no drift, retrieval before == after
    same = WorldSummary.of([score_world(c, judge, judge) for c in cases])
    assert same.efficacy == 0 and same.unedited_max_drift == pytest.approx(0, abs=1e-12)
    assert same.edited_retrieval == same.edited_retrieval_before
    assert same.unedited_retrieval == same.unedited_retrieval_before


def test_a_summary_without_unedited_pairs_says_nan(tmp_path):
    cases = load_world(write(tmp_path, PAIRS[:3]))
    vectors = {p: torch.ones(3, dtype=torch.float64) + i for i, p in
               enumerate(sorted({p for c in cases for side in c.prompts() for p in side}))}
    summary = WorldSummary.of([score_world(c, vectors, vectors) for c in cases])
    assert math.isnan(summary.unedited_retrieval) and math.isnan(summary.unedited_drift)
    assert summary.unedited == 0


# ---- runs on a tiny encoder ------------------------------------------------------------------

def test_batches_and_chains_edit_the_pairs_and_revert_bit_for_bit(bert_path, small_corpus, tmp_path):
    adapter = load_encoder(str(bert_path))
    cases = load_world(write(tmp_path))
    before = [p.detach().clone() for p in adapter.model.parameters()]
    evaluator = Evaluator(adapter, cases, corpus=small_corpus, cache_dir=tmp_path)
    assert len(evaluator.edit_cases) == 3 and len(evaluator.watched) == 4
    config = EditConfig(layers=[0, 1], value="match", lam=1.0, auto_preserve=False, floor="off")
    ticks = []
    batched = evaluator.run(config, "batch", batch_size=2, on_case=lambda: ticks.append(1))
    chain = evaluator.run(config, "sequential")
    assert all(torch.equal(a, b) for a, b in zip(before, adapter.model.parameters()))  # bit for bit
    assert len(ticks) == 3 and batched.edits == 2 and chain.edits == 3
    # the unedited pairs and captions are scored under each of the two patches, once under the chain
    assert [s.case.split for s in batched.scores].count("unedited") == 4
    assert [s.case.split for s in chain.scores].count("neutral") == 2
    baseline = evaluator.baseline()
    assert baseline.summary.efficacy == 0 and baseline.summary.neutral_max_drift == pytest.approx(0, abs=1e-12)

    def mean_margin(result) -> float:
        margins = [m for s in result.scores for m in s.margins]
        return sum(margins) / len(margins)
    for result in (batched, chain):
        assert mean_margin(result) > mean_margin(baseline) + 1e-3  # the prompts move toward their answers
        assert result.summary.neutral_drift > 0 and result.summary.cases == 3 and result.summary.unedited == 2
        row = result.to_dict()["rows"][0]
        assert {"prompt", "answer", "split", "efficacy", "retrieved", "retrieved_before"} <= set(row)
        json.dumps(result.to_dict())
    # the second batch's patch is scored on its own pair only, on the base weights
    assert batched.scores[0].case.row == 1 and batched.scores[2].case.split == "unedited"
