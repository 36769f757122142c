"""``show`` (a patch's metadata, measured on a model) and ``export`` (a patch as a LoRA or as
the edited encoder's own folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import TexteditError
from ..requests import EditRequest
from . import options  # options._load: the one place that loads a model (tests stub it)
from .options import (_check_scale, _existing, _start_libraries, _writable_destination, _writable_file,
                      command, err, out)
from .report import _floor_summary


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
    from ..metrics import measure  # deferred: a command imports what it computes with when it runs
    from ..patch import Patch

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
    adapter = options._load(model, component, None, "cpu", False)
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
    from ..export import LOAD_CALLS, MODEL, to_lora, to_model  # deferred: a command imports what it computes with
    from ..patch import Patch                                   # when it runs

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
    from ..anchor import add_required_anchors  # deferred: a command imports what it computes with when it runs

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
    from ..encoders import DEFAULT_MODEL, load_encoder  # deferred: a command imports what it computes with
    from ..patch import ENCODER

    model = DEFAULT_MODEL if model == "default" else model
    with err.status(f"loading {model}"):
        return {c: load_encoder(model, component=None if c == ENCODER else c, dtype=dtype) for c in components}
