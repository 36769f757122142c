"""ROME (Meng et al., 2022): the smallest change in the corpus' C-norm that maps every key exactly.

One key: the rank-one update ``ΔW = (v − W k) uᵀ / (uᵀ k)`` with ``u = C⁻¹ k``; several keys
(one per request): the same constraint for all at once (``solvers.constrained``), so a later
key never undoes an earlier one. Edits one layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import EditMethod, LayerProblem, register

if TYPE_CHECKING:
    from ..solvers import LowRankDelta


@register
@dataclass(frozen=True)
class Rome(EditMethod):
    name = "rome"
    summary = "exact on every key, least change in the C-norm; one layer"
    needs_statistics = True
    one_layer = True

    def solve(self, problem: LayerProblem) -> LowRankDelta:
        from ..solvers import constrained, rank_one  # deferred: torch; the CLI reads this file's declarations without it

        C, factor = problem.moment.mean, problem.moment.cholesky()
        if problem.K.shape[1] == 1:
            return rank_one(problem.W, C, problem.K[:, 0], problem.V[:, 0], factor=factor)
        return constrained(problem.W, C, problem.K, problem.V, factor=factor)
