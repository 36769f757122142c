"""Identity ridge (TIME, Diff-QuickFix): least squares toward the old weights, no statistics.

    ΔW = R (λ' I_n + Kᵀ K)⁻¹ Kᵀ,    λ' = λ · mean ‖k‖²       (solvers.ridge)

λ is relative to the edit keys' mean squared norm, so one value means the same on every model.
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
class Ridge(EditMethod):
    name = "ridge"
    summary = "least squares toward the old weights (identity ridge); needs no statistics"

    lam: float = hyperparameter(10.0, "λ: ridge weight, relative to the edit keys' mean squared norm",
                                low=0.0, high=1e12)

    def solve(self, problem: LayerProblem) -> LowRankDelta:
        from ..solvers import ridge  # deferred: torch; the CLI reads this file's declarations without it

        return ridge(problem.W, problem.K, problem.V, self.lam * problem.mean_key_norm2)
