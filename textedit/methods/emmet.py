"""EMMET (Gupta et al., 2024): batched edits under equality constraints, stabilised.

EMMET keeps the corpus keys K₀ as still as it can while every edit key is mapped exactly,

    min ‖ΔW K₀‖²  s.t.  (W + ΔW) K = V     ⇒   ΔW = R D⁻¹ Kᵀ C⁻¹,   D = Kᵀ C⁻¹ K  [n, n]

(ROME's constraint for a whole batch), and adds ``λ_E I`` to ``D`` because ``D`` becomes
ill-conditioned as the batch grows. Here ``λ_E = lam · mean diag(D)``, relative to the edit
keys' own size in the C⁻¹ metric, so one value means the same on every model; a lone key
then moves by ``1 / (1 + lam)`` of its residual. In closed form this is MEMIT's update
(``solvers.batched``) with MEMIT's λ set to ``λ_E``: EMMET fixes the regulariser against the
edit keys, MEMIT against the corpus. Edits several layers with MEMIT's spreading, as the
multi-layer EMMET of the paper does.
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
class Emmet(EditMethod):
    name = "emmet"
    summary = "every edit key mapped exactly (equality constraints), least change to the corpus keys"
    needs_statistics = True

    lam: float = hyperparameter(0.1, "λ_E: stabiliser of the equality constraints, relative to mean kᵀC⁻¹k",
                                low=0.0, high=1e6, low_inclusive=True)

    def solve(self, problem: LayerProblem) -> LowRankDelta:
        from ..solvers import batched, spd_solve  # deferred: torch; the CLI reads this file's declarations without it

        moment = problem.moment
        factor = moment.cholesky()
        U = spd_solve(moment.mean, problem.K.double(), "the key covariance C", factor)  # C⁻¹ K [d_in, n]
        mean_diag = (problem.K.double() * U).sum(0).mean().item()  # mean kᵀ C⁻¹ k
        return batched(problem.W, moment.mean, problem.K, problem.V, self.lam * mean_diag, factor=factor)
