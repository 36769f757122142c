"""``apply`` (an edit spec → a patch, measured) and ``erase`` (concepts → a patch)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from ..apply import EditRefused, apply_spec, check_options, repeated_note
from ..concepts import Concept, Erasure, parse_concept_list
from ..corpus import load_corpus
from ..errors import TexteditError
from ..spec import load_spec
from . import options  # options._load: the one place that loads a model (tests stub it)
from .options import (EDIT, MODEL, OUTPUT, PRESERVATION, STATISTICS, _cache_dir_option, _check_scale,
                      _component_option, _corpus_option, _device_option, _dtype_option, _existing, _floor_option,
                      _given, _key_option, _methods_that, _preserve_option, _profile_option, _check_profile,
                      _start_libraries, _threads_option, _with_edit_options, _writable_destination, command, err,
                      out)
from .report import _erase_and_report, _print_erasure, _print_measure, _requests_table


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
    require_floor: bool = typer.Option(False, "--require-floor", help="write nothing (exit 2) if a request misses "
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
        err.print(repeated_note(parsed), highlight=False)
    settings = {**edit_options, **_given(scope=scope, key=key, auto_preserve=preserve, floor=floor)}
    _check_scale(scale)
    if max_drift is not None and not 0 <= max_drift < float("inf"):
        raise TexteditError(f"--max-drift {max_drift}: give a drift of 0 or more (1 − cos, at most 2)")
    stats_corpus = load_corpus(corpus) if corpus else None
    check_options(parsed, after=after or [], remember=remember, pipeline_path=pipeline_path, pipeline=pipeline,
                  model=model, trust_remote_code=trust_remote_code)
    for path in after or []:
        _existing(path, "--after", folder=True)
    _check_profile(profile)
    _writable_destination(cache_dir, option="--cache-dir")
    out_dir = _writable_destination(out_dir or Path("patches") / spec.stem, "patch.json", "a patch")
    _start_libraries()

    def load(ref: str, part: str | None):
        return options._load(ref, part, dtype, device, trust_remote_code)

    try:
        result = apply_spec(parsed, model=model, component=component, pipeline_path=pipeline_path, pipeline=pipeline,
                            settings=settings, after=after or [], remember=remember, scale=scale,
                            require_floor=require_floor, max_drift=max_drift, profile=profile, corpus=stats_corpus,
                            cache_dir=cache_dir, out_dir=out_dir, dtype=dtype, device=device,
                            trust_remote_code=trust_remote_code, progress=True, loader=load, notify=_say)
    except EditRefused as refused:
        if refused.result.pipeline is not None:  # a pipeline's parts are shown before its drift is judged
            _print_pipeline_parts(spec.name, refused.result)
        raise
    patch = result.patch
    if result.erasure is not None:
        return _print_erasure(f"{spec.name} on {result.encoder}", parsed.erasure, patch, result.erasure, out_dir)
    if result.pipeline is not None:
        _print_pipeline_parts(spec.name, result)
        out.print(f"patch {patch.id} for {', '.join(patch.components)} written to {out_dir} "
                  f"({result.seconds:.1f} s to edit)")
        return
    _print_measure(f"{spec.name} on {result.encoder}: {patch.method}, layers {patch.hyperparameters['layers']}, "
                   f"value {patch.hyperparameters['value']}", result.report, named=parsed.preserve,
                   kept_in_solve=bool(patch.hyperparameters.get("preserved")))
    for line in result.protects:
        out.print(f"protects: {line}", highlight=False)
    if result.after_report is not None:  # what the new patch does to the edits it goes after
        out.print(_requests_table("edits of the --after patches: similarity to their targets, before → after this "
                                  "patch", result.after_report.requests))
    out.print(f"patch {patch.id} written to {out_dir} ({result.seconds:.1f} s to edit)")


def _say(note) -> None:
    """Print one of ``apply_spec``'s notes as it arises; the long ones unwrapped (they quote prompts)."""
    err.print(note.text, highlight=False, soft_wrap=note.kind in ("settings", "drift"))


def _print_pipeline_parts(spec_name: str, result) -> None:
    """Each encoder's before/after tables of an ``apply --pipeline-path``."""
    edited = result.pipeline
    for part in edited.parts:
        _print_measure(f"{spec_name} on {part.encoder} ({edited.family.title}): {part.patch.method}, layers "
                       f"{part.patch.hyperparameters['layers']}, value {part.patch.hyperparameters['value']}",
                       part.report, named=result.spec.preserve,
                       kept_in_solve=bool(part.patch.hyperparameters.get("preserved")))


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
