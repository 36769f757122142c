"""The settings grid behind textedit's defaults: TIMED validation, single and batch mode.

Runs every setting below (or those of ``--settings FILE``, one JSON object of
:class:`textedit.EditConfig` fields per line) through :class:`textedit.eval.Evaluator` on a
benchmark and prints one markdown row per setting: efficacy, generality, specificity, the
mean drift of the negatives, and seconds per edit.

    python benchmarks/tune_eval.py [--benchmark PATH] [--mode single|batch] [--settings FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from textedit.editor import EditConfig
from textedit.encoders import load_encoder
from textedit.eval import Evaluator, load_benchmark
from textedit.sites import EDIT_TEMPLATES

REPO = Path(__file__).resolve().parents[1]

#: template sets tried against the default eight (sites.EDIT_TEMPLATES)
SHORT_TEMPLATES = ["{}", "a photo of {}", "a painting of {}", "a drawing of {}"]
MORE_TEMPLATES = ["a sketch of {}", "{} in the morning light", "a 3d render of {}", "{} with a blue sky behind",
                  "a watercolor of {}", "a vintage photo of {}, grainy", "{} seen from above", "a poster showing {}"]

GRID = (
    [{"method": "memit", "layers": layers, "lam": lam} for layers in ([0], [1], [2]) for lam in (50, 500, 5000)]
    + [{"method": "memit", "layers": [1, 2], "lam": 50, **extra} for extra in
       ({}, {"weight_decay": 0.0}, {"weight_decay": 0.1}, {"clamp": 1.0}, {"clamp": 4.0}, {"value": "match"})]
    + [{"method": "memit", "layers": [0, 1], "lam": 50}]
    + [{"method": "memit", "layers": [0, 1, 2], "lam": lam} for lam in (20, 50, 100)]
    + [{"method": "memit", "layers": [0, 1, 2], "lam": 50, "weight_decay": 0.0}]
    + [{"method": "memit", "layers": [1, 2, 3], "lam": lam} for lam in (50, 200, 500, 5000)]
    + [{"method": "rome", "layers": [layer]} for layer in (1, 2, 3)]
    + [{"method": "rome", "layers": [2], "value": "match"}]
    + [{"method": "alphaedit", "layers": layers} for layers in ([1, 2], [2, 3], [1, 2, 3])]
    + [{"method": "alphaedit", "layers": [1, 2, 3], "threshold": 0.1}]
    + [{"method": "memit", "layers": [0, 1, 2], "lam": 50, "templates": list(templates), **extra}
       for templates, extra in ((SHORT_TEMPLATES, {}), (list(EDIT_TEMPLATES) + MORE_TEMPLATES, {}),
                                (list(EDIT_TEMPLATES) + MORE_TEMPLATES, {"weight_decay": 0.0}))]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default=str(REPO.parent / "shared/data/timed/TIMED_validation_set.csv"))
    parser.add_argument("--mode", default="single", choices=("single", "batch"))
    parser.add_argument("--settings", default=None, help="JSONL of EditConfig fields (default: the built-in grid)")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = GRID if args.settings is None else [json.loads(line) for line in open(args.settings) if line.strip()]
    _, cases = load_benchmark(args.benchmark)
    evaluator = Evaluator(load_encoder(args.model) if args.model else load_encoder(), cases)
    print(f"{Path(args.benchmark).name}, {len(cases)} rows, mode {args.mode}\n")
    print("| setting | efficacy | generality | specificity | drift | s / edit |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for setting in settings:
        result = evaluator.run(EditConfig(**setting), args.mode)
        s = result.summary
        name = ", ".join(f"{k}={len(v)} templates" if k == "templates" else f"{k}={v}" for k, v in setting.items())
        print(f"| {name} | {s.efficacy:.1%} | {s.generality:.1%} | {s.specificity:.1%} | {s.drift:.4f} | "
              f"{result.seconds_per_edit:.2f} |", flush=True)


if __name__ == "__main__":
    main()
