"""Every notebook's code cells run, in order, from the notebooks/ folder (so they never rot),
and what each notebook shows holds (``CHECKS``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _customization(namespace: dict) -> None:
    report = namespace["report"]
    assert all(s.after > s.before + 0.2 for s in report.requests), report


def _mokus_qwen_image(namespace: dict) -> None:
    """On the tiny Qwen-Image: the knowledge statements' conditioning moves more than twice
    as much as that of prompts sharing no word with them, also in verify's scores."""
    assert namespace["ratio"] > 2, namespace["change"]
    summary = namespace["verified"].summary
    assert summary["query"]["conditioning_change"] > 2 * summary["neutral"]["conditioning_change"], summary


CHECKS = {"customization.ipynb": _customization, "mokus_qwen_image.ipynb": _mokus_qwen_image}


def test_every_notebook_has_its_check():
    assert sorted(CHECKS) == [p.name for p in NOTEBOOKS]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, pipeline_paths, tmp_path, monkeypatch):
    monkeypatch.chdir(path.parent)
    monkeypatch.setenv("TEXTEDIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TEXTEDIT_QWEN_IMAGE", str(pipeline_paths["qwenimage"]))  # the real one needs a GPU
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    namespace: dict = {}
    try:
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{path.name}[{i}]", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    CHECKS[path.name](namespace)
