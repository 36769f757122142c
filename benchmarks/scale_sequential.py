#!/usr/bin/env python
"""Sequential (lifelong) editing: do the first edits survive 10, 100, 1,000 later ones?

    nice -n 15 python benchmarks/scale_sequential.py [--data BENCH.csv] [--edits 100]
        [--batch 1] [--checkpoints 10,100] [--first 10] [--value optimize] [--alpha A]
        [--methods memit,memit+memory,rome,alphaedit] [--threads 2]

Benchmark cases (default ``benchmarks/data/distinct_facts.csv``: every subject distinct, so
no later edit is *meant* to change an earlier one; TIMED repeats subjects) are edited on
all-MiniLM-L6-v2 ``--batch`` at a time, each patch solved on the weights the earlier ones
left and applied before the next (``textedit.sequential.SequentialEditor``), with plain
MEMIT (λ 50), MEMIT remembering every earlier edit's keys (``λC + K_pK_pᵀ``), ROME (one
layer, the first default layer) and AlphaEdit remembering them (null space, relative α). At each checkpoint (a number of edits) the first ``--first`` cases are
scored in text space against the frozen encoder (``textedit.eval``: efficacy / generality /
specificity), and at the end the last ``--first`` cases too (can new edits still land?).
The baseline, in the same process, is the first cases edited in one batch on the base model
(their score when nothing came after them). Statistics are computed once and shared.
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

from textedit.eval.scores import Summary, case_prompts, embed_all, score_case  # noqa: E402
from textedit.sequential import SequentialEditor  # noqa: E402
from textedit.stats import compute_stats  # noqa: E402


def cell(s: Summary | None) -> str:
    return "n/a (same key, two targets)" if s is None else f"{s.efficacy:.2f} / {s.generality:.2f} / {s.specificity:.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--data", default=str(REPO / "benchmarks" / "data" / "distinct_facts.csv"))
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1, help="edits per sequential step")
    parser.add_argument("--checkpoints", default="10,100", help="numbers of edits after which to score")
    parser.add_argument("--first", type=int, default=10)
    parser.add_argument("--value", default="optimize")
    parser.add_argument("--alpha", type=float, default=None, help="AlphaEdit's α (default: the library's)")
    parser.add_argument("--methods", default="memit,memit+memory,rome,alphaedit")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, cases = load_benchmark(args.data)
    if args.edits > len(cases):
        parser.error(f"--edits {args.edits} is more than the {len(cases)} cases of {args.data}")
    cases = cases[:args.edits]
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    if any(c % args.batch or c > args.edits for c in checkpoints):
        parser.error("every checkpoint must be a multiple of --batch and at most --edits")
    adapter = load_encoder()
    first, last = cases[:args.first], cases[-args.first:]
    judge = embed_all(adapter.embed, [p for c in first + last for p in case_prompts(c)[1] + case_prompts(c)[0]])

    def score(group) -> Summary:
        edited = embed_all(adapter.embed, [p for c in group for p in case_prompts(c)[0]])
        return Summary.of([score_case(c, edited, judge) for c in group])

    layers = default_layers(adapter)
    # name → (config, remember the keys of earlier edits)
    configs = {"memit": (EditConfig(method="memit", value=args.value), False),
               "memit+memory": (EditConfig(method="memit", value=args.value), True),
               "rome": (EditConfig(method="rome", value=args.value), False),
               "alphaedit": (EditConfig(method="alphaedit", value=args.value, alpha=args.alpha, layers=layers), True)}
    stats = compute_stats(adapter, layers)
    print(f"# scale_sequential: {args.edits} edits of {Path(args.data).name}, {args.batch} per step, on "
          f"{adapter.name}, value {args.value}; efficacy / generality / specificity of the first {args.first}")
    print("| method | " + " | ".join(["one batch, nothing after"] + [f"after {c}" for c in checkpoints]) +
          f" | last {args.first}, at the end | s per edit |")
    print("| --- " * (len(checkpoints) + 4) + "|", flush=True)
    for name in args.methods.split(","):
        config, remember = configs[name]
        try:
            patch = edit(adapter, [r for c in first for r in c.requests()], config, stats=stats)
        except NumericalError:  # ROME's exact constraint: rows with the same subject make it singular
            cells = [None]
        else:
            patch.apply(adapter)
            cells = [score(first)]
            patch.revert(adapter)
        editor = SequentialEditor(adapter, config, stats=stats, remember=remember)
        started = time.perf_counter()
        for begin in range(0, len(cases), args.batch):
            editor.edit([r for c in cases[begin:begin + args.batch] for r in c.requests()])
            if begin + args.batch in checkpoints:
                cells.append(score(first))
        seconds = (time.perf_counter() - started) / len(cases)
        cells.append(score(last))
        editor.revert_all()
        print(f"| {name} | " + " | ".join(cell(s) for s in cells) + f" | {seconds:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
