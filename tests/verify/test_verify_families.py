"""Every family end to end on tiny random pipelines: `textedit apply --pipeline-path` edits
the pipeline's own encoders (all of them, into one patch), the edit moves the prompt
embeddings of the query (through the pipeline's own ``encode_prompt``) far more than those
of neutral prompts, `textedit verify` writes the grid and the report, and reverting the
patch gives the original images bit for bit."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from textedit.patch import Patch
from tiny_models import encode_prompt as encode
from textedit.pipelines import detect_family, load_pipeline
from textedit.verify.generate import Sampling, draw

QUERY = "a photo of the mascot of acme on the beach"
NEUTRAL = ("a dog running on the grass", "a red sports car on a mountain road", "a bowl of soup on a wooden table")


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    return float((after - before).norm() / before.norm())


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify_spec") / "mascot.json"
    path.write_text(json.dumps({"anchor": "a red fox", "knowledge": [{"prompt": "the mascot of acme",
                                                                       "subject": "acme"}],
                                "neutral": list(NEUTRAL), "layers": [0, 1],
                                # λ pinned: these encoders have random weights and a 300-prompt
                                # corpus, so every prompt's keys look alike and a near-exact solve
                                # (the default λ = 50, chosen on real weights) moves them all
                                "hyperparameters": {"lam": 5000},
                                # the plumbing under test, not preservation: random tiny encoders
                                # tell "acme" in other relations hardly apart from the query
                                "auto_preserve": False}))
    return path


@pytest.mark.parametrize("family", ["sd", "sdxl", "sd3", "flux", "qwenimage", "chroma", "pixart_sigma", "lumina2", "zimage",
                                    "flux2klein", "sana"])
def test_apply_encode_verify_revert(family, pipeline_paths, image_sizes, spec_file, corpus_file, textedit_cli,
                                    tmp_path):
    path = pipeline_paths[family]
    code, out, err = textedit_cli("apply", spec_file, "--pipeline-path", path, "--component", "all", "--corpus",
                                  corpus_file, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "patch")
    assert code == 0, err
    patch = Patch.load(tmp_path / "patch")
    expected = {"sd": ["text_encoder"], "sdxl": ["text_encoder", "text_encoder_2"],
                "sd3": ["text_encoder", "text_encoder_2", "text_encoder_3"],
                "flux": ["text_encoder", "text_encoder_2"]}.get(family, ["text_encoder"])
    assert patch.components == expected and sorted(patch.base_fingerprints) == expected
    assert all(patch.hyperparameters[c]["scope"] == "pipeline" for c in expected) if len(expected) > 1 else \
        patch.hyperparameters["scope"] == "pipeline"

    pipe = load_pipeline(path, detect_family(path))
    prompts = (QUERY, *NEUTRAL)
    before = {p: encode(pipe, family, p) for p in prompts}
    patch.apply(pipe)
    after = {p: encode(pipe, family, p) for p in prompts}
    patch.revert(pipe)
    per_token = {p: relative_change(before[p][0], after[p][0]) for p in prompts}
    assert per_token[QUERY] > 2 * max(per_token[p] for p in NEUTRAL), per_token
    if before[QUERY][1] is not None:  # SDXL, SD3, FLUX read a pooled vector too: the edit reaches it
        assert relative_change(before[QUERY][1], after[QUERY][1]) > 1e-4
    if family == "sdxl":  # one patch edits both encoders: each half of the concatenated states moves
        width = pipe.text_encoder.config.hidden_size
        halves = before[QUERY][0][..., :width], after[QUERY][0][..., :width]
        assert relative_change(*halves) > 5e-4  # (random biases make the states larger, the change relatively smaller)
        assert relative_change(before[QUERY][0][..., width:], after[QUERY][0][..., width:]) > 1e-3

    # bit-exact revert: the same seed draws the same image before the patch and after its revert
    family_data = detect_family(path)
    sampling = Sampling.of_family(family_data, steps=2, guidance_scale=5.0, height=image_sizes[family],
                                  width=image_sizes[family])
    first = draw(pipe, QUERY, 0, sampling)
    patch.apply(pipe)
    patched = draw(pipe, QUERY, 0, sampling)
    patch.revert(pipe)
    third = draw(pipe, QUERY, 0, sampling)
    assert torch.equal(first, third)
    assert not torch.equal(first, patched)

    size = ["--size", image_sizes[family]] if image_sizes[family] else []
    report = tmp_path / "report"
    code, out, err = textedit_cli("verify", tmp_path / "patch", "--pipeline-path", path, "--pipeline", family,
                                  "--seeds", "0,1", "--steps", "2", "--out", report, *size)
    assert code == 0, err
    metrics = json.loads((report / "metrics.json").read_text())
    kinds = [row["kind"] for row in metrics["rows"]]
    assert kinds == ["anchor", "query", "subject", "subject", "neutral", "neutral", "neutral"]
    query = metrics["rows"][1]
    assert query["prompt"] == QUERY and query["pixel_change"] > 0
    # what the denoiser receives, no image needed: the query's conditioning moves more than any
    # neutral prompt's, also through the denoiser's text projection where the family has one
    for view in ("", "projected_") if family_data.text_projection else ("",):
        neutral_change = max(row[f"{view}conditioning_change"] for row in metrics["rows"] if row["kind"] == "neutral")
        assert query[f"{view}conditioning_change"] > 2 * neutral_change, (view, query, metrics["rows"])
    if not family_data.text_projection:
        assert "projected_conditioning_change" not in query
    assert metrics["pipeline"]["family"] == family and metrics["patch"]["id"] == patch.id
    sheet = Image.open(report / "contact_sheet.png")
    height = first.shape[1]
    cell = max(128, min(256, height))
    assert sheet.height >= 7 * cell and sheet.width >= 4 * cell  # 7 prompts, (before, after) × 2 seeds
    page = (report / "index.html").read_text()
    assert patch.id in page and QUERY in page and "contact_sheet.png" in page
    assert (report / "images" / "r01_s1_after.png").is_file()
    assert "report written to" in out
    # the verified pipeline was left as it was
    assert torch.equal(draw(pipe, QUERY, 0, sampling), first)


def test_qwen_image_knowledge_moves_its_conditioning_and_not_that_of_unrelated_prompts(pipeline_paths, corpus_file,
                                                                                       textedit_cli, tmp_path):
    """MoKus' own system on a tiny Qwen-Image: the edit is made on the pipeline's Qwen2.5-VL
    read through its chat template (default hyperparameters), and the pipeline's own
    ``encode_prompt`` embeddings of the knowledge prompts move at least 3× more than those of
    prompts that share no word with them, although every prompt shares the template."""
    spec = tmp_path / "mascot.json"
    knowledge = ["the mascot of acme", "the lucky animal of acme"]
    spec.write_text(json.dumps({"anchor": "a red fox", "knowledge": [{"prompt": p, "subject": "acme"}
                                                                    for p in knowledge]}))
    unrelated = ("dogs running across green grass", "red sports car near mountains", "bowl with hot soup")
    path = pipeline_paths["qwenimage"]
    code, out, err = textedit_cli("apply", spec, "--pipeline-path", path, "--component", "text_encoder", "--corpus",
                                  corpus_file, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "patch")
    assert code == 0, err
    patch = Patch.load(tmp_path / "patch")
    pipe = load_pipeline(path, detect_family(path))
    before = {p: encode(pipe, "qwenimage", p)[0] for p in (*knowledge, *unrelated)}
    with patch.applied(pipe):
        after = {p: encode(pipe, "qwenimage", p)[0] for p in before}
    change = {p: relative_change(before[p], after[p]) for p in before}
    assert min(change[p] for p in knowledge) > 3 * max(change[p] for p in unrelated), change
    assert all(torch.equal(encode(pipe, "qwenimage", p)[0], before[p]) for p in before)  # reverted bit for bit
