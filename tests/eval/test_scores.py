"""The scores on hand-made vectors whose answers are known."""

from __future__ import annotations

import math

import torch

from textedit.eval.benchmark import EvalCase, Probe
from textedit.eval.scores import Summary, case_prompts, score_case

E = torch.eye(4, dtype=torch.float64)


def case() -> EvalCase:
    return EvalCase(1, "src", "old", "new", positives=[Probe("p1", "p1-old", "p1-new"), Probe("p2", "p2-old", "p2-new")],
                    negatives=[Probe("n1", "n1", "n1-new")])


JUDGE = {"old": E[0], "new": E[1], "p1-old": E[0], "p1-new": E[1], "p2-old": E[0], "p2-new": E[1],
         "n1": E[2], "n1-new": E[3]}


def test_case_prompts_lists_what_each_side_reads():
    edited, judged = case_prompts(case())
    assert edited == ["src", "p1", "p2", "n1"]
    assert set(judged) == set(JUDGE)


def test_a_perfect_edit():
    edited = {"src": E[1], "p1": E[1], "p2": E[1], "n1": E[2]}
    score = score_case(case(), edited, JUDGE)
    assert score.efficacy and score.efficacy_margin == 1.0
    assert score.generality == [True, True] and score.specificity == [True]
    assert score.drift == [0.0]


def test_an_edit_that_leaks_and_misses():
    # p2 went half way (a tie is not a success); the negative moved onto its new reading
    edited = {"src": E[0] + 0.1 * E[1], "p1": E[1], "p2": E[0] + E[1], "n1": E[3]}
    score = score_case(case(), edited, JUDGE)
    assert not score.efficacy and score.efficacy_margin < 0
    assert score.generality == [True, False]
    assert score.specificity == [False] and math.isclose(score.drift[0], 1.0)
    as_dict = score.to_dict()
    assert as_dict["efficacy"] is False and as_dict["generality"][1]["ok"] is False


def test_drift_is_one_minus_cosine():
    edited = {"src": E[1], "p1": E[1], "p2": E[1], "n1": E[2] + E[3] * math.tan(math.radians(30))}
    score = score_case(case(), edited, JUDGE)
    assert math.isclose(score.drift[0], 1 - math.cos(math.radians(30)), rel_tol=1e-9)
    assert score.specificity == [True]


def test_unedited_baseline_fails_efficacy_and_keeps_specificity():
    vectors = {**JUDGE, "src": E[0], "p1": E[0], "p2": E[0]}
    score = score_case(case(), vectors, vectors)
    assert not score.efficacy and score.generality == [False, False] and score.specificity == [True]


def test_summary_micro_averages_prompts():
    good = score_case(case(), {"src": E[1], "p1": E[1], "p2": E[1], "n1": E[2]}, JUDGE)
    one_positive = EvalCase(2, "src", "old", "new", positives=[Probe("p1", "p1-old", "p1-new")], negatives=[])
    bad = score_case(one_positive, {"src": E[0], "p1": E[0]}, JUDGE)
    summary = Summary.of([good, bad])
    assert summary.efficacy == 0.5
    assert math.isclose(summary.generality, 2 / 3)  # 2 of 3 positive prompts, not the mean of 1 and 0
    assert summary.specificity == 1.0 and summary.cases == 2
