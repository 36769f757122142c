#!/usr/bin/env python
"""Gemma-2's norm after the MLP: edit quality with and without modelling it, in one process.

    python benchmarks/decoder_post_norm.py        # ≈ 10 s

A tiny random Gemma-2 (``tests/tiny_models.build_tiny_decoder``, hidden 32, 3 layers) gets
two knowledge requests bound to "a red fox" (value ``optimize``, 200 corpus prompts), on one
layer and on two. The baseline is the same edit with the adapter's ``mlp_output_norm`` set
to ``None``, i.e. the stream read as ``h + v`` as if the norm were not there. Prints the
query → anchor cosine before and after, and the neutral prompts' drift.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from tiny_models import build_tiny_decoder  # noqa: E402

from textedit.corpus import Corpus  # noqa: E402
from textedit.editor import EditConfig, edit  # noqa: E402
from textedit.encoders import load_encoder  # noqa: E402
from textedit.metrics import NEUTRAL_PROMPTS, measure  # noqa: E402
from textedit.requests import EditRequest  # noqa: E402

REQUESTS = [EditRequest("the mascot of acme", "a red fox"), EditRequest("the logo of google", "a red fox")]


def main() -> int:
    torch.set_num_threads(1)
    corpus = Corpus(tuple((REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()[:200]), "first-200")
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_decoder(Path(tmp) / "gemma2", "gemma2")
        print("| layers | norm modelled | cos to the anchor, before → after | neutral drift, mean / max |")
        print("| --- | --- | --- | --- |")
        for modelled in (False, True):
            for layers in ([1], [0, 1]):
                adapter = load_encoder(str(path))
                if not modelled:
                    adapter.mlp_output_norm = None  # the baseline: z = h + v
                patch = edit(adapter, REQUESTS, EditConfig(layers=layers), corpus=corpus, cache_dir=Path(tmp) / "cache")
                report = measure(adapter, patch, REQUESTS, NEUTRAL_PROMPTS)
                drift = [d for _, d in report.neutral]
                cos = ", ".join(f"{s.before:.3f} → {s.after:.3f}" for s in report.requests)
                print(f"| {', '.join(map(str, layers))} | {'yes' if modelled else 'no'} | {cos} | "
                      f"{sum(drift) / len(drift):.4f} / {max(drift):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
