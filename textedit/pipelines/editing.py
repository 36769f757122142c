"""Editing a pipeline's own text encoders, one at a time, into one patch.

:func:`edit_pipeline` yields one edit per component (one encoder in memory at a time);
:func:`edit_pipeline_components` is ``apply --pipeline-path`` as one call: it chooses the
components, edits and measures each while its encoder is loaded, and combines the parts
into the single patch keyed by component (:meth:`Patch.combine`).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import torch

from ..corpus import Corpus
from ..editor import EditConfig, default_layers, edit
from ..encoders.base import EncoderAdapter
from ..errors import SpecError
from ..metrics import NEUTRAL_PROMPTS, EditReport, measure
from ..patch import Patch
from ..preserve import same_subject_checks
from ..requests import EditRequest
from .families import Family, detect_family, present_components
from .loading import load_pipeline_encoder
from .reach import ReachWarning, default_pipeline_layers, reach_warnings


@dataclass
class ComponentEdit:
    """The edit of one text encoder of a pipeline, with the adapter it was made on."""

    component: str
    adapter: EncoderAdapter
    patch: Patch
    warnings: list[str] = field(default_factory=list)  # the reach warnings issued for this part


def requests_for(requests: Sequence[EditRequest], component: str) -> list[EditRequest]:
    """The requests that edit ``component``: those naming it and those naming none."""
    return [r for r in requests if r.component in (None, component)]


def edit_pipeline(ref: str | Path, family: Family, requests: Sequence[EditRequest], config: EditConfig,
                  components: Sequence[str], *, corpus: Corpus | None = None, cache_dir=None,
                  dtype: str | torch.dtype | None = None, device: str = "cpu",
                  progress: bool = False, preserve: Sequence[str] = ()) -> Iterator[ComponentEdit]:
    """Edit each of ``components`` of the pipeline at ``ref``, one at a time (so only one
    encoder is in memory), yielding one :class:`ComponentEdit` per component.

    Each encoder is loaded as the pipeline reads it (its padding, its hidden state), keeps
    its own statistics (cached by its fingerprint), and, when ``config.layers`` is ``None``,
    edits the default layers that the pipeline fully sees. Explicit layers the denoiser
    cannot see draw a :class:`ReachWarning`. ``preserve``: prompts whose meaning must not
    change, kept in every part's solve (``edit(preserve=...)``). Combine the parts with
    :meth:`Patch.combine`.
    """
    for component in components:
        reading = family.reading(component)
        wanted = requests_for(requests, component)
        if not wanted:
            continue
        adapter = load_pipeline_encoder(ref, component, family, dtype=dtype, device=device)
        layers = config.layers
        if layers is None:
            layers = default_pipeline_layers(default_layers(adapter, config.method), reading, adapter.num_layers)
        layers = adapter.check_layers(layers)
        messages = reach_warnings(family, {component: (layers, adapter.num_layers)})
        for message in messages:
            warnings.warn(message, ReachWarning, stacklevel=2)
        patch = edit(adapter, wanted, dataclasses.replace(config, layers=layers), corpus=corpus, cache_dir=cache_dir,
                     component=component, progress=progress, preserve=preserve)
        yield ComponentEdit(component, adapter, patch, messages)


@dataclass
class ComponentReport:
    """One part of :func:`edit_pipeline_components`: the component's patch (at the strength
    asked for) and what it does to that encoder, measured with the unedited encoder as judge."""

    component: str
    encoder: str  # the encoder's name, "<pipeline>:<component>"
    patch: Patch
    report: EditReport


@dataclass
class PipelineEdit:
    """What :func:`edit_pipeline_components` made: the combined patch and its parts."""

    family: Family
    patch: Patch  # the parts combined, keyed by component
    parts: list[ComponentReport]
    warnings: list[str]  # the reach warnings, also issued as ReachWarning while editing
    seconds: float  # spent loading encoders and editing (statistics included, measuring not)


def choose_components(ref: str | Path, family: Family, component: str | None) -> list[str]:
    """The components ``component`` names in the pipeline at ``ref``: one text encoder it
    holds, or ``"all"`` of them; ``None`` is an error that lists the choices."""
    present = present_components(ref, family)
    if component is None:
        raise SpecError(f"choose what to edit in the {family.title} pipeline: --component "
                        f"{'|'.join(present + ['all'])}")
    if component == "all":
        return present
    if component not in present:
        raise SpecError(f"the {family.title} pipeline '{ref}' has no text encoder '{component}' "
                        f"(it has {', '.join(present)}; or use all)")
    return [component]


def edit_pipeline_components(ref: str | Path, requests: Sequence[EditRequest], config: EditConfig,
                             component: str | None, *, pipeline: str = "auto",
                             neutral: Sequence[str] = NEUTRAL_PROMPTS, scale: float | None = None,
                             corpus: Corpus | None = None, cache_dir=None, dtype: str | torch.dtype | None = None,
                             device: str = "cpu", progress: bool = False, preserve: Sequence[str] = ()) -> PipelineEdit:
    """``textedit apply --pipeline-path``: edit ``component`` (a text encoder, or ``"all"``)
    of the pipeline at ``ref`` and combine the parts into one patch.

    The family is detected (``pipeline="auto"``) or checked. Each component is edited by
    :func:`edit_pipeline` (as the pipeline reads it; default layers the denoiser fully sees),
    taken to strength ``scale`` (``None``: as solved), and measured on its own encoder with
    its requests and the ``neutral`` prompts while that encoder is loaded, so only one is in
    memory at a time. The CLI passes ``config`` with ``scope="pipeline"`` (every padded
    position the denoiser reads). ``preserve``: prompts kept in every part's solve. Each
    part's report scores the same-subject prompts too: those the solve preserved, else the
    subjects' other knowledge (:func:`~textedit.preserve.same_subject_checks`). Nothing is
    written: ``result.patch.save(dir)`` does that.
    """
    family = detect_family(ref, pipeline)
    edits = edit_pipeline(ref, family, requests, config, choose_components(ref, family, component), corpus=corpus,
                          cache_dir=cache_dir, dtype=dtype, device=device, progress=progress, preserve=preserve)
    parts, messages, seconds = [], [], 0.0
    while True:
        started = time.perf_counter()
        part = next(edits, None)
        seconds += time.perf_counter() - started
        if part is None:
            break
        patch = part.patch.scaled(scale) if scale is not None else part.patch
        wanted = requests_for(requests, part.component)
        report = measure(part.adapter, patch, wanted, neutral, component=part.component,
                         preserved=same_subject_checks(wanted, patch.hyperparameters.get("preserved", [])))
        parts.append(ComponentReport(part.component, part.adapter.name, patch, report))
        messages += part.warnings
    if not parts:
        raise SpecError(f"no request of the spec is for {component}")
    return PipelineEdit(family, Patch.combine([p.patch for p in parts]), parts, messages, seconds)
