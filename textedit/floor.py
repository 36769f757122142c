"""The efficacy floor: every edit checks its own requests in contexts it did not solve in.

An edit is solved in its templates (``sites.EDIT_TEMPLATES``) and, where it keeps prompts,
traded against them (``preserve.py``). Whether the user's own knowledge then reads as its
target is measured here, in :data:`CHECK_CONTEXTS`, contexts no solve reads (neither the
edit's templates, nor the kept prompts' extra contexts, nor the evaluation contexts of
``metrics.EVAL_TEMPLATES``). With ``e`` the edited encoder's sentence vector and ``j`` the
unedited one, a request ``q → t`` in context ``c`` has the margin

    m(q, c) = cos(e(c(q)), j(c(t))) − cos(e(c(q)), j(c(q)))

and the floor holds when every request in every check context has ``m ≥ floor``: closer to
its target than to its unedited self, by ``floor``. The editor searches the most
preservation that still meets it (``editor.edit``); this module only measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .encoders.base import EncoderAdapter
from .requests import EditRequest, same_text

#: where an edit checks itself: caption-like, none an edit template, a kept prompt's extra
#: context or an evaluation context (a test checks), so the check says how the edit reads in
#: prompts it never saw
CHECK_CONTEXTS = (
    "a sculpture of {}",
    "{} in a small town",
    "a postcard showing {}",
    "an embroidered patch of {}",
    "{}, seen from far away",
    "a children's book illustration of {}",
)

#: the strengths a subject's automatic kept prompts may take (multiples of their weight),
#: strongest first: 4^-e for e = 0 … 7, then 0 (nothing kept but the corpus). A subject keeps
#: 200+ kept prompts whose keys point where its queries' do (cosine 0.97 after whitening,
#: docs/eval.md), so they outweigh the request until their strength nears 1 / their count: on
#: the knowledge dev split the old ladder 1, ¼, 1/16, 0 sent 7 of 12 concepts to 0 (same
#: subject 32.6 %); this one, searched by bisection (``editor._search``), finds the strengths
#: in between (same subject 49.3 % at the same efficacy, docs/eval.md)
STRENGTHS = tuple(4.0 ** -e for e in range(8)) + (0.0,)


@dataclass
class FloorResult:
    """What the check found for the chosen solve, and how the search got there."""

    floor: float
    strengths: dict[str, float]  # per subject, its automatic kept prompts' strength (multiple of their weight)
    margins: list[float]  # per request, the smallest over CHECK_CONTEXTS
    prompts: list[str]
    tried: list[tuple[float, float]]  # (weakest subject's strength, smallest margin), in the order tried

    @property
    def strength(self) -> float:
        """The weakest subject's strength (1 when no subject's prompts were weakened)."""
        return min(self.strengths.values(), default=1.0)

    @property
    def met(self) -> bool:
        return all(m >= self.floor for m in self.margins)

    def misses(self) -> list[tuple[str, float]]:
        """``(prompt, margin)`` of every request below the floor, worst first."""
        return sorted(((p, m) for p, m in zip(self.prompts, self.margins) if m < self.floor), key=lambda x: x[1])

    def to_dict(self) -> dict:
        return {"efficacy_floor": self.floor, "met": self.met, "strength": self.strength,
                "weakened": {subject: s for subject, s in self.strengths.items() if s != 1},
                "contexts": list(CHECK_CONTEXTS), "smallest_margin": round(min(self.margins), 6),
                "tried": [{"strength": s, "smallest_margin": round(m, 6)} for s, m in self.tried],
                "misses": [{"prompt": p, "margin": round(m, 6)} for p, m in self.misses()]}

    def describe_misses(self, limit: int = 3) -> str:
        """One line: the requests below the floor, worst first."""
        misses = self.misses()
        return f"{len(misses)} request(s) below the efficacy floor {self.floor:g} in unseen contexts: " \
               f"{list_misses(misses, limit)}"


def list_misses(misses: Sequence[tuple[str, float]], limit: int = 3) -> str:
    """``'prompt' −0.123; …`` for the first ``limit`` of ``(prompt, margin)``, and how many more."""
    shown = "; ".join(f"'{_short(p)}' {m:+.3f}" for p, m in misses[:limit])
    return shown + (f" and {len(misses) - limit} more" if len(misses) > limit else "")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


class FloorCheck:
    """The unedited readings of an edit's requests in :data:`CHECK_CONTEXTS`, taken once;
    :meth:`margins` then scores the model as it is now (the solve applied)."""

    def __init__(self, adapter: EncoderAdapter, requests: Sequence[EditRequest], floor: float,
                 contexts: Sequence[str] = CHECK_CONTEXTS):
        self.adapter, self.floor = adapter, floor
        # a request that keeps its prompt's meaning (an erasure's preserved concept) has margin
        # 0 by definition: it is no knowledge to bind, and preservation is scored elsewhere
        requests = [r for r in requests if same_text(r.prompt) != same_text(r.target)]
        self.prompts = [r.prompt for r in requests]
        self.subjects = [r.subject for r in requests]  # whose automatic kept prompts a miss weakens
        self.queries = [c.format(r.prompt) for r in requests for c in contexts]
        targets = [c.format(r.target) for r in requests for c in contexts]
        self.n_contexts = len(contexts)
        before = adapter.embed(self.queries + targets).double()
        self.old, self.new = before[:len(self.queries)], before[len(self.queries):]

    def margins(self) -> list[float]:
        """Per request, the smallest margin ``m(q, c)`` over the contexts, on the current weights."""
        now = self.adapter.embed(self.queries).double()
        m = F.cosine_similarity(now, self.new, dim=-1) - F.cosine_similarity(now, self.old, dim=-1)
        if not torch.isfinite(m).all():
            return [float("-inf")] * len(self.prompts)
        return m.reshape(len(self.prompts), self.n_contexts).min(1).values.tolist()
