#!/usr/bin/env python
"""Sequential (lifelong) editing: do the first edits survive 10, 100, ... later ones?

    nice -n 15 python benchmarks/scale_sequential.py [--edits 100] [--checkpoints 10,100]
                                                     [--first 10] [--value match] [--alpha 1.0]

TIMED test cases are edited one at a time on all-MiniLM-L6-v2 (each patch solved on the
weights the earlier ones left, then applied), with plain MEMIT (λ 50), ROME (one layer, the
first default layer) and AlphaEdit remembering every earlier edit's keys
(``textedit.sequential.SequentialEditor``). At each checkpoint the first ``first`` cases are
scored (``textedit.eval`` text-space efficacy and generality against the frozen encoder);
the baseline is the same cases edited in one batch on the base model (the score when
nothing came after them). Statistics are computed once and shared. ``--value match`` keeps
one edit well under a second; ``optimize`` is ~40× slower.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textedit.editor import EditConfig, default_layers, edit  # noqa: E402
from textedit.encoders import load_encoder  # noqa: E402
from textedit.errors import NumericalError  # noqa: E402
from textedit.eval.benchmark import load_benchmark  # noqa: E402
from textedit.eval.run import request_of  # noqa: E402
from textedit.eval.scores import Summary, case_prompts, embed_all, score_case  # noqa: E402
from textedit.sequential import SequentialEditor  # noqa: E402
from textedit.stats import compute_stats  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "timed" / "TIMED_test_set.csv"))
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--checkpoints", default="10,100")
    parser.add_argument("--first", type=int, default=10)
    parser.add_argument("--value", default="match")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--methods", default="memit,rome,alphaedit")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    _, cases = load_benchmark(args.data)
    cases = (cases * (args.edits // len(cases) + 1))[:args.edits]  # more edits than cases: the list again
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    adapter = load_encoder()
    first = cases[:args.first]
    judge = embed_all(adapter.embed, [p for c in first for p in case_prompts(c)[1] + case_prompts(c)[0]])

    def score_first() -> Summary:
        edited = embed_all(adapter.embed, [p for c in first for p in case_prompts(c)[0]])
        return Summary.of([score_case(c, edited, judge) for c in first])

    layers = default_layers(adapter)
    configs = {"memit": EditConfig(method="memit", value=args.value),
               "rome": EditConfig(method="rome", value=args.value),
               "alphaedit": EditConfig(method="alphaedit", value=args.value, alpha=args.alpha, layers=layers)}
    stats = compute_stats(adapter, layers)
    print(f"# scale_sequential: {args.edits} TIMED edits one after another on {adapter.name}, value {args.value}; "
          f"efficacy / generality of the first {args.first}")
    print("| method | " + " | ".join(f"after {c}" for c in ["batch (nothing after)"] + checkpoints) + " | s per edit |")
    print("| --- " * (len(checkpoints) + 3) + "|")
    for name in args.methods.split(","):
        config = configs[name]
        try:
            patch = edit(adapter, [request_of(c) for c in first], config, stats=stats)
        except NumericalError:  # ROME's exact constraint: rows with the same subject make it singular
            cells = [None]
        else:
            patch.apply(adapter)
            cells = [score_first()]
            patch.revert(adapter)
        editor = SequentialEditor(adapter, config, stats=stats)
        started = time.perf_counter()
        for i, case in enumerate(cases, 1):
            editor.edit([request_of(case)])
            if i in checkpoints:
                cells.append(score_first())
        seconds = (time.perf_counter() - started) / len(cases)
        editor.revert_all()
        print(f"| {name} | " + " | ".join("n/a (same key, two targets)" if s is None else
                                          f"{s.efficacy:.2f} / {s.generality:.2f}" for s in cells) +
              f" | {seconds:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
