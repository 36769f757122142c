"""Causal tracing: deterministic for a seed, the subject carries the signal, and the CLI writes
a heatmap PNG and the numbers."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from textedit import cli
from textedit.encoders import load_encoder
from textedit.errors import TexteditError
from textedit.locate import SITES, trace


def test_trace_is_deterministic_and_points_at_the_subject(model_paths):
    adapter = load_encoder(str(model_paths["clip"]))
    first = trace(adapter, "a photo of a red fox in the snow", "red fox", samples=4, seed=3)
    second = trace(adapter, "a photo of a red fox in the snow", "red fox", samples=4, seed=3)
    n_tokens = len(first.tokens)
    assert set(first.scores) == set(SITES)
    for site in SITES:
        assert first.scores[site].shape == (adapter.num_layers, n_tokens)
        assert torch.equal(first.scores[site], second.scores[site])
    assert first.best(1) == second.best(1)
    # CLIP is causal and its output is the final state of the last (EOS) token: restoring a
    # token before the subject repairs nothing, restoring the last block's output at EOS
    # repairs everything, and in layer 0 the best token to restore is a subject token
    hidden = first.scores["hidden"]
    assert hidden[:, : first.subject_positions[0]].abs().max() < 1e-5
    assert hidden[-1, -1].item() == pytest.approx(1.0, abs=1e-5)
    assert int(hidden[0, :-1].argmax()) in first.subject_positions
    other = trace(adapter, "a photo of a red fox in the snow", "red fox", samples=4, seed=4)
    assert not torch.equal(first.scores["mlp"], other.scores["mlp"])  # the seed is used


def test_trace_on_a_bidirectional_encoder(bert):
    result = trace(bert, "the mascot of acme", "acme", samples=3, window=2)
    assert result.subject_positions == [4] and result.tokens[4] == "acme"
    assert result.at_last_subject_token("mlp").shape == (bert.num_layers,)
    assert 0 <= result.corrupted_similarity < 1


@pytest.mark.parametrize("kwargs, fragment", [({"subject": "zebra"}, "zebra"), ({"sites": ["mlps"]}, "mlps"),
                                              ({"samples": 0}, "samples")])
def test_trace_bad_input(bert, kwargs, fragment):
    with pytest.raises(TexteditError, match=fragment):
        trace(bert, "the mascot of acme", **{"subject": "acme", **kwargs})


def test_locate_cli_writes_heatmap_and_json(monkeypatch, capsys, tmp_path, clip_path):
    png, numbers = tmp_path / "trace.png", tmp_path / "trace.json"
    monkeypatch.setattr(sys, "argv", ["textedit", "locate", str(clip_path), "--prompt", "a red fox in the snow",
                                      "--subject", "red fox", "--samples", "3", "--out", str(png), "--json",
                                      str(numbers)])
    cli.main()  # returns normally on success
    out = capsys.readouterr().out
    assert "best sites" in out and "heatmap written" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(numbers.read_text())
    assert set(data["scores"]) == set(SITES) and data["best"] and data["subject"] == "red fox"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
