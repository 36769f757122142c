#!/usr/bin/env python
"""Speed, side by side in one run: statistics, their ROME/MEMIT peer, edits, and the first run.

    python benchmarks/speed.py                 # the default run (~10 min on a shared 2-core CPU)
    python benchmarks/speed.py --quick         # a smoke run (~2 min): small corpora, no first run
    python benchmarks/speed.py --models minilm --minilm-prompts 7000
    python benchmarks/speed.py --models mpnet --skip-first-run      # the real all-mpnet-base-v2

For each model, MiniLM (the default model, ``textedit.load_encoder()``, real weights), a
CLIP-L-shaped ``CLIPTextModel`` with random weights (``benchmarks/stats.py`` builds it; speed
does not depend on the weights) and, with ``--models mpnet``, the real all-mpnet-base-v2, over the first N prompts of the shipped corpus, all layers,
scope ``prompt``, batch 64, torch's default threads:

(a) bare forward passes (tokenization included, as everywhere below);
(b) ``compute_stats`` for all layers, one pass, products formed in float64 (the default);
(c) the same with products formed in float32 (``products="float32"``);
(d) the peer: ROME/MEMIT's ``layer_stats`` approach re-implemented faithfully: for each layer
    its own pass over the corpus, stopped after that layer (their ``Trace(..., stop=True)``),
    the down-projection's inputs at real tokens cast to float32 and ``mom2 += aᵀa`` per batch
    in a float32 accumulator (their ``runningstats.SecondMoment`` with ``precision=float32``,
    MEMIT's ``mom2_dtype``).

(c') the float32 products of (c) alone, on keys recorded before its clock starts: the
    floor of any statistics that form ``Σ k kᵀ`` exactly in one pass is 1 + (c')/(a) times
    the bare passes, whatever the hooks and bookkeeping cost.

(a)–(d) alternate over ``--chunks`` pieces of the corpus, so that load from other processes
hits all four alike; ratios are to (a). Checked (asserted): (c) and (d) equal (b) within 1e-4
(relative Frobenius error), the same token counts.

(e) edit time per knowledge statement with the statistics of (b): the five knowledge
    statements of ``edits/mascot.json`` (its preserved prompts, the default settings), value
    ``direct``, ``match`` and ``optimize`` (and ``optimize`` with tolerance 0, every step, when
    the default tolerance is not 0); the first edit, which factorises C, is a warm-up and not
    counted. For ``optimize`` the number of passes with gradients (steps of the requests still
    training, together) is shown.
(f) the README's main command on a fresh machine (MiniLM only; skipped by ``--quick`` and
    ``--skip-first-run``): ``textedit apply edits/mascot.json`` in a subprocess with an empty
    statistics cache (``TEXTEDIT_CACHE`` set to a new folder), wall time from start to exit;
    set-up (``scripts/setup.sh``) excluded. Its ratio is to the bare passes over the whole
    shipped corpus, extrapolated from (a) by tokens.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from stats import (Clock, bare_forward, build_model, build_tokenizer, chunk_prompts, load_line,  # noqa: E402
                   machine_line)

from textedit.corpus import Corpus, load_corpus  # noqa: E402
from textedit.editor import EditConfig, edit  # noqa: E402
from textedit.encoders import adapter_for, load_encoder  # noqa: E402
from textedit.errors import NumericalError  # noqa: E402
from textedit.hooks import record_inputs, stop_after  # noqa: E402
from textedit.spec import load_spec  # noqa: E402
from textedit.stats import SecondMoment, compute_stats  # noqa: E402
from textedit.settings import OptimizeConfig  # noqa: E402

TOLERANCE = 1e-4  # relative Frobenius error allowed between the statistics of (b), (c) and (d)
SPEC = REPO / "edits" / "mascot.json"


def layer_stats_peer(adapter, layer: int, prompts, batch_size: int) -> tuple[torch.Tensor, int]:
    """ROME/MEMIT ``layer_stats`` for one layer: ``(Σ aᵀa [d_in, d_in] float32, tokens)``.

    One pass per batch stopped after the layer's down-projection, its inputs at the real
    tokens (``flatten_masked_batch``) cast to float32, and ``mom2 += aᵀa`` in float32, as
    ``util/runningstats.SecondMoment.add`` does.
    """
    module = adapter.down_proj_module(layer)
    mom2, count = None, 0
    with torch.no_grad():
        for begin in range(0, len(prompts), batch_size):
            batch = adapter.tokenize(prompts[begin:begin + batch_size])
            with record_inputs({layer: module}) as recorded, stop_after(module):
                adapter.forward(batch)
            feats = recorded[layer][batch.attention_mask.bool()].to(torch.float32)  # [tokens, d_in]
            mom2 = feats.new_zeros(feats.shape[1], feats.shape[1]) if mom2 is None else mom2
            mom2 += feats.t().mm(feats)
            count += feats.shape[0]
    return mom2, count


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def products_alone(adapter, prompts, batch_size: int, clock: Clock) -> None:
    """(c'): only the float32 products of (c), on keys recorded beforehand, timed on ``clock``.

    The floor of any one-pass statistics that forms ``Σ k kᵀ`` exactly: (a) + (c') is what
    (c) would cost with free hooks and bookkeeping."""
    layers = list(range(adapter.num_layers))
    modules = {layer: adapter.down_proj_module(layer) for layer in layers}
    moments = {layer: SecondMoment.zeros(modules[layer].weight.shape[1]) for layer in layers}
    with torch.no_grad():
        for begin in range(0, len(prompts), batch_size):
            batch = adapter.tokenize(prompts[begin:begin + batch_size])
            with record_inputs(modules) as recorded:
                adapter.forward(batch)
            real = batch.attention_mask.bool()
            keys = {layer: recorded[layer][real] for layer in layers}
            with clock():
                for layer in layers:
                    moments[layer].add_keys(keys[layer], "float32")


def statistics_side_by_side(adapter, prompts, chunks: int, batch_size: int):
    """(a)–(d), alternated over chunks. Returns the clocks, tokens run, (b)'s statistics and the checks."""
    layers = list(range(adapter.num_layers))
    clocks = {name: Clock() for name in ("bare", "float64", "float32", "products", "peer")}
    stats64 = stats32 = None
    peer = {layer: [0, 0] for layer in layers}  # layer: [Σ aᵀa, tokens]
    tokens = 0
    # warm-up: one batch of each
    warm = prompts[:batch_size]
    bare_forward(adapter, warm, batch_size, "prompt")
    compute_stats(adapter, layers, Corpus(warm, "warm-up"), use_cache=False)
    layer_stats_peer(adapter, 0, warm, batch_size)
    for part in chunk_prompts(prompts, chunks, batch_size):
        corpus = Corpus(part, "chunk")
        with clocks["bare"]():
            tokens += bare_forward(adapter, part, batch_size, "prompt")
        with clocks["float64"]():
            got = compute_stats(adapter, layers, corpus, batch_size=batch_size, use_cache=False, products="float64")
        stats64 = got if stats64 is None else {layer: stats64[layer] + got[layer] for layer in layers}
        with clocks["float32"]():
            got = compute_stats(adapter, layers, corpus, batch_size=batch_size, use_cache=False, products="float32")
        stats32 = got if stats32 is None else {layer: stats32[layer] + got[layer] for layer in layers}
        products_alone(adapter, part, batch_size, clocks["products"])
        with clocks["peer"]():
            for layer in layers:
                mom2, count = layer_stats_peer(adapter, layer, part, batch_size)
                peer[layer][0] = peer[layer][0] + mom2
                peer[layer][1] += count
        print(f"  ... {adapter.name}: chunk of {len(part)} prompts done: "
              + ", ".join(f"{name} {clock.wall:.1f} s" for name, clock in clocks.items()) + " (cumulative)", flush=True)
    checks = {"float32 products": 0.0, "peer": 0.0}
    for layer in layers:
        assert stats32[layer].count == peer[layer][1] == stats64[layer].count, layer
        checks["float32 products"] = max(checks["float32 products"], rel_err(stats32[layer].sum, stats64[layer].sum))
        checks["peer"] = max(checks["peer"], rel_err(peer[layer][0], stats64[layer].sum))
    for name, err in checks.items():
        assert err <= TOLERANCE, f"{name} statistics differ from float64 products: relative error {err:.1e}"
    return clocks, tokens, stats64, checks


def edit_times(adapter, stats: dict[int, SecondMoment]) -> dict[str, tuple[float, int | None]]:
    """(e): seconds per knowledge statement of edits/mascot.json for each value strategy, and
    the steps ``optimize`` ran (passes with gradients)."""
    spec = load_spec(SPEC)
    requests = spec.requests

    def run(value: str, **knobs) -> None:
        edit(adapter, requests, EditConfig(**{**spec.settings, "value": value, **knobs}), stats=stats,
             preserve=spec.preserve)

    run("direct")  # warm-up: factorises C of every edited layer, kept on the statistics
    settings = {"direct": ("direct", {}), "match": ("match", {}), "optimize": ("optimize", {})}
    if OptimizeConfig().tolerance:  # the default stops at a tolerance: also every step, as before
        settings["optimize, tolerance 0"] = ("optimize", {"tolerance": 0.0})
    steps = []
    forward = adapter.forward

    def counting(batch, **kwargs):
        if torch.is_grad_enabled():
            steps.append(1)
        return forward(batch, **kwargs)

    times = {}
    for name, (value, knobs) in settings.items():
        steps.clear()
        adapter.forward = counting
        started = time.perf_counter()
        try:
            run(value, **knobs)
        finally:
            adapter.forward = forward
        times[name] = ((time.perf_counter() - started) / len(requests), len(steps) if value == "optimize" else None)
    return times


def first_run(cache: Path, out: Path) -> tuple[float, float | None, str]:
    """(f): ``textedit apply edits/mascot.json`` with an empty cache; (wall s, its 's to edit', output)."""
    code = "import sys; sys.argv = ['textedit', *sys.argv[1:]]; from textedit._entry import main; main()"
    command = [sys.executable, "-c", code, "apply", str(SPEC), "--out", str(out)]
    env = {**os.environ, "TEXTEDIT_CACHE": str(cache), "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"textedit apply failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    found = re.search(r"\(([\d.]+) s to edit\)", done.stdout)
    return wall, float(found.group(1)) if found else None, done.stdout


def clip_adapter():
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
    return adapter_for(build_model(tokenizer), tokenizer, name="CLIP-L-shaped (random weights)")


def report_model(adapter, prompts, args, full_corpus_tokens: int | None) -> dict:
    d_in = adapter.down_proj_module(0).weight.shape[1]
    print(f"\n== {adapter.name}: {adapter.num_layers} layers, MLP keys of {d_in} dims, "
          f"{sum(p.numel() for p in adapter.model.parameters()) / 1e6:.1f}M parameters, {adapter.dtype}; "
          f"first {len(prompts)} corpus prompts, {args.chunks} chunk(s)", flush=True)
    clocks, tokens, stats, checks = statistics_side_by_side(adapter, prompts, args.chunks, args.batch_size)
    edits = {}
    try:
        edits = edit_times(adapter, stats)
    except NumericalError as exc:  # a small corpus can leave C singular
        print(f"  (edits skipped: {exc})")
    bare = clocks["bare"].wall
    threads = torch.get_num_threads()
    print(f"\n{'':<58}{'wall s':>9}{'cpu s':>9}{'util':>6}{'× bare':>8}")
    rows = [("(a) bare forward passes", "bare"),
            ("(b) textedit compute_stats, products float64 (default)", "float64"),
            ("(c) textedit compute_stats, products float32", "float32"),
            ("(c') its products alone (keys recorded beforehand)", "products"),
            ("(d) ROME/MEMIT layer_stats: a pass per layer, float32", "peer")]
    for label, name in rows:
        clock = clocks[name]
        print(f"{label:<58}{clock.wall:>9.2f}{clock.cpu:>9.1f}{clock.cpu / (clock.wall * threads):>6.2f}"
              f"{clock.wall / bare:>8.2f}")
    print(f"{'    floor of exact one-pass statistics: 1 + (c′)/(a)':<58}{1 + clocks['products'].wall / bare:>32.2f}")
    print(f"{'    peer / (b)':<58}{clocks['peer'].wall / clocks['float64'].wall:>32.2f}")
    print(f"{'    peer / (c)':<58}{clocks['peer'].wall / clocks['float32'].wall:>32.2f}")
    print(f"  {tokens:,} tokens ({tokens / bare:,.0f} tok/s bare); checks: float32 products vs float64 "
          f"{checks['float32 products']:.1e}, peer vs float64 {checks['peer']:.1e} (<= {TOLERANCE:g}) -- passed")
    if edits:
        n = len(load_spec(SPEC).requests)
        print(f"\n(e) edit time per knowledge statement ({n} statements of {SPEC.name}, statistics of (b)):")
        for value, (seconds, steps) in edits.items():
            extra = f"  ({steps} optimisation steps)" if steps is not None else ""
            print(f"    value {value:<24}{seconds:>8.2f} s{extra}")
    return {"bare": bare, "tokens": tokens}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="minilm,clip-l", help="comma-separated: minilm, clip-l, mpnet (the real "
                                                                  "all-mpnet-base-v2, 'textedit fetch-model mpnet'; "
                                                                  "default minilm,clip-l)")
    parser.add_argument("--mpnet-prompts", type=int, default=384, help="corpus prompts for MPNet (default 384)")
    parser.add_argument("--minilm-prompts", type=int, default=1000, help="corpus prompts for MiniLM (default 1000)")
    parser.add_argument("--clip-prompts", type=int, default=384, help="corpus prompts for CLIP-L (default 384)")
    parser.add_argument("--chunks", type=int, default=2, help="alternate (a)-(d) over this many chunks (default 2)")
    parser.add_argument("--batch-size", type=int, default=64, help="prompts per forward pass (default 64)")
    parser.add_argument("--skip-first-run", action="store_true", help="leave out (f), the first run of the README's "
                                                                      "main command")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 128 prompts a model (too few keys "
                                                             "for a CLIP-L edit), one chunk, no first run")
    args = parser.parse_args(argv)
    if args.quick:
        args.minilm_prompts, args.clip_prompts, args.mpnet_prompts, args.chunks, args.skip_first_run = 128, 128, 128, 1, True
    models = [m.strip() for m in args.models.split(",")]
    unknown = set(models) - {"minilm", "clip-l", "mpnet"}
    if unknown:
        parser.error(f"unknown model(s) {', '.join(sorted(unknown))}: use minilm, clip-l, mpnet")
    started = time.perf_counter()
    print("textedit speed benchmark")
    given = sys.argv if argv is None else ["benchmarks/speed.py", *argv]
    print(f"command : {shlex.join([Path(sys.executable).name, *given])}")
    print(f"machine : {machine_line()}")
    print(f"load    : {load_line()}")

    results = {}
    if "minilm" in models:
        adapter = load_encoder()
        adapter.name = "MiniLM (all-MiniLM-L6-v2, the default model)"
        results["minilm"] = report_model(adapter, load_corpus(limit=args.minilm_prompts).prompts, args, None)
        whole = load_corpus()
        whole_tokens = sum(int(adapter.tokenize(list(whole.prompts[i:i + 256])).attention_mask.sum())
                           for i in range(0, len(whole), 256))
        del adapter
        if not args.skip_first_run:
            with tempfile.TemporaryDirectory() as tmp:
                wall, editing, output = first_run(Path(tmp) / "cache", Path(tmp) / "patch")
            bare_whole = results["minilm"]["bare"] * whole_tokens / results["minilm"]["tokens"]
            print("\n(f) first run of the README's main command, empty statistics cache:")
            print("    TEXTEDIT_CACHE=<empty folder> textedit apply edits/mascot.json --out <folder>")
            print(f"    {wall:.1f} s from start to exit; it reports {editing} s to edit (statistics included); "
                  f"{wall / bare_whole:.1f} × the bare passes over the whole corpus ({len(whole):,} prompts, "
                  f"{whole_tokens:,} tokens: {bare_whole:.1f} s, extrapolated from (a))")
    if "mpnet" in models:  # the second real encoder, CLIP-L's text-tower shape (docs/mpnet.md)
        adapter = load_encoder("mpnet")
        adapter.name = "MPNet (all-mpnet-base-v2, real weights)"
        report_model(adapter, load_corpus(limit=args.mpnet_prompts).prompts, args, None)
        del adapter
    if "clip-l" in models:
        adapter = clip_adapter()
        report_model(adapter, load_corpus(limit=args.clip_prompts).prompts, args, None)
    print(f"\nload    : {load_line(own_threads=torch.get_num_threads())} (this run's threads included)")
    print(f"total   : {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
