"""Text-space measurements of an edit, with the unedited encoder as the judge.

For each request, on held-out context templates (not the ones the edit trained on):

    before  = cos(s(query), s̄(target))   with the unedited encoder
    after   = cos(s'(query), s̄(target))  with the patch applied
    s̄ is the *unedited* sentence vector of the target, so the target cannot move to meet
    the query.

For neutral prompts, ``drift = 1 − cos(s'(p), s(p))``: how far the patch moved what it
should not touch. Preserved prompts (the other knowledge of each subject, kept in the solve)
are measured in the held-out contexts: their drift, and how much closer they came to the
nearest target (``toward``), which is how an edit that binds the subject instead of the
knowledge shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from .encoders.base import EncoderAdapter
from .patch import Patch
from .requests import EditRequest

#: contexts for measuring, disjoint from sites.EDIT_TEMPLATES
EVAL_TEMPLATES = (
    "an oil painting of {}",
    "{} playing in the park",
    "a photograph of {} near a river, golden hour",
    "a cartoon of {} wearing a hat",
)

#: default neutral prompts: everyday captions that share no words with the demo specs
NEUTRAL_PROMPTS = (
    "a dog running on the grass",
    "a bowl of soup on a wooden table",
    "the president of france giving a speech",
    "a red sports car on a mountain road",
    "a giant panda eating bamboo",
    "a lighthouse on a cliff at sunset",
    "a child reading a book in bed",
    "the logo of a tech company",
    "a fox in the snow",
    "an astronaut floating in space",
    "a cup of coffee and a croissant",
    "a crowded market in morocco",
)


@dataclass
class RequestScore:
    prompt: str
    target: str
    before: float
    after: float


@dataclass
class PreservedScore:
    prompt: str
    drift: float  # mean over the held-out contexts of 1 − cos(after, before)
    toward: float  # largest gain in cos to any target of the edit (> 0: it moved toward a target)


#: drift (1 − cos to itself before) past which ``apply`` names a neutral or kept prompt: the
#: world-knowledge bar for everyday captions (issue 28: max ≤ 0.05)
DRIFT_FLAG = 0.05


@dataclass
class EditReport:
    requests: list[RequestScore]
    neutral: list[tuple[str, float]]  # (prompt, drift)
    preserved: list[PreservedScore] = field(default_factory=list)

    @property
    def max_drift(self) -> float:
        return max((d for _, d in self.neutral), default=0.0)

    def drifting(self, threshold: float) -> list[tuple[str, float]]:
        """``(prompt, drift)`` of every neutral and kept prompt whose drift passes ``threshold``, worst first."""
        found = [*self.neutral, *((p.prompt, p.drift) for p in self.preserved)]
        return sorted(((p, d) for p, d in found if d > threshold), key=lambda x: -x[1])


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of ``a`` and ``b`` ``[..., d]`` → ``[...]``."""
    return (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)


def measure(adapter: EncoderAdapter, patch: Patch, requests: Sequence[EditRequest],
            neutral: Sequence[str] = NEUTRAL_PROMPTS, templates: Sequence[str] = EVAL_TEMPLATES,
            component: str | None = None, preserved: Sequence[str] = (), scale: float | None = None) -> EditReport:
    """Score ``patch`` on ``adapter``'s model at strength ``scale``: "before" without it,
    "after" with it. ``scale`` defaults to 1, or to the strength the patch is already applied
    with: a patch the caller applied is taken off for the "before" reading and put back, so
    the model is left as it was given and "before" is never the edited model."""
    held = patch.applied_scale(adapter, component)
    scale = scale if scale is not None else held if held is not None else 1.0
    if held is not None:
        patch.revert(adapter, component)
    try:
        return _measure(adapter, patch, requests, neutral, templates, component, preserved, scale)
    finally:
        if held is not None:
            patch.apply(adapter, component, scale=held)


def _measure(adapter, patch, requests, neutral, templates, component, preserved, scale) -> EditReport:
    queries = [t.format(r.prompt) for r in requests for t in templates]
    goals = [t.format(r.target) for r in requests for t in templates]
    n_t = len(templates)
    judge = adapter.embed(goals)
    before_q = adapter.embed(queries)
    before_n = adapter.embed(list(neutral)) if neutral else None
    kept = [t.format(p) for p in preserved for t in templates]
    before_k = adapter.embed(kept) if kept else None
    with patch.applied(adapter, component, scale=scale):
        after_q = adapter.embed(queries)
        after_n = adapter.embed(list(neutral)) if neutral else None
        after_k = adapter.embed(kept) if kept else None
    before = cosine(before_q, judge).reshape(-1, n_t).mean(1)
    after = cosine(after_q, judge).reshape(-1, n_t).mean(1)
    scores = [RequestScore(r.prompt, r.target, float(b), float(a)) for r, b, a in zip(requests, before, after)]
    drift = [] if before_n is None else [(p, float(1 - c)) for p, c in zip(neutral, cosine(after_n, before_n))]
    kept_scores = []
    if kept:
        k_drift = (1 - cosine(after_k, before_k)).reshape(-1, n_t).mean(1)
        # [kept, targets]: gain in cos to each target's context-matched vector, context-averaged
        goal = judge.reshape(len(requests), n_t, -1)
        gain = torch.stack([(cosine(after_k.reshape(-1, n_t, goal.shape[-1]), g) -
                             cosine(before_k.reshape(-1, n_t, goal.shape[-1]), g)).mean(1) for g in goal], 1)
        kept_scores = [PreservedScore(p, float(d), float(g)) for p, d, g in zip(preserved, k_drift, gain.max(1).values)]
    return EditReport(scores, drift, kept_scores)
