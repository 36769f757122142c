"""``verify``: draw the same prompts with the same seeds before and after a patch, and score.

    rows × seeds ──► before images ─┐
    with patch.applied(pipe, scale=s):├─► pixel change, pixel distance to the anchor,
    rows × seeds ──► after images ──┘   CLIP-T / CLIP-I / CLIP change (with a CLIPModel)
    (reverted on the way out, bit-exact: the pipeline draws exactly what it drew before)

and, with no image, what the denoiser receives: the conditioning of every row before and
after the patch, as such and through the denoiser's text projection (``conditioning_*``,
``projected_conditioning_*``): does the knowledge prompt's conditioning move to the anchor's,
and do the neutral prompts' stay?
"""

from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..errors import PatchError
from ..patch import Patch
from ..pipelines.conditioning import ConditioningBatch, read_conditioning
from ..pipelines.families import Family, family_of
from ..pipelines.reach import ReachWarning, edited_layers, reach_warnings
from ..progress import progress_bar
from .generate import VERIFY_NEUTRAL, VERIFY_TEMPLATES, Row, Sampling, build_rows, draw_grid
from .metrics import CLIPScorer, pixel_change


@dataclass
class VerifyResult:
    """Everything a report shows. ``before``/``after``: ``[rows, seeds, 3, H, W]`` in [0, 1]."""

    family: Family
    rows: list[Row]
    seeds: list[int]
    sampling: Sampling
    before: torch.Tensor
    after: torch.Tensor
    scores: list[dict[str, float]]  # per row, see ``score``
    summary: dict[str, dict[str, float]]  # per kind: the mean of each score over its rows
    warnings: list[str] = field(default_factory=list)
    clip_model: str | None = None
    reference: str = "anchor"  # what CLIP-I compares to: "anchor" images or a folder name
    scale: float = 1.0  # the strength the "after" images were drawn with


def verify(patch: Patch, pipe, *, family: Family | None = None, templates: Sequence[str] = VERIFY_TEMPLATES,
           neutral: Sequence[str] = VERIFY_NEUTRAL, seeds: Sequence[int] = (0, 1, 2), steps: int | None = None,
           guidance_scale: float | None = None, height: int | None = None, width: int | None = None,
           clip: CLIPScorer | None = None, reference_images: Sequence | None = None, reference_name: str = "",
           progress: bool = False, scale: float = 1.0) -> VerifyResult:
    """Draw every row at every seed without and with ``patch`` (at strength ``scale``) on
    ``pipe``, and score the change.

    The pipeline is left as it was (the patch is reverted, bit-exactly, even on errors).
    """
    family = family or family_of(pipe)
    edited = edited_layers(patch, pipe)
    warnings = reach_warnings(family, edited)
    for message in warnings:
        _warnings.warn(message, ReachWarning, stacklevel=2)
    try:  # fail on a foreign pipeline before spending minutes drawing
        with patch.applied(pipe, scale=scale):
            pass
    except PatchError as exc:
        if any(getattr(pipe, c).dtype == torch.bfloat16 for c in patch.components):
            raise PatchError(f"{exc}. Fingerprints compare weights rounded to float16, which a bfloat16 copy of a "
                             "float32/float16 checkpoint does not match: verify with --dtype float16 or float32, "
                             "or make the patch with --dtype bfloat16") from None
        raise

    rows = build_rows(patch.requests, templates, neutral)
    prompts = [row.prompt for row in rows]
    views = {"": False, "projected_": True}  # score-name prefix → through the denoiser's text projection
    conditioning_before = {prefix: read_conditioning(pipe, family, prompts, projected=p) for prefix, p in views.items()}
    with patch.applied(pipe, scale=scale):
        conditioning_after = {prefix: read_conditioning(pipe, family, prompts, projected=p)
                              for prefix, p in views.items()}
    seeds = list(seeds)
    sampling = Sampling.of_family(family, steps, guidance_scale, height, width)
    with progress_bar(remaining=True, disable=not progress) as bar:
        task = bar.add_task("generating", total=2 * len(rows) * len(seeds))
        advance = lambda: bar.update(task, advance=1)  # noqa: E731
        before = draw_grid(pipe, rows, seeds, sampling, advance)
        with patch.applied(pipe, scale=scale):
            after = draw_grid(pipe, rows, seeds, sampling, advance)

    scores = score(rows, before, after, clip, reference_images)
    for prefix in views:
        if conditioning_before[prefix] is not None:
            for s, c in zip(scores, conditioning_scores(rows, conditioning_before[prefix], conditioning_after[prefix],
                                                        prefix)):
                s.update(c)
    return VerifyResult(family, rows, seeds, sampling, before, after, scores, summarize(rows, scores), warnings,
                        clip.name if clip is not None else None,
                        reference_name or ("reference images" if reference_images else "anchor"), scale)


