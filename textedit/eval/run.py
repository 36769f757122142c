"""Run edits over a benchmark and score them: one case at a time, all in one edit, or in a chain.

    single   every case is edited alone on the base model; the patch is reverted (bit for bit)
             before the next case, so cases never see each other's edits
    batch    all cases are one edit request list, solved together; one patch, scored on
             every case. With ``batch_size=N`` the cases are split into consecutive chunks
             of N, each chunk one edit, reverted before the next (quality against batch size)
    sequential every case is one edit solved on top of the earlier ones (``SequentialEditor``:
             earlier keys remembered, or the method's state continued, where the method can);
             scored once all are applied

A case is a TIMED/RoAD row (:class:`EvalCase`, one request), a knowledge concept
(:class:`KnowledgeCase`, one request per knowledge query) or a world-knowledge pair or caption
(:class:`WorldCase`); all give their ``requests()`` and are scored by :func:`score`. A case
whose ``edited`` is false (a world pair that is never edited, a neutral caption) is part of no
edit: it is scored under every patch a mode makes (each single edit, each batch, the chain's
end), so what no edit asked for is watched wherever an edit could reach it.

Statistics are computed (or read from the cache) once per setting and shared by its edits;
the judge's vectors are computed once on the unedited encoder and shared by all settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..editor import EditConfig, TargetCache, edit, resolve_layers
from ..encoders.base import EncoderAdapter
from ..sequential import SequentialEditor
from ..stats import compute_stats
from .benchmark import EvalCase
from .knowledge import KnowledgeCase, KnowledgeSummary, score_knowledge
from .scores import Summary, case_prompts, embed_all, score_case
from .world import WorldCase, WorldSummary, score_world

MODES = ("single", "batch", "sequential")


def prompts_of(case) -> tuple[list[str], list[str]]:
    """``(prompts the edited encoder reads, prompts the judge reads)`` of either kind of case."""
    return case.prompts() if isinstance(case, (KnowledgeCase, WorldCase)) else case_prompts(case)


def score(case, edited, judge):
    if isinstance(case, WorldCase):
        return score_world(case, edited, judge)
    return score_knowledge(case, edited, judge) if isinstance(case, KnowledgeCase) else \
        score_case(case, edited, judge)


def is_edited(case) -> bool:
    """Whether a case asks for an edit (cases without ``edited`` always do)."""
    return getattr(case, "edited", True)


def summarize(scores: list):
    if scores and isinstance(scores[0].case, WorldCase):
        return WorldSummary.of(scores)
    return KnowledgeSummary.of(scores) if scores and isinstance(scores[0].case, KnowledgeCase) else \
        Summary.of(scores)


@dataclass
class EvalResult:
    """Scores of one setting (method, layers, ...) in one mode."""

    label: str
    mode: str
    hyperparameters: dict
    scores: list
    seconds_per_edit: float  # wall time of the edit computations (not the scoring)
    edits: int
    summary: Summary = field(init=False)

    def __post_init__(self):
        self.summary = summarize(self.scores)

    def to_dict(self) -> dict:
        return {"label": self.label, "mode": self.mode, "hyperparameters": self.hyperparameters,
                "summary": self.summary.to_dict(), "seconds_per_edit": self.seconds_per_edit, "edits": self.edits,
                "rows": [s.to_dict() for s in self.scores]}


def label_of(config: EditConfig, layers: Sequence[int]) -> str:
    return f"{config.method} L{','.join(map(str, layers))} {config.value}"


class Evaluator:
    """Scores edit settings on ``cases`` against one frozen judge (the unedited ``adapter``)."""

    def __init__(self, adapter: EncoderAdapter, cases: Sequence[EvalCase], *, corpus=None, cache_dir=None,
                 targets_cache: TargetCache | None = None):
        self.adapter = adapter
        self.targets_cache = targets_cache  # shared by the runs of single and batch mode (editor.TargetCache)
        self.cases = list(cases)
        #: the cases edits are made of, and those no edit asks for (scored under every patch)
        self.edit_cases = [c for c in self.cases if is_edited(c)]
        self.watched = [c for c in self.cases if not is_edited(c)]
        self.corpus = corpus
        self.cache_dir = cache_dir
        # every judged prompt, then every edited one, repeats dropped as they come (a world pair's
        # judged prompts hold the whole answer pool, shared by all pairs)
        judged = dict.fromkeys(p for side in (1, 0) for case in self.cases for p in prompts_of(case)[side])
        self.judge = embed_all(adapter.embed, list(judged))

    def baseline(self) -> EvalResult:
        """The scores of the unedited encoder (efficacy and generality near 0, specificity near 1)."""
        return EvalResult("unedited", "-", {}, [score(c, self.judge, self.judge) for c in self.cases], 0.0, 0)

    def run(self, config: EditConfig, mode: str = "single",
            on_case: Callable[[], None] | None = None, batch_size: int | None = None,
            remember: bool | None = None) -> EvalResult:
        """Edit and score every case under ``config`` in ``mode``; ``on_case`` ticks a progress bar
        once per edited case (``edit_cases``); the ``watched`` cases are scored under every patch.

        ``batch_size`` (batch mode only): edited cases per edit; ``None`` puts every one in one edit.
        ``remember`` (sequential mode only): ``SequentialEditor``'s, default where the method can.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if batch_size is not None and (mode != "batch" or batch_size < 1):
            raise ValueError("batch_size must be a positive number of cases, in batch mode")
        if remember is not None and mode != "sequential":
            raise ValueError("remember is a setting of sequential mode")
        layers = resolve_layers(self.adapter, config)
        stats = None
        if config.method_class.needs_statistics:
            stats = compute_stats(self.adapter, layers, self.corpus, scope=config.scope, cache_dir=self.cache_dir)
        if mode == "sequential":
            return self._sequential(config, layers, stats, on_case, remember)
        edit_seconds = 0.0
        cases = self.edit_cases
        size = 1 if mode == "single" else batch_size or len(cases)
        groups = [cases[i:i + size] for i in range(0, len(cases), size)]
        scores: list = []
        for group in groups:
            started = time.perf_counter()
            patch = edit(self.adapter, [r for c in group for r in c.requests()], config, stats=stats,
                         corpus=self.corpus, cache_dir=self.cache_dir, targets_cache=self.targets_cache)
            edit_seconds += time.perf_counter() - started
            with patch.applied(self.adapter):
                edited = embed_all(self.adapter.embed, [p for c in group + self.watched for p in prompts_of(c)[0]])
            for case in group:
                scores.append(score(case, edited, self.judge))
                if on_case is not None:
                    on_case()
            scores.extend(score(case, edited, self.judge) for case in self.watched)
        hyperparameters = self._used(config, layers)
        if batch_size is not None:
            hyperparameters = {**hyperparameters, "batch_size": batch_size}
        return EvalResult(label_of(config, layers), mode, hyperparameters, scores,
                          edit_seconds / len(groups), len(groups))

    def _used(self, config: EditConfig, layers) -> dict:
        """The knobs a setting's edits used (``EditConfig.used_hyperparameters``)."""
        return config.used_hyperparameters(layers, self.adapter, keeps_prompts=config.preserves(self.adapter))

    def _sequential(self, config: EditConfig, layers, stats, on_case, remember: bool | None) -> EvalResult:
        """Each case one edit on top of the earlier ones; every case scored with all applied."""
        editor = SequentialEditor(self.adapter, config, stats=stats, corpus=self.corpus, cache_dir=self.cache_dir,
                                  remember=remember)
        edit_seconds = 0.0
        try:
            for case in self.edit_cases:
                started = time.perf_counter()
                editor.edit(case.requests())
                edit_seconds += time.perf_counter() - started
                if on_case is not None:
                    on_case()
            edited = embed_all(self.adapter.embed, [p for c in self.cases for p in prompts_of(c)[0]])
        finally:
            editor.revert_all()
        scores = [score(case, edited, self.judge) for case in self.cases]
        hyperparameters = {**self._used(config, layers), "remember": editor.remember}
        return EvalResult(label_of(config, layers), "sequential", hyperparameters, scores,
                          edit_seconds / len(self.edit_cases), len(self.edit_cases))
