"""``eval``: every row of a benchmark edited and scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from ..corpus import load_corpus
from ..errors import TexteditError
from ..methods import METHODS
from ..progress import progress_bar
from ..settings import VALUE_CONFIGS
from . import options  # options._load: the one place that loads a model (tests stub it)
from .options import (EDIT, MODEL, OUTPUT, _cache_dir_option, _component_option, _corpus_option, _device_option,
                      _dtype_option, _existing, _floor_option, _given, _key_option, _methods_that,
                      _parse_layers, _preserve_option, _check_profile, _profile_option, _start_libraries,
                      _threads_option, _with_edit_options, _with_profile, _writable_destination, _writable_file,
                      command, err, out)


#: ``eval --mode``'s modes: ``textedit.eval.run.MODES``, named here so that a wrong one is refused
#: before torch loads (``tests/test_cli.py`` holds the two equal)
EVAL_MODES = ("single", "batch", "sequential")


@command("eval")
@_with_edit_options(settings=False)
def eval_(
    benchmark: Path = typer.Argument(..., help="TIMED or RoAD CSV (format told from the header), or a knowledge "
                                                "or world-knowledge benchmark JSON (benchmarks/data/"
                                                "knowledge_*.json, world_knowledge.json; told by its fields)"),
    model: Optional[str] = typer.Option(None, help="model id or folder (default: the packaged MiniLM)",
                                        rich_help_panel=MODEL),
    component: Optional[str] = _component_option("pipeline component: text_encoder, text_encoder_2, ..."),
    method: str = typer.Option("memit", help="one or more methods, comma-separated (e.g. memit,alphaedit): "
                                             f"{' | '.join(METHODS)}", rich_help_panel=EDIT),
    layers: Optional[list[str]] = typer.Option(None, help="layer set, e.g. '1-3'; repeat for several sets",
                                               rich_help_panel=EDIT),
    value: Optional[str] = typer.Option(None, help=f"value strategy: {' | '.join(VALUE_CONFIGS)}",
                                        rich_help_panel=EDIT),
    mode: str = typer.Option("single", help="single (each row alone, reverted) | batch (all rows, one edit) | "
                                            "sequential (each row on top of the earlier ones); "
                                            "'single,batch' runs both"),
    key: Optional[str] = _key_option(),
    preserve: Optional[bool] = _preserve_option(),
    floor: Optional[str] = _floor_option(),
    profile: Optional[str] = _profile_option(),
    remember: Optional[bool] = typer.Option(None, "--remember/--no-remember", help="sequential mode: keep earlier "
                                            f"edits' keys fixed ({_methods_that('remembers_keys')}) or continue "
                                            f"the method's state ({_methods_that('carries_state')}) (default: on "
                                            "where the method can)", rich_help_panel=EDIT),
    limit: Optional[int] = typer.Option(None, help="only the first N rows"),
    batch_size: Optional[int] = typer.Option(None, help="batch mode: N rows per edit (consecutive chunks, "
                                                        "reverted between them); default: all rows in one edit"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write every setting's per-row results here",
                                            rich_help_panel=OUTPUT),
    corpus: Optional[Path] = _corpus_option(),
    cache_dir: Optional[Path] = _cache_dir_option(),
    dtype: Optional[str] = _dtype_option(),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
    edit_options: Optional[dict] = None,
):
    """Edit every row of BENCHMARK and score efficacy, generality and specificity (frozen judge)."""
    _existing(benchmark, "benchmark file")
    modes = [m.strip() for m in mode.split(",")]
    for m in modes:
        if m not in EVAL_MODES:
            raise TexteditError(f"--mode '{m}': use single, batch, sequential, or several comma-separated")
    if batch_size is not None and (batch_size < 1 or "batch" not in modes):
        raise TexteditError(f"--batch-size {batch_size}: needs a positive number of rows and --mode batch")
    if remember is not None and "sequential" not in modes:
        raise TexteditError(f"--{'' if remember else 'no-'}remember: a setting of --mode sequential")
    layer_sets = [_parse_layers(text) for text in layers] if layers else [None]
    settings = [_given(method=name.strip(), layers=layer_set, value=value, key=key, auto_preserve=preserve,
                       floor=floor, **edit_options) for name in method.split(",") for layer_set in layer_sets]
    stats_corpus = load_corpus(corpus) if corpus else None
    _writable_destination(cache_dir, option="--cache-dir")
    _writable_file(json_out, "--json")
    _check_profile(profile)
    _start_libraries()
    from ..editor import EditConfig, resolve_layers  # deferred: a command imports what it computes with when it runs
    from ..encoders import DEFAULT_MODEL
    from ..eval.benchmark import FORMAT_NAMES, load_benchmark
    from ..eval.knowledge import load_knowledge
    from ..eval.world import json_format, load_world
    from ..eval.run import Evaluator
    from ..io import atomic_write_text

    configs = [EditConfig(**s) for s in settings]  # every setting is checked before any work starts
    if benchmark.suffix.lower() == ".json":
        fmt = json_format(benchmark)
        cases = load_world(benchmark, limit) if fmt == "world" else load_knowledge(benchmark, limit)
    else:
        fmt, cases = load_benchmark(benchmark, limit)
    adapter = options._load(model or DEFAULT_MODEL, component, dtype, device, False)
    configs = [_with_profile(config, adapter, profile, cache_dir) for config in configs]
    for config in configs:
        resolve_layers(adapter, config)
    with err.status("judging the unedited encoder"):
        evaluator = Evaluator(adapter, cases, corpus=stats_corpus, cache_dir=cache_dir)
    results = [evaluator.baseline()]
    with progress_bar(console=err, transient=True) as bar:
        for config in configs:
            for m in modes:
                task = bar.add_task(f"{config.method} {m}", total=len(evaluator.edit_cases))
                results.append(evaluator.run(config, m, on_case=lambda: bar.advance(task),
                                             batch_size=batch_size if m == "batch" else None,
                                             remember=remember if m == "sequential" else None))
                bar.remove_task(task)

    knowledge, world = fmt == "knowledge", fmt == "world"
    counted = f"{len(cases)} concept{'' if len(cases) == 1 else 's'}" if knowledge else f"{len(cases)} rows" if not world else \
        f"{len(evaluator.edit_cases)} edited pairs, {results[0].summary.unedited} unedited"
    # one row per score, one column per result (the unedited encoder first): any number of
    # scores fits 80 columns with every figure whole, and results read side by side
    table = Table(title=f"{benchmark.name} ({FORMAT_NAMES.get(fmt, fmt)}, {counted}) on {adapter.name}",
                  box=box.SIMPLE_HEAD)
    scores = ("efficacy", "generality", "same_subject", "same_relation") if knowledge else \
        ("efficacy", "edited_retrieval", "unedited_retrieval", "lookalike_retrieval") if world else \
        ("efficacy", "generality", "specificity")
    table.add_column("score")
    for r in results:
        label = r.label + ("" if not r.edits or r.hyperparameters.get("auto_preserve") else " no-preserve") \
            + (" no-remember" if r.hyperparameters.get("remember") is False else "")
        table.add_column(label if r.mode == "-" else f"{label}, {r.mode}", justify="right")
    # world: retrieval is the share of prompts whose nearest answer is their own (the unedited column: before)
    rows = [(name.replace("_", " "), lambda s, name=name: f"{getattr(s, name):.1%}") for name in scores]
    rows.append(("drift", lambda s: f"{s.drift:.4f}"))
    if knowledge or world:
        rows.append(("max drift", lambda s: f"{s.max_drift:.3f}"))
    if world:
        rows += [("neutral drift", lambda s: f"{s.neutral_drift:.4f}"),
                 ("neutral max", lambda s: f"{s.neutral_max_drift:.3f}")]
    for name, shown in rows:
        table.add_row(name, *(shown(r.summary) for r in results))
    table.add_row("s / edit", *("-" if not r.edits else f"{r.seconds_per_edit:.2f}" for r in results))
    out.print(table)
    if json_out is not None:
        report = {"benchmark": str(benchmark), "format": fmt, "model": model or DEFAULT_MODEL,
                  "fingerprint": adapter.fingerprint(), "rows": len(evaluator.edit_cases if world else cases),
                  "results": [r.to_dict() for r in results]}
        atomic_write_text(json.dumps(report, indent=1), json_out)
        out.print(f"per-row results written to {json_out}")
