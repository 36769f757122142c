#!/usr/bin/env python
"""`optimize` settings (early stopping, tolerance, steps, templates) on the knowledge benchmark (single mode).

    python benchmarks/optimize_patience.py textedit/data/knowledge_dev.json '[{"patience": 5}, {"patience": 3}, {}]'
    python benchmarks/optimize_patience.py textedit/data/knowledge_dev.json '[{"tolerance": 0.1, "templates": 4}]'
    python benchmarks/optimize_patience.py textedit/data/knowledge_dev.json '[{"templates": 16}]'

Each grid entry is a set of ``EditConfig`` fields over the defaults; every entry runs in this
process on the same judge, so the rows compare (the first entry is not the baseline: ``{}``,
the defaults, is). ``"templates": n`` stands for the first n of ``sites.EDIT_TEMPLATES``, and
beyond its 8 for those followed by ``preserve.MORE_CONTEXTS``. Prints efficacy, generality, same-subject and same-relation specificity,
unrelated drift and seconds per edit (wall time: compare only within one run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textedit.editor import EditConfig  # noqa: E402
from textedit.encoders import DEFAULT_MODEL, load_encoder  # noqa: E402
from textedit.eval.knowledge import load_knowledge  # noqa: E402
from textedit.eval.run import Evaluator  # noqa: E402
from textedit.preserve import MORE_CONTEXTS  # noqa: E402
from textedit.sites import EDIT_TEMPLATES  # noqa: E402


def templates(n: int) -> list[str]:
    """The first ``n`` edit templates: ``sites.EDIT_TEMPLATES``, then ``preserve.MORE_CONTEXTS``."""
    return [*EDIT_TEMPLATES, *(c for c in MORE_CONTEXTS if c not in EDIT_TEMPLATES)][:n]


def main() -> None:
    torch.set_num_threads(1)
    bench, grid = sys.argv[1], json.loads(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    evaluator = Evaluator(load_encoder(DEFAULT_MODEL), load_knowledge(bench, limit))
    for fields in grid:
        given = dict(fields)
        if isinstance(given.get("templates"), int):
            given["templates"] = templates(given["templates"])
        result = evaluator.run(EditConfig(**given), "single")
        s = result.summary
        print(json.dumps(fields), f"efficacy {s.efficacy:.3f} generality {s.generality:.3f} same-subject "
              f"{s.same_subject:.3f} same-relation {s.same_relation:.3f} drift {s.drift:.4f} max {s.max_drift:.3f} "
              f"{result.seconds_per_edit:.2f} s/edit", flush=True)


if __name__ == "__main__":
    main()