def score(rows: Sequence[Row], before: torch.Tensor, after: torch.Tensor, clip: CLIPScorer | None = None,
          reference_images: Sequence | None = None) -> list[dict[str, float]]:
    """Per row, averaged over seeds (see ``metrics.py`` for the definitions):

    ``pixel_change`` every row; ``pixel_to_anchor_before/after`` query rows; with ``clip``:
    ``clip_change`` every row, ``clip_t_before/after`` anchor and query rows,
    ``clip_i_before/after`` query rows.
    """
    n_rows, n_seeds = before.shape[:2]
    scores: list[dict[str, float]] = []
    for i, row in enumerate(rows):
        s = {"pixel_change": pixel_change(before[i], after[i])}
        if row.anchor_row is not None:
            anchor = before[row.anchor_row]  # the unedited anchor images are the reference
            s["pixel_to_anchor_before"] = pixel_change(before[i], anchor)
            s["pixel_to_anchor_after"] = pixel_change(after[i], anchor)
        scores.append(s)
    if clip is None:
        return scores

    def embed(grid: torch.Tensor) -> torch.Tensor:  # [rows, seeds, 3, H, W] → [rows, seeds, d]
        return clip.image_embeds(list(grid.reshape(n_rows * n_seeds, *grid.shape[2:]))).reshape(n_rows, n_seeds, -1)

    e_before, e_after = embed(before), embed(after)
    targets = sorted({row.target for row in rows if row.target is not None})
    text = dict(zip(targets, clip.text_embeds(targets))) if targets else {}
    reference = None
    if reference_images:
        reference = torch.nn.functional.normalize(clip.image_embeds(reference_images).mean(0), dim=-1)
    for i, row in enumerate(rows):
        s = scores[i]
        s["clip_change"] = float(1 - (e_before[i] * e_after[i]).sum(-1).mean())
        if row.target is not None:
            s["clip_t_before"] = float((e_before[i] @ text[row.target]).mean())
            s["clip_t_after"] = float((e_after[i] @ text[row.target]).mean())
        if row.kind == "query":
            ref = reference if reference is not None else e_before[row.anchor_row]  # [d] or [seeds, d]
            s["clip_i_before"] = float((e_before[i] * ref).sum(-1).mean())
            s["clip_i_after"] = float((e_after[i] * ref).sum(-1).mean())
    return scores


def conditioning_scores(rows: Sequence[Row], before: ConditioningBatch, after: ConditioningBatch, prefix: str = ""
                        ) -> list[dict[str, float]]:
    """Per row, from what the denoiser receives before and after the patch
    (:func:`~textedit.pipelines.conditioning.read_conditioning`), no image needed:

    ``conditioning_change`` = ‖after − before‖ / ‖before‖ of all read states, every row
    (neutral rows: the leak); ``conditioning_to_anchor_before/after`` = cos(c(query) before /
    after, c(anchor) before), query rows: how close what the denoiser receives for the
    knowledge prompt comes to what it receives for the anchor. ``prefix`` ("projected_")
    names the view after the denoiser's text projection.
    """
    out = []
    for i, (row, change) in enumerate(zip(rows, before.change(after))):
        s = {f"{prefix}conditioning_change": change}
        if row.anchor_row is not None:
            anchor = before.summary[row.anchor_row]
            s[f"{prefix}conditioning_to_anchor_before"] = float(before.summary[i] @ anchor)
            s[f"{prefix}conditioning_to_anchor_after"] = float(after.summary[i] @ anchor)
        out.append(s)
    return out


def summarize(rows: Sequence[Row], scores: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean of every score over the rows of each kind."""
    summary: dict[str, dict[str, float]] = {}
    for kind in ("query", "subject", "anchor", "neutral"):
        of_kind = [s for row, s in zip(rows, scores) if row.kind == kind]
        if of_kind:
            names = list(dict.fromkeys(name for s in of_kind for name in s))
            summary[kind] = {name: sum(s[name] for s in of_kind) / len(of_kind) for name in names}
    return summary
