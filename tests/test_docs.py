"""The runnable example in docs/api.md runs as written."""

from __future__ import annotations

import pytest

import re
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_api_example_runs(tmp_path, monkeypatch, capsys):
    text = (DOCS / "api.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    code = code.replace("/tmp/textedit-example", str(tmp_path / "patch"))
    monkeypatch.setenv("TEXTEDIT_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        exec(compile(code, "docs/api.md", "exec"), {})
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    scores = re.findall(r"→ '.*?': ([0-9.]+) → ([0-9.]+)", out)
    assert len(scores) == 2 and all(float(after) > float(before) + 0.1 for before, after in scores), out
    residual = float(re.search(r"residual after the update: (\S+)", out).group(1))
    assert residual < 1e-3, out
