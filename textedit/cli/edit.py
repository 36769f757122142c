"""``apply`` (an edit spec → a patch, measured) and ``erase`` (concepts → a patch)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

import typer

from ..concepts import Concept, Erasure, parse_concept_list
from ..corpus import load_corpus
from ..errors import TexteditError
from ..requests import EditRequest
from ..spec import load_spec
from . import options  # options._load: the one place that loads a model (tests stub it)
from .options import (EDIT, MODEL, OUTPUT, PRESERVATION, STATISTICS, _cache_dir_option, _check_pipeline, _check_scale,
                      _component_option, _corpus_option, _device_option, _dtype_option, _existing, _floor_option,
                      _given, _key_option, _methods_that, _preserve_option, _profile_option, _check_profile,
                      _start_libraries, _threads_option, _with_edit_options, _with_profile, _writable_destination,
                      command, err, out)
from .report import _check_drift, _check_floor, _erase_and_report, _print_measure, _requests_table


@command()
@_with_edit_options
def apply(
    spec: Path = typer.Argument(..., help="edit spec (JSON)"),
    model: Optional[str] = typer.Option(None, help="model id or folder; overrides the spec's 'model'",
                                        rich_help_panel=MODEL),
    component: Optional[str] = _component_option("pipeline component: text_encoder, text_encoder_2, ...; with "
                                                 "--pipeline-path also 'all'"),
    pipeline_path: Optional[str] = typer.Option(None, "--pipeline-path", help="diffusers pipeline (hub id or "
                                                "folder): edit its own encoders, as it reads them",
                                                rich_help_panel=MODEL),
    pipeline: str = typer.Option("auto", help="pipeline family with --pipeline-path", rich_help_panel=MODEL),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="allow custom model code from the "
                                           "model repo",
                                           rich_help_panel=MODEL),
    dtype: Optional[str] = _dtype_option(),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="patch directory (default: patches/<spec name>)",
                                           rich_help_panel=OUTPUT),
    after: Optional[list[Path]] = typer.Option(None, "--after", help="patch directory to apply first (repeatable, "
                                               "in order): the new patch is solved on top of them and goes after",
                                               rich_help_panel=EDIT),
    scale: Optional[float] = typer.Option(None, help="strength of the edit: the patch written is ΔW × SCALE "
                                                     "(default 1: as solved; 0.5: half way to the targets)",
                                          rich_help_panel=EDIT),
    remember: Optional[bool] = typer.Option(None, "--remember/--no-remember", help="keep the keys stored by the "
                                            "--after patches fixed, and store this edit's keys for later edits "
                                            f"({_methods_that('remembers_keys')}), or continue and store the "
                                            f"method's state ({_methods_that('carries_state')}) (default: on with "
                                            f"--after, and for {_methods_that('remember_by_default')})",
                                            rich_help_panel=EDIT),
    key: Optional[str] = _key_option(),
    preserve: Optional[bool] = _preserve_option(),
    floor: Optional[str] = _floor_option(),
    profile: Optional[str] = _profile_option(),
    require_floor: bool = typer.Option(False, "--require-floor", help="write nothing (exit 1) if a request misses "
                                       "the efficacy floor", rich_help_panel=PRESERVATION),
    max_drift: Optional[float] = typer.Option(None, "--max-drift", help="write nothing (exit 2) if a neutral "
                                              "or kept prompt drifts past this (1 − cos to itself before; default: "
                                              "only name those past 0.05)", rich_help_panel=PRESERVATION),
    scope: Optional[str] = typer.Option(None, help="statistics token scope: prompt | pipeline (the default with "
                                                   "--pipeline-path)", rich_help_panel=STATISTICS),
    corpus: Optional[Path] = _corpus_option(),
    cache_dir: Optional[Path] = _cache_dir_option(),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
    edit_options: dict = None,
):
    """Edit the encoder as SPEC says, write the patch, and report what moved."""
    parsed = load_spec(spec)
    if parsed.repeated:
        shown = ", ".join(parsed.repeated[:3]) + (f" and {len(parsed.repeated) - 3} more" if len(parsed.repeated) > 3
                                                  else "")
        err.print(f"note: {len(parsed.repeated)} request{'s' if len(parsed.repeated) > 1 else ''} repeat earlier ones "
                  f"and {'are' if len(parsed.repeated) > 1 else 'is'} edited once ({shown})", highlight=False)
    settings = dict(parsed.settings)
    settings.update({**edit_options, **_given(scope=scope, key=key, auto_preserve=preserve, floor=floor)})
    if pipeline_path is not None:  # the denoiser reads every padded position: preserve what it sees
        settings.setdefault("scope", "pipeline")
    _check_scale(scale)
    if max_drift is not None and not 0 <= max_drift < float("inf"):
        raise TexteditError(f"--max-drift {max_drift}: give a drift of 0 or more (1 − cos, at most 2)")
    stats_corpus = load_corpus(corpus) if corpus else None
    component = component or parsed.component
    if (after or remember) and (pipeline_path is not None or parsed.erasure is not None
                                or parsed.anchor_embedding is not None):
        raise TexteditError("--after / --remember edit one encoder with a knowledge spec: use --model, not "
                            "--pipeline-path, and a spec without 'erase' or 'anchor_embedding'")
    if pipeline_path is not None:
        _check_pipeline(pipeline)
        if model is not None or trust_remote_code:
            raise TexteditError("--pipeline-path names the model: drop --model / --trust-remote-code")
        if parsed.anchor_embedding is not None or parsed.erasure is not None:
            raise TexteditError(f"{spec.name} edits one encoder (anchor_embedding or erase): use --model "
                                f"{pipeline_path} --component text_encoder")
    for path in after or []:
        _existing(path, "--after", folder=True)
    _check_profile(profile)
    _writable_destination(cache_dir, option="--cache-dir")
    out_dir = _writable_destination(out_dir or Path("patches") / spec.stem, "patch.json", "a patch")
    _start_libraries()
    from ..anchor import add_anchor  # deferred: a command imports what it computes with when it runs
    from ..editor import EditConfig, edit
    from ..encoders import DEFAULT_MODEL
    from ..metrics import NEUTRAL_PROMPTS, measure
    from ..preserve import protection, same_subject_checks

    config = EditConfig(**settings)
    if pipeline_path is not None:
        return _apply_to_pipeline(spec.name, parsed, config, pipeline_path, pipeline, component, out_dir,
                                  stats_corpus, cache_dir, dtype, device, scale, max_drift)
    model_ref = model or parsed.model or DEFAULT_MODEL
    adapter = options._load(model_ref, component, dtype, device, trust_remote_code)
    if parsed.erasure is not None:
        return _erase_and_report(f"{spec.name} on {adapter.name}", adapter, parsed.erasure, settings, out_dir,
                                 component, stats_corpus, cache_dir)
    config = _with_profile(config, adapter, profile, cache_dir)
    requires = {}
    if parsed.anchor_embedding is not None:  # the learned anchor token joins the encoder before the edit
        requires[component or "encoder"] = add_anchor(adapter, parsed.anchor_embedding, parsed.anchor, component)

    started = time.perf_counter()
    history = []
    if after:
        patch, history = _edit_after(adapter, parsed.requests, config, after, remember, component or "encoder",
                                     stats_corpus, cache_dir, parsed.preserve)
    else:
        patch = edit(adapter, parsed.requests, config, corpus=stats_corpus, cache_dir=cache_dir,
                     component=component or "encoder", progress=True, remember=remember, preserve=parsed.preserve)
    seconds = time.perf_counter() - started
    _check_floor(patch, require_floor)
    patch.requires = requires
    if scale is not None:
        patch = patch.scaled(scale)
    # measured before it is written: the drift guard may refuse it
    report = measure(adapter, patch, parsed.requests, parsed.neutral or NEUTRAL_PROMPTS, component=component,
                     preserved=same_subject_checks(parsed.requests, patch.hyperparameters.get("preserved", [])))
    _check_drift(report, max_drift)
    patch.save(out_dir)
    _print_measure(f"{spec.name} on {adapter.name}: {patch.method}, layers {patch.hyperparameters['layers']}, "
                   f"value {patch.hyperparameters['value']}", report, named=parsed.preserve,
                   kept_in_solve=bool(patch.hyperparameters.get("preserved")))
    for line in protection(parsed.requests, bool(patch.hyperparameters.get("auto_preserve")),
                           patch.hyperparameters.get("key") or "subject"):
        out.print(f"protects: {line}", highlight=False)
    earlier = [EditRequest(**r) for p in history for r in p.requests]
    if earlier:  # what the new patch does to the edits it goes after
        kept = measure(adapter, patch, earlier, neutral=[], component=component)
        out.print(_requests_table("edits of the --after patches: similarity to their targets, before → after this "
                                  "patch", kept.requests))
    out.print(f"patch {patch.id} written to {out_dir} ({seconds:.1f} s to edit)")


def _edit_after(adapter, requests, config, after: list[Path], remember: bool | None, component: str, corpus,
                cache_dir, preserve=()):
    """``apply --after``: :func:`textedit.sequential.edit_after` on the loaded patches, saying which
    of them store no keys to keep (or no state to continue); returns the new patch and the loaded
    ``after`` patches."""
    from ..patch import Patch  # deferred: a command imports what it computes with when it runs
    from ..sequential import edit_after, patches_without_keys, patches_without_state

    history = [Patch.load(path) for path in after]
    method = config.method_class
    if remember is not False:
        if method.remembers_keys:
            for i in patches_without_keys(history, component):
                err.print(f"note: {after[i]} stores no keys (made without --remember), so this edit does not keep "
                          "its edits fixed")
        if method.carries_state:
            for i in patches_without_state(history, config.method, component):
                err.print(f"note: {after[i]} stores no {config.method} state (made without --remember), so this "
                          "edit's state does not include its edit")
    patch = edit_after(adapter, requests, config, history, remember=remember, component=component, corpus=corpus,
                       cache_dir=cache_dir, progress=True, preserve=preserve)
    return patch, history


def _apply_to_pipeline(spec_name: str, parsed, config, pipeline_path: str, pipeline: str, component: str | None,
                       out_dir: Path, corpus, cache_dir: Path | None, dtype: str | None, device: str,
                       scale: float | None = None, max_drift: float | None = None) -> None:
    """``apply --pipeline-path``: :func:`textedit.pipelines.edit_pipeline_components`, its
    parts' tables, and the one patch for all written."""
    from ..metrics import NEUTRAL_PROMPTS  # deferred: a command imports what it computes with when it runs
    from ..pipelines import edit_pipeline_components

    result = edit_pipeline_components(pipeline_path, parsed.requests, config, component, pipeline=pipeline,
                                      neutral=parsed.neutral or NEUTRAL_PROMPTS, scale=scale, corpus=corpus,
                                      cache_dir=cache_dir, dtype=dtype, device=device, progress=True,
                                      preserve=parsed.preserve)
    for part in result.parts:
        _print_measure(f"{spec_name} on {part.encoder} ({result.family.title}): {part.patch.method}, layers "
                       f"{part.patch.hyperparameters['layers']}, value {part.patch.hyperparameters['value']}",
                       part.report, named=parsed.preserve,
                       kept_in_solve=bool(part.patch.hyperparameters.get("preserved")))
    for part in result.parts:  # every encoder's drift is checked before the one patch is written
        _check_drift(part.report, max_drift)
    patch = result.patch
    patch.save(out_dir)
    out.print(f"patch {patch.id} for {', '.join(patch.components)} written to {out_dir} "
              f"({result.seconds:.1f} s to edit)")


