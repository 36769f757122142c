"""The three scores of fact editing, in text space, with the unedited encoder as judge.

With ``e(p)`` the edited encoder's sentence vector of prompt ``p``, ``j(p)`` the frozen
(unedited) one and ``cos`` cosine similarity, for one case:

    efficacy     cos(e(source), j(target))  > cos(e(source), j(old))
    generality   cos(e(positive), j(new))    > cos(e(positive), j(old))   per positive
    specificity  cos(e(negative), j(itself)) > cos(e(negative), j(new))   per negative
    drift        1 − cos(e(negative), j(negative))                        per negative

ReFACT scores these with a CLIP image classifier; here the classifier is the frozen text
encoder, so the scores say what the edit did to the text encoder itself, in seconds.
Run on the unedited encoder (``e = j``) the same code gives the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from .benchmark import EvalCase

Vectors = Mapping[str, torch.Tensor]  # prompt → sentence vector [d]


def case_prompts(case: EvalCase) -> tuple[list[str], list[str]]:
    """``(prompts the edited encoder reads, prompts the judge reads)`` of one case."""
    edited = [case.source] + [p.prompt for p in case.positives] + [n.prompt for n in case.negatives]
    judged = [case.old, case.target] + [t for p in case.positives for t in (p.old, p.new)] + \
             [t for n in case.negatives for t in (n.prompt, n.new)]
    return edited, judged


@dataclass
class CaseScore:
    """Outcomes of one case; the margins (cos to the wanted reading − cos to the other) say by how much."""

    case: EvalCase
    efficacy_margin: float
    generality_margins: list[float]
    specificity_margins: list[float]
    drift: list[float]

    @property
    def efficacy(self) -> bool:
        return self.efficacy_margin > 0

    @property
    def generality(self) -> list[bool]:
        return [m > 0 for m in self.generality_margins]

    @property
    def specificity(self) -> list[bool]:
        return [m > 0 for m in self.specificity_margins]

    def to_dict(self) -> dict:
        return {**self.case.to_dict(), "efficacy": self.efficacy, "efficacy_margin": round(self.efficacy_margin, 6),
                "generality": [{"prompt": p.prompt, "new": p.new, "ok": m > 0, "margin": round(m, 6)}
                               for p, m in zip(self.case.positives, self.generality_margins)],
                "specificity": [{"prompt": n.prompt, "new": n.new, "ok": m > 0, "margin": round(m, 6),
                                 "drift": round(d, 6)}
                                for n, m, d in zip(self.case.negatives, self.specificity_margins, self.drift)]}


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double(), b.double(), dim=-1))


def score_case(case: EvalCase, edited: Vectors, judge: Vectors) -> CaseScore:
    """Score one case from precomputed vectors (``edited`` after the edit, ``judge`` before)."""
    def margin(prompt: str, wanted: str, other: str) -> float:
        return _cos(edited[prompt], judge[wanted]) - _cos(edited[prompt], judge[other])

    return CaseScore(
        case,
        efficacy_margin=margin(case.source, case.target, case.old),
        generality_margins=[margin(p.prompt, p.new, p.old) for p in case.positives],
        specificity_margins=[margin(n.prompt, n.prompt, n.new) for n in case.negatives],
        drift=[1 - _cos(edited[n.prompt], judge[n.prompt]) for n in case.negatives],
    )


@dataclass
class Summary:
    """Scores over cases: efficacy per case, generality and specificity per prompt (micro-averaged)."""

    efficacy: float
    generality: float
    specificity: float
    drift: float  # mean over negative prompts
    cases: int

    @classmethod
    def of(cls, scores: list[CaseScore]) -> "Summary":
        def mean(values: list) -> float:
            return float(sum(values) / len(values)) if values else float("nan")
        return cls(efficacy=mean([s.efficacy for s in scores]),
                   generality=mean([ok for s in scores for ok in s.generality]),
                   specificity=mean([ok for s in scores for ok in s.specificity]),
                   drift=mean([d for s in scores for d in s.drift]),
                   cases=len(scores))

    def to_dict(self) -> dict:
        return {"efficacy": self.efficacy, "generality": self.generality, "specificity": self.specificity,
                "drift": self.drift, "cases": self.cases}


def embed_all(embed: Callable[[list[str]], torch.Tensor], prompts: list[str], batch_size: int = 128
              ) -> dict[str, torch.Tensor]:
    """Sentence vectors of the distinct ``prompts`` (float64, CPU), batched."""
    unique = list(dict.fromkeys(prompts))
    vectors: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for begin in range(0, len(unique), batch_size):
            chunk = unique[begin:begin + batch_size]
            for prompt, vector in zip(chunk, embed(chunk).double().cpu()):
                vectors[prompt] = vector
    return vectors
