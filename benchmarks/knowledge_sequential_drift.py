#!/usr/bin/env python
"""Where a sequential chain of knowledge edits breaks: unrelated drift and ‖ΔW‖ after each step.

    python benchmarks/knowledge_sequential_drift.py benchmarks/data/knowledge_test.json --limit 36
    python benchmarks/knowledge_sequential_drift.py benchmarks/data/knowledge_test.json --limit 20 --forget

Each concept of the knowledge benchmark is one edit on top of the earlier ones
(``SequentialEditor``, keys of earlier edits remembered unless ``--forget``; automatic
preservation off, as in the sequential row of docs/eval.md). After every step it prints the
mean drift ``1 − cos`` of the benchmark's unrelated prompts against the unedited encoder and
the Frobenius norm of the new ΔW at each edited layer: the baseline is the unedited model,
measured in the same process. About 10 s per step on two cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textedit.editor import EditConfig  # noqa: E402
from textedit.encoders import DEFAULT_MODEL, load_encoder  # noqa: E402
from textedit.eval.knowledge import load_knowledge  # noqa: E402
from textedit.sequential import SequentialEditor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--forget", action="store_true", help="do not remember earlier keys")
    args = parser.parse_args()
    cases = load_knowledge(args.benchmark, args.limit)
    adapter = load_encoder(DEFAULT_MODEL)
    unrelated = cases[0].unrelated
    base = adapter.embed(unrelated)
    editor = SequentialEditor(adapter, EditConfig(auto_preserve=False), remember=not args.forget)
    print(f"step  concept                      drift   ‖ΔW‖ per layer   ({'forgetting' if args.forget else 'remembering'})")
    try:
        for step, case in enumerate(cases, 1):
            started = time.perf_counter()
            patch = editor.edit(case.requests())
            drift = (1 - torch.nn.functional.cosine_similarity(adapter.embed(unrelated), base)).mean().item()
            norms = " ".join(f"{d.delta.dense().norm().item():7.1f}" for d in patch.deltas)
            print(f"{step:4d}  {case.subject[:27]:27s}  {drift:.4f}  {norms}   {time.perf_counter() - started:.0f} s",
                  flush=True)
    finally:
        editor.revert_all()


if __name__ == "__main__":
    main()
