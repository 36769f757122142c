"""What the commands share: the help panels, the consoles, the options every command takes in
the same words (``--threads``, ``--cache-dir``, the edit options derived from the method and
value-strategy declarations), the checks of the paths a command reads and writes, made before
any work, and :func:`_start_libraries`, which a command calls once its input is checked."""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from inspect import Parameter, signature
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..errors import TexteditError
from ..hyperparameters import is_strength
from ..interrupts import ending_at_once
from ..methods import METHODS, methods_with
from ..pipelines.families import pipeline_choices
from ..settings import VALUE_CONFIGS, all_hyperparameters


#: the help panels a command's options are grouped in (``rich_help_panel``), so that no table
#: is wider than 80 columns and an option is found by what it is about
EDIT, TUNING, PRESERVATION, MODEL, STATISTICS, TRAINING, LORA, TRACING, DRAWING, SCORING, OUTPUT, RUN = (
    "Edit", "Hyperparameters", "Preservation", "Model", "Statistics", "Training", "Denoiser LoRA", "Tracing",
    "Drawing", "Scoring", "Output", "Run")
#: the panels in the order the help shows them (``None``: typer's own "Options", with --help)
PANELS = (None, EDIT, TUNING, PRESERVATION, TRAINING, LORA, TRACING, DRAWING, SCORING, MODEL, STATISTICS, OUTPUT, RUN)


#: the commands as declared (``@command``), each built into a click command only when it runs
#: or shows its help (:func:`_build`)
commands = typer.Typer()


def command(name: str | None = None):
    """Declare a command of ``textedit``. Its body checks its input without torch first, then
    calls :func:`_start_libraries` before it computes (``tests/test_imports.py`` holds that)."""
    return commands.command(name)


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
    from ..encoders import DEFAULT_MODEL  # deferred: a command imports what it computes with when it runs
    from ..pipelines import load_encoder_as_read

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


def _profile_option():
    return typer.Option(None, "--profile", help="settings measured for this model by 'textedit tune': a profile file, "
                                                "or 'none' for the built-in defaults (default: the model's own "
                                                "profile, where there is one; docs/tune.md)", rich_help_panel=EDIT)


def _check_profile(profile: str | None) -> None:
    """A named profile file must exist (``none`` turns profiles off)."""
    if profile is not None and profile != "none":
        _existing(Path(profile), "--profile")


def _with_profile(config, adapter, profile: str | None, cache_dir):
    """``config`` with the model's profile (or the one named) where the user set nothing, said in one line."""
    from ..profile import configured, profile_line  # deferred: a command imports what it computes with when it runs

    filled, used = configured(config, adapter.fingerprint(), profile, cache_dir)
    if used is not None:
        err.print(profile_line(used, config, filled), highlight=False, soft_wrap=True)
    return filled


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


def _edit_options(settings: bool = True) -> list[tuple[str, type, str]]:
    """The edit settings ``apply`` and ``erase`` share: (option name, type, help), derived from
    the registered methods and value strategies, so a new method's knobs become options and
    the commands cannot drift apart. ``settings=False``: the hyperparameters only (``eval``
    takes several methods and layer sets its own way). Their help panels: :func:`_edit_panels`."""
    options = [("method", str, " | ".join(METHODS)), ("layers", str, "layers to edit, e.g. '1,2' or '1-3'"),
               ("value", str, f"value strategy: {' | '.join(VALUE_CONFIGS)}")] if settings else []
    for name, declared in all_hyperparameters().items():
        owners: dict[str, list[str]] = {}  # help text → who declares the knob with it
        for owner, declaration in declared:
            owners.setdefault(declaration.help, []).append(owner)
        text = "; ".join(f"{help_text} ({', '.join(names)})" for help_text, names in owners.items())
        options.append((name, int if declared[0][1].integer else float, text))
    return options


def _edit_panels() -> dict[str, str]:
    """The help panel of each edit option: the method, layers and value strategy in Edit, the
    knobs of the kept prompts and the floor in Preservation, every other knob in Hyperparameters."""
    panels = {name: PRESERVATION if all(owner in PRESERVATION_OWNERS for owner, _ in declared) else TUNING
              for name, declared in all_hyperparameters().items()}
    return {"method": EDIT, "layers": EDIT, "value": EDIT, **panels}


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
    options, panels = _edit_options(settings), _edit_panels()
    shared = [Parameter(name, Parameter.KEYWORD_ONLY, default=typer.Option(None, help=text, rich_help_panel=panels[name]),
                        annotation=Optional[kind]) for name, kind, text in options]

    @functools.wraps(command)
    def with_options(**values):
        given = _given(**{name: values.pop(name) for name, _, _ in options})
        if "layers" in given:
            given["layers"] = _parse_layers(given["layers"])
        return command(**values, edit_options=given)

    with_options.__signature__ = own_signature.replace(parameters=own + shared)
    with_options.__annotations__ = {**{p.name: p.annotation for p in own}, **{p.name: p.annotation for p in shared}}
    return with_options


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

        from .. import encoders  # noqa: F401

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
        for attempt in range(5):
            directory.mkdir(parents=True, exist_ok=True)
            try:
                fd, probe = tempfile.mkstemp(prefix=".textedit-probe-", dir=directory)
                break
            except FileNotFoundError:
                # another process checking the same new folder (the ranks of a torchrun) removed
                # it between our mkdir and the probe: make it again
                if attempt == 4:
                    raise
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
