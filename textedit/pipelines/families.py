"""Diffusion pipeline families as data: which text encoders each reads, and how.

A family is a diffusers pipeline class plus, per text-encoder component, a :class:`Reading`:
which per-token hidden state the denoiser conditions on (``-1`` the last, after CLIP's final
layer norm; ``-2`` the penultimate layer's output; ``None`` none), whether it reads the
pooled vector, and how the pipeline tokenizes for it (padded to a fixed length, no
attention mask). Everything family-specific lives in :data:`FAMILIES`; no code branches on
a family's name. What an edit of a given layer reaches of these outputs is
:mod:`textedit.pipelines.reach`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from ..encoders import ConsumerTokenization
from ..errors import ModelLoadError, SpecError


@dataclass(frozen=True)
class Reading:
    """What a pipeline reads from one text encoder."""

    hidden_state: int | None  # index into hidden_states of the per-token conditioning; None: not read
    pooled: bool  # the pooled (EOS) vector is read
    max_length: int  # the pipeline pads every prompt to this many tokens and passes no mask

    @property
    def consumer(self) -> ConsumerTokenization:
        return ConsumerTokenization(max_length=self.max_length, pad_to_max_length=True, passes_attention_mask=False)

    def outputs(self) -> tuple[str, ...]:
        """Names of the outputs the denoiser reads, as used in messages."""
        names = []
        if self.hidden_state is not None:
            names.append("per-token states" if self.hidden_state == -1
                         else f"per-token states (hidden_states[{self.hidden_state}])")
        if self.pooled:
            names.append("pooled vector")
        return tuple(names)

    def encode(self, encoder: torch.nn.Module, input_ids: torch.Tensor
               ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """What the pipeline reads from ``encoder`` for ``input_ids`` ``[b, T]`` (no mask, as
        the pipeline calls it): (per-token states ``[b, T, d]`` or ``None``, pooled vector
        ``[b, d']`` or ``None``), from one forward pass that keeps the gradient.

        The pooled vector is ``text_embeds`` for a CLIP with projection, else ``pooler_output``
        (the EOS state after the final layer norm)."""
        outputs = encoder(input_ids, output_hidden_states=self.hidden_state not in (None, -1))
        states = None
        if self.hidden_state == -1:
            states = outputs.last_hidden_state
        elif self.hidden_state is not None:
            states = outputs.hidden_states[self.hidden_state]
        pooled = None
        if self.pooled:
            pooled = outputs.text_embeds if hasattr(outputs, "text_embeds") else outputs.pooler_output
        return states, pooled


@dataclass(frozen=True)
class Family:
    """A diffusers pipeline family: its class, what it reads from each encoder, its defaults."""

    name: str
    pipeline_class: str
    readings: Mapping[str, Reading]
    title: str
    steps: int  # num_inference_steps its model cards use
    guidance_scale: float
    accelerator_dtype: torch.dtype  # what diffusers' docs load it in on cuda / mps

    @property
    def components(self) -> list[str]:
        return list(self.readings)

    def reading(self, component: str) -> Reading:
        if component not in self.readings:
            raise SpecError(f"{self.title} pipelines have no text encoder '{component}' "
                            f"(they have {', '.join(self.readings)})")
        return self.readings[component]

    def default_dtype(self, device: str) -> torch.dtype:
        """float32 on the CPU; on an accelerator, what the family's model cards use."""
        return torch.float32 if str(device).startswith("cpu") else self.accelerator_dtype


_CLIP_LAST = Reading(hidden_state=-1, pooled=False, max_length=77)
_CLIP_PENULTIMATE = Reading(hidden_state=-2, pooled=False, max_length=77)
_CLIP_PENULTIMATE_POOLED = Reading(hidden_state=-2, pooled=True, max_length=77)

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("sd", "StableDiffusionPipeline", {"text_encoder": _CLIP_LAST}, "Stable Diffusion 1.x",
           steps=50, guidance_scale=7.5, accelerator_dtype=torch.float16),
    Family("sd2", "StableDiffusionPipeline", {"text_encoder": _CLIP_LAST}, "Stable Diffusion 2.x",
           steps=50, guidance_scale=7.5, accelerator_dtype=torch.float16),
    Family("sdxl", "StableDiffusionXLPipeline",
           {"text_encoder": _CLIP_PENULTIMATE, "text_encoder_2": _CLIP_PENULTIMATE_POOLED}, "SDXL",
           steps=50, guidance_scale=5.0, accelerator_dtype=torch.float16),
    Family("sd3", "StableDiffusion3Pipeline",
           {"text_encoder": _CLIP_PENULTIMATE_POOLED, "text_encoder_2": _CLIP_PENULTIMATE_POOLED,
            "text_encoder_3": Reading(hidden_state=-1, pooled=False, max_length=256)}, "Stable Diffusion 3",
           steps=28, guidance_scale=7.0, accelerator_dtype=torch.bfloat16),
    Family("flux", "FluxPipeline",
           {"text_encoder": Reading(hidden_state=None, pooled=True, max_length=77),
            "text_encoder_2": Reading(hidden_state=-1, pooled=False, max_length=512)}, "FLUX.1",
           steps=28, guidance_scale=3.5, accelerator_dtype=torch.bfloat16),
)}



