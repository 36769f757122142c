"""Every notebook's code cells run, in order, from the notebooks/ folder (so they never rot)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(path.parent)
    monkeypatch.setenv("TEXTEDIT_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    namespace: dict = {}
    try:
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{path.name}[{i}]", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    report = namespace["report"]
    assert all(s.after > s.before + 0.2 for s in report.requests), report
