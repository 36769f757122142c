"""The prompts a verification draws, and drawing them with fixed seeds.

Rows of the grid, for each template (default: "a photo of {} on the beach"):

    anchor   the template filled with a request's target ("a photo of a red panda on the beach")
    query    the template filled with each request bound to that target
             ("a photo of the mascot of Acme on the beach")
    subject  the same subject's other knowledge, which must not become the anchor
             ("a photo of the founder of Acme on the beach": ``preserve.subject_prompts``,
             the first ``SAME_SUBJECT_ROWS`` per subject)

then the neutral prompts, which no request mentions and which must not change. An edit that
binds the subject instead of the knowledge moves the subject rows to the anchor too. Every row
is drawn for every seed before and after the patch; the generator for (row, seed) is a
fresh CPU ``torch.Generator`` seeded with ``seed``, so the two images differ only by what
the patch changed in the prompt embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..errors import SpecError
from ..pipelines.families import Family
from ..preserve import subject_prompts
from ..requests import EditRequest, is_template

#: contexts of the query and anchor rows; one keeps a default run to a few dozen images
VERIFY_TEMPLATES = ("a photo of {} on the beach",)

#: same-subject rows per subject and template (the first of ``preserve.subject_prompts``)
SAME_SUBJECT_ROWS = 2

#: prompts that share no words with the shipped specs (a subset of metrics.NEUTRAL_PROMPTS)
VERIFY_NEUTRAL = (
    "a dog running on the grass",
    "a red sports car on a mountain road",
    "a lighthouse on a cliff at sunset",
)


@dataclass(frozen=True)
class Row:
    """One prompt of the grid."""

    prompt: str
    kind: str  # "anchor" | "query" | "subject" | "neutral"
    target: str | None = None  # the anchor's description (anchor, query and subject rows)
    anchor_row: int | None = None  # index of the anchor row of the same template (query and subject rows)


def build_rows(requests: Sequence[dict], templates: Sequence[str] = VERIFY_TEMPLATES,
               neutral: Sequence[str] = VERIFY_NEUTRAL, same_subject: int = SAME_SUBJECT_ROWS) -> list[Row]:
    """Anchor, query, same-subject and neutral rows for a patch's requests (``{"prompt",
    "target", "subject"}`` dicts)."""
    if not requests:
        raise SpecError("the patch holds no requests to verify")
    for template in templates:
        if not is_template(template):
            raise SpecError(f"template '{template}' must contain '{{}}' exactly once and no other brace")
    targets = list(dict.fromkeys(r["target"] for r in requests))
    rows: list[Row] = []
    for template in templates:
        for target in targets:
            anchor = len(rows)
            rows.append(Row(template.format(target), "anchor", target))
            bound = [r for r in requests if r["target"] == target]
            for request in bound:
                rows.append(Row(template.format(request["prompt"]), "query", target, anchor))
            for prompt in _same_subject(bound, requests, same_subject):
                rows.append(Row(template.format(prompt), "subject", target, anchor))
    rows.extend(Row(prompt, "neutral") for prompt in neutral)
    return rows


def _same_subject(bound: Sequence[dict], requests: Sequence[dict], per_subject: int) -> list[str]:
    """The first ``per_subject`` other-knowledge prompts of each subject bound here (none for
    requests without a subject); never a query of the patch."""
    queries = {r["prompt"].lower() for r in requests}
    out: list[str] = []
    for subject in dict.fromkeys(r.get("subject") for r in bound if r.get("subject")):
        of_subject = [EditRequest(r["prompt"], r["target"], subject=subject)
                      for r in bound if r.get("subject") == subject]
        out += [p for p in subject_prompts(of_subject) if p.lower() not in queries][:per_subject]
    return out


def read_prompts_file(path: str | Path) -> tuple[list[str], list[str]]:
    """``--prompts FILE``: one prompt per line; a line with ``{}`` is a template for the
    query and anchor rows, any other line a neutral prompt; blank lines and ``#`` comments
    are skipped. Returns (templates, neutral prompts); an empty list means "use the default"."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"prompts file '{path}' does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SpecError(f"prompts file '{path}' is not UTF-8 text") from None
    templates, neutral = [], []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.count("{}") > 1:
            raise SpecError(f"{path}:{number}: a template holds '{{}}' once")
        (templates if "{}" in line else neutral).append(line)
    if not templates and not neutral:
        raise SpecError(f"prompts file '{path}' holds no prompts")
    return templates, neutral


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]``."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SpecError(f"--seeds '{text}': expected integers like '0,1,2'") from None
    if not seeds or any(s < 0 for s in seeds):
        raise SpecError(f"--seeds '{text}': expected non-negative integers like '0,1,2'")
    return list(dict.fromkeys(seeds))


@dataclass(frozen=True)
class Sampling:
    """How every image is drawn (the same before and after)."""

    steps: int
    guidance_scale: float
    height: int | None = None  # None: the pipeline's default size
    width: int | None = None
    guidance_argument: str = "guidance_scale"  # the pipeline's name for it (Family.guidance_argument)
    call_arguments: tuple[tuple[str, object], ...] = ()  # the family's further arguments (Family.call_arguments)

    @classmethod
    def of_family(cls, family: Family, steps: int | None = None, guidance_scale: float | None = None,
                  height: int | None = None, width: int | None = None) -> "Sampling":
        """How ``family``'s model cards draw (its steps, guidance and the arguments it passes),
        with ``steps`` / ``guidance_scale`` where given."""
        return cls(steps or family.steps, family.guidance_scale if guidance_scale is None else guidance_scale,
                   height, width, family.guidance_argument, tuple(sorted(family.call_arguments.items())))

    def kwargs(self) -> dict:
        size = {k: v for k, v in (("height", self.height), ("width", self.width)) if v is not None}
        return {"num_inference_steps": self.steps, self.guidance_argument: self.guidance_scale, **size,
                **dict(self.call_arguments)}


def draw(pipe, prompt: str, seed: int, sampling: Sampling) -> torch.Tensor:
    """One image ``[3, H, W]`` float32 in [0, 1] on the CPU."""
    generator = torch.Generator("cpu").manual_seed(seed)
    with torch.no_grad():
        images = pipe(prompt=prompt, generator=generator, output_type="pt", **sampling.kwargs()).images
    return images[0].float().cpu()


def draw_grid(pipe, rows: Sequence[Row], seeds: Sequence[int], sampling: Sampling,
              advance: Callable[[], None] | None = None) -> torch.Tensor:
    """``[len(rows), len(seeds), 3, H, W]``: every row at every seed."""
    grid = []
    for row in rows:
        images = []
        for seed in seeds:
            images.append(draw(pipe, row.prompt, seed, sampling))
            if advance is not None:
                advance()
        grid.append(torch.stack(images))
    return torch.stack(grid)
