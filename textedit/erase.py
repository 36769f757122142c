"""Concept erasure: rebind concepts, and the ways prompts refer to them, to a surrogate.

Erasure is one more way of building edit requests (the solve is :func:`textedit.edit`).
For a concept ``c`` with surrogate ``s`` and each context phrase ``p`` of
:data:`ERASE_CONTEXTS` (``"{}"``, ``"a painting by {}"``, ``"the style of {}"``, ...):

    erase request     p(c) → p(s)   key at the last token of c
    preserve request  p(q) → p(q)   for every preserved concept q

A preserve request's target is its own unedited output, so in MEMIT's terms it is an extra
key ``k_q`` whose target value is the current ``W k_q``: the batched solve
``ΔW = R Kᵀ (λC + KKᵀ)⁻¹`` then keeps ``ΔW k_q ≈ 0`` (its residual is zero) while moving the
erased keys. Every context ends with the concept, so the key (last token of ``c``) and the
target site (last token of ``p(q)``) are the same token and preserve requests are
identities under every value strategy.

The default surrogate is the empty prompt ``""``: erasing ``c`` means a prompt should read
as if ``c`` were not in it (``"a painting by Van Gogh"`` → ``"a painting by"``), which needs
no knowledge of ``c``'s class. A class description (``--to "a painter"``, or ``"to"`` per
concept in a spec) is the alternative when the image model should still draw *something*
of the kind. Contexts whose surrogate form is empty (the bare ``"{}"`` with ``s = ""``) are
left out, since there is nothing to read there.

Measured in text space, with the unedited encoder as judge, on held-out contexts
(:data:`ERASE_EVAL_TEMPLATES`, none used for editing):

    erased     t(c) with the patch is closer (cosine) to judge(t(s)) than to judge(t(c))
    preserved  t(q) with the patch is still closer to judge(t(q)) than to judge(t(s)),
               and its drift 1 − cos(t(q)', judge(t(q)))
    neutral    drift of metrics.NEUTRAL_PROMPTS
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch

from .editor import EditConfig, edit
from .encoders.base import EncoderAdapter
from .concepts import ERASE_CONTEXTS, Concept, Erasure, fill, parse_concept_list  # re-exported: the erasure's declaration
from .metrics import EVAL_TEMPLATES, NEUTRAL_PROMPTS, cosine
from .patch import ENCODER, Patch

#: held-out contexts for measuring, disjoint from ERASE_CONTEXTS and sites.EDIT_TEMPLATES
ERASE_EVAL_TEMPLATES = EVAL_TEMPLATES + ("an image in the style of {}", "{}'s famous work")

#: the editor's own context templates for erasure: the contexts above already vary the
#: phrasing, so each request is read as it stands
ERASE_TEMPLATES = ("{}",)

#: MEMIT's λ for erasure, whatever the editor's default: a batch rebinds hundreds of keys
#: at once and needs the covariance term at the MEMIT/EMCID scale. Measured on MiniLM
#: (docs/erase.md): 100 concepts with λ = 50 break neutral prompts (drift 0.66), with
#: λ = 5,000 they stay within 0.03.
ERASE_LAM = 5e3


def erase_config(**settings) -> EditConfig:
    """The edit settings of an erasure: ``ERASE_TEMPLATES``, no automatic preserved prompts
    and, for ``memit``, λ = ``ERASE_LAM``, unless ``settings`` (EditConfig fields) say otherwise.

    Automatic preservation keeps the subject's bare name and its other relations; an erasure
    removes the concept from every context, its bare name first, so the two would fight.
    What an erasure keeps is its ``preserve`` list (other concepts), solved in the same edit.
    """
    settings = {"templates": ERASE_TEMPLATES, "auto_preserve": False, **settings}
    if settings.get("method", "memit") == "memit":
        settings.setdefault("lam", ERASE_LAM)
    return EditConfig(**settings)


def erase(adapter: EncoderAdapter, erasure: Erasure, config: EditConfig | None = None, **edit_kwargs) -> Patch:
    """One patch that erases every concept of ``erasure`` and keeps its preserved ones.

    ``config`` defaults to :func:`erase_config`; ``edit_kwargs`` go to :func:`textedit.edit`
    (``stats``, ``corpus``, ``cache_dir``, ``component``, ``progress``).
    """
    config = config or erase_config()
    patch = edit(adapter, erasure.requests(adapter), config, **edit_kwargs)
    patch.hyperparameters = {**patch.hyperparameters, "erase_contexts": list(erasure.contexts)}
    return patch


# -- measuring -------------------------------------------------------------------------------


@dataclass
class ConceptScore:
    concept: str
    surrogate: str
    erased: float  # fraction of held-out prompts closer to the surrogate than to the concept
    to_concept: float  # mean cos(edited t(c), judge t(c))
    to_surrogate_before: float  # mean cos(judge t(c), judge t(s))
    to_surrogate_after: float  # mean cos(edited t(c), judge t(s))


@dataclass
class PreservedScore:
    concept: str
    kept: float  # fraction of held-out prompts still closer to themselves than to the surrogate
    drift: float  # mean 1 − cos(edited t(q), judge t(q))


@dataclass
class ErasureReport:
    concepts: list[ConceptScore]
    preserved: list[PreservedScore]
    neutral: list[tuple[str, float]]  # (prompt, drift)
    seconds: float | None = None  # time the erasure's edit took (erase_with_report); None: measured alone

    @property
    def erasure_rate(self) -> float:
        return sum(s.erased for s in self.concepts) / len(self.concepts)

    @property
    def preservation_rate(self) -> float | None:
        return sum(s.kept for s in self.preserved) / len(self.preserved) if self.preserved else None

    @property
    def preserved_drift(self) -> float | None:
        return sum(s.drift for s in self.preserved) / len(self.preserved) if self.preserved else None

    @property
    def max_drift(self) -> float:
        return max((d for _, d in self.neutral), default=0.0)

    @property
    def mean_drift(self) -> float:
        return sum(d for _, d in self.neutral) / len(self.neutral) if self.neutral else 0.0

    def record(self, erasure: Erasure, patch: Patch) -> dict:
        """The JSON record of the erasure ``patch`` made (``erasure.json`` of ``textedit erase``):
        counts, the time to edit, the rates and drifts, and every concept's scores."""
        return {"concepts": len(erasure.concepts), "preserved": len(erasure.preserve),
                "seconds": None if self.seconds is None else round(self.seconds, 1),
                "erasure_rate": self.erasure_rate, "preservation_rate": self.preservation_rate,
                "preserved_drift": self.preserved_drift, "neutral_drift_mean": self.mean_drift,
                "neutral_drift_max": self.max_drift, "patch": patch.id,
                "per_concept": [vars(s) for s in self.concepts], "per_preserved": [vars(s) for s in self.preserved]}


