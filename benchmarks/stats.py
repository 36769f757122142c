#!/usr/bin/env python
"""Benchmark key statistics (one pass vs. per layer) and edit latency on a CLIP-L-sized encoder.

    python benchmarks/stats.py [--prompts N] [--batch-size B] [--scope prompt|pipeline]
                               [--baseline-prompts M] [--chunks R] [--edit-layers 3,4] [--profile]

Defaults: N = 2000 prompts and M = 128 for ``--scope prompt`` (~12 tokens a prompt), N = 1000
and M = 64 for ``--scope pipeline`` (all 77 positions), each a few minutes on an idle 2-core
machine. Everything runs in one process with torch's default number of threads, after a
warm-up:

(a) bare forward passes over the first N prompts of the shipped corpus, tokenized exactly as
    ``compute_stats`` tokenizes for the scope (tokenization included, as in compute_stats);
(b) ``compute_stats`` for all 12 layers: one forward pass per batch (``use_cache=False``);
(c) the per-layer way of older editors, on the first M prompts next to a one-pass run on the
    same M prompts (they cost ~7 and ~12 passes, too long for N on a small machine; the
    ratio is measured on M, and the N-prompt time extrapolated by tokens run):
      - 12 calls ``compute_stats(adapter, [layer])``, each stopping after its layer;
      - 12 full forward passes with a hook on one layer (ROME/MEMIT ``layer_stats`` style),
        accumulating with the same ``SecondMoment.add_keys`` so only the pass structure differs;
(d) ``edit`` with the statistics of (b): MEMIT with value ``direct``, ``match`` and ``optimize``.
    The first edit on a statistics object factorises C (``SecondMoment.cholesky``) and keeps
    the factor; it is timed separately ("first"), the others reuse the factor.

Checks (asserted): the per-layer statistics equal the one-pass ones (relative Frobenius
error ≤ 1e-6, same token counts), and the one-pass statistics of the first and last layer
equal a float64 brute force over the M prompts within 1e-6.

(a) and (b) alternate over R chunks of the corpus (bare chunk, statistics chunk, ...) so
that load from other processes on a shared machine hits both alike; each chunk is one
``compute_stats`` call and the chunk sums are merged with ``+``. Wall and process CPU time
are both reported; CPU/(wall·threads) well below 1 means the machine was busy.

Model: ``CLIPTextModel`` with random weights and CLIP ViT-L/14's text-tower shape (hidden 768,
MLP 3072, 12 layers, 12 heads, 77 positions, vocab 49408). Tokenizer: CLIP-style byte-level
BPE (the builder of ``tests/tiny_models.py``) with merges learned from the shipped corpus'
words, so nearly every corpus word is one token, as with CLIP's real vocabulary.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import transformers  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

from tests import tiny_models  # noqa: E402
from textedit.corpus import Corpus, load_corpus  # noqa: E402
from textedit.editor import EditConfig, edit  # noqa: E402
from textedit.encoders import adapter_for  # noqa: E402
from textedit.errors import NumericalError  # noqa: E402
from textedit.hooks import record_inputs  # noqa: E402
from textedit.requests import EditRequest  # noqa: E402
from textedit.stats import SecondMoment, compute_stats  # noqa: E402

NUM_LAYERS = 12
TOLERANCE = 1e-6
REQUESTS = [EditRequest("the mascot of Acme", "a red panda")]
GOALS = {"one_pass_over_bare": 1.3, "per_layer_over_one_pass": 8.0, "edit_direct": 0.5, "edit_optimize": 5.0}


# -- model and tokenizer ----------------------------------------------------------------------


def build_tokenizer(folder: Path) -> CLIPTokenizer:
    """CLIP byte-level BPE whose merges make every word of the shipped corpus one token."""
    base = tiny_models._make_clip_tokenizer(folder)  # for CLIP's normalizer and pre-tokenizer
    backend = base.backend_tokenizer
    texts = list(load_corpus().prompts) + [t for r in REQUESTS for t in (r.prompt, r.target)]
    pieces = [p for text in texts for p, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))]
    words = tuple(dict.fromkeys(tiny_models._unique_words() + pieces + list(tiny_models._CLIP_EXTRA_PIECES)))
    merges = tiny_models._clip_bpe_merges(words)
    chars = tiny_models._bytes_to_unicode()
    tokens = list(dict.fromkeys(chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]))
    tokens += [tiny_models.CLIP_BOS, tiny_models.CLIP_EOS]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=list(merges),
                         bos_token=tiny_models.CLIP_BOS, eos_token=tiny_models.CLIP_EOS,
                         unk_token=tiny_models.CLIP_EOS, pad_token=tiny_models.CLIP_EOS, model_max_length=77)


def build_model(tokenizer) -> CLIPTextModel:
    torch.manual_seed(0)
    config = CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=NUM_LAYERS,
                            num_attention_heads=12, max_position_embeddings=77, vocab_size=49408,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)
    assert len(tokenizer) <= config.vocab_size
    return CLIPTextModel(config).eval()


# -- the passes being timed -----------------------------------------------------------------


def bare_forward(adapter, prompts, batch_size: int, scope: str) -> int:
    """Forward passes only, tokenized as compute_stats does; returns the tokens run."""
    tokens = 0
    with torch.no_grad():
        for begin in range(0, len(prompts), batch_size):
            batch = adapter.tokenize(prompts[begin:begin + batch_size], pad_to_consumer=scope == "pipeline")
            adapter.forward(batch)
            tokens += batch.input_ids.numel()
    return tokens


def per_layer_full_forward(adapter, layer: int, prompts, batch_size: int, scope: str) -> SecondMoment:
    """ROME/MEMIT ``layer_stats`` style: a full forward pass over the corpus for one layer.

    A hook on that layer's down-projection records its input; the model runs to the end
    (no early stop). Accumulates exactly as compute_stats does (same tokens, add_keys).
    """
    module = adapter.down_proj_module(layer)
    moment = SecondMoment.zeros(module.weight.shape[1])
    pad = scope == "pipeline"
    with torch.no_grad(), record_inputs({layer: module}) as recorded:
        for begin in range(0, len(prompts), batch_size):
            batch = adapter.tokenize(prompts[begin:begin + batch_size], pad_to_consumer=pad)
            adapter.forward(batch)
            feeds_padding = pad and adapter.consumer.pad_to_max_length  # as compute_stats decides
            positions = torch.ones_like(batch.attention_mask) if feeds_padding else batch.attention_mask
            moment.add_keys(recorded[layer][positions.bool()])
    return moment


def brute_force(adapter, layers, prompts, batch_size: int, scope: str) -> dict[int, torch.Tensor]:
    """Σ k kᵀ in float64 (keys cast to float64 before the product), full forward passes."""
    modules = {layer: adapter.down_proj_module(layer) for layer in layers}
    sums = {layer: 0 for layer in layers}
    pad = scope == "pipeline"
    with torch.no_grad(), record_inputs(modules) as recorded:
        for begin in range(0, len(prompts), batch_size):
            batch = adapter.tokenize(prompts[begin:begin + batch_size], pad_to_consumer=pad)
            adapter.forward(batch)
            feeds_padding = pad and adapter.consumer.pad_to_max_length  # as compute_stats decides
            positions = torch.ones_like(batch.attention_mask) if feeds_padding else batch.attention_mask
            for layer in layers:
                keys = recorded[layer][positions.bool()].double()
                sums[layer] = sums[layer] + keys.T @ keys
    return sums


# -- measuring ------------------------------------------------------------------------------


class Clock:
    """Accumulates wall (perf_counter) and process CPU time over ``with clock:`` blocks."""

    def __init__(self):
        self.wall = 0.0
        self.cpu = 0.0

    @contextlib.contextmanager
    def __call__(self):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu


def timed(fn, *args, **kwargs):
    clock = Clock()
    with clock():
        result = fn(*args, **kwargs)
    return result, clock


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def merge(total: dict[int, SecondMoment] | None, part: dict[int, SecondMoment]) -> dict[int, SecondMoment]:
    return dict(part) if total is None else {layer: total[layer] + part[layer] for layer in total}


def chunk_prompts(prompts, chunks: int, batch_size: int):
    """Split into about ``chunks`` pieces whose boundaries fall on batch boundaries."""
    size = -(-len(prompts) // max(1, chunks))
    size = -(-size // batch_size) * batch_size
    return [prompts[i:i + size] for i in range(0, len(prompts), size)]


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{platform.system()} {platform.machine()}, {cpu}, os.cpu_count()={os.cpu_count()}, "
            f"torch {torch.__version__} (intra-op threads {torch.get_num_threads()}), "
            f"transformers {transformers.__version__}, python {platform.python_version()}")


def load_line(own_threads: int = 0) -> str:
    """Load average; flagged when more runnable work than this run's own threads and the CPUs allow."""
    one, five, fifteen = os.getloadavg()
    busy = one - own_threads > 0.5 * (os.cpu_count() or 1)
    flag = "  <- busy machine: other processes compete for the CPUs (see util)" if busy else ""
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min){flag}"


