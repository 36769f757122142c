"""How the defaults were chosen: a grid of methods, layers and λ on the default model.

    python benchmarks/defaults.py [--quick]

For each setting it edits edits/mascot.json (5 knowledge queries → one anchor) and
edits/world_knowledge.json on all-MiniLM-L6-v2 as ``textedit apply`` does (the spec's own
``preserve`` list, the editor's defaults for everything the row does not set) and prints, per
spec, the smallest and mean after-edit similarity of a query to its target (held-out
templates, unedited encoder as judge), the largest and mean drift of the neutral prompts with
the one that moved most, and for the mascot the largest and mean drift of Acme's other
knowledge (``preserve.subject_prompts``: "the founder of Acme", "Acme's car", … 28 prompts;
the world spec's subject is its whole query and has none). Statistics come from the shipped
corpus (cached). The chosen default is the row with the best efficacy whose mean neutral
drift stays ≤ 0.01.

``--no-preserve`` turns the automatic preservation of each subject's other knowledge off (the
spec's own ``preserve`` list stays, for the methods that keep keys).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from textedit.editor import EditConfig, edit
from textedit.encoders import load_encoder
from textedit.metrics import measure
from textedit.preserve import subject_prompts
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
    dict(),  # the editor's defaults: memit, layers 0-2 on MiniLM, λ 50, value optimize
]
QUICK = [GRID[5], GRID[7], GRID[9]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three rows only")
    parser.add_argument("--rows", default=None, help="only these rows of the grid, by number from 0 (e.g. 13 or 0,5)")
    parser.add_argument("--no-preserve", action="store_true",
                        help="no automatic preservation of each subject's other knowledge")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    encoder = load_encoder()
    specs = [load_spec(ROOT / "edits" / "mascot.json"), load_spec(ROOT / "edits" / "world_knowledge.json")]
    print("| setting | mascot: min / mean similarity | mascot: Acme's other knowledge, max / mean drift | "
          "mascot: neutral max / mean drift (most moved) | world: similarity | world: neutral max / mean drift |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = [GRID[int(i)] for i in args.rows.split(",")] if args.rows else QUICK if args.quick else GRID
    for setting in rows:
        cells = []
        for spec in specs:
            config = EditConfig(**setting, **({"auto_preserve": False} if args.no_preserve else {}))
            keeps = config.method_class.remembers_keys
            patch = edit(encoder, spec.requests, config, preserve=spec.preserve if keeps else ())
            same_subject = subject_prompts(spec.requests)
            report = measure(encoder, patch, spec.requests, preserved=same_subject)
            after = [s.after for s in report.requests]
            if len(after) > 1:
                cells.append(f"{min(after):.3f} / {sum(after) / len(after):.3f}")
            else:
                cells.append(f"{after[0]:.3f}")
            if same_subject:
                kept = [p.drift for p in report.preserved]
                cells.append(f"{max(kept):.4f} / {sum(kept) / len(kept):.4f}")
            drift = [d for _, d in report.neutral]
            most = max(report.neutral, key=lambda pd: pd[1])[0]
            cells.append(f"{max(drift):.4f} / {sum(drift) / len(drift):.4f}"
                         + (f" ({most})" if same_subject else ""))
        label = ", ".join(f"{k}={v}" for k, v in setting.items()) or "the defaults (memit, layers [0, 1, 2], lam=50)"
        print(f"| {label} | {' | '.join(cells)} |", flush=True)

if __name__ == "__main__":
    main()
