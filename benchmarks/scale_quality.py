#!/usr/bin/env python
"""Quality against batch size: TIMED test cases edited in batches of 1, 10, 100 on the default model.

    nice -n 15 python benchmarks/scale_quality.py [--limit 100] [--sizes 1,10,100] [--value optimize]

The first ``limit`` cases of ``../shared/data/timed/TIMED_test_set.csv`` are split into
consecutive batches of each size; every batch is one edit (default settings: MEMIT, λ 50,
layers 0..n/3, value optimize) on the unedited all-MiniLM-L6-v2, scored in text space by
``textedit.eval`` (efficacy, generality, specificity against the frozen encoder) and
reverted. Batch size 1 is the baseline (each case alone), run in the same process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textedit.editor import EditConfig, edit, resolve_layers  # noqa: E402
from textedit.encoders import load_encoder  # noqa: E402
from textedit.eval.benchmark import load_benchmark  # noqa: E402
from textedit.eval.run import request_of  # noqa: E402
from textedit.eval.scores import Summary, case_prompts, embed_all, score_case  # noqa: E402
from textedit.stats import compute_stats  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "timed" / "TIMED_test_set.csv"))
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--value", default="optimize")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    _, cases = load_benchmark(args.data, limit=args.limit)
    adapter = load_encoder()
    config = EditConfig(value=args.value)
    layers = resolve_layers(adapter, config)
    stats = compute_stats(adapter, layers)
    judge = embed_all(adapter.embed, [p for c in cases for p in case_prompts(c)[1] + case_prompts(c)[0]])
    print(f"# scale_quality: {len(cases)} TIMED test cases, {adapter.name}, memit L{layers} value {args.value}")
    print("| edits per batch | batches | efficacy | generality | specificity | drift | s per batch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in [int(s) for s in args.sizes.split(",")]:
        scores, seconds = [], 0.0
        groups = [cases[i:i + size] for i in range(0, len(cases), size)]
        for group in groups:
            started = time.perf_counter()
            patch = edit(adapter, [request_of(c) for c in group], config, stats=stats)
            seconds += time.perf_counter() - started
            patch.apply(adapter)
            try:
                edited = embed_all(adapter.embed, [p for c in group for p in case_prompts(c)[0]])
            finally:
                patch.revert(adapter)
            scores += [score_case(c, edited, judge) for c in group]
        s = Summary.of(scores)
        print(f"| {size} | {len(groups)} | {s.efficacy:.3f} | {s.generality:.3f} | {s.specificity:.3f} | "
              f"{s.drift:.4f} | {seconds / len(groups):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
