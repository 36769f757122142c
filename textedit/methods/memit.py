"""MEMIT (Meng et al., 2023) / EMCID: least squares on the edit keys plus λ-weighted corpus.

    ΔW = R Kᵀ (λ C + G_p + K Kᵀ)⁻¹          (solvers.batched)

``G_p`` sums the remembered keys, whose values must stay (earlier edits, preserved
prompts), each weighing as one edit key; λ grows by the number of remembered keys of earlier
edits, so the corpus keeps its weight against a long chain (docs/eval.md: drift after 12
concepts 0.035 → 0.017).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..hyperparameters import hyperparameter
from .base import EditMethod, LayerProblem, register

if TYPE_CHECKING:
    from ..solvers import LowRankDelta


@register
@dataclass(frozen=True)
class Memit(EditMethod):
    name = "memit"
    summary = "least squares on the edits, λ-weighted preservation of the corpus statistics"
    needs_statistics = True
    remembers_keys = True

    # λ → 0 is ROME (use method 'rome'); beyond 1e12 nothing moves. With key="query" a request
    # has about 40 keys instead of one, so the corpus needs more weight against them
    # (measured on the knowledge benchmark's dev split, docs/eval.md)
    lam: float = hyperparameter(50.0, "λ: weight of the corpus statistics against the edit keys",
                                low=0.0, high=1e12, query_default=500.0)

    def solve(self, problem: LayerProblem) -> LowRankDelta:
        from ..solvers import batched  # deferred: torch; the CLI reads this file's declarations without it

        moment = problem.moment
        factor = moment.cholesky() if problem.remembered_gram is None else None
        return batched(problem.W, moment.mean, problem.K, problem.V, self.lam + problem.remembered_count,
                       factor=factor, remembered_gram=problem.remembered_gram)
