"""Running edits over benchmark rows: single mode reverts between rows, batch mode makes one edit;
a single TIMED row on the real MiniLM reaches efficacy 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from textedit.corpus import Corpus, load_corpus
from textedit.editor import EditConfig
from textedit.encoders import load_encoder
from textedit.eval.benchmark import EvalCase, Probe, load_benchmark
from textedit.eval.run import Evaluator

REPO = Path(__file__).resolve().parents[2]
TIMED_TEST = REPO.parent / "shared" / "data" / "timed" / "TIMED_test_set.csv"
ROAD_SAMPLE = REPO / "tests" / "data" / "road_sample.csv"

BANANA = EvalCase(  # TIMED test set, row 1
    1, "A banana", "A banana", "A blue banana",
    positives=[Probe("A bowl of bananas", "A bowl of bananas", "A bowl of blue bananas"),
               Probe("A painting of a banana", "A painting of a banana", "A painting of a blue banana"),
               Probe("A banana funny cartoon", "A banana funny cartoon", "A blue banana funny cartoon")],
    negatives=[Probe("An apple", "An apple", "A blue apple"), Probe("A pear", "A pear", "A blue pear"),
               Probe("A lemon", "A lemon", "A blue lemon")])


@pytest.fixture(scope="module")
def minilm_corpus() -> Corpus:
    return Corpus(tuple(load_corpus(limit=1500).prompts), "eval-test")


@pytest.fixture
def road(bert_path, small_corpus, tmp_path):
    """The RoAD sample on a tiny BERT: ``(adapter, cases, its weights before, evaluator, a memit config)``."""
    adapter = load_encoder(str(bert_path))
    _, cases = load_benchmark(ROAD_SAMPLE)
    return (adapter, cases, weights(adapter), Evaluator(adapter, cases, corpus=small_corpus, cache_dir=tmp_path),
            EditConfig(method="memit", layers=[0, 1], value="direct"))


def weights(adapter) -> list[torch.Tensor]:
    return [p.detach().clone() for p in adapter.model.parameters()]


@pytest.mark.slow
def test_single_timed_row_on_minilm_reaches_efficacy_one(minilm_corpus, tmp_path):
    adapter = load_encoder()
    evaluator = Evaluator(adapter, [BANANA], corpus=minilm_corpus, cache_dir=tmp_path)
    baseline = evaluator.baseline().summary
    assert baseline.efficacy == 0 and baseline.specificity == 1
    result = evaluator.run(EditConfig(), "single")
    assert result.summary.efficacy == 1.0, result.to_dict()["rows"]
    assert result.summary.specificity == 1.0 and result.summary.generality >= 2 / 3


def test_single_mode_reverts_between_rows_and_batch_makes_one_edit(road, small_corpus, tmp_path):
    adapter, cases, before, evaluator, config = road
    single = evaluator.run(config, "single")
    assert single.edits == 3 and [s.case.row for s in single.scores] == [1, 2, 3]
    assert all(torch.equal(a, b) for a, b in zip(before, weights(adapter)))  # bit for bit
    batch = evaluator.run(config, "batch")
    assert batch.edits == 1 and len(batch.scores) == 3
    assert all(torch.equal(a, b) for a, b in zip(before, weights(adapter)))
    # rows edited alone and together differ (the batch solves for all keys at once)
    assert [s.efficacy_margin for s in single.scores] != [s.efficacy_margin for s in batch.scores]
    # the row's own edit is scored: single mode is the same as evaluating the row alone
    alone = Evaluator(adapter, cases[1:2], corpus=small_corpus, cache_dir=tmp_path).run(config, "single")
    assert alone.scores[0].efficacy_margin == pytest.approx(single.scores[1].efficacy_margin, abs=1e-9)
    report = batch.to_dict()
    assert report["mode"] == "batch" and len(report["rows"]) == 3 and "generality" in report["rows"][0]


def test_batch_size_splits_rows_into_consecutive_edits(road, small_corpus, tmp_path):
    adapter, cases, before, evaluator, config = road
    ticks = []
    chunked = evaluator.run(config, "batch", on_case=lambda: ticks.append(1), batch_size=2)
    assert chunked.edits == 2 and [s.case.row for s in chunked.scores] == [1, 2, 3] and len(ticks) == 3
    assert chunked.hyperparameters["batch_size"] == 2
    assert all(torch.equal(a, b) for a, b in zip(before, weights(adapter)))  # reverted between chunks
    # each chunk is scored as if its rows were the whole benchmark: rows 1-2 as one batch, row 3 alone
    first = Evaluator(adapter, cases[:2], corpus=small_corpus, cache_dir=tmp_path).run(config, "batch")
    last = Evaluator(adapter, cases[2:], corpus=small_corpus, cache_dir=tmp_path).run(config, "single")
    expected = [s.efficacy_margin for s in first.scores + last.scores]
    # (float32 encoder, judge vectors embedded in other batches: equal to 1e-8; the margins of this
    # tiny edit are about 0.015, and one edit of all three rows moves them by about 1e-5)
    margins = [s.efficacy_margin for s in chunked.scores]
    assert margins == pytest.approx(expected, abs=1e-8)
    whole = evaluator.run(config, "batch")
    assert max(abs(a - s.efficacy_margin) for a, s in zip(margins, whole.scores)) > 1e-6
    with pytest.raises(ValueError, match="batch_size"):
        evaluator.run(config, "single", batch_size=2)


def test_sequential_mode_remembers_where_the_method_can_unless_told_not_to(road):
    """Sequential mode chains the rows (``SequentialEditor``), remembering by default; ``remember=False``
    is the plain chain (another edit of the later rows), and the weights are restored either way."""
    adapter, _, before, evaluator, config = road
    chained = {remember: evaluator.run(config, "sequential", remember=remember) for remember in (None, False)}
    assert [r.hyperparameters["remember"] for r in chained.values()] == [True, False]
    assert all(r.edits == 3 for r in chained.values())
    assert all(torch.equal(a, b) for a, b in zip(before, weights(adapter)))
    assert [s.efficacy_margin for s in chained[None].scores] != [s.efficacy_margin for s in chained[False].scores]
    with pytest.raises(ValueError, match="remember"):
        evaluator.run(config, "batch", remember=False)


@pytest.mark.skipif(not TIMED_TEST.is_file(), reason="../shared/data/timed not beside the repository")
def test_timed_test_set_loads_every_row():
    fmt, cases = load_benchmark(TIMED_TEST)
    assert fmt == "timed" and len(cases) == 147
    assert all(len(c.positives) == 5 and len(c.negatives) == 5 for c in cases)
