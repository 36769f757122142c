"""What a pipeline's denoiser receives for a prompt, read as the pipeline reads it.

A patch edits a text encoder; whether the edit reaches the images depends on what the
denoiser gets from it. :func:`read_conditioning` reads that conditioning exactly as the
pipeline does (:meth:`Reading.read`: the template, the mask, the hidden state, the dropped
prefix) and keeps, per prompt,

    flat(p)  every read per-token state and pooled vector of every encoder, concatenated
             (what changes when the conditioning changes: ‖flat_after − flat_before‖ / ‖flat_before‖)
    c(p)     a unit summary that compares prompts of different lengths:
             concat over encoders e of normalize(mean over read tokens t of s_e(p)[t])
             (s_e(p)[t] flattened where it holds several stacked layers)
             (normalize(pooled_e(p)) for a pooled-only reader), divided by sqrt(#encoders),
             so that cos(c(p), c(q)) = c(p)·c(q).

``projected=True`` takes each per-token state through the denoiser's own first text layers
first (:attr:`Family.text_projection`: FLUX's ``context_embedder``, Qwen-Image's ``txt_norm``
and ``txt_in``), where the family has them; only those encoders then count. A text-side
edit can be lost in that projection: comparing the two views shows where.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .families import Family
from .loading import pipeline_text_encoders


@dataclass(frozen=True)
class ConditioningBatch:
    """The conditioning of a batch of prompts (see the module docstring)."""

    flat: list[torch.Tensor]  # per prompt, every read state and pooled vector, float64 [m_p]
    summary: torch.Tensor  # [n, D] unit vectors c(p), float64

    def change(self, after: "ConditioningBatch") -> list[float]:
        """Per prompt, ‖flat_after − flat_before‖ / ‖flat_before‖."""
        return [float((a - b).norm() / b.norm()) for b, a in zip(self.flat, after.flat)]


def read_conditioning(pipe, family: Family, prompts: Sequence[str], *, projected: bool = False
                      ) -> ConditioningBatch | None:
    """What ``pipe``'s denoiser receives for ``prompts`` (float64, CPU; see the module
    docstring); ``None`` for ``projected=True`` on a family without a text projection."""
    summaries, flats = [], [[] for _ in prompts]
    with torch.no_grad():
        for component, tokenizer, encoder in pipeline_text_encoders(pipe, family):
            reading = family.reading(component)
            if projected and component not in family.text_projection:
                continue
            read = reading.read(encoder, tokenizer, prompts)
            pooled = None if read.pooled is None else read.pooled.double().cpu()
            states = read.states
            if states is not None:
                for path in family.text_projection.get(component, ()) if projected else ():
                    module = _submodule(pipe, path)
                    states = module(states.to(next(module.parameters()).dtype))
                states, mask = states.double().cpu(), read.mask.bool().cpu()
                for i in range(len(prompts)):
                    flats[i].append(states[i][mask[i]].reshape(-1))
                # per token [d], or [L, d] for stacked layers (HiDream's Llama): summed over read tokens
                on = mask.reshape(*mask.shape, *[1] * (states.dim() - 2))
                summary = (states * on).sum(1).flatten(1) / mask.sum(1, keepdim=True)
            else:
                summary = pooled
            if pooled is not None and not projected:
                for i in range(len(prompts)):
                    flats[i].append(pooled[i])
            summaries.append(torch.nn.functional.normalize(summary, dim=-1))
    if not summaries:
        return None
    return ConditioningBatch([torch.cat(parts) for parts in flats],
                             torch.cat(summaries, dim=-1) / len(summaries) ** 0.5)


def _submodule(pipe, path: str) -> torch.nn.Module:
    """``pipe.transformer.txt_in`` for ``"transformer.txt_in"`` (a pipeline is no ``nn.Module``)."""
    component, _, rest = path.partition(".")
    module = getattr(pipe, component)
    return module.get_submodule(rest) if rest else module
