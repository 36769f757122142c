#!/usr/bin/env python
"""Quality against batch size: benchmark cases edited in batches of 10 and 100 on the default model.

    nice -n 15 python benchmarks/scale_quality.py [--data BENCH.csv] [--limit N] [--sizes 10,100]
                                                  [--also-first N] [--threads 2] [--json out.json]

The cases of ``--data`` (default ``../shared/data/timed/TIMED_test_set.csv``; all, or the first
``--limit``; ``benchmarks/data/distinct_facts.csv`` has 1,000 rows without conflicts)
are split into consecutive chunks of each size; every chunk is one edit under the default
settings (MEMIT, λ 50, layers 0..n/3, value optimize, the shipped statistics corpus) on the
unedited all-MiniLM-L6-v2, scored in text space by ``textedit.eval.Evaluator`` (efficacy,
generality, specificity against the frozen encoder) and reverted before the next chunk.
Batch size 1 (every case alone) and one batch of all cases are ``textedit eval --mode
single,batch`` (docs/results/timed_test_memit.json); ``--sizes 1,147`` reruns them here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textedit.editor import EditConfig  # noqa: E402
from textedit.encoders import load_encoder  # noqa: E402
from textedit.eval.benchmark import load_benchmark  # noqa: E402
from textedit.eval.run import Evaluator  # noqa: E402
from textedit.eval.scores import Summary  # noqa: E402
from textedit.io import atomic_write_text  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "timed" / "TIMED_test_set.csv"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N cases (default: all)")
    parser.add_argument("--sizes", default="10,100", help="edits per batch, comma-separated")
    parser.add_argument("--value", default="optimize")
    parser.add_argument("--json", type=Path, default=None, help="write per-row results here (after each size)")
    parser.add_argument("--also-first", type=int, default=None,
                        help="also summarise the first N rows alone (to compare with a run on --limit N)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, cases = load_benchmark(args.data, limit=args.limit)
    adapter = load_encoder()
    config = EditConfig(value=args.value)
    evaluator = Evaluator(adapter, cases)
    results = []
    print(f"# scale_quality: {len(cases)} cases of {Path(args.data).name}, {adapter.name}, memit value {args.value}")
    print("| edits per batch | batches | efficacy | generality | specificity | drift | s per batch |")
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for size in [int(s) for s in args.sizes.split(",")]:
        result = evaluator.run(config, "single") if size == 1 else evaluator.run(config, "batch", batch_size=size)
        results.append(result)
        s = result.summary
        print(f"| {size} | {result.edits} | {s.efficacy:.1%} | {s.generality:.1%} | {s.specificity:.1%} | "
              f"{s.drift:.4f} | {result.seconds_per_edit:.1f} |", flush=True)
        if args.also_first:
            f = Summary.of(result.scores[:args.also_first])
            print(f"| {size}, first {f.cases} rows | | {f.efficacy:.1%} | {f.generality:.1%} | {f.specificity:.1%} | "
                  f"{f.drift:.4f} | |", flush=True)
        if args.json is not None:
            report = {"benchmark": args.data, "model": adapter.name, "fingerprint": adapter.fingerprint(),
                      "rows": len(cases), "results": [r.to_dict() for r in results]}
            atomic_write_text(json.dumps(report, indent=1), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
