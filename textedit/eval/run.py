"""Run edits over a benchmark and score them: one row at a time, or all rows in one edit.

    single   every case is edited alone on the base model; the patch is reverted (bit for bit)
             before the next case, so cases never see each other's edits
    batch    all cases are one edit request list, solved together; one patch, scored on
             every case. With ``batch_size=N`` the cases are split into consecutive chunks
             of N, each chunk one edit, reverted before the next (quality against batch size)

Statistics are computed (or read from the cache) once per setting and shared by its edits;
the judge's vectors are computed once on the unedited encoder and shared by all settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..editor import NEEDS_STATISTICS, EditConfig, edit, resolve_layers
from ..encoders.base import EncoderAdapter
from ..requests import EditRequest
from ..stats import compute_stats
from .benchmark import EvalCase
from .scores import CaseScore, Summary, case_prompts, embed_all, score_case

MODES = ("single", "batch")


@dataclass
class EvalResult:
    """Scores of one setting (method, layers, ...) in one mode."""

    label: str
    mode: str
    hyperparameters: dict
    scores: list[CaseScore]
    seconds_per_edit: float  # wall time of the edit computations (not the scoring)
    edits: int
    summary: Summary = field(init=False)

    def __post_init__(self):
        self.summary = Summary.of(self.scores)

    def to_dict(self) -> dict:
        return {"label": self.label, "mode": self.mode, "hyperparameters": self.hyperparameters,
                "summary": self.summary.to_dict(), "seconds_per_edit": self.seconds_per_edit, "edits": self.edits,
                "rows": [s.to_dict() for s in self.scores]}


def request_of(case: EvalCase) -> EditRequest:
    """The edit a case asks for: its source prompt (key at its last token) reads as the target."""
    return EditRequest(case.source, case.target)


def label_of(config: EditConfig, layers: Sequence[int]) -> str:
    return f"{config.method} L{','.join(map(str, layers))} {config.value}"


class Evaluator:
    """Scores edit settings on ``cases`` against one frozen judge (the unedited ``adapter``)."""

    def __init__(self, adapter: EncoderAdapter, cases: Sequence[EvalCase], *, corpus=None, cache_dir=None):
        self.adapter = adapter
        self.cases = list(cases)
        self.corpus = corpus
        self.cache_dir = cache_dir
        judged = [p for case in self.cases for p in case_prompts(case)[1]]
        self.judge = embed_all(adapter.embed, judged + [p for case in self.cases for p in case_prompts(case)[0]])

    def baseline(self) -> EvalResult:
        """The scores of the unedited encoder (efficacy and generality near 0, specificity near 1)."""
        return EvalResult("unedited", "-", {}, [score_case(c, self.judge, self.judge) for c in self.cases], 0.0, 0)

    def run(self, config: EditConfig, mode: str = "single",
            on_case: Callable[[], None] | None = None, batch_size: int | None = None) -> EvalResult:
        """Edit and score every case under ``config`` in ``mode``; ``on_case`` ticks a progress bar.

        ``batch_size`` (batch mode only): cases per edit; ``None`` puts every case in one edit.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if batch_size is not None and (mode != "batch" or batch_size < 1):
            raise ValueError("batch_size must be a positive number of cases, in batch mode")
        layers = resolve_layers(self.adapter, config)
        stats = None
        if config.method in NEEDS_STATISTICS:
            stats = compute_stats(self.adapter, layers, self.corpus, scope=config.scope, cache_dir=self.cache_dir)
        edit_seconds = 0.0
        size = 1 if mode == "single" else batch_size or len(self.cases)
        groups = [self.cases[i:i + size] for i in range(0, len(self.cases), size)]
        scores: list[CaseScore] = []
        for group in groups:
            started = time.perf_counter()
            patch = edit(self.adapter, [request_of(c) for c in group], config, stats=stats, corpus=self.corpus,
                         cache_dir=self.cache_dir)
            edit_seconds += time.perf_counter() - started
            patch.apply(self.adapter)
            try:
                edited = embed_all(self.adapter.embed, [p for c in group for p in case_prompts(c)[0]])
            finally:
                patch.revert(self.adapter)
            for case in group:
                scores.append(score_case(case, edited, self.judge))
                if on_case is not None:
                    on_case()
        hyperparameters = config.hyperparameters(layers)
        if batch_size is not None:
            hyperparameters = {**hyperparameters, "batch_size": batch_size}
        return EvalResult(label_of(config, layers), mode, hyperparameters, scores,
                          edit_seconds / len(groups), len(groups))
