"""Scores (pixel and CLIP) and the report files, on small synthetic grids."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from textedit.errors import SpecError
from textedit.verify import CLIPScorer, Sampling, build_rows, contact_sheet
from textedit.verify.metrics import load_reference_images, pixel_change, to_pil
from textedit.pipelines import FAMILIES
from textedit.verify.verifier import VerifyResult, score, summarize

REQUESTS = [{"prompt": "the mascot of acme", "target": "a red fox", "subject": "acme"},
            {"prompt": "acme's lucky animal", "target": "a red fox"},
            {"prompt": "the prime minister of canada", "target": "a cat"}]


def grids(rows: int = 3, seeds: int = 2, size: int = 16):
    generator = torch.Generator().manual_seed(0)
    before = torch.rand(rows, seeds, 3, size, size, generator=generator)
    after = before.clone()
    after[1] = torch.rand(seeds, 3, size, size, generator=generator)  # the query moves, nothing else
    return before, after


def test_pixel_scores():
    assert pixel_change(torch.zeros(3, 4, 4), torch.ones(3, 4, 4)) == 1.0
    rows = build_rows(REQUESTS[:1], ["{}"], ["a dog"], same_subject=0)
    before, after = grids()
    after[1] = before[0]  # the query now draws exactly the anchor image
    scores = score(rows, before, after)
    assert scores[0]["pixel_change"] == 0 and scores[2]["pixel_change"] == 0
    assert scores[1]["pixel_to_anchor_after"] == 0 < scores[1]["pixel_to_anchor_before"]
    summary = summarize(rows, scores)
    assert set(summary) == {"anchor", "query", "neutral"}
    assert summary["query"]["pixel_change"] == scores[1]["pixel_change"] > 0


def test_clip_scores(clip_model_path, tmp_path):
    clip = CLIPScorer.load(clip_model_path)
    rows = build_rows(REQUESTS[:1], ["{}"], ["a dog"], same_subject=0)
    before, after = grids(size=32)
    after[1] = before[0]
    scores = score(rows, before, after, clip)
    text = clip.text_embeds(["a red fox"])[0]
    anchor = clip.image_embeds(list(before[0]))
    assert scores[1]["clip_t_before"] == pytest.approx(float((clip.image_embeds(list(before[1])) @ text).mean()),
                                                       abs=1e-6)
    assert scores[1]["clip_t_after"] == pytest.approx(float((anchor @ text).mean()), abs=1e-6)
    assert scores[1]["clip_i_after"] == pytest.approx(1.0, abs=1e-5)  # identical to the anchor's images
    assert scores[0]["clip_change"] == pytest.approx(0.0, abs=1e-6) and scores[1]["clip_change"] > 0
    assert "clip_i_before" not in scores[2] and "clip_t_before" not in scores[2]

    for i, image in enumerate(before[0]):  # reference images: the anchor's own, as files
        to_pil(image).save(tmp_path / f"ref{i}.png")
    references = load_reference_images(tmp_path)
    with_refs = score(rows, before, after, clip, references)
    mean = torch.nn.functional.normalize(clip.image_embeds(references).mean(0), dim=-1)
    assert with_refs[1]["clip_i_after"] == pytest.approx(float((anchor @ mean).mean()), abs=1e-5)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpecError, match="holds no images"):
        load_reference_images(empty)


def test_contact_sheet_layout():
    rows = build_rows(REQUESTS[:1], ["a photo of {} on the beach"], ["a dog running on the grass"], same_subject=0)
    before, after = grids(rows=3, seeds=2, size=16)
    result = VerifyResult(FAMILIES["sd"], rows, [0, 7], Sampling(2, 7.5), before, after, score(rows, before, after),
                          {})
    sheet = contact_sheet(result)
    cell = 128  # 16 px images are shown at 128 px
    assert sheet.size[1] == 26 + 3 * (cell + 4)
    assert sheet.size[0] > 4 * cell
    # the first "after" cell of the query row is the query's seed-0 after-image, scaled up
    x = 280 + cell + 4
    y = 26 + 1 * (cell + 4)
    crop = sheet.crop((x, y, x + cell, y + cell)).resize((16, 16), Image.NEAREST)
    assert crop.tobytes() == to_pil(after[1, 0]).tobytes()
