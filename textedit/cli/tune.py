"""``tune``: an encoder's edit settings measured on the model itself, written as its profile
(``textedit/tune.py``, docs/tune.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..corpus import load_corpus
from . import options  # options._load: the one place that loads a model (tests stub it)
from .options import (OUTPUT, SCORING, TRACING, _cache_dir_option, _component_option, _corpus_option, _device_option,
                      _dtype_option, _existing, _start_libraries, _threads_option, _writable_destination,
                      _writable_file, command, err, out)


@command()
def tune(
    model: str = typer.Argument("default", help="model id or folder ('default': the packaged MiniLM)"),
    component: Optional[str] = _component_option(),
    dev: Optional[Path] = typer.Option(None, help="knowledge dev set JSON (default: the shipped "
                                                  "textedit/data/knowledge_dev.json)", rich_help_panel=SCORING),
    limit: Optional[int] = typer.Option(None, min=1, help="the first N concepts of the dev set",
                                        rich_help_panel=SCORING),
    samples: int = typer.Option(10, min=1, help="noise samples of the causal trace", rich_help_panel=TRACING),
    out_path: Optional[Path] = typer.Option(None, "--out", help="the profile (default: the cache's profiles/ "
                                                                 "folder, where apply and eval look)",
                                            rich_help_panel=OUTPUT),
    corpus: Optional[Path] = _corpus_option(),
    cache_dir: Optional[Path] = _cache_dir_option(),
    dtype: Optional[str] = _dtype_option(),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
):
    """Choose MODEL's edit settings by measurement and write them as its profile.

    Causal tracing proposes layer windows; edits of the knowledge dev set (one concept at a
    time, judged by the unedited model) try windows, λ and the preservation weight; the rule
    keeps the efficacy floor first, then no more drift than the built-in defaults, then the
    best balance (docs/tune.md). Each finished trial is saved beside the profile, so a stopped
    run resumes where it was.
    """
    if dev is not None:
        _existing(dev, "--dev")
    _writable_file(out_path)
    _writable_destination(cache_dir, option="--cache-dir")
    prompts = load_corpus(corpus)
    _start_libraries()
    from ..editor import default_layers  # deferred: a command imports what it computes with when it runs
    from ..eval.knowledge import load_knowledge
    from ..profile import profile_path
    from ..progress import progress_bar
    from ..tune import DEFAULT_DEV, Tuner, layer_effects, propose_windows

    dev_path = dev or DEFAULT_DEV
    cases = load_knowledge(dev_path, limit)
    adapter = options._load(model, component, dtype, device, False)
    path = out_path or profile_path(adapter.fingerprint(), cache_dir)
    state = path.with_name(path.name + ".state.json")
    with err.status(f"tracing {len(cases)} queries"):
        effects = layer_effects(adapter, cases, samples)
    windows = propose_windows(effects, default_layers(adapter))
    ranked = sorted(range(len(effects)), key=lambda layer: -effects[layer])
    out.print(f"causal effect of each layer's MLP at the subject (best first): "
              f"{', '.join(f'{layer} ({effects[layer]:.3f})' for layer in ranked[:4])}; windows tried: "
              f"{', '.join(str(w) for w in windows)}", highlight=False)
    bar = progress_bar(console=err, remaining=True)
    with bar:
        task = bar.add_task("trials", total=None)
        tuner = Tuner(adapter, cases, state=state, corpus=prompts, cache_dir=cache_dir, benchmark=dev_path.name,
                      on_case=lambda: bar.advance(task))
        if tuner.resumed:
            err.print(f"resuming: {tuner.resumed} trial(s) already measured in {state}", highlight=False)
        bar.update(task, total=tuner.planned(windows) * len(cases), completed=tuner.resumed * len(cases))
        profile = tuner.run(windows)
    table = Table(title=f"trials on {dev_path.name} ({len(cases)} concepts, one per edit), %")
    for column in ("#", "layers", "λ", "keep", "effic.", "para.", "subj.", "rel.", "KS", "drift"):
        table.add_column(column, justify="left" if column == "layers" else "right")
    for i, trial in enumerate(profile.trials):
        s, settings = trial["scores"], trial["settings"]
        table.add_row(str(i), ",".join(map(str, settings["layers"])), f"{settings['lam']:g}",
                      f"{settings.get('preserve_weight', 0):g}" if "preserve_weight" in settings else "-",
                      *(f"{100 * s[k]:.1f}" for k in ("efficacy", "generality", "same_subject", "same_relation", "ks")),
                      f"{s['drift']:.4f}")
    out.print(table)
    chosen = profile.trials[profile.chosen]["settings"]
    out.print(f"trial 0 is the built-in defaults; chosen: trial {profile.chosen} (layers {chosen['layers']}, "
              f"λ {chosen['lam']:g}" + (f", preserve weight {chosen['preserve_weight']:g}" if "preserve_weight" in chosen
                                        else "") + ")", highlight=False)
    profile.save(path)
    state.unlink(missing_ok=True)  # the profile holds every trial now
    out.print(f"profile written to {path}: apply and eval use it for this model", highlight=False, soft_wrap=True)
