"""What the efficacy floor costs: the same edit with ``floor`` off, checked, and searched, in one process.

    python benchmarks/floor_cost.py [SPEC ...] [--repeats 2] [--threads 2]

For each spec (default ``edits/mascot.json``) the statistics are read once (cached), then
each setting's edit is timed ``--repeats`` times, alternating, and the best time is kept.
Prints seconds per setting, the ratio to ``off`` (the edit before the floor), the strength
the search chose and the solves it took.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from textedit.editor import EditConfig, edit, resolve_layers
from textedit.encoders import load_encoder
from textedit.spec import load_spec
from textedit.stats import compute_stats

SETTINGS = ("off", "check", "search")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["edits/mascot.json"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    adapter = load_encoder()
    for path in args.specs:
        spec = load_spec(path)
        configs = {mode: EditConfig(**{**spec.settings, "floor": mode}) for mode in SETTINGS}
        stats = compute_stats(adapter, resolve_layers(adapter, configs["off"]), None)
        best = {mode: float("inf") for mode in SETTINGS}
        chosen = {}
        for _ in range(args.repeats):
            for mode, config in configs.items():
                started = time.perf_counter()
                patch = edit(adapter, spec.requests, config, stats=stats, preserve=spec.preserve)
                best[mode] = min(best[mode], time.perf_counter() - started)
                chosen[mode] = patch.hyperparameters.get("floor")
        print(f"{path}: {len(spec.requests)} requests, best of {args.repeats}, {args.threads} thread(s)")
        for mode in SETTINGS:
            floor = chosen[mode]
            detail = "" if not isinstance(floor, dict) else \
                f"  strength {floor['strength']:g}, {len(floor['tried'])} solve(s), met {floor['met']}"
            print(f"  floor {mode:6s} {best[mode]:7.2f} s  ×{best[mode] / best['off']:.2f}{detail}")


if __name__ == "__main__":
    main()
