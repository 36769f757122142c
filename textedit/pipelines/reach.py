"""What of an edit reaches the denoiser: the reach rule, its warnings, the default layers.

An edit of layer ``l`` changes the MLP output at the key token (the subject's last token)
and, through the attention of layers ``l+1 … n−1``, the states of the tokens after it.
``hidden_states[j]`` is the output of layer ``j − 1`` (``hidden_states[0]``: the
embeddings), so ``hidden_states[h]`` for ``h < 0`` is computed by layers ``0 … n + h``: the
penultimate state (``h = −2``) never sees the last layer. The pooled vector is the final
layer norm of the last layer's output *at the EOS token* (CLIP, then the projection of
``…WithProjection``). The graph from the last layer to it exists, but the MLP acts on each
token alone, so a last-layer edit at the key token has no later attention to carry it to
EOS: it never reaches the pooled vector. Hence

    per-token states hidden_states[h] change   iff  l ≤ n + h    (h < 0; l ≤ h − 1 for h ≥ 0)
    the pooled vector changes                  iff  l ≤ n − 2

(measured on the tiny pipelines: a perturbation of the last layer's MLP output at the key
token leaves ``hidden_states[-2]`` and the pooled vector bit-identical; see
``tests/pipelines/test_reach.py``).
"""

from __future__ import annotations

from typing import Mapping

from ..encoders.base import adapter_for
from ..errors import PatchError, SpecError
from ..patch import ENCODER, Patch
from .families import Family, Reading


class ReachWarning(UserWarning):
    """An edit (or part of one) cannot reach what the pipeline's denoiser reads."""


def last_computing_layer(hidden_state: int, num_layers: int) -> int:
    """The deepest layer that computes ``hidden_states[hidden_state]`` (−1: the embeddings)."""
    return hidden_state - 1 if hidden_state >= 0 else num_layers + hidden_state


def deepest_read(reading: Reading, num_layers: int) -> int | None:
    """The deepest layer whose output reaches the per-token states ``reading`` reads (several
    read layers, FLUX.2 Klein's: the deepest of them); ``None`` if it reads none."""
    layers = [last_computing_layer(h, num_layers) for h in reading.read_layers]
    return max(layers) if layers else None


def reached_by(reading: Reading, layer: int, num_layers: int) -> tuple[str, ...]:
    """The outputs ``reading`` names that an edit of ``layer`` at the key token changes (see above)."""
    reached = []
    deepest = deepest_read(reading, num_layers)
    if deepest is not None and layer <= deepest:
        reached.append(reading.outputs()[0])
    if reading.pooled and layer <= num_layers - 2:  # a later layer's attention carries it to EOS
        reached.append("pooled vector")
    return tuple(reached)


def fully_visible_layers(reading: Reading, num_layers: int) -> list[int]:
    """Layers whose edits reach every output the pipeline reads from this encoder."""
    return [layer for layer in range(num_layers)
            if len(reached_by(reading, layer, num_layers)) == len(reading.outputs())]


def reach_warnings(family: Family, edited: Mapping[str, tuple[list[int], int]]) -> list[str]:
    """One message per component whose edited layers cannot reach all the pipeline reads.

    ``edited`` maps a component to (its edited layers, its number of layers).
    """
    messages = []
    for component, (layers, num_layers) in edited.items():
        reading = family.reading(component)
        unseen = [layer for layer in layers if not reached_by(reading, layer, num_layers)]
        pooled_only = [layer for layer in layers if reached_by(reading, layer, num_layers) == ("pooled vector",)]
        if unseen:
            why = []
            if reading.read_layers:
                why.append(f"its {reading.outputs()[0]} are computed by layers ≤ {deepest_read(reading, num_layers)}")
            if reading.pooled:
                why.append("its pooled vector is read at the EOS token, and no attention after the last layer "
                           "carries the edit there")
            messages.append(f"{component} layer{_layers(unseen)} cannot reach the {family.title} denoiser: "
                            f"{'; '.join(why)}. This part of the edit changes nothing in the images")
        if pooled_only and not reading.read_layers:
            messages.append(f"{family.title} reads only the pooled vector of {component}: its edit (layer"
                            f"{_layers(pooled_only)}) changes the global conditioning, not the per-token states "
                            f"the denoiser attends to{_per_token_hint(family)}")
        elif pooled_only:
            messages.append(f"{component} layer{_layers(pooled_only)} reaches only the pooled vector: "
                            f"{family.title} reads {reading.outputs()[0]}, which that layer never feeds; "
                            f"edit layers ≤ {deepest_read(reading, num_layers)} "
                            "for a per-token effect")
    return messages


def _per_token_hint(family: Family) -> str:
    per_token = [c for c, r in family.readings.items() if r.read_layers]
    return f" (edit {' or '.join(per_token)} for that)" if per_token else ""


def _layers(layers: list[int]) -> str:
    return ("s " if len(layers) > 1 else " ") + ", ".join(map(str, layers))


def edited_layers(patch: Patch, pipe) -> dict[str, tuple[list[int], int]]:
    """Per component of ``patch``: (its edited layers, the pipeline encoder's number of layers),
    the input of :func:`reach_warnings` for a patch about to be applied to ``pipe``."""
    out = {}
    for component in patch.components:
        if component == ENCODER:
            raise PatchError("this patch was made on a bare encoder: make it on the pipeline's own encoder "
                             "(textedit apply SPEC --pipeline-path PIPELINE --component ...) so it names the "
                             "component it edits")
        model = getattr(pipe, component, None)
        if model is None:
            raise PatchError(f"the pipeline has no component '{component}' that this patch edits")
        layers = sorted(d.layer for d in patch.deltas if d.component == component)
        out[component] = (layers, adapter_for(model, None).num_layers)
    return out


def default_pipeline_layers(candidates: list[int], reading: Reading, num_layers: int) -> list[int]:
    """The default layers restricted to those the pipeline fully sees (never an unseen one).

    If none of ``candidates`` is fully visible (a very shallow encoder), the deepest visible
    layer is used instead.
    """
    visible = fully_visible_layers(reading, num_layers)
    if not visible:
        raise SpecError(f"no layer of this {num_layers}-layer encoder reaches what the pipeline reads")
    chosen = [layer for layer in candidates if layer in visible]
    return chosen or [max(visible)]
