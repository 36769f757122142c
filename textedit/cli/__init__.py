"""The ``textedit`` command line: ``apply``, ``show``, ``export``, ``erase``, ``eval``, ``verify``, ``learn-anchor``,
``locate``, ``stats``, ``inspect``, ``fetch-model``, ``tune``.

Every user error ends as one line on stderr and exit code 2; no traceback.

One module per family of commands over one shared module: ``options`` (the help panels, the
options the commands share, the checks of their paths, :func:`~.options._start_libraries`),
``report`` (the tables ``apply``, ``erase`` and ``show`` print), ``edit`` (``apply``,
``erase``), ``patches`` (``show``, ``export``), ``evaluate`` (``eval``), ``diffusion``
(``verify``, ``learn-anchor``), ``models`` (``stats``, ``inspect``, ``locate``,
``fetch-model``) and ``tune``. This module holds the app and its entry point, :func:`main`.

Importing this package imports no torch, transformers or diffusers (seconds): ``textedit
--help`` lists the commands from their docstrings, and a command is built (its options
declared, from the method and value-strategy declarations of ``settings.py`` and the pipeline
families) only when it runs or shows its help (:class:`_Commands`). Every ``--help``, usage
error, missing or unwritable path and spec error is answered before torch loads: a command
first checks what it was given (the spec, the paths it reads and writes), then calls
``_start_libraries`` (torch and transformers, while Ctrl-C ends the process at once), then
imports the modules its body computes with.
"""

from __future__ import annotations

import copy
import errno
import importlib
import os
import sys
from inspect import cleandoc, getdoc
from pathlib import Path

import typer
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from ..errors import TexteditError
from ..interrupts import ending_at_once
from ..pipelines.families import pipeline_choices
from ..version import version_line
from . import diffusion, edit, evaluate, models, patches, tune  # each module declares its commands
from .evaluate import EVAL_MODES
from .options import (DRAWING, EDIT, LORA, MODEL, OUTPUT, PANELS, PRESERVATION, RUN, SCORING,
                      STATISTICS, TRACING, TRAINING, TUNING, _add_edit_options, _edit_options, _existing, _shown,
                      _threads, _writable_destination, _writable_file, commands, err, out)
from .patches import EXPORT_FORMATS
from .report import _floor_summary

#: the package's names: the app and its entry point, and what the tests read (the panels, the
#: path checks, the names checked before torch that must equal the libraries' own)
__all__ = ["DRAWING", "EDIT", "EVAL_MODES", "EXPORT_FORMATS", "LORA", "MODEL", "OUTPUT", "PRESERVATION", "RUN", "SCORING",
           "STATISTICS", "TRACING", "TRAINING", "TUNING", "_edit_options", "_existing", "_floor_summary",
           "_writable_destination", "_writable_file", "app",
           "diffusion", "edit", "evaluate", "main", "models", "patches", "tune"]


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
    if built.help:  # rich keeps a docstring's line breaks: one line per paragraph, rewrapped to the terminal
        built.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in cleandoc(built.help).split("\n\n"))
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
        _threads[0] = None  # --threads of this run only (main runs many times in one test process)
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


if __name__ == "__main__":
    main()
