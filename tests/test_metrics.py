"""Text-space measurements of an edit: each number recomputed by hand from the encoder's vectors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from textedit.editor import EditConfig, edit
from textedit.metrics import EVAL_TEMPLATES, NEUTRAL_PROMPTS, EditReport, cosine, measure
from textedit.requests import EditRequest
from textedit.sites import EDIT_TEMPLATES

REQUESTS = [EditRequest("the mascot of acme", "a red fox", "acme"), EditRequest("the flower of zorb", "a tulip", "zorb")]
TEMPLATES = ("a photo of {}", "{} at night")


@pytest.fixture
def patch(bert):
    return edit(bert, REQUESTS, EditConfig(method="ridge", value="match", layers=[0, 1], lam=1e-3))


def _cos(a: str, b: str, adapter) -> float:
    return float(F.cosine_similarity(adapter.embed([a]), adapter.embed([b])).item())


def test_cosine_is_row_wise():
    a, b = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([[2.0, 0.0], [-3.0, -4.0]])
    torch.testing.assert_close(cosine(a, b), torch.tensor([1.0, -1.0]))


def test_every_score_is_the_cosine_the_unedited_encoder_judges(bert, patch):
    report = measure(bert, patch, REQUESTS, neutral=["a dog"], templates=TEMPLATES, preserved=["the logo of acme"])
    with patch.applied(bert):
        after = {(r.prompt, t): bert.embed([t.format(r.prompt)]) for r in REQUESTS for t in TEMPLATES}
        moved_dog = bert.embed(["a dog"])
        moved_logo = [bert.embed([t.format("the logo of acme")]) for t in TEMPLATES]
    for request, score in zip(REQUESTS, report.requests):
        goals = [bert.embed([t.format(request.target)]) for t in TEMPLATES]  # the judge: unedited vectors
        before = sum(_cos(t.format(request.prompt), t.format(request.target), bert) for t in TEMPLATES) / 2
        edited = sum(float(F.cosine_similarity(after[request.prompt, t], g)) for t, g in zip(TEMPLATES, goals)) / 2
        assert (score.prompt, score.target) == (request.prompt, request.target)
        assert score.before == pytest.approx(before, abs=1e-5) and score.after == pytest.approx(edited, abs=1e-5)
    (prompt, drift), = report.neutral
    assert prompt == "a dog" and drift == pytest.approx(1 - float(F.cosine_similarity(moved_dog, bert.embed(["a dog"]))),
                                                          abs=1e-5)
    kept, = report.preserved
    logo = [bert.embed([t.format("the logo of acme")]) for t in TEMPLATES]
    assert kept.drift == pytest.approx(sum(1 - float(F.cosine_similarity(m, b)) for m, b in zip(moved_logo, logo)) / 2,
                                       abs=1e-5)
    gains = [sum(float(F.cosine_similarity(m, bert.embed([t.format(r.target)])) - F.cosine_similarity(
        b, bert.embed([t.format(r.target)]))) for m, b, t in zip(moved_logo, logo, TEMPLATES)) / 2 for r in REQUESTS]
    assert kept.toward == pytest.approx(max(gains), abs=1e-5)


def test_scale_zero_measures_no_change_and_the_model_is_left_as_given(bert, patch):
    weights = {k: v.clone() for k, v in bert.model.state_dict().items()}
    report = measure(bert, patch, REQUESTS, templates=TEMPLATES, scale=0.0)
    assert all(s.after == pytest.approx(s.before, abs=1e-6) for s in report.requests)
    assert report.max_drift == pytest.approx(0.0, abs=1e-6) and len(report.neutral) == len(NEUTRAL_PROMPTS)
    assert all(torch.equal(v, weights[k]) for k, v in bert.model.state_dict().items())


def test_max_drift_and_the_held_out_templates():
    assert EditReport([], []).max_drift == 0.0
    assert EditReport([], [("a", 0.1), ("b", 0.3)]).max_drift == 0.3
    assert not set(EVAL_TEMPLATES) & set(EDIT_TEMPLATES)  # measured in contexts the edit did not train on
