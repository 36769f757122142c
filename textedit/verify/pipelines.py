"""Diffusion pipeline families as data: which text encoders each reads, and how.

A family is a diffusers pipeline class plus, per text-encoder component, a :class:`Reading`:
which per-token hidden state the denoiser conditions on (``-1`` the last, after CLIP's final
layer norm; ``-2`` the penultimate layer's output; ``None`` none), whether it reads the
pooled vector, and how the pipeline tokenizes for it (padded to a fixed length, no
attention mask). Everything family-specific lives in :data:`FAMILIES`; no code branches on
a family's name.

What reaches the denoiser. An edit of layer ``l`` changes the MLP output at the key token
(the subject's last token) and, through the attention of layers ``l+1 … n−1``, the states
of the tokens after it. ``hidden_states[j]`` is the output of layer ``j − 1``
(``hidden_states[0]``: the embeddings), so ``hidden_states[h]`` for ``h < 0`` is computed by
layers ``0 … n + h``: the penultimate state (``h = −2``) never sees the last layer. The
pooled vector is the final layer norm of the last layer's output *at the EOS token* (CLIP,
then the projection of ``…WithProjection``). The graph from the last layer to it exists,
but the MLP acts on each token alone, so a last-layer edit at the key token has no later
attention to carry it to EOS: it never reaches the pooled vector. Hence

    per-token states hidden_states[h] change   iff  l ≤ n + h
    the pooled vector changes                  iff  l ≤ n − 2

(measured on the tiny pipelines: a perturbation of the last layer's MLP output at the key
token leaves ``hidden_states[-2]`` and the pooled vector bit-identical; see
``tests/verify/test_verify_pipelines.py``).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import torch

from ..corpus import Corpus
from ..editor import EditConfig, default_layers, edit
from ..encoders import COMPONENT_TOKENIZERS, ConsumerTokenization, load_encoder
from ..encoders.base import EncoderAdapter
from ..errors import ModelLoadError, SpecError
from ..patch import Patch
from ..requests import EditRequest


class ReachWarning(UserWarning):
    """An edit (or part of one) cannot reach what the pipeline's denoiser reads."""


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

    def reached_by(self, layer: int, num_layers: int) -> tuple[str, ...]:
        """The outputs an edit of ``layer`` at the key token changes (see the module docstring)."""
        reached = []
        if self.hidden_state is not None and layer <= num_layers + self.hidden_state:
            reached.append(self.outputs()[0])
        if self.pooled and layer <= num_layers - 2:  # a later layer's attention carries it to EOS
            reached.append("pooled vector")
        return tuple(reached)

    def fully_visible_layers(self, num_layers: int) -> list[int]:
        """Layers whose edits reach every output the pipeline reads from this encoder."""
        return [layer for layer in range(num_layers)
                if len(self.reached_by(layer, num_layers)) == len(self.outputs())]


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

PIPELINE_CHOICES = (*FAMILIES, "auto")


# -- detection and loading -------------------------------------------------------------


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
    from diffusers import DiffusionPipeline
    try:
        return dict(DiffusionPipeline.load_config(str(ref)))
    except Exception as exc:  # hub errors: offline, no such repo, gated
        raise ModelLoadError(f"cannot read pipeline '{ref}': {str(exc).strip().splitlines()[0][:300]}") from None


def detect_family(ref: str | Path, pipeline: str = "auto") -> Family:
    """The family of the pipeline at ``ref``; with an explicit ``pipeline``, check it matches."""
    if pipeline not in PIPELINE_CHOICES:
        raise SpecError(f"unknown pipeline family '{pipeline}': use one of {', '.join(PIPELINE_CHOICES)}")
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
    raise SpecError(f"'{ref}' holds a {class_name}, which textedit cannot verify (known: {known})")


def family_of(pipe) -> Family:
    """The family of a pipeline object, by its class (the first match, as in :func:`detect_family`)."""
    for family in FAMILIES.values():
        if type(pipe).__name__ == family.pipeline_class:
            return family
    raise SpecError(f"textedit cannot verify a {type(pipe).__name__}")


def present_components(ref: str | Path, family: Family) -> list[str]:
    """The family's text encoders that the pipeline at ``ref`` actually holds (SD3 may drop T5)."""
    index = read_model_index(ref)
    return [c for c in family.components if isinstance(index.get(c), list) and index[c][0] is not None]


