"""``textedit apply`` as one call a notebook can make: an edit spec → a patch, measured,
guarded and (optionally) written.

:func:`apply_spec` runs what the command runs, in its order:

1. the spec's settings, overridden by the caller's (``settings``), make an ``EditConfig``;
2. with ``pipeline_path``: :func:`~textedit.pipelines.edit_pipeline_components` edits one text
   encoder of the pipeline, or all of them, each as the pipeline reads it, measures each part
   and combines them into one patch; otherwise the encoder is loaded (or given) and
3. a spec with ``erase`` is an erasure (:func:`~textedit.erase.erase_with_report`); else the
   model's profile fills the settings the user left unset (``docs/tune.md``), the learned
   anchor token joins the encoder (``anchor_embedding``), and the requests are solved, alone
   (:func:`~textedit.editor.edit`) or on top of the ``after`` patches
   (:func:`~textedit.sequential.edit_after`: their stored keys kept, or their state continued);
4. the efficacy floor's record is read: a miss is said, or refused with ``require_floor``;
5. the patch is taken to strength ``scale`` and measured with the unedited encoder as judge
   (:func:`~textedit.metrics.measure`: before/after similarity of each request, the drift
   ``1 − cos(after, before)`` of the neutral and same-subject prompts);
6. the drift guard: a prompt past ``max_drift`` refuses the patch (nothing is written),
   one past ``metrics.DRIFT_FLAG`` is named;
7. the patch is written to ``out_dir`` (``None``: nothing written; ``result.save(dir)``
   later), and with ``after`` the earlier patches' requests are measured under the new one.

Everything the command prints comes back as data: :class:`ApplyResult` holds the patch, the
reports, the floor's record, what the edit protects and the :class:`Note` lines (each also
passed to ``notify`` as it arises, which is how the command prints them while it runs).

This module imports no torch at the top: the command line reads :func:`check_options` and
:func:`repeated_note` before torch loads, so a contradiction between the spec and the
options is one line in a fraction of a second; what computes is imported when it runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

from .corpus import Corpus, load_corpus
from .errors import TexteditError, quote
from .hyperparameters import is_strength
from .pipelines.families import pipeline_choices
from .requests import EditRequest
from .spec import EditSpec, load_spec

if TYPE_CHECKING:
    from .encoders.base import EncoderAdapter
    from .erase import ErasureReport
    from .metrics import EditReport
    from .patch import Patch
    from .pipelines.editing import PipelineEdit


@dataclass(frozen=True)
class Note:
    """One line :func:`apply_spec` has to say, as the command prints it (``text``), and what it
    is about (``kind``): ``repeated`` (requests of the spec dropped as repeats), ``settings``
    (the model's profile filled some in), ``after`` (an ``after`` patch stores no keys or no
    state to keep), ``floor`` (what the efficacy floor's search chose, or who misses it),
    ``drift`` (prompts that drift past the flag)."""

    kind: str
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class ApplyResult:
    """What :func:`apply_spec` made and measured.

    ``patch`` is the patch as written: at strength ``scale``, with the learned anchor it
    ``requires``; with ``pipeline_path`` the parts combined, keyed by component. Exactly one of
    ``report`` (one encoder), ``pipeline`` (``PipelineEdit``: family, parts each with its own
    report, reach warnings) and ``erasure`` (an ``erase`` spec's ``ErasureReport``) is set.
    """

    spec: EditSpec
    patch: Patch
    encoder: str  # the edited encoder's name; with pipeline_path the pipeline's reference
    seconds: float  # spent editing (statistics included, measuring not)
    report: EditReport | None = None
    pipeline: PipelineEdit | None = None
    erasure: ErasureReport | None = None
    #: the ``after`` patches, loaded, and their requests measured before → after the new patch
    after: list[Patch] = field(default_factory=list)
    after_report: EditReport | None = None
    #: what the edit protects per subject, and why (``preserve.protection``)
    protects: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    written: Path | None = None  # where the patch was saved (``None``: not yet)

    @property
    def floor(self) -> dict | str | None:
        """The efficacy floor's record in the patch: ``"off"``, or a dict (``met``,
        ``efficacy_floor``, ``misses``, ``weakened``, ``tried``, …); ``None`` where no floor ran
        (an erasure, a pipeline's combined patch)."""
        return self.patch.hyperparameters.get("floor")

    @property
    def reports(self) -> dict[str, EditReport]:
        """Each edited component's report (``"encoder"`` for a bare encoder)."""
        if self.pipeline is not None:
            return {part.component: part.report for part in self.pipeline.parts}
        return {} if self.report is None else {self.patch.components[0]: self.report}

    def save(self, directory: str | Path) -> Path:
        """Write the patch (``patch.json``, ``patch.safetensors``; an erasure's
        ``erasure.json`` too) to ``directory``, replacing what was there."""
        extra = {} if self.erasure is None else {"erasure.json": erasure_json(self.erasure, self.spec.erasure,
                                                                              self.patch)}
        self.patch.save(directory, extra=extra)
        self.written = Path(directory)
        return self.written


class EditRefused(TexteditError):
    """A guard refused the patch (``require_floor``, ``max_drift``): nothing was written.
    ``result`` is what was made and measured so far (``report`` is ``None`` when the floor
    refused, before measuring)."""

    def __init__(self, message: str, result: ApplyResult):
        super().__init__(message)
        self.result = result


def repeated_note(spec: EditSpec) -> str | None:
    """The note on the spec's requests dropped as repeats of earlier ones (``None``: none)."""
    if not spec.repeated:
        return None
    n = len(spec.repeated)
    shown = ", ".join(spec.repeated[:3]) + (f" and {n - 3} more" if n > 3 else "")
    return (f"note: {n} requests repeat earlier ones and are edited once" if n > 1 else
            "note: 1 request repeats an earlier one and is edited once") + f" ({shown})"


def check_options(spec: EditSpec, *, after: Sequence = (), remember: bool | None = None,
                  pipeline_path: str | Path | None = None, pipeline: str = "auto", model: Any = None,
                  trust_remote_code: bool = False) -> None:
    """The ways a spec and the options contradict each other, each one line (no torch needed):
    ``after``/``remember`` chain edits of one encoder by a knowledge spec; ``pipeline_path``
    names the model itself, and edits knowledge, not one encoder's anchor token or erasure.
    The messages name the command line's options, the parameters of the same names here."""
    if (after or remember) and (pipeline_path is not None or spec.erasure is not None
                                or spec.anchor_embedding is not None):
        raise TexteditError("--after / --remember edit one encoder with a knowledge spec: use --model, not "
                            "--pipeline-path, and a spec without 'erase' or 'anchor_embedding'")
    if pipeline_path is not None:
        if pipeline not in pipeline_choices():
            raise TexteditError(f"--pipeline '{pipeline}': use one of {', '.join(pipeline_choices())}")
        if model is not None or trust_remote_code:
            raise TexteditError("--pipeline-path names the model: drop --model / --trust-remote-code")
        if spec.anchor_embedding is not None or spec.erasure is not None:
            raise TexteditError(f"{Path(spec.source).name} edits one encoder (anchor_embedding or erase): use --model "
                                f"{pipeline_path} --component text_encoder")


def erasure_json(report: ErasureReport, erasure, patch: Patch) -> str:
    """``erasure.json`` beside an erasure's patch: :meth:`ErasureReport.record`, as written."""
    return json.dumps(report.record(erasure, patch), indent=1, ensure_ascii=False) + "\n"


#: a loader of the encoder: (model reference, component) → adapter
Loader = Callable[[str, Union[str, None]], "EncoderAdapter"]


def apply_spec(spec: str | Path | EditSpec, *, model: str | Path | EncoderAdapter | None = None,
               component: str | None = None, pipeline_path: str | Path | None = None, pipeline: str = "auto",
               settings: Mapping[str, Any] | None = None, after: Sequence[str | Path | Patch] = (),
               remember: bool | None = None, scale: float | None = None, require_floor: bool = False,
               max_drift: float | None = None, profile: str | Path | None = None,
               corpus: Corpus | str | Path | None = None, cache_dir: str | Path | None = None,
               out_dir: str | Path | None = None, dtype: str | None = None, device: str = "cpu",
               trust_remote_code: bool = False, progress: bool = False, loader: Loader | None = None,
               notify: Callable[[Note], None] | None = None) -> ApplyResult:
    """Edit the encoder as ``spec`` says, measure it and (with ``out_dir``) write the patch:
    ``textedit apply`` without its printing (the module docstring has the steps).

    ``spec``: a spec file or an ``EditSpec`` (``textedit.parse_spec``). ``model``: a model id,
    folder, ``"default"`` or an ``EncoderAdapter`` already loaded (default: the spec's
    ``model``, else the packaged MiniLM), with ``component`` a pipeline component;
    ``loader(ref, component)`` loads it instead of ``load_encoder`` (the command shows a
    spinner). ``pipeline_path``: edit a diffusers pipeline's own encoders (``component`` one of
    them or ``"all"``; statistics scope ``pipeline`` unless ``settings`` say otherwise).
    ``settings``: ``EditConfig`` fields over the spec's (``method``, ``layers``, ``lam``, …).
    ``after``: patch folders or ``Patch`` objects the edit is solved on top of, in order;
    ``remember``: as ``EditConfig``/``edit``'s (default: on with ``after``). ``scale``: the
    patch written is ``scale · ΔW``. ``require_floor``: a request missing the efficacy floor
    raises :class:`EditRefused`; ``max_drift``: so does a neutral or kept prompt whose drift
    ``1 − cos(after, before)`` exceeds it. ``profile``: a profile file, ``"none"``, or
    ``None`` for the model's own. ``notify``: called with each :class:`Note` as it arises.

    Errors a user can cause are one-line ``TexteditError``; nothing is written on any error.
    """
    parsed = spec if isinstance(spec, EditSpec) else load_spec(spec)
    said: list[Note] = []

    def note(kind: str, text: str) -> None:
        said.append(Note(kind, text))
        if notify is not None:
            notify(said[-1])

    if not isinstance(spec, EditSpec) and parsed.repeated:  # an EditSpec's caller read it, and its repeats
        note("repeated", repeated_note(parsed))
    if scale is not None and not is_strength(scale):
        raise TexteditError(f"scale {scale}: give a finite strength (1: the edit as solved)")
    if max_drift is not None and not 0 <= max_drift < float("inf"):
        raise TexteditError(f"max_drift {max_drift}: give a drift of 0 or more (1 − cos, at most 2)")
    check_options(parsed, after=after, remember=remember, pipeline_path=pipeline_path, pipeline=pipeline,
                  model=model, trust_remote_code=trust_remote_code)
    merged = {**parsed.settings, **(settings or {})}
    if pipeline_path is not None:  # the denoiser reads every padded position: preserve what it sees
        merged.setdefault("scope", "pipeline")
    if isinstance(corpus, (str, Path)):
        corpus = load_corpus(corpus)
    component = component or parsed.component
    from .editor import EditConfig  # deferred: the spec and options are checked without torch (module docstring)

    config = EditConfig(**merged)
    if pipeline_path is not None:
        return _apply_to_pipeline(parsed, config, str(pipeline_path), pipeline, component, corpus, cache_dir, dtype,
                                  device, scale, max_drift, out_dir, progress, note, said)
    adapter = _encoder(model or parsed.model, component, loader, dtype, device, trust_remote_code)
    if parsed.erasure is not None:
        return _erase(parsed, adapter, merged, component, corpus, cache_dir, out_dir, progress, said)
    return _edit(parsed, adapter, config, component, after, remember, scale, require_floor, max_drift, profile,
                 corpus, cache_dir, out_dir, progress, note, said)


def _encoder(model, component: str | None, loader: Loader | None, dtype, device: str, trust_remote_code: bool):
    """The encoder to edit: ``model`` as given if it is an adapter, else loaded (``default``
    and ``None`` are the packaged MiniLM), a pipeline's text encoder as its pipeline reads it."""
    from .encoders import DEFAULT_MODEL, EncoderAdapter  # deferred: the spec and options are checked without torch
    from .pipelines import load_encoder_as_read

    if isinstance(model, EncoderAdapter):
        return model
    ref = DEFAULT_MODEL if model is None or str(model) == "default" else str(model)
    if loader is not None:
        return loader(ref, component)
    return load_encoder_as_read(ref, component, dtype=dtype, device=device, trust_remote_code=trust_remote_code)


def _erase(parsed: EditSpec, adapter, settings: dict, component, corpus, cache_dir, out_dir, progress: bool,
           said: list[Note]) -> ApplyResult:
    """An ``erase`` spec: :func:`~textedit.erase.erase_with_report` with the erasure's settings."""
    from .erase import erase_config, erase_with_report  # deferred: the spec and options are checked without torch

    patch, report = erase_with_report(adapter, parsed.erasure, erase_config(**settings), component=component,
                                      corpus=corpus, cache_dir=cache_dir, progress=progress)
    result = ApplyResult(parsed, patch, adapter.name, report.seconds, erasure=report, notes=said)
    if out_dir is not None:
        result.save(out_dir)
    return result


def _edit(parsed: EditSpec, adapter, config, component, after, remember, scale, require_floor, max_drift, profile,
          corpus, cache_dir, out_dir, progress: bool, note, said: list[Note]) -> ApplyResult:
    """A knowledge spec on one encoder: steps 3–7 of the module docstring."""
    from .anchor import add_anchor  # deferred: the spec and options are checked without torch
    from .editor import edit
    from .metrics import NEUTRAL_PROMPTS, measure
    from .patch import Patch
    from .preserve import protection, same_subject_checks
    from .profile import configured, profile_line

    filled, used = configured(config, adapter.fingerprint(), profile, cache_dir)
    if used is not None:  # only what the profile filled is named, and what the user set beside it
        note("settings", profile_line(used, config, filled))
    config = filled
    requires = {}
    if parsed.anchor_embedding is not None:  # the learned anchor token joins the encoder before the edit
        requires[component or "encoder"] = add_anchor(adapter, parsed.anchor_embedding, parsed.anchor, component)

    started = time.perf_counter()  # the after patches are read in the edit's time, as the edit reads them
    history = [p if isinstance(p, Patch) else Patch.load(p) for p in after]
    try:
        if history:
            patch = _edit_after(adapter, parsed, config, history, after, remember, component or "encoder", corpus,
                                cache_dir, progress, note)
        else:
            patch = edit(adapter, parsed.requests, config, corpus=corpus, cache_dir=cache_dir,
                         component=component or "encoder", progress=progress, remember=remember,
                         preserve=parsed.preserve)
        seconds = time.perf_counter() - started
        result = ApplyResult(parsed, patch, adapter.name, seconds, after=history, notes=said)
        _check_floor(result, require_floor, note)
        patch.requires = requires
        if scale is not None:
            patch = result.patch = patch.scaled(scale)
        # measured before it is written: the drift guard may refuse it. With after, the model
        # carries the history here, so "before" is the model the new patch goes on
        result.report = measure(adapter, patch, parsed.requests, parsed.neutral or NEUTRAL_PROMPTS,
                                component=component,
                                preserved=same_subject_checks(parsed.requests,
                                                              patch.hyperparameters.get("preserved", [])))
        _check_drift(result, result.report, max_drift, note)
        if out_dir is not None:
            result.save(out_dir)
        result.protects = protection(parsed.requests, bool(patch.hyperparameters.get("auto_preserve")),
                                     patch.hyperparameters.get("key") or "subject")
        earlier = [EditRequest(**r) for p in history for r in p.requests]
        if earlier:  # what the new patch does to the edits it goes after
            result.after_report = measure(adapter, patch, earlier, neutral=[], component=component)
    finally:  # edit_after leaves the history applied: a notebook's encoder is given back as it came
        for applied in reversed(history):
            if applied.applied_scale(adapter, component or "encoder") is not None:
                applied.revert(adapter, component or "encoder")
    return result


def _edit_after(adapter, parsed: EditSpec, config, history: list, given: Sequence, remember: bool | None,
                component: str, corpus, cache_dir, progress: bool, note):
    """``after``: :func:`textedit.sequential.edit_after` on the loaded patches, saying which of
    them store no keys to keep (or no state to continue)."""
    from .sequential import (  # deferred: the spec and options are checked without torch
        edit_after, patches_without_keys, patches_without_state)

    def named(i: int) -> str:
        return str(given[i]) if isinstance(given[i], (str, Path)) else f"patch {history[i].id}"

    method = config.method_class
    if remember is not False:
        if method.remembers_keys:
            for i in patches_without_keys(history, component):
                note("after", f"note: {named(i)} stores no keys (made without --remember), so this edit does not keep "
                              "its edits fixed")
        if method.carries_state:
            for i in patches_without_state(history, config.method, component):
                note("after", f"note: {named(i)} stores no {config.method} state (made without --remember), so this "
                              "edit's state does not include its edit")
    return edit_after(adapter, parsed.requests, config, history, remember=remember, component=component,
                      corpus=corpus, cache_dir=cache_dir, progress=progress, preserve=parsed.preserve)


def _apply_to_pipeline(parsed: EditSpec, config, pipeline_path: str, pipeline: str, component, corpus, cache_dir,
                       dtype, device: str, scale, max_drift, out_dir, progress: bool, note,
                       said: list[Note]) -> ApplyResult:
    """``pipeline_path``: :func:`textedit.pipelines.edit_pipeline_components`; every encoder's
    drift is checked before the one patch for all is written."""
    from .metrics import NEUTRAL_PROMPTS  # deferred: the spec and options are checked without torch
    from .pipelines import edit_pipeline_components

    edited = edit_pipeline_components(pipeline_path, parsed.requests, config, component, pipeline=pipeline,
                                      neutral=parsed.neutral or NEUTRAL_PROMPTS, scale=scale, corpus=corpus,
                                      cache_dir=cache_dir, dtype=dtype, device=device, progress=progress,
                                      preserve=parsed.preserve)
    result = ApplyResult(parsed, edited.patch, pipeline_path, edited.seconds, pipeline=edited, notes=said)
    for part in edited.parts:
        _check_drift(result, part.report, max_drift, note)
    if out_dir is not None:
        result.save(out_dir)
    return result


def _check_floor(result: ApplyResult, required: bool, note) -> None:
    """Say what the efficacy floor's search chose and cost, and which requests miss it in
    unseen contexts; with ``required`` a miss refuses the patch."""
    from .floor import list_misses  # deferred: the spec and options are checked without torch

    floor = result.floor
    if not isinstance(floor, dict):  # "off"
        return
    weakened = ", ".join(f"'{subject}' at {s:g}" for subject, s in floor.get("weakened", {}).items())
    if not floor["met"]:
        line = (f"{len(floor['misses'])} request(s) miss the efficacy floor {floor['efficacy_floor']:g} in unseen "
                f"contexts ({list_misses([(m['prompt'], m['margin']) for m in floor['misses']])})")
        if required:
            raise EditRefused(f"{line}; nothing written (--require-floor)", result)
        note("floor", f"warning: {line}; written as the closest solve" + (
            f", automatic kept prompts of {weakened} of their weight" if weakened else "") + "; the patch records it")
    elif weakened:
        note("floor", f"efficacy floor {floor['efficacy_floor']:g}: met after {len(floor['tried'])} solves with the "
                      f"automatic kept prompts of {weakened} of their weight: those subjects' other knowledge moves "
                      "more")
    else:
        note("floor", f"efficacy floor {floor['efficacy_floor']:g}: met with the kept prompts at full weight "
                      f"(smallest margin {floor['smallest_margin']:+.3f})")


def _check_drift(result: ApplyResult, report, max_drift: float | None, note) -> None:
    """Name every neutral or kept prompt of ``report`` that drifts past ``max_drift`` (else
    ``metrics.DRIFT_FLAG``); with ``max_drift`` given that refuses the patch."""
    from .metrics import DRIFT_FLAG  # deferred: the spec and options are checked without torch

    threshold = DRIFT_FLAG if max_drift is None else max_drift
    drifting = report.drifting(threshold)
    if not drifting:
        return
    shown = ", ".join(f"'{quote(p)}' {d:.3f}" for p, d in drifting[:3]) + (
        f" and {len(drifting) - 3} more" if len(drifting) > 3 else "")
    line = f"{len(drifting)} neutral or kept prompt(s) drift past {threshold:g} (1 − cos to before): {shown}"
    if max_drift is not None:
        raise EditRefused(f"{line}; nothing written (--max-drift)", result)
    note("drift", f"warning: {line}")
