#!/usr/bin/env python
"""Benchmark one batched MEMIT edit of N requests on a CLIP-L-sized encoder (time, peak memory).

    nice -n 15 python benchmarks/scale_batch.py [--requests 1000] [--single 8] [--layers 3,4]
                                                [--templates 1] [--stats-prompts 1000] [--progress]

Model and tokenizer: those of ``benchmarks/stats.py`` (random ``CLIPTextModel`` with CLIP
ViT-L/14's text-tower shape: hidden 768, MLP 3072, 12 layers). Requests: N distinct
synthetic facts ``"the mascot of <w1> <w2>" → "a <w3>"`` from corpus words (subject
``<w1> <w2>``). Value strategy ``match`` (no gradient steps, so the time is the engine's:
reading keys and states, the solve, MEMIT's spreading); ``--templates`` context templates
per request (the first of ``sites.EDIT_TEMPLATES``).

Measured in one process: statistics for the edited layers (``compute_stats``, not cached),
then one ``edit`` of all N requests (n ≥ 3072 keys takes the primal solve), timed with its
peak resident memory above the start, and the baseline: ``--single`` requests edited one at
a time (each patch applied before the next, as sequential editing does), whose time per
request is compared with the batch's. Checks (asserted): the batch patch has one delta per
layer, finite, and after applying it the keys of the requests map closer to their targets
than before (mean squared gap at the last layer falls).

Default (1,000 requests, layers 3–4) runs in under a minute on an idle 2-core machine;
``--requests 10000`` in about 2 min 15 s (quiet machine, docs/scale.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scale_common import PeakMemory, gib, machine_line  # noqa: E402
from stats import build_model, build_tokenizer  # noqa: E402

from textedit.corpus import Corpus, load_corpus  # noqa: E402
from textedit.editor import EditConfig, edit  # noqa: E402
from textedit.encoders import adapter_for  # noqa: E402
from textedit.requests import EditRequest  # noqa: E402
from textedit.stats import compute_stats  # noqa: E402
from textedit.sites import EDIT_TEMPLATES, Sites, read_states  # noqa: E402


def synthetic_requests(n: int, seed: int = 0) -> list[EditRequest]:
    """n distinct ``the mascot of <w1> <w2>`` → ``a <w3>`` facts from the corpus' words."""
    words = sorted({w for p in load_corpus().prompts for w in p.lower().split() if w.isalpha() and len(w) > 2})
    g = torch.Generator().manual_seed(seed)
    pairs: dict[tuple[str, str], None] = {}
    while len(pairs) < n:
        i, j = torch.randint(len(words), (2,), generator=g).tolist()
        if i != j:
            pairs[(words[i], words[j])] = None
    targets = torch.randint(len(words), (n,), generator=g).tolist()
    return [EditRequest(f"the mascot of {a} {b}", f"a {words[t]}", f"{a} {b}") for (a, b), t in zip(pairs, targets)]


def key_gap(adapter, requests, config: EditConfig, layer: int) -> float:
    """Mean ‖z_L(query) − z_L(target)‖² at the key token: what ``match`` drives toward 0."""
    queries = Sites.for_queries(adapter, requests, config.templates)
    targets = Sites.for_targets(adapter, requests, config.templates)
    z_q = queries.average(read_states(adapter, queries, [layer])[layer].streams)
    z_t = targets.average(read_states(adapter, targets, [layer])[layer].streams)
    return float((z_q - z_t).pow(2).sum(-1).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--single", type=int, default=8, help="requests edited one at a time for the baseline")
    parser.add_argument("--layers", default="3,4")
    parser.add_argument("--templates", type=int, default=1)
    parser.add_argument("--stats-prompts", type=int, default=1000)
    parser.add_argument("--progress", action="store_true", help="show the edit's key/value reading bars")
    args = parser.parse_args(argv)
    layers = [int(x) for x in args.layers.split(",")]
    print(f"# scale_batch: {args.requests} requests, layers {layers}, {args.templates} template(s), value match")
    print(f"# {machine_line()}")

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
    adapter = adapter_for(build_model(tokenizer), tokenizer, name="clip-l-shaped")
    requests = synthetic_requests(args.requests + args.single)
    batch, single = requests[:args.requests], requests[args.requests:]
    config = EditConfig(method="memit", layers=layers, value="match", templates=EDIT_TEMPLATES[:args.templates])

    corpus = Corpus(load_corpus(limit=args.stats_prompts).prompts, "bench")
    started = time.perf_counter()
    stats = compute_stats(adapter, layers, corpus, use_cache=False)
    print(f"statistics, {len(corpus)} prompts, layers {layers}: {time.perf_counter() - started:.1f} s "
          f"({stats[layers[-1]].count} keys a layer)")
    for moment in stats.values():  # the factor is computed once per layer, shared by every edit below
        moment.cholesky()

    with PeakMemory() as peak:
        patch = edit(adapter, batch, config, stats=stats, progress=args.progress)
    assert len(patch.deltas) == len(layers)
    assert all(torch.isfinite(d.delta.dense()).all() for d in patch.deltas)
    per_batch = peak.seconds / len(batch)
    print(f"one batch of {len(batch)}: {peak.seconds:.1f} s ({1e3 * per_batch:.0f} ms a request), peak "
          f"+{gib(peak.extra)} above the loaded model and statistics; ranks "
          f"{[d.delta.rank for d in patch.deltas]}")

    sample = batch[:200]
    before = key_gap(adapter, sample, config, layers[-1])
    patch.apply(adapter)
    after = key_gap(adapter, sample, config, layers[-1])
    patch.revert(adapter)
    assert after < before, (before, after)
    print(f"mean squared gap to the target at layer {layers[-1]} (200 requests): {before:.3g} → {after:.3g} "
          f"({after / before:.1%} left)")

    started = time.perf_counter()
    applied = []
    for request in single:
        applied.append(edit(adapter, [request], config, stats=stats))
        applied[-1].apply(adapter, check_fingerprint=False)  # later edits build on earlier ones
    seconds = time.perf_counter() - started
    for p in reversed(applied):
        p.revert(adapter)
    per_single = seconds / len(single)
    print(f"baseline, {len(single)} single edits one after another: {seconds:.1f} s "
          f"({1e3 * per_single:.0f} ms a request)")
    print(f"ratio single/batch time per request: {per_single / per_batch:.1f}x; "
          f"{len(batch)} single edits would take ≈ {per_single * len(batch) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
