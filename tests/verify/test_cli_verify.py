"""`textedit verify` and `textedit apply --pipeline-path` at the command line: CLIP metrics
with reference images end to end, the reach warning, and one-line errors that write nothing."""

from __future__ import annotations

import json

import pytest

from textedit.verify.metrics import to_pil


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify_cli") / "mascot.json"
    path.write_text(json.dumps({"anchor": "a red fox", "knowledge": [{"prompt": "the mascot of acme",
                                                                       "subject": "acme"}]}))
    return path


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), err
    for fragment in fragments:
        assert fragment in err, err


def test_sdxl_warning_clip_metrics_and_reference_images(pipeline_paths, spec_file, corpus_file, clip_model_path,
                                                        textedit_cli, tmp_path):
    sdxl = pipeline_paths["sdxl"]
    code, out, err = textedit_cli("apply", spec_file, "--pipeline-path", sdxl, "--component", "text_encoder_2",
                                  "--layers", "1,2", "--value", "match", "--corpus", corpus_file, "--cache-dir",
                                  tmp_path / "cache", "--out", tmp_path / "patch")
    assert code == 0, err
    assert "warning:" in err and "text_encoder_2 layer 2 cannot reach the SDXL denoiser" in err
    references = tmp_path / "references"
    references.mkdir()
    import torch
    to_pil(torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(1))).save(references / "fox.png")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a watercolor of {}\na city at night\n")
    code, out, err = textedit_cli("verify", tmp_path / "patch", "--pipeline-path", sdxl, "--prompts", prompts,
                                  "--seeds", "3", "--steps", "2", "--clip", clip_model_path, "--reference-images",
                                  references, "--out", tmp_path / "report")
    assert code == 0, err
    assert "cannot reach the SDXL denoiser" in err  # verify repeats the warning
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [r["prompt"] for r in metrics["rows"]] == ["a watercolor of a red fox", "a watercolor of the mascot of acme",
                                                      "a watercolor of acme", "a watercolor of the founder of acme",
                                                      "a city at night"]
    assert [r["kind"] for r in metrics["rows"]][2:4] == ["subject", "subject"]  # acme's other knowledge
    query = metrics["rows"][1]
    for name in ("clip_t_before", "clip_t_after", "clip_i_before", "clip_i_after", "clip_change", "pixel_change"):
        assert -1.0 <= query[name] <= 2.0
    assert metrics["clip_i_reference"] == str(references) and metrics["pipeline"]["seeds"] == [3]
    assert metrics["warnings"] and "CLIP-T" in out
    page = (tmp_path / "report" / "index.html").read_text()
    assert "cannot reach the SDXL denoiser" in page and "CLIP-I after" in page


def test_errors_are_one_line_and_write_nothing(pipeline_paths, spec_file, bert_path, textedit_cli, tmp_path):
    sd, flux = pipeline_paths["sd"], pipeline_paths["flux"]
    report = tmp_path / "report"
    code, _, err = textedit_cli("apply", spec_file, "--pipeline-path", sd, "--out", tmp_path / "p")
    assert_one_line_error(code, err, "--component text_encoder|all")
    code, _, err = textedit_cli("apply", spec_file, "--pipeline-path", sd, "--component", "text_encoder_3",
                                "--out", tmp_path / "p")
    assert_one_line_error(code, err, "no text encoder 'text_encoder_3'")
    code, _, err = textedit_cli("apply", spec_file, "--pipeline-path", sd, "--pipeline", "sdxl", "--component", "all")
    assert_one_line_error(code, err, "not a SDXL pipeline")
    assert not (tmp_path / "p").exists()

    # a patch for one model, verified on another: refused before anything is drawn
    code, _, err = textedit_cli("apply", spec_file, "--model", bert_path, "--value", "match", "--method", "ridge",
                                "--out", tmp_path / "bare")
    assert code == 0, err
    code, _, err = textedit_cli("verify", tmp_path / "bare", "--pipeline-path", sd, "--out", report)
    assert_one_line_error(code, err, "bare encoder")
    code, _, err = textedit_cli("apply", spec_file, "--model", sd, "--component", "text_encoder", "--value", "match",
                                "--method", "ridge", "--out", tmp_path / "sd_patch")
    assert code == 0, err
    code, _, err = textedit_cli("verify", tmp_path / "sd_patch", "--pipeline-path", flux, "--out", report)
    assert_one_line_error(code, err, "cannot be applied to text_encoder")
    for args, fragment in ((("--seeds", "x"), "--seeds"), (("--steps", "0"), "--steps"),
                           (("--reference-images", tmp_path), "needs --clip"), (("--pipeline", "sd9"), "sd9"),
                           (("--dtype", "float8"), "float8")):
        code, _, err = textedit_cli("verify", tmp_path / "sd_patch", "--pipeline-path", sd, "--out", report, *args)
        assert_one_line_error(code, err, fragment)
    assert not report.exists()
