"""AlphaEdit (Fang et al., 2025): the update lives in the null space of the corpus keys.

    ΔWᵀ = (P (K Kᵀ + G_p) + a I)⁻¹ P K Rᵀ        (solvers.null_space, G_p: the remembered keys' gram)

``P`` projects onto the eigenvectors of C below ``threshold · λ_max(C)``, so corpus keys keep
their values; its patches store their keys by default, for later edits of a chain to remember.
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
class AlphaEdit(EditMethod):
    name = "alphaedit"
    summary = "the update in the null space of the corpus keys"
    needs_statistics = True
    remembers_keys = True
    remember_by_default = True

    threshold: float = hyperparameter(1e-2, "null-space threshold, relative to C's largest eigenvalue",
                                      low=0.0, high=1.0)
    alpha: float = hyperparameter(1e-2, "ridge term α, relative to the edit keys' projected norm",
                                  low=0.0, high=1e6, low_inclusive=True)

    def solve(self, problem: LayerProblem) -> LowRankDelta:
        from ..solvers import null_space  # deferred: torch; the CLI reads this file's declarations without it

        moment = problem.moment
        return null_space(problem.W, moment.mean, problem.K, problem.V, alpha=self.alpha,
                          remembered_gram=problem.remembered_gram,
                          projector=moment.null_space_projector(self.threshold))