def resolve_dtype(dtype: str | None, device: str, family: Family) -> torch.dtype:
    from ..encoders import DTYPES
    if dtype is None:
        return family.default_dtype(device)
    if dtype not in DTYPES:
        raise SpecError(f"unknown dtype '{dtype}': use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_pipeline(ref: str | Path, family: Family, *, device: str = "cpu", dtype: torch.dtype | None = None):
    """``from_pretrained`` of the family's pipeline class (safetensors only), moved to ``device``."""
    import diffusers
    from diffusers.utils import deprecation_utils
    cls = getattr(diffusers, family.pipeline_class)
    # diffusers renamed torch_dtype to dtype (warning on the old name); older releases know only torch_dtype
    dtype_key = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
    local = Path(str(ref)).expanduser()
    try:
        pipe = cls.from_pretrained(str(local) if local.is_dir() else str(ref), use_safetensors=True,
                                   **{dtype_key: dtype or family.default_dtype(device)})
        pipe = pipe.to(device)
    except Exception as exc:
        raise ModelLoadError(f"cannot load {family.title} pipeline '{ref}': "
                             f"{(str(exc).strip() or type(exc).__name__).splitlines()[0][:300]}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_pipeline_encoder(ref: str | Path, component: str, family: Family, *, dtype: str | torch.dtype | None = None,
                          device: str = "cpu") -> EncoderAdapter:
    """One text encoder of a pipeline, wrapped so it tokenizes and reads out as that pipeline does."""
    if component not in COMPONENT_TOKENIZERS:
        raise SpecError(f"unknown component '{component}': use one of {', '.join(COMPONENT_TOKENIZERS)} or all")
    reading = family.reading(component)
    return load_encoder(ref, component=component, dtype=dtype, device=device, consumer=reading.consumer,
                        hidden_state_index=reading.hidden_state if reading.hidden_state is not None else -1)


# -- reach ------------------------------------------------------------------------------


def reach_warnings(family: Family, edited: Mapping[str, tuple[list[int], int]]) -> list[str]:
    """One message per component whose edited layers cannot reach all the pipeline reads.

    ``edited`` maps a component to (its edited layers, its number of layers).
    """
    messages = []
    for component, (layers, num_layers) in edited.items():
        reading = family.reading(component)
        unseen = [layer for layer in layers if not reading.reached_by(layer, num_layers)]
        pooled_only = [layer for layer in layers if reading.reached_by(layer, num_layers) == ("pooled vector",)]
        if unseen:
            why = []
            if reading.hidden_state is not None:
                why.append(f"its per-token states come from hidden_states[{reading.hidden_state}], computed by "
                           f"layers ≤ {num_layers + reading.hidden_state}")
            if reading.pooled:
                why.append("its pooled vector is read at the EOS token, and no attention after the last layer "
                           "carries the edit there")
            messages.append(f"{component} layer{_layers(unseen)} cannot reach the {family.title} denoiser: "
                            f"{'; '.join(why)}. This part of the edit changes nothing in the images")
        if pooled_only and reading.hidden_state is None:
            messages.append(f"{family.title} reads only the pooled vector of {component}: its edit (layer"
                            f"{_layers(pooled_only)}) changes the global conditioning, not the per-token states "
                            f"the denoiser attends to{_per_token_hint(family)}")
        elif pooled_only:
            messages.append(f"{component} layer{_layers(pooled_only)} reaches only the pooled vector: "
                            f"{family.title} reads per-token states from hidden_states[{reading.hidden_state}], "
                            f"which that layer never feeds; edit layers ≤ {num_layers + reading.hidden_state} "
                            "for a per-token effect")
    return messages


def _per_token_hint(family: Family) -> str:
    per_token = [c for c, r in family.readings.items() if r.hidden_state is not None]
    return f" (edit {' or '.join(per_token)} for that)" if per_token else ""


def _layers(layers: list[int]) -> str:
    return ("s " if len(layers) > 1 else " ") + ", ".join(map(str, layers))


def default_pipeline_layers(candidates: list[int], reading: Reading, num_layers: int) -> list[int]:
    """The default layers restricted to those the pipeline fully sees (never an unseen one).

    If none of ``candidates`` is fully visible (a very shallow encoder), the deepest visible
    layer is used instead.
    """
    visible = reading.fully_visible_layers(num_layers)
    if not visible:
        raise SpecError(f"no layer of this {num_layers}-layer encoder reaches what the pipeline reads")
    chosen = [layer for layer in candidates if layer in visible]
    return chosen or [max(visible)]


# -- editing a pipeline's own encoders ---------------------------------------------------


@dataclass
class ComponentEdit:
    """The edit of one text encoder of a pipeline, with the adapter it was made on."""

    component: str
    adapter: EncoderAdapter
    patch: Patch


def edit_pipeline(ref: str | Path, family: Family, requests: Sequence[EditRequest], config: EditConfig,
                  components: Sequence[str], *, corpus: Corpus | None = None, cache_dir=None,
                  dtype: str | torch.dtype | None = None, device: str = "cpu",
                  progress: bool = False) -> Iterator[ComponentEdit]:
    """Edit each of ``components`` of the pipeline at ``ref``, one at a time (so only one
    encoder is in memory), yielding one :class:`ComponentEdit` per component.

    Each encoder is loaded as the pipeline reads it (its padding, its hidden state), keeps
    its own statistics (cached by its fingerprint), and, when ``config.layers`` is ``None``,
    edits the default layers that the pipeline fully sees. Explicit layers the denoiser
    cannot see draw a :class:`ReachWarning`. Combine the parts with :meth:`Patch.combine`.
    """
    for component in components:
        reading = family.reading(component)
        wanted = [r for r in requests if r.component in (None, component)]
        if not wanted:
            continue
        adapter = load_pipeline_encoder(ref, component, family, dtype=dtype, device=device)
        layers = config.layers
        if layers is None:
            layers = default_pipeline_layers(default_layers(adapter, config.method), reading, adapter.num_layers)
        layers = adapter.check_layers(layers)
        for message in reach_warnings(family, {component: (layers, adapter.num_layers)}):
            warnings.warn(message, ReachWarning, stacklevel=2)
        patch = edit(adapter, wanted, dataclasses.replace(config, layers=layers), corpus=corpus, cache_dir=cache_dir,
                     component=component, progress=progress)
        yield ComponentEdit(component, adapter, patch)
