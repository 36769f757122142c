#!/usr/bin/env python
"""Does the encoder itself tell a knowledge query's paraphrases from its subject's other facts?

    python benchmarks/knowledge_encoder_separation.py benchmarks/data/knowledge_test.json

An edit generalizes from the edited queries to prompts the encoder reads as similar. If the
unedited encoder's own sentence vectors do not put the paraphrases ("the creature Norway
picked as its symbol") closer to the queries ("the mascot of Norway") than the same
subject's other facts ("the capital of Norway"), no edit that spreads along the encoder's
representation can move the first and keep the second. For every held-out probe (in the
benchmark's evaluation contexts) this takes the cosine to the nearest edited query in the
same context and prints, per role, the fraction above each threshold, the best single
threshold's accuracy at telling paraphrases from same-subject facts, and the AUC (the
probability that a random paraphrase is closer than a random same-subject fact).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textedit.encoders import DEFAULT_MODEL, load_encoder  # noqa: E402
from textedit.eval.knowledge import load_knowledge  # noqa: E402

THRESHOLDS = (0.6, 0.7, 0.8, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    torch.set_num_threads(2)
    adapter = load_encoder(args.model)
    nearest: dict[str, list[float]] = {}
    for case in load_knowledge(args.benchmark):
        for context in case.contexts:
            queries = F.normalize(adapter.embed([context.format(q) for q in case.queries]), dim=-1)
            for role, texts in (("paraphrases", case.paraphrases), ("same subject", case.same_subject),
                                ("same relation", case.same_relation)):
                probes = F.normalize(adapter.embed([context.format(t) for t in texts]), dim=-1)
                nearest.setdefault(role, []).extend((probes @ queries.T).max(1).values.tolist())
        queries = F.normalize(adapter.embed(case.queries), dim=-1)
        unrelated = F.normalize(adapter.embed(list(case.unrelated)), dim=-1)
        nearest.setdefault("unrelated", []).extend((unrelated @ queries.T).max(1).values.tolist())
    for role, values in nearest.items():
        above = "  ".join(f"> {t}: {sum(v > t for v in values) / len(values):.2f}" for t in THRESHOLDS)
        print(f"{role:14s} mean {statistics.mean(values):.3f}  {above}")
    para, subject = nearest["paraphrases"], nearest["same subject"]
    accuracy, threshold = max(((sum(p > t for p in para) + sum(s <= t for s in subject)) / (len(para) + len(subject)),
                               t) for t in [i / 100 for i in range(30, 100)])
    auc = sum(p > s for p in para for s in subject) / (len(para) * len(subject))
    print(f"paraphrases against same-subject facts: best threshold {threshold:.2f} is right for {accuracy:.3f}; "
          f"AUC {auc:.3f}")


if __name__ == "__main__":
    main()