@command("erase")
@_with_edit_options
def erase_(
    concepts: Optional[list[str]] = typer.Argument(None, help="concepts to erase (one edit for all)"),
    to: str = typer.Option("", "--to", help="surrogate: a neutral description such as 'a painter'; default: the "
                                            "empty prompt (the concept is read as absent)", rich_help_panel=EDIT),
    concepts_file: Optional[Path] = typer.Option(None, help="more concepts to erase, one per line",
                                                 rich_help_panel=EDIT),
    preserve: Optional[str] = typer.Option(None, help="concepts to keep, comma-separated", rich_help_panel=PRESERVATION),
    preserve_file: Optional[Path] = typer.Option(None, help="concepts to keep, one per line",
                                                 rich_help_panel=PRESERVATION),
    model: Optional[str] = typer.Option(None, help="model id or folder (default: the packaged MiniLM)",
                                        rich_help_panel=MODEL),
    pipeline_path: Optional[str] = typer.Option(None, "--pipeline-path", help="diffusers pipeline folder or id: "
                                                "erase from its text encoder (--component to choose)",
                                                rich_help_panel=MODEL),
    component: Optional[str] = _component_option("pipeline component (default text_encoder)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="patch directory (default: patches/erase-<concept>)",
                                           rich_help_panel=OUTPUT),
    scope: Optional[str] = typer.Option(None, help="statistics token scope: prompt | pipeline",
                                        rich_help_panel=STATISTICS),
    corpus: Optional[Path] = _corpus_option(),
    cache_dir: Optional[Path] = _cache_dir_option(),
    dtype: Optional[str] = _dtype_option(),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
    edit_options: dict = None,
):
    """Erase CONCEPTs: rebind them and their usual phrasings to a surrogate, keeping --preserve."""
    def read_list(path: Path, what: str) -> list[str]:
        _existing(path, f"{what} file")
        try:
            return parse_concept_list(path.read_text(encoding="utf-8") + "\n")
        except UnicodeDecodeError:
            raise TexteditError(f"{what} file '{path}' is not UTF-8 text") from None

    names = list(concepts or []) + (read_list(concepts_file, "concepts") if concepts_file else [])
    if not names:
        raise TexteditError("nothing to erase: give concepts or --concepts-file")
    if preserve is not None and preserve_file is not None:
        raise TexteditError("give --preserve or --preserve-file, not both")
    kept = parse_concept_list(preserve) if preserve is not None else \
        read_list(preserve_file, "preserve") if preserve_file is not None else []
    erasure = Erasure([Concept(name, to.strip()) for name in names], kept)
    if model is not None and pipeline_path is not None:
        raise TexteditError("give --model or --pipeline-path, not both")
    if pipeline_path is not None:
        model, component = pipeline_path, component or "text_encoder"
    settings = {**edit_options, **_given(scope=scope)}
    stats_corpus = load_corpus(corpus) if corpus else None
    slug = re.sub(r"[^a-z0-9]+", "-", names[0].lower()).strip("-")[:100] or "concepts"
    _writable_destination(cache_dir, option="--cache-dir")
    out_dir = _writable_destination(out_dir or Path("patches") / f"erase-{slug}", "patch.json", "a patch")
    _start_libraries()
    from ..encoders import DEFAULT_MODEL  # deferred: a command imports what it computes with when it runs

    adapter = options._load(model or DEFAULT_MODEL, component, dtype, device, False)
    _erase_and_report(f"erasing {len(names)} concept{'s' * (len(names) > 1)} from {adapter.name}", adapter, erasure,
                      settings, out_dir, component, stats_corpus, cache_dir)
