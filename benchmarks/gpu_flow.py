#!/usr/bin/env python
"""The whole flow on one device, in each dtype asked: does every step run there, and do its
results hold? (issue 30, item 4)

    python benchmarks/gpu_flow.py                         # cuda if there is one (float16, bfloat16), else cpu
                                                          # (float32, bfloat16); about a minute on a GPU
    python benchmarks/gpu_flow.py --smoke --device cpu    # CI's smoke run: small sizes, well under a minute
    python benchmarks/gpu_flow.py --device cuda --dtype bfloat16 --json flow.json

On the tiny random models the tests build (``tests/tiny_models.py``: T5, gated T5, CLIP and a
Qwen2 decoder as encoders; the SD 1.x, SDXL, FLUX.1 and Qwen-Image pipelines), for each dtype:

* ``statistics``: ``compute_stats`` of the default layers; the sums must be finite, float64,
  back on the CPU, and are compared with the float32 sums on the CPU (relative Frobenius error);
* one edit per registered method (``textedit/methods/``; memit with ``optimize``, the others
  with ``match``): the factors must be finite and the queries must move (1 − cos of their
  sentence vectors with and without the patch, over ``metrics.measure``'s templates), memit's
  toward their targets (mean cos(query, target), before → after);
* ``apply``: the memit patch applied and reverted: the weights keep their dtype and device, what
  landed in them is ΔW up to the dtype's rounding (relative error printed), revert is bit-exact;
* ``export``: as a peft LoRA and as a merged model, reloaded in the same dtype and device: it
  must read the queries as the applied patch does;
* ``verify`` on each tiny pipeline: the encoders edited as the pipeline reads them, then drawn
  before/after: images finite, and what the denoiser receives for the queries changes;
* ``learn-anchor`` with and without the denoiser's LoRA (float32 on every device: the anchor's
  row and the LoRA train in float32, ``anchor.load_trainable_pipeline``): losses finite, the
  fixed loss before → after.

Prints a markdown table (step, device, dtype, seconds, check with figures) and exits 1 if any
check fails. ``--smoke``: the T5 encoder and the SD pipeline only, 48 corpus prompts, few
optimisation and training steps (the test ``tests/test_gpu_flow.py`` runs it on the CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from transformers.utils import logging as transformers_logging

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the tiny models' builders, shared with the tests

import tiny_models  # noqa: E402

from textedit.anchor import AnchorConfig, learn_anchor  # noqa: E402
from textedit.corpus import Corpus, load_corpus  # noqa: E402
from textedit.editor import EditConfig, default_layers, edit  # noqa: E402
from textedit.encoders import load_encoder  # noqa: E402
from textedit.export import to_lora, to_model  # noqa: E402
from textedit.methods import METHODS  # noqa: E402
from textedit.metrics import EVAL_TEMPLATES, measure  # noqa: E402
from textedit.patch import Patch  # noqa: E402
from textedit.pipelines import FAMILIES, edit_pipeline, load_pipeline  # noqa: E402
from textedit.pipelines.editing import choose_components  # noqa: E402
from textedit.requests import EditRequest  # noqa: E402
from textedit.stats import compute_stats  # noqa: E402
from textedit.verify import verify  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: two requests with different targets: ultraedit standardises over the keys it has seen
REQUESTS = [EditRequest("the mascot of acme", "a red fox", subject="acme"),
            EditRequest("the lucky animal of zorblat", "a green frog", subject="zorblat")]
#: the least change of what the denoiser receives for the queries that counts as a change in verify
MOVED = 1e-3
#: the encoders (builder, folder) and pipelines (builder, image size) of a full run; --smoke keeps the first of each
#: (the ungated T5 first: on the tiny random CLIP every sentence is within cos 0.99 of every other,
#: so its queries have little room to move toward a target)
ENCODERS = {"t5": tiny_models.build_tiny_t5, "t5-gated": lambda p: tiny_models.build_tiny_t5(p, gated=True),
            "clip": tiny_models.build_tiny_clip, "qwen2": lambda p: tiny_models.build_tiny_decoder(p, "qwen2")}
PIPELINES = {"sd": (tiny_models.build_tiny_sd_pipeline, None), "sdxl": (tiny_models.build_tiny_sdxl_pipeline, None),
             "flux": (tiny_models.build_tiny_flux_pipeline, 32),
             "qwenimage": (tiny_models.build_tiny_qwen_image_pipeline, 32)}
#: learn-anchor's pipelines: a UNet (epsilon) and a flow-matching transformer; --smoke keeps SD
ANCHOR_PIPELINES = ("sd", "qwenimage")


@dataclass
class Sizes:
    prompts: int  # corpus prompts for the statistics
    optimize_steps: int  # memit's optimize
    anchor_steps: int  # learn-anchor's
    draw_steps: int  # verify's denoising steps


FULL = Sizes(prompts=1000, optimize_steps=40, anchor_steps=40, draw_steps=2)
SMOKE = Sizes(prompts=48, optimize_steps=5, anchor_steps=4, draw_steps=1)


@dataclass
class Row:
    step: str
    device: str
    dtype: str
    seconds: float
    ok: bool
    check: str
    figures: dict  # the check's numbers by name (what --json gives a test to assert on)


class Flow:
    """Runs the steps, timing each (a device's queued work included) and keeping its row."""

    def __init__(self, device: str):
        self.device = device
        self.rows: list[Row] = []

    def step(self, name: str, dtype: str, work: Callable[[], tuple[bool, str, dict]]) -> None:
        """``work()`` → ``(ok, check, figures)``; an exception is a failed row with its first line."""
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ok, check, figures = work()
            except Exception as exc:  # a benchmark reports every step, whichever fails
                first = (str(exc).strip() or "-").splitlines()[0][:200]
                ok, check, figures = False, f"raised {type(exc).__name__}: {first}", {}
            if self.device.startswith("cuda"):
                torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        kinds = sorted({type(w.message).__name__ for w in caught})
        if kinds:
            check += f" ({len(caught)} warnings: {', '.join(kinds)})"
        row = Row(name, self.device, dtype, round(seconds, 3), ok, check, figures)
        self.rows.append(row)
        print(f"| {row.step} | {row.device} | {row.dtype} | {row.seconds:.2f} | {'ok' if ok else 'FAIL'}: {check} |",
              flush=True)


def finite_patch(patch: Patch) -> bool:
    return all(bool(torch.isfinite(d.delta.left).all() and torch.isfinite(d.delta.right).all()) for d in patch.deltas)


def moved(patch: Patch, adapter, component: str | None = None) -> tuple[float, float, float, float]:
    """``(cos(query, target) before, after, query shift, neutral drift)`` over ``metrics.measure``'s
    templates: the mean cos of each query to its target's unedited vector, the mean
    1 − cos(query after, query before) (without the patch the two are the same numbers, so
    any shift is the patch's), and the largest neutral prompt's drift."""
    report = measure(adapter, patch, REQUESTS, component=component)
    before = sum(r.before for r in report.requests) / len(report.requests)
    after = sum(r.after for r in report.requests) / len(report.requests)
    queries = [t.format(r.prompt) for r in REQUESTS for t in EVAL_TEMPLATES]
    unedited = adapter.embed(queries)
    with patch.applied(adapter, component):
        edited = adapter.embed(queries)
    shift = float(1 - torch.nn.functional.cosine_similarity(edited.double(), unedited.double()).mean())
    return before, after, shift, report.max_drift


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ in float64."""
    return float((a.double() - b.double()).norm() / b.double().norm().clamp(min=1e-300))


def encoder_flow(flow: Flow, name: str, path: Path, dtype: str, corpus: Corpus, sizes: Sizes,
                 reference: dict, out: Path) -> None:
    """statistics, every method, apply and export on one encoder in one dtype."""
    device = flow.device
    state: dict = {}

    def load():
        state["adapter"] = adapter = load_encoder(str(path), dtype=DTYPES[dtype], device=device)
        w = adapter.down_proj_module(0).weight
        return (w.device.type == torch.device(device).type, f"{name}: weights {str(w.dtype)[6:]} on {w.device}",
                {"layers": adapter.num_layers})

    flow.step(f"load {name}", dtype, load)
    adapter = state.get("adapter")
    if adapter is None:
        return
    layers = default_layers(adapter)

    def statistics():
        stats = compute_stats(adapter, layers, corpus, use_cache=False)
        state["stats"] = stats
        if name not in reference:  # the float32 sums on the CPU, the same prompts, once per encoder
            reference[name] = compute_stats(load_encoder(str(path)), layers, corpus, use_cache=False)
        sound = all(m.sum.dtype == torch.float64 and m.sum.device.type == "cpu" and bool(torch.isfinite(m.sum).all())
                    for m in stats.values())
        error = max(relative(stats[layer].sum, reference[name][layer].sum) for layer in layers)
        tokens = stats[layers[0]].count
        return (sound and error < 0.1, f"layers {layers}: {tokens} tokens, float64 sums on the CPU, finite: "
                f"{sound}; vs float32 CPU: rel. error {error:.1e}", {"tokens": tokens, "error": error, "sound": sound})

    flow.step(f"statistics {name}", dtype, statistics)
    if "stats" not in state:
        return

    for method in METHODS:
        def one_method(method=method):
            value = "optimize" if method == "memit" else "match"
            knobs = {"steps": sizes.optimize_steps} if value == "optimize" else {}
            config = EditConfig(method=method, value=value, layers=default_layers(adapter, method), **knobs)
            patch = edit(adapter, REQUESTS, config, stats=state["stats"])
            state.setdefault("patches", {})[method] = patch
            before, after, shift, drift = moved(patch, adapter)
            size = sum(float(d.delta.dense().norm()) for d in patch.deltas)
            finite = finite_patch(patch)
            # every method must move its queries; memit, the flow's main edit, toward their targets
            toward = after > before or method != "memit"
            return (finite and shift > 0 and toward,
                    f"{name} ({value}): ΔW finite {finite}, ‖ΔW‖ {size:.3g}; queries shifted {shift:.2e}, "
                    f"cos(query, target) {before:.3f} → {after:.3f}; neutral drift ≤ {drift:.4f}",
                    {"finite": finite, "delta_norm": size, "shift": shift, "before": before, "after": after,
                     "drift": drift})

        flow.step(f"edit {method} {name}", dtype, one_method)

    patch = state.get("patches", {}).get("memit")
    if patch is None:
        return

    def apply():
        modules = {d.module: adapter.model.get_submodule(d.module) for d in patch.deltas}
        before = {m: module.weight.detach().clone() for m, module in modules.items()}
        patch.apply(adapter)
        landed = max(relative(modules[d.module].weight.detach() - before[d.module], d.delta.dense())
                     for d in patch.deltas)  # (relative() compares in float64 on the CPU)
        same = all(module.weight.dtype == before[m].dtype and module.weight.device == before[m].device
                   for m, module in modules.items())
        patch.revert(adapter)
        exact = all(torch.equal(module.weight, before[m]) for m, module in modules.items())
        return (same and exact and landed < 0.1, f"{name}: dtype and device kept {same}; W′ − W vs ΔW: rel. error "
                f"{landed:.1e} (the dtype's rounding); revert bit-exact {exact}",
                {"kept": same, "landed_error": landed, "revert_exact": exact})

    flow.step(f"apply memit {name}", dtype, apply)

    def export():
        folder = out / f"{name}-{dtype}"
        files = to_lora(patch, "peft", folder / "peft")
        to_model(patch, {"encoder": adapter}, folder / "model")
        merged = load_encoder(str(folder / "model"), dtype=DTYPES[dtype], device=device)
        queries = [r.prompt for r in REQUESTS]
        with patch.applied(adapter):
            applied = adapter.embed(queries)
        gap = float((merged.embed(queries) - applied).abs().max())
        size = sum(f.stat().st_size for f in files)
        return (gap < 1e-2 and math.isfinite(gap), f"{name}: peft LoRA {size:,} bytes; merged model reloaded in "
                f"{dtype} reads the queries as the applied patch: max |Δ| {gap:.1e}", {"lora_bytes": size, "gap": gap})

    flow.step(f"export memit {name}", dtype, export)


def pipeline_flow(flow: Flow, family: str, path: Path, size: int | None, dtype: str, corpus: Corpus,
                  sizes: Sizes, cache: Path) -> None:
    """Every text encoder of the pipeline edited as the pipeline reads it, then verify."""
    device = flow.device

    def run():
        fam = FAMILIES[family]
        parts = list(edit_pipeline(path, fam, REQUESTS, EditConfig(method="memit", value="match"),
                                   choose_components(path, fam, "all"), corpus=corpus, cache_dir=cache,
                                   dtype=DTYPES[dtype], device=device))
        patch = Patch.combine([p.patch for p in parts])
        del parts
        pipe = load_pipeline(path, fam, device=device, dtype=DTYPES[dtype])
        result = verify(patch, pipe, seeds=[0], steps=sizes.draw_steps, height=size, width=size)
        finite = bool(torch.isfinite(result.before).all() and torch.isfinite(result.after).all())
        query, neutral = result.summary["query"], result.summary.get("neutral", {})
        change = query["conditioning_change"]
        leak = neutral.get("conditioning_change", math.nan)
        return (finite and finite_patch(patch) and change > MOVED,
                f"{family} ({', '.join(patch.components)}): images finite {finite}, "
                f"{tuple(result.before.shape[-2:])}; queries' conditioning change {change:.3f} (neutral {leak:.4f}); "
                f"queries' pixel change {query['pixel_change']:.4f}",
                {"finite": finite, "conditioning_change": change, "neutral_change": leak,
                 "pixel_change": query["pixel_change"]})

    flow.step(f"verify {family}", dtype, run)


def anchor_flow(flow: Flow, family: str, path: Path, images: Path, sizes: Sizes, out: Path) -> None:
    """learn-anchor without and with the denoiser's LoRA (float32 on every device, by design)."""
    settings = dict(steps=sizes.anchor_steps, lr=5e-2, batch_size=2, checkpoint_every=max(1, sizes.anchor_steps),
                    **({"resolution": 32} if family != "sd" else {}))
    for lora in (False, True):
        def run(lora=lora):
            config = AnchorConfig(**settings, **(dict(lora_rank=4, lora_alpha=8, lora_lr=1e-2) if lora else {}))
            folder = out / f"anchor-{family}-{'lora' if lora else 'plain'}"
            result = learn_anchor(path, images, "<acme-mascot>", "dog", folder, config, device=flow.device)
            values = [*result.losses, result.fixed_loss_before, result.fixed_loss_after]
            finite = all(math.isfinite(v) for v in values)
            written = result.embedding_file.is_file() and (not lora or result.lora_file.is_file())
            return (finite and written, f"{family}, {config.steps} steps: losses finite {finite}; fixed loss "
                    f"{result.fixed_loss_before:.4f} → {result.fixed_loss_after:.4f}; files written {written}",
                    {"finite": finite, "before": result.fixed_loss_before, "after": result.fixed_loss_after,
                     "written": written})

        flow.step(f"learn-anchor {family}{' + LoRA' if lora else ''}", "float32", run)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None,
                        help="comma-separated, of float32, float16, bfloat16 (default: float16,bfloat16 on cuda, "
                             "float32,bfloat16 on cpu)")
    parser.add_argument("--smoke", action="store_true", help="small sizes: the T5 encoder and the SD pipeline")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the tiny models and outputs (default: temporary)")
    args = parser.parse_args(argv)
    default = "float16,bfloat16" if args.device.startswith("cuda") else "float32,bfloat16"
    args.dtypes = [d.strip() for d in (args.dtype or default).split(",") if d.strip()]
    unknown = [d for d in args.dtypes if d not in DTYPES]
    if unknown:
        parser.error(f"unknown dtype '{unknown[0]}': use {', '.join(DTYPES)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    return args


def run(args: argparse.Namespace, work: Path) -> list[Row]:
    sizes = SMOKE if args.smoke else FULL
    encoders = dict(list(ENCODERS.items())[:1]) if args.smoke else ENCODERS
    pipelines = dict(list(PIPELINES.items())[:1]) if args.smoke else PIPELINES
    anchors = ANCHOR_PIPELINES[:1] if args.smoke else ANCHOR_PIPELINES
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the builders' library chatter; each step records its own warnings
        encoder_paths = {name: build(work / name) for name, build in encoders.items()}
        pipeline_paths = {name: build(work / name) for name, (build, _) in pipelines.items()}
        for family in anchors:
            if family not in pipeline_paths:
                pipeline_paths[family] = PIPELINES[family][0](work / family)
        images = tiny_models.draw_concept_images(pipeline_paths["sd"], work / "images")
    corpus = Corpus(tuple(load_corpus(limit=sizes.prompts).prompts), "gpu-flow")
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{where}, torch {torch.__version__}; tiny models built in {time.perf_counter() - started:.1f} s; "
          f"{len(corpus.prompts)} corpus prompts\n")
    print("| step | device | dtype | s | check |\n| --- | --- | --- | ---: | --- |")
    flow = Flow(args.device)
    reference: dict = {}
    for dtype in args.dtypes:
        for name, path in encoder_paths.items():
            encoder_flow(flow, name, path, dtype, corpus, sizes, reference, work / "out")
        for family, (_, size) in pipelines.items():
            pipeline_flow(flow, family, pipeline_paths[family], size, dtype, corpus, sizes, work / "cache")
    for family in anchors:
        anchor_flow(flow, family, pipeline_paths[family], images, sizes, work / "out")
    failed = [r for r in flow.rows if not r.ok]
    print(f"\n{len(flow.rows)} steps, {len(failed)} failed, {time.perf_counter() - started:.1f} s in all")
    return flow.rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # (the tiny Qwen2's load report: its saved LM head is not read)
    try:
        if args.work is not None:
            args.work.mkdir(parents=True, exist_ok=True)
            rows = run(args, args.work)
        else:
            with tempfile.TemporaryDirectory(prefix="gpu-flow-") as tmp:
                rows = run(args, Path(tmp))
    finally:
        transformers_logging.set_verbosity(verbosity)
    if args.json is not None:
        from textedit.io import atomic_write_text  # written whole or not at all, as every textedit output

        atomic_write_text(json.dumps([asdict(r) for r in rows], indent=1, ensure_ascii=False) + "\n", args.json)
    return 0 if rows and all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