def measure_erasure(adapter: EncoderAdapter, patch: Patch, erasure: Erasure, *,
                    neutral: Sequence[str] = NEUTRAL_PROMPTS, templates: Sequence[str] = ERASE_EVAL_TEMPLATES,
                    component: str | None = None) -> ErasureReport:
    """Score an erasure patch (applied and reverted here); the judge is the unedited encoder.

    For concept c, surrogate s and held-out template t (n_t of them), with e' the edited and
    e the judge's sentence vectors: erased = mean over t of [cos(e'(t(c)), e(t(s))) >
    cos(e'(t(c)), e(t(c)))]. Preserved concepts q are compared with the surrogate of the
    first concept (the batch's default surrogate when one ``--to`` was given).
    """
    n_t = len(templates)
    default_to = erasure.concepts[0].to
    concept_prompts = [fill(t, c.name) for c in erasure.concepts for t in templates]
    surrogate_prompts = [fill(t, c.to) for c in erasure.concepts for t in templates]
    kept_prompts = [fill(t, q) for q in erasure.preserve for t in templates]
    kept_surrogates = [fill(t, default_to) for _ in erasure.preserve for t in templates]

    judge_c, judge_s = adapter.embed(concept_prompts), adapter.embed(surrogate_prompts)
    judge_q, judge_qs = adapter.embed(kept_prompts), adapter.embed(kept_surrogates)
    judge_n = adapter.embed(list(neutral))
    with patch.applied(adapter, component):
        edited_c, edited_q, edited_n = adapter.embed(concept_prompts), adapter.embed(kept_prompts), \
            adapter.embed(list(neutral))

    def per_concept(x: torch.Tensor) -> list[float]:
        return x.reshape(-1, n_t).mean(1).tolist()

    to_concept, to_surrogate = cosine(edited_c, judge_c), cosine(edited_c, judge_s)
    scores = [ConceptScore(c.name, c.to, *values) for c, *values in zip(
        erasure.concepts, per_concept((to_surrogate > to_concept).double()), per_concept(to_concept),
        per_concept(cosine(judge_c, judge_s)), per_concept(to_surrogate))]
    preserved = []
    if erasure.preserve:
        own, other = cosine(edited_q, judge_q), cosine(edited_q, judge_qs)
        preserved = [PreservedScore(q, kept, 1 - cos) for q, kept, cos in zip(
            erasure.preserve, per_concept((own > other).double()), per_concept(own))]
    drift = [(p, float(1 - c)) for p, c in zip(neutral, cosine(edited_n, judge_n))]
    return ErasureReport(scores, preserved, drift)


def erase_with_report(adapter: EncoderAdapter, erasure: Erasure, config: EditConfig | None = None, *,
                      component: str | None = None, neutral: Sequence[str] = NEUTRAL_PROMPTS,
                      templates: Sequence[str] = ERASE_EVAL_TEMPLATES, **edit_kwargs) -> tuple[Patch, ErasureReport]:
    """``textedit erase`` as one call: :func:`erase`, then :func:`measure_erasure` of the patch
    on the same encoder (the judge: that encoder unedited; the model is left as it was).

    ``component`` names the pipeline component the patch edits (``None``: a bare encoder);
    ``edit_kwargs`` go to :func:`textedit.edit` (``stats``, ``corpus``, ``cache_dir``,
    ``progress``). The report's ``seconds`` is the time the edit took, measuring excluded;
    ``report.record(erasure, patch)`` is what the CLI writes to ``erasure.json``.
    """
    started = time.perf_counter()
    patch = erase(adapter, erasure, config, component=component or ENCODER, **edit_kwargs)
    seconds = time.perf_counter() - started
    report = measure_erasure(adapter, patch, erasure, neutral=neutral, templates=templates, component=component)
    report.seconds = seconds
    return patch, report


__all__ = ["Concept", "Erasure", "ErasureReport", "ERASE_CONTEXTS", "ERASE_EVAL_TEMPLATES", "erase", "fill",
           "erase_config", "erase_with_report", "measure_erasure", "parse_concept_list"]
