#!/usr/bin/env python
"""`optimize`'s tolerance on `edits/mascot.json`: passes, time and what the edit does.

    python benchmarks/optimize_tolerance.py [--tolerances 0,0.06,0.08,0.1] [--threads 1]

On the default model (all-MiniLM-L6-v2), the spec's requests and preserved prompts, every
other setting the default, statistics from the cache (computed first if missing, not
timed). For each tolerance, in this process, one after another: the edit's wall time, the
optimisation passes (forward passes with gradients; the requests still training run
together) and the prompts they ran (a stopped request's prompts leave the batch: the
load-independent cost), then ``measure`` as ``textedit apply`` reports it: each knowledge
query's similarity to the anchor after the edit (min / mean) and its smallest gain, and
the drift of the neutral prompts (max / mean). On a shared machine only the passes compare
exactly; the seconds compare within one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textedit.editor import EditConfig, edit, resolve_layers  # noqa: E402
from textedit.encoders import load_encoder  # noqa: E402
from textedit.metrics import NEUTRAL_PROMPTS, measure  # noqa: E402
from textedit.spec import load_spec  # noqa: E402
from textedit.stats import compute_stats  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tolerances", default="0,0.06,0.08,0.1", help="comma-separated (default 0,0.06,0.08,0.1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adapter = load_encoder()
    spec = load_spec(REPO / "edits" / "mascot.json")
    stats = compute_stats(adapter, resolve_layers(adapter, EditConfig()), progress=True)
    forward = adapter.forward
    passes: list[int] = []

    def counting(batch, **kwargs):
        if torch.is_grad_enabled():
            passes.append(len(batch))
        return forward(batch, **kwargs)

    print(f"{adapter.name}, {torch.get_num_threads()} thread(s), {len(spec.requests)} knowledge queries of mascot.json")
    print(f"{'tolerance':>9}{'seconds':>9}{'passes':>8}{'prompts':>9}  similarity after min / mean, smallest gain; "
          "neutral drift max / mean")
    for tolerance in (float(t) for t in args.tolerances.split(",")):
        passes.clear()
        adapter.forward = counting
        started = time.perf_counter()
        try:
            patch = edit(adapter, spec.requests, EditConfig(tolerance=tolerance), stats=stats, preserve=spec.preserve)
        finally:
            adapter.forward = forward
        seconds = time.perf_counter() - started
        report = measure(adapter, patch, spec.requests, spec.neutral or NEUTRAL_PROMPTS)
        after = [s.after for s in report.requests]
        gain = min(s.after - s.before for s in report.requests)
        drift = [d for _, d in report.neutral]
        print(f"{tolerance:>9g}{seconds:>9.1f}{len(passes):>8}{sum(passes):>9}  {min(after):.3f} / "
              f"{sum(after) / len(after):.3f}, {gain:.3f}; {max(drift):.4f} / {sum(drift) / len(drift):.4f}",
              flush=True)


if __name__ == "__main__":
    main()
