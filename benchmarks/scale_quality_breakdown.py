#!/usr/bin/env python
"""Split the batch-size results of ``scale_quality.py`` by what else shares a row's edit (no re-run).

    python benchmarks/scale_quality_breakdown.py [docs/results/timed_test_batch_size.json]
                                                  [docs/results/timed_test_memit.json]

Reads the per-row JSON of batch sizes 10 and 100 (``scale_quality.py --json``) and of batch
size 1 and one batch of all rows (``textedit eval --mode single,batch --json``), and prints per
batch size:

* efficacy and generality of rows whose chunk holds another row with the same subject (the
  last word of the source: "A banana" → "A blue banana" and "A banana" → "A green banana"
  ask contrary things of one key), and of the other rows;
* specificity of negative prompts that name another row's subject in the same chunk (that
  row's edit is meant to change them, so the frozen judge counts it as leakage), and of the
  other negatives.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def rate(flags: list[bool]) -> str:
    return f"{100 * sum(flags) / len(flags):.1f} % of {len(flags)}" if flags else "-"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sizes_json = Path(argv[0]) if argv else REPO / "docs" / "results" / "timed_test_batch_size.json"
    eval_json = Path(argv[1]) if len(argv) > 1 else REPO / "docs" / "results" / "timed_test_memit.json"
    results = {}
    for r in json.loads(eval_json.read_text())["results"]:
        if r["mode"] in ("single", "batch"):
            results[1 if r["mode"] == "single" else len(r["rows"])] = r["rows"]
    for r in json.loads(sizes_json.read_text())["results"]:
        results[r["hyperparameters"].get("batch_size", 1)] = r["rows"]
    print("| edits per batch | efficacy, subject shared in chunk | efficacy, other rows | generality, other rows "
          "| specificity, negatives naming another row's subject | specificity, other negatives |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in sorted(results):
        rows = results[size]
        subject = [r["source"].split()[-1].lower() for r in rows]
        shared_eff, other_eff, other_gen, named, unnamed = [], [], [], [], []
        for i, row in enumerate(rows):
            chunk = range(i // size * size, min((i // size + 1) * size, len(rows)))
            mates = {subject[j] for j in chunk if j != i}
            (shared_eff if subject[i] in mates else other_eff).append(row["efficacy"])
            if subject[i] not in mates:
                other_gen += [p["ok"] for p in row["generality"]]
            for probe in row["specificity"]:
                (named if words(probe["prompt"]) & (mates - {subject[i]}) else unnamed).append(probe["ok"])
        print(f"| {size} | {rate(shared_eff)} | {rate(other_eff)} | {rate(other_gen)} | {rate(named)} | "
              f"{rate(unnamed)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
