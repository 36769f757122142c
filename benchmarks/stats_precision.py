#!/usr/bin/env python
"""Statistics with float32 products against float64 products: accuracy, edit effect and time.

    python benchmarks/stats_precision.py [--prompts N] [--rounds R]

On the default model (all-MiniLM-L6-v2, real weights, all 6 layers), in one process:

1. accuracy on the first N prompts of the shipped corpus and on a near-degenerate corpus
   (those N plus 4N copies of 60 prompts that differ in one word: a few directions dominate
   C, and the rest of its spectrum sits orders of magnitude below them):
   relative Frobenius error of C, relative error of its 10 smallest eigenvalues, and of
   ``C⁻¹k`` for the corpus' mean key (what every MEMIT/ROME solve uses);
2. the edit: ``edits/mascot.json``'s requests edited with either statistics (MEMIT,
   value ``match`` so no optimisation noise), relative difference of the ΔW of each layer;
3. time: ``compute_stats`` with each precision (no cache) beside bare forward passes over
   the same prompts, R rounds alternating the three so that load from other processes hits
   all alike; the median of each is reported, with the ratios to the bare passes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textedit.corpus import Corpus, load_corpus  # noqa: E402
from textedit.editor import EditConfig, edit  # noqa: E402
from textedit.encoders import load_encoder  # noqa: E402
from textedit.spec import load_spec  # noqa: E402
from textedit.stats import compute_stats  # noqa: E402

DEGENERATE = ["a photo of a {} dog", "a painting of a {} dog", "a {} dog on the beach", "a {} dog in the city",
              "a drawing of a {} dog", "a {} dog in the snow"]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def accuracy(adapter, corpus: Corpus, layers: list[int], name: str) -> dict:
    exact = compute_stats(adapter, layers, corpus, use_cache=False, products="float64")
    fast = compute_stats(adapter, layers, corpus, use_cache=False, products="float32")
    worst = {"C": 0.0, "smallest eigenvalues": 0.0, "C⁻¹k": 0.0, "condition": 0.0}
    for layer in layers:
        C64, C32 = exact[layer].mean, fast[layer].mean
        e64, e32 = torch.linalg.eigvalsh(C64), torch.linalg.eigvalsh(C32)
        k = torch.linalg.eigh(C64).eigenvectors @ e64.clamp(min=0).sqrt()  # a key with weight on every direction
        u64 = torch.cholesky_solve(k.unsqueeze(1), exact[layer].cholesky())
        u32 = torch.cholesky_solve(k.unsqueeze(1), fast[layer].cholesky())
        worst["C"] = max(worst["C"], relative(C32, C64))
        worst["smallest eigenvalues"] = max(worst["smallest eigenvalues"], ((e32[:10] - e64[:10]).abs() / e64[:10]).max().item())
        worst["C⁻¹k"] = max(worst["C⁻¹k"], relative(u32, u64))
        worst["condition"] = max(worst["condition"], (e64[-1] / e64[0]).item())
    print(f"{name}: worst over layers {layers}: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    return {"exact": exact, "fast": fast}


def edit_difference(adapter, stats: dict, layers: list[int]) -> None:
    spec = load_spec(REPO / "edits" / "mascot.json")
    config = EditConfig(method="memit", value="match", layers=layers)
    patches = {name: edit(adapter, spec.requests, config, stats=moments, corpus=None)
               for name, moments in stats.items()}
    for exact, fast in zip(patches["exact"].deltas, patches["fast"].deltas):
        print(f"  mascot ΔW layer {exact.layer}: relative difference {relative(fast.delta.dense(), exact.delta.dense()):.2e}")


def bare_passes(adapter, corpus: Corpus, batch_size: int = 64) -> None:
    with torch.no_grad():
        for begin in range(0, len(corpus), batch_size):
            adapter.forward(adapter.tokenize(list(corpus.prompts[begin:begin + batch_size])))


def timing(adapter, corpus: Corpus, layers: list[int], rounds: int) -> None:
    runs = {"bare forward passes": lambda: bare_passes(adapter, corpus),
            "statistics, float64 products": lambda: compute_stats(adapter, layers, corpus, use_cache=False,
                                                                  products="float64"),
            "statistics, float32 products": lambda: compute_stats(adapter, layers, corpus, use_cache=False,
                                                                  products="float32")}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    bare = statistics.median(times["bare forward passes"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name}: {median:.2f} s (median of {rounds}), {median / bare:.2f}× the bare passes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    adapter = load_encoder()
    layers = list(range(adapter.num_layers))
    print(f"{adapter.name}, {torch.get_num_threads()} threads, layers {layers}")
    corpus = load_corpus(limit=args.prompts)
    real = accuracy(adapter, corpus, layers, f"shipped corpus, first {len(corpus)} prompts")
    edit_difference(adapter, real, [0, 1, 2])
    colours = ["red", "blue", "green", "brown", "black", "white", "small", "large", "old", "young"]
    repeated = [t.format(c) for t in DEGENERATE for c in colours] * (4 * args.prompts // 60)
    skewed = Corpus(corpus.prompts + tuple(repeated), "skewed")
    accuracy(adapter, skewed, layers, f"near-degenerate corpus ({len(corpus)} prompts + {len(repeated)} copies of "
                                      "60 one-word variants)")
    timing(adapter, corpus, layers, args.rounds)


if __name__ == "__main__":
    main()