# -- main -----------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=None,
                        help="corpus prompts for (a), (b) (default 2000 for scope prompt, 1000 for pipeline)")
    parser.add_argument("--batch-size", type=int, default=64, help="prompts per forward pass (default 64)")
    parser.add_argument("--scope", choices=("prompt", "pipeline"), default="prompt", help="token scope (default prompt)")
    parser.add_argument("--baseline-prompts", type=int, default=None,
                        help="prompts for the per-layer baselines (c) (default 128 for scope prompt, 64 for "
                             "pipeline; capped at --prompts)")
    parser.add_argument("--chunks", type=int, default=4, help="alternate (a) and (b) over this many chunks (default 4)")
    parser.add_argument("--edit-layers", default="3,4", help="layers edited in (d) (default 3,4)")
    parser.add_argument("--profile", action="store_true", help="also profile compute_stats on 2 batches (torch.profiler)")
    args = parser.parse_args(argv)
    # pipeline scope runs all 77 positions (~3.5x the tokens of prompt scope): smaller defaults
    # keep either default run to a few minutes on a 2-core machine
    if args.prompts is None:
        args.prompts = 2000 if args.scope == "prompt" else 1000
    if args.baseline_prompts is None:
        args.baseline_prompts = 128 if args.scope == "prompt" else 64
    scope, bs = args.scope, args.batch_size
    edit_layers = [int(x) for x in args.edit_layers.split(",")]
    started = time.perf_counter()

    print("textedit key-statistics benchmark")
    print(f"command : {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine : {machine_line()}")
    print(f"load    : {load_line()}")

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
    model = build_model(tokenizer)
    adapter = adapter_for(model, tokenizer, name="clip-l-random")
    corpus = load_corpus(limit=args.prompts)
    prompts = corpus.prompts
    subset = Corpus(prompts[:min(args.baseline_prompts, len(prompts))], "baseline subset")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model   : CLIPTextModel, random weights, hidden 768, MLP 3072, {NUM_LAYERS} layers, 12 heads, "
          f"{n_params / 1e6:.1f}M parameters, {adapter.dtype}, {adapter.device}; tokenizer vocab {len(tokenizer)}")
    lengths = adapter.tokenize(prompts[:500]).attention_mask.sum(1).float()
    print(f"corpus  : first {len(prompts)} prompts of the shipped corpus ({lengths.mean():.1f} real tokens a prompt), "
          f"scope '{scope}', batch {bs}; per-layer baselines on the first {len(subset)}")
    print(f"setup   : {time.perf_counter() - started:.1f} s (tokenizer BPE, model init)")
    sys.stdout.flush()

    # -- warm-up: one batch of everything ------------------------------------------------------
    layers = list(range(NUM_LAYERS))
    warm = Corpus(prompts[:bs], "warm-up")
    bare_forward(adapter, warm.prompts, bs, scope)
    compute_stats(adapter, layers, warm, scope=scope, batch_size=bs, use_cache=False)
    _, fp_clock = timed(adapter.fingerprint)

    # -- (a) + (b), alternating over chunks ---------------------------------------------------
    bare, one_pass = Clock(), Clock()
    tokens_run, stats, chunk_ratios = 0, None, []
    for part in chunk_prompts(prompts, args.chunks, bs):
        bare_before, one_pass_before = bare.wall, one_pass.wall
        with bare():
            tokens_run += bare_forward(adapter, part, bs, scope)
        with one_pass():
            result = compute_stats(adapter, layers, Corpus(part, "chunk"), scope=scope, batch_size=bs, use_cache=False)
        stats = merge(stats, result)
        chunk_ratios.append((one_pass.wall - one_pass_before) / (bare.wall - bare_before))
        print(f"  ... chunk of {len(part)} prompts: bare {bare.wall:7.1f} s, one pass {one_pass.wall:7.1f} s "
              f"(cumulative); this chunk one pass / bare {chunk_ratios[-1]:.2f}", flush=True)
    keys_counted = stats[0].count

    # -- (c) per-layer baselines on the subset -------------------------------------------------
    sub_bare_tokens, sub_bare = timed(bare_forward, adapter, subset.prompts, bs, scope)
    sub_one, clock = timed(compute_stats, adapter, layers, subset, scope=scope, batch_size=bs, use_cache=False)
    sub_one_clocks = [clock]  # one-pass runs on the subset: before, halfway through and after the per-layer runs
    early, naive = Clock(), Clock()
    worst = {"early stop": 0.0, "full forward": 0.0}
    for layer in layers:
        with early():
            got = compute_stats(adapter, [layer], subset, scope=scope, batch_size=bs, use_cache=False)[layer]
        worst["early stop"] = max(worst["early stop"], rel_err(got.sum, sub_one[layer].sum))
        assert got.count == sub_one[layer].count, (layer, got.count, sub_one[layer].count)
        with naive():
            got = per_layer_full_forward(adapter, layer, subset.prompts, bs, scope)
        worst["full forward"] = max(worst["full forward"], rel_err(got.sum, sub_one[layer].sum))
        assert got.count == sub_one[layer].count, (layer, got.count, sub_one[layer].count)
        print(f"  ... per-layer baselines, layer {layer:2d}: early stop {early.wall:6.1f} s, "
              f"full forward {naive.wall:6.1f} s (cumulative)", flush=True)
        del got
        if layer in (NUM_LAYERS // 2 - 1, NUM_LAYERS - 1):
            _, clock = timed(compute_stats, adapter, layers, subset, scope=scope, batch_size=bs, use_cache=False)
            sub_one_clocks.append(clock)
    median = sorted(sub_one_clocks, key=lambda c: c.wall)[1]
    sub_one_wall, sub_one_cpu = median.wall, median.cpu
    for name, err in worst.items():
        assert err <= TOLERANCE, f"per-layer ({name}) statistics differ from one pass: relative error {err:.2e}"
    brute = brute_force(adapter, [layers[0], layers[-1]], subset.prompts, bs, scope)
    brute_err = max(rel_err(sub_one[layer].sum, brute[layer]) for layer in brute)
    assert brute_err <= TOLERANCE, f"one-pass statistics differ from float64 brute force: {brute_err:.2e}"
    del sub_one, brute

    # -- (d) edits with cached statistics ------------------------------------------------------
    def run_edit(value, moments):
        return edit(adapter, REQUESTS, EditConfig(method="memit", value=value, layers=edit_layers, scope=scope),
                    stats=moments)

    def fresh():
        """The statistics of (b) as new objects: no Cholesky factor of C cached on them yet."""
        return {layer: SecondMoment(stats[layer].sum, stats[layer].count) for layer in edit_layers}

    edits = {}
    if keys_counted > adapter.down_proj_module(edit_layers[-1]).weight.shape[1]:
        try:
            run_edit("direct", fresh())  # warm-up
            moments = fresh()
            _, edits["direct, first (factorises C)"] = timed(run_edit, "direct", moments)
            for value in ("direct", "match", "optimize"):
                _, edits[value] = timed(run_edit, value, moments)
        except NumericalError as exc:  # a small corpus can leave C singular
            print(f"  (edits skipped: {exc})")
    else:  # C = E[kkᵀ] is singular with fewer keys than its dimension: the solve would refuse
        print(f"  (edits skipped: {keys_counted} keys a layer is too few for a 3072-dimensional C)")

    # -- report --------------------------------------------------------------------------------
    threads = torch.get_num_threads()
    scale = tokens_run / sub_bare_tokens  # the per-layer runs at the subset's speed, over N prompts

    def row(name, n_prompts, clock_wall, clock_cpu, tokens, note=""):
        cpu = f"{clock_cpu:9.1f}" if clock_cpu is not None else f"{'-':>9}"
        util = f"{clock_cpu / (clock_wall * threads):5.2f}" if clock_cpu is not None else f"{'-':>5}"
        print(f"{name:<52}{n_prompts:>8}{clock_wall:>10.2f}{cpu}{util}{tokens / clock_wall:>11,.0f}  {note}")

    print()
    print(f"load    : {load_line(own_threads=torch.get_num_threads())} (this run's threads included)")
    print(f"{'step':<52}{'prompts':>8}{'wall s':>10}{'cpu s':>9}{'util':>5}{'tok/s':>11}")
    print("-" * 100)
    row("(a) bare forward", len(prompts), bare.wall, bare.cpu, tokens_run, f"{tokens_run:,} tokens run")
    row("(b) compute_stats, 12 layers, one pass", len(prompts), one_pass.wall, one_pass.cpu, tokens_run,
        f"{keys_counted:,} keys a layer")
    row("(c) bare forward (subset)", len(subset), sub_bare.wall, sub_bare.cpu, sub_bare_tokens)
    row("    compute_stats, 12 layers, one pass (subset)", len(subset), sub_one_wall, sub_one_cpu, sub_bare_tokens,
        "median of 3 runs among the per-layer runs")
    row("    per layer, early stop: 12 x compute_stats([l])", len(subset), early.wall, early.cpu, sub_bare_tokens,
        "tok/s: corpus tokens / time")
    row("    per layer, full forward: 12 passes (layer_stats)", len(subset), naive.wall, naive.cpu, sub_bare_tokens)
    row("    per layer, early stop, extrapolated", len(prompts), early.wall * scale, None, tokens_run,
        "x tokens run (N) / tokens run (M)")
    row("    per layer, full forward, extrapolated", len(prompts), naive.wall * scale, None, tokens_run)
    for value, clock in edits.items():
        print(f"{'(d) edit, memit, value=' + value:<52}{'':>8}{clock.wall:>10.2f}"
              f"{clock.cpu:>9.1f}{clock.cpu / (clock.wall * threads):>5.2f}{'':>11}  layers {args.edit_layers}, "
              f"{len(REQUESTS)} request")
    print("-" * 100)
    print("util = process CPU time / (wall time x threads): ~1 on an idle machine, lower when others compete")
    print(f"adapter.fingerprint() (run by every compute_stats and edit call): {fp_clock.wall:.3f} s")
    print()

    def verdict(ok):
        return "ok" if ok else "MISSED"

    chunk_median = statistics.median(chunk_ratios)
    ratios = [
        ("one pass / bare forward (median over the chunks)", chunk_median, f"<= {GOALS['one_pass_over_bare']}",
         chunk_median <= GOALS["one_pass_over_bare"]),
        ("one pass / bare forward (totals)", one_pass.wall / bare.wall, "(info: a burst of load skews it)", None),
        ("per layer full forward / one pass (same M prompts)", naive.wall / sub_one_wall,
         f">= {GOALS['per_layer_over_one_pass']}", naive.wall / sub_one_wall >= GOALS["per_layer_over_one_pass"]),
        ("per layer early stop / one pass (same M prompts)", early.wall / sub_one_wall,
         f">= {GOALS['per_layer_over_one_pass']}", early.wall / sub_one_wall >= GOALS["per_layer_over_one_pass"]),
        ("one pass / bare forward (same M prompts)", sub_one_wall / sub_bare.wall, "(info)", None),
    ]
    print(f"{'ratio':<56}{'value':>8}  goal")
    for name, value, goal, ok in ratios:
        print(f"{name:<56}{value:>8.2f}  {goal:<8} {verdict(ok) if ok is not None else ''}")
    for value, goal in (("direct, first (factorises C)", None), ("direct", "edit_direct"), ("match", None),
                        ("optimize", "edit_optimize")):
        if value not in edits:
            continue
        seconds = edits[value].wall
        limit = GOALS.get(goal) if goal else None
        tail = f"<= {limit} s  {verdict(seconds <= limit)}" if limit else "(info)"
        print(f"{'edit time, value=' + value + ' (s)':<56}{seconds:>8.2f}  {tail}")
    print()
    print(f"checks  : per-layer == one pass, max relative error: early stop {worst['early stop']:.1e}, "
          f"full forward {worst['full forward']:.1e} (<= {TOLERANCE:g}); one pass vs float64 brute force "
          f"(layers 0, {NUM_LAYERS - 1}, {len(subset)} prompts): {brute_err:.1e} (<= {TOLERANCE:g})  -- passed")

    if args.profile:
        profile_stats(adapter, Corpus(prompts[:2 * bs], "profile"), layers, scope, bs)
    print(f"total   : {time.perf_counter() - started:.0f} s")
    return 0


def profile_stats(adapter, corpus: Corpus, layers, scope: str, bs: int) -> None:
    """Where compute_stats spends its time: torch.profiler over two batches, top operators."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        compute_stats(adapter, layers, corpus, scope=scope, batch_size=bs, use_cache=False)
    print()
    print(f"profile of compute_stats, {len(layers)} layers, {len(corpus)} prompts (self CPU time by operator):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    sys.exit(main())