def pipeline_choices() -> tuple[str, ...]:
    """What ``--pipeline`` accepts: every family in :data:`FAMILIES` now (one added at run time
    too), and ``auto``."""
    return (*FAMILIES, "auto")


# -- detection ----------------------------------------------------------------------------


def read_model_index(ref: str | Path) -> dict:
    """``model_index.json`` of a local pipeline folder or hub id (one-line error if none)."""
    path = Path(str(ref)).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise ModelLoadError(f"'{ref}' is not a diffusers pipeline folder (no model_index.json)")
        try:
            return json.loads(index.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"'{index}' is not valid JSON ({exc})") from None
    if path.exists() or str(ref).startswith((".", "/", "~")) or str(ref).count("/") > 1:
        raise ModelLoadError(f"pipeline '{ref}': no such folder")
    from diffusers import DiffusionPipeline  # deferred: diffusers takes seconds to import, a folder needs none
    try:
        return dict(DiffusionPipeline.load_config(str(ref)))
    except Exception as exc:  # hub errors: offline, no such repo, gated
        raise ModelLoadError(f"cannot read pipeline '{ref}': {str(exc).strip().splitlines()[0][:300]}") from None


def detect_family(ref: str | Path, pipeline: str = "auto") -> Family:
    """The family of the pipeline at ``ref``; with an explicit ``pipeline``, check it matches."""
    if pipeline not in pipeline_choices():
        raise SpecError(f"unknown pipeline family '{pipeline}': use one of {', '.join(pipeline_choices())}")
    class_name = read_model_index(ref).get("_class_name")
    if pipeline != "auto":
        family = FAMILIES[pipeline]
        if class_name != family.pipeline_class:
            raise SpecError(f"'{ref}' holds a {class_name}, not a {family.title} pipeline "
                            f"({family.pipeline_class}); use --pipeline auto")
        return family
    for family in FAMILIES.values():  # the first family of a class is its auto choice (sd for sd2)
        if family.pipeline_class == class_name:
            return family
    known = ", ".join(sorted({f.pipeline_class for f in FAMILIES.values()}))
    raise SpecError(f"'{ref}' holds a {class_name}, which is no pipeline family textedit knows (known: {known})")


def family_of(pipe) -> Family:
    """The family of a pipeline object, by its class (the first match, as in :func:`detect_family`)."""
    for family in FAMILIES.values():
        if type(pipe).__name__ == family.pipeline_class:
            return family
    raise SpecError(f"a {type(pipe).__name__} is no pipeline family textedit knows")


def present_components(ref: str | Path, family: Family) -> list[str]:
    """The family's text encoders that the pipeline at ``ref`` actually holds (SD3 may drop T5)."""
    index = read_model_index(ref)
    return [c for c in family.components if isinstance(index.get(c), list) and index[c][0] is not None]
