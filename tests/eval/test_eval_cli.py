"""`textedit eval` end to end on a tiny encoder: the side-by-side table and the per-row JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from cli_runner import run as run_cli
from textedit.cli import evaluate  # the module of `textedit eval`, which prints with its `out`

REPO = Path(__file__).resolve().parents[2]
ROAD_SAMPLE = REPO / "tests" / "data" / "road_sample.csv"


def run(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(evaluate, "out", Console(width=200))  # a wide terminal: table cells unabridged
    return run_cli(monkeypatch, capsys, *args)


def test_eval_compares_methods_and_modes(monkeypatch, capsys, tmp_path, bert_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join((REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()[:200]))
    report = tmp_path / "out" / "eval.json"
    code, out, err = run(monkeypatch, capsys, "eval", ROAD_SAMPLE, "--model", bert_path, "--method",
                         "memit,alphaedit", "--layers", "0-1", "--layers", "1", "--value", "direct", "--mode",
                         "single,batch", "--json", report, "--corpus", corpus, "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    for column in ("unedited", "efficacy", "generality", "specificity", "drift"):
        assert column in out, out
    data = json.loads(report.read_text())
    assert {r["label"] for r in data["results"]} == {"unedited", "memit L0,1 direct", "memit L1 direct",
                                                    "alphaedit L0,1 direct", "alphaedit L1 direct"}
    assert data["format"] == "road" and data["rows"] == 3
    results = data["results"]
    assert len(results) == 1 + 2 * 2 * 2  # baseline + methods × layer sets × modes
    assert {r["mode"] for r in results[1:]} == {"single", "batch"}
    assert all(len(r["rows"]) == 3 for r in results)
    assert all(set(r["summary"]) >= {"efficacy", "generality", "specificity", "drift"} for r in results)


def test_eval_batch_size_makes_one_edit_per_chunk(monkeypatch, capsys, tmp_path, bert_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join((REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()[:200]))
    report = tmp_path / "eval.json"
    code, out, err = run(monkeypatch, capsys, "eval", ROAD_SAMPLE, "--model", bert_path, "--layers", "0-1",
                         "--value", "direct", "--mode", "batch", "--batch-size", "2", "--json", report,
                         "--corpus", corpus, "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    edited = json.loads(report.read_text())["results"][1]
    assert edited["mode"] == "batch" and edited["edits"] == 2 and len(edited["rows"]) == 3
    assert edited["hyperparameters"]["batch_size"] == 2


def test_eval_sequential_without_remembering_is_labelled(monkeypatch, capsys, tmp_path, bert_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join((REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()[:200]))
    report = tmp_path / "eval.json"
    code, out, err = run(monkeypatch, capsys, "eval", ROAD_SAMPLE, "--model", bert_path, "--layers", "0-1",
                         "--value", "direct", "--mode", "sequential", "--no-remember", "--json", report,
                         "--corpus", corpus, "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    chained = json.loads(report.read_text())["results"][1]
    assert chained["mode"] == "sequential" and chained["hyperparameters"]["remember"] is False
    assert "no-remember" in out


def test_eval_bad_input_is_one_line(monkeypatch, capsys, tmp_path, bert_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nwho,me\n")
    for args, fragment in [((bad,), "not a TIMED or RoAD"),
                           ((ROAD_SAMPLE, "--mode", "all"), "--mode 'all'"),
                           ((ROAD_SAMPLE, "--method", "memit,rome", "--layers", "0-1"), "one layer"),
                           ((ROAD_SAMPLE, "--layers", "0-9"), "out of range"),
                           ((ROAD_SAMPLE, "--mode", "batch", "--batch-size", "0"), "--batch-size 0"),
                           ((ROAD_SAMPLE, "--batch-size", "2"), "--mode batch"),
                           ((ROAD_SAMPLE, "--no-remember"), "--mode sequential")]:
        report = tmp_path / "never.json"
        code, out, err = run(monkeypatch, capsys, "eval", *args, "--model", bert_path, "--json", report)
        assert code == 2 and "Traceback" not in err and fragment in err, err
        assert err.strip().splitlines()[-1].startswith("error:")
        assert not report.exists()


def test_eval_table_shows_every_figure_whole_at_80_columns(monkeypatch, capsys, tmp_path, bert_path):
    """One row per score and one column per result: at 80 columns no figure is cut ('…'),
    and each is the JSON's, as printed."""
    monkeypatch.setattr(evaluate, "out", Console(width=80))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join((REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()[:200]))
    report = tmp_path / "eval.json"
    code, out, err = run_cli(monkeypatch, capsys, "eval", REPO / "textedit" / "data" / "knowledge_dev.json",
                             "--limit", "1", "--model", bert_path, "--layers", "0-1", "--value", "direct",
                             "--mode", "single,sequential", "--json", report, "--corpus", corpus,
                             "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80, out
    for result in json.loads(report.read_text())["results"]:
        summary = result["summary"]
        for score in ("efficacy", "generality", "same_subject", "same_relation"):
            assert f"{summary[score]:.1%}" in out, (score, out)
        assert f"{summary['drift']:.4f}" in out and f"{summary['max_drift']:.3f}" in out
    rows = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"efficacy", "generality", "drift"} <= rows
