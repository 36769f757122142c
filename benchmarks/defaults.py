"""How the defaults were chosen: a grid of methods, layers and λ on the default model.

    python benchmarks/defaults.py [--quick]

For each setting it edits edits/mascot.json (5 knowledge queries → one anchor) and
edits/world_knowledge.json on all-MiniLM-L6-v2 and prints, per spec, the smallest and mean
after-edit similarity of a query to its target (held-out templates, unedited encoder as
judge) and the largest and mean drift of the neutral prompts. Statistics come from the
shipped corpus (cached). The chosen default is the row with the best efficacy whose mean
neutral drift stays ≤ 0.01.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from textedit.editor import EditConfig, edit
from textedit.encoders import load_encoder
from textedit.metrics import measure
from textedit.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]

GRID = [
    dict(method="memit", layers=[1, 2], lam=1e3),
    dict(method="memit", layers=[1, 2], lam=1e4),
    dict(method="memit", layers=[2, 3], lam=5e3),
    dict(method="memit", layers=[0, 1, 2], lam=5e3),
    dict(method="memit", layers=[1, 2, 3], lam=1e3),
    dict(method="memit", layers=[1, 2, 3], lam=5e3),
    dict(method="memit", layers=[1, 2, 3], lam=1e4),
    dict(method="memit", layers=[1, 2, 3], lam=5e3, value="match"),
    dict(method="memit", layers=[1, 2, 3], lam=5e3, value="direct"),
    dict(method="rome", layers=[2]),
    dict(method="alphaedit", layers=[1, 2, 3]),
    dict(method="ridge", layers=[1, 2, 3], lam=3.0),
    dict(method="ridge", layers=[1, 2, 3], lam=10.0),
]
QUICK = [GRID[5], GRID[7], GRID[9]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three rows only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    encoder = load_encoder()
    specs = [load_spec(ROOT / "edits" / "mascot.json"), load_spec(ROOT / "edits" / "world_knowledge.json")]
    print("| setting | mascot: min / mean similarity | mascot: max / mean drift | world: similarity | "
          "world: max / mean drift |")
    print("| --- | --- | --- | --- | --- |")
    for setting in (QUICK if args.quick else GRID):
        cells = []
        for spec in specs:
            patch = edit(encoder, spec.requests, EditConfig(**setting))
            report = measure(encoder, patch, spec.requests)
            after = [s.after for s in report.requests]
            drift = [d for _, d in report.neutral]
            if len(after) > 1:
                cells.append(f"{min(after):.3f} / {sum(after) / len(after):.3f}")
            else:
                cells.append(f"{after[0]:.3f}")
            cells.append(f"{max(drift):.4f} / {sum(drift) / len(drift):.4f}")
        label = ", ".join(f"{k}={v}" for k, v in setting.items())
        print(f"| {label} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
