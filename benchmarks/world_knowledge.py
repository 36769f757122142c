#!/usr/bin/env python
"""The world-knowledge benchmark on the default model: the edited pairs in batches, scored.

    nice -n 15 python benchmarks/world_knowledge.py [--limit 100] [--split test] [--batch-size N]
                                                   [--mode batch|sequential] [--value optimize]
                                                   [--threads 1] [--json out.json]

Reads ``benchmarks/data/world_knowledge.json`` (``textedit.eval.world.load_world``: the first
``--limit`` edited pairs of ``--split``, every unedited pair of it, the neutral captions), edits
the edited pairs under the default settings (MEMIT, the default layers, value ``--value``, the
shipped statistics corpus) on the unedited all-MiniLM-L6-v2, in one batch or chunks of
``--batch-size`` (reverted between them) or one after another (``--mode sequential``), and
prints the unedited baseline and the edited scores (``WorldSummary``): efficacy, answer
retrieval of edited, unedited and look-alike prompts before → after, unedited drift, neutral drift.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textedit.editor import EditConfig  # noqa: E402
from textedit.encoders import load_encoder  # noqa: E402
from textedit.eval.run import Evaluator  # noqa: E402
from textedit.eval.world import load_world  # noqa: E402
from textedit.io import atomic_write_text  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--data", default=str(REPO / "benchmarks" / "data" / "world_knowledge.json"))
    parser.add_argument("--limit", type=int, default=100, help="edited pairs (default 100)")
    parser.add_argument("--split", default="test", help="dev | test | all")
    parser.add_argument("--mode", default="batch", choices=("batch", "sequential"))
    parser.add_argument("--batch-size", type=int, default=None, help="edited pairs per edit (default: all)")
    parser.add_argument("--value", default="optimize")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = load_world(args.data, limit=args.limit, split=None if args.split == "all" else args.split)
    adapter = load_encoder()
    started = time.perf_counter()
    evaluator = Evaluator(adapter, cases)
    judged = time.perf_counter() - started
    config = EditConfig(value=args.value)
    started = time.perf_counter()
    result = evaluator.run(config, args.mode, batch_size=args.batch_size if args.mode == "batch" else None)
    ran = time.perf_counter() - started
    before, after = evaluator.baseline().summary, result.summary
    print(f"# world_knowledge: {after.cases} edited pairs, {after.unedited} unedited ({sum(c.lookalike for c in cases)} "
          f"look-alikes), {after.neutral} neutral captions, split {args.split}; {adapter.name}; {result.label}, "
          f"{args.mode}{f' {args.batch_size} per edit' if args.batch_size else ''}; pool "
          f"{len(cases[0].pool.answers)} answers; judge {judged:.0f} s, edits + scoring {ran:.0f} s "
          f"({result.seconds_per_edit:.1f} s per edit, {result.edits} edits)")
    print("| score | before | after |\n| --- | ---: | ---: |")
    print(f"| efficacy | {before.efficacy:.1%} | {after.efficacy:.1%} |")
    for name, label in (("edited", "edited prompts' own answer nearest"),
                        ("unedited", "unedited prompts' own answer nearest"),
                        ("lookalike", "look-alikes' own answer nearest")):
        print(f"| {label} | {getattr(before, name + '_retrieval_before'):.1%} | "
              f"{getattr(after, name + '_retrieval'):.1%} |")
    print(f"| unedited drift, mean / max | 0 | {after.unedited_drift:.4f} / {after.unedited_max_drift:.3f} |")
    print(f"| neutral drift, mean / max | 0 | {after.neutral_drift:.4f} / {after.neutral_max_drift:.3f} |")
    if args.json is not None:
        atomic_write_text(json.dumps({"baseline": before.to_dict(), "result": result.to_dict()}, indent=1),
                          args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
