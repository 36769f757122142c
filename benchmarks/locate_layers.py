"""Which layers carry a subject? Causal traces averaged over many prompts (justifies default layers).

For every prompt, :func:`textedit.locate.trace` corrupts the subject's embeddings and
restores one state at a time; this script averages, per layer, the score of each site at
the subject's last token (where textedit writes its edits) and prints the table with the
layers ranked. Prompts: the sources of a TIMED file (subject = the source minus its
article) placed in a caption template, plus the knowledge queries of edits/mascot.json.

    python benchmarks/locate_layers.py [--model M] [--timed PATH] [--limit N] [--samples S]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from textedit.encoders import load_encoder
from textedit.eval.benchmark import load_benchmark
from textedit.locate import SITES, trace

REPO = Path(__file__).resolve().parents[1]
ARTICLES = ("a ", "an ", "the ")


def subject_of(source: str) -> str:
    lower = source.lower()
    for article in ARTICLES:
        if lower.startswith(article):
            return source[len(article):]
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--timed", default=str(REPO.parent / "shared/data/timed/TIMED_validation_set.csv"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--window", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    adapter = load_encoder(args.model) if args.model else load_encoder()
    _, cases = load_benchmark(args.timed, args.limit)
    prompts = [(f"a photo of {c.source.lower()} in the garden", subject_of(c.source.lower())) for c in cases]
    mascot = json.loads((REPO / "edits/mascot.json").read_text())
    for query in mascot["knowledge"]:
        text = query if isinstance(query, str) else query["prompt"]
        subject = None if isinstance(query, str) else query.get("subject")
        prompts.append((f"a photo of {text} in the garden", subject or text))
    started = time.perf_counter()
    totals = {site: torch.zeros(adapter.num_layers) for site in SITES}
    for prompt, subject in prompts:
        result = trace(adapter, prompt, subject, samples=args.samples, window=args.window)
        for site in SITES:
            totals[site] += result.at_last_subject_token(site)
    seconds = time.perf_counter() - started
    print(f"{adapter.name}: {len(prompts)} prompts, {args.samples} noise samples, window {args.window}, "
          f"{seconds:.0f} s")
    print("mean score at the subject's last token (share of the corrupted output repaired)")
    print("layer  " + "  ".join(f"{site:>9s}" for site in SITES))
    for layer in range(adapter.num_layers):
        print(f"{layer:5d}  " + "  ".join(f"{float(totals[s][layer]) / len(prompts):9.3f}" for s in SITES))
    mlp = totals["mlp"] / len(prompts)
    ranked = sorted(range(adapter.num_layers), key=lambda l: -float(mlp[l]))
    print("mlp layers ranked: " + ", ".join(f"{l} ({float(mlp[l]):.3f})" for l in ranked))


if __name__ == "__main__":
    main()
