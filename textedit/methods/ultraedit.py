"""UltraEdit (Gu et al., 2025): normalised pseudo-values solved by an identity ridge; no statistics.

UltraEdit is "training-, subject- and memory-free": no value optimisation of its own, no
corpus statistics. For each key ``k_i`` it takes the gradient ``g_i`` of the edit loss at the
module's output, here ``g_i = −r_i = W k_i − v_i`` (the gradient of ``½‖W k_i − v_i‖²``, with
``v_i`` textedit's per-layer target), standardises keys and gradients with running
statistics (per dimension: ``x̂ = (x − μ) / (σ + ε)`` over the keys seen), and solves

    ṽ_i = −η ‖k̂_i‖² ĝ_i                              pseudo-values  [d_out]
    ΔW  = Ṽ (λ' I_n + Kᵀ K)⁻¹ Kᵀ,   λ' = λ · mean ‖k‖²   (solvers.ridge on the raw keys)

The standardisation subtracts the mean gradient over the keys: the published setting edits
thousands of different facts, whose mean gradient is near zero. A lone request, whose keys all
share one residual, standardises to nothing, so UltraEdit refuses a solve whose residuals do
not vary (edit several requests together). The statistics restart with every edit here; the
paper's lifelong normaliser carries them across a chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SpecError
from ..hyperparameters import hyperparameter
from .base import EditMethod, LayerProblem, register

if TYPE_CHECKING:
    import torch

    from ..solvers import LowRankDelta

#: the published normaliser's ε: float32's machine epsilon (its features are float32),
#: ``torch.finfo(torch.float32).eps``, written out so that this file imports without torch
EPS = 2.0 ** -23


def standardise(X: torch.Tensor) -> torch.Tensor:
    """Each row of ``X [d, n]`` centred and divided by its spread over the n columns, as the
    published running normaliser computes them from one batch: ``σ² = n s² / (n − 1 + ε)``
    with ``s²`` the unbiased variance (its accumulated sum over its count minus one), and
    ``ε`` added to σ."""
    n = X.shape[1]
    mean = X.mean(1, keepdim=True)
    spread = n * X.var(1, keepdim=True, unbiased=True) if n > 1 else mean.new_zeros(mean.shape)
    return (X - mean) / ((spread / (n - 1 + EPS)).sqrt() + EPS)


def pseudo_values(K: torch.Tensor, R: torch.Tensor, step: float) -> torch.Tensor:
    """UltraEdit's pseudo-values ``[d_out, n]``: ``−η ‖k̂_i‖² ĝ_i`` with ``g = −R`` (K [d_in, n], R [d_out, n])."""
    K_hat, G_hat = standardise(K.double()), standardise(-R.double())
    return -step * K_hat.pow(2).sum(0, keepdim=True) * G_hat


@register
@dataclass(frozen=True)
class UltraEdit(EditMethod):
    name = "ultraedit"
    summary = "standardised gradient pseudo-values, identity ridge; needs no statistics (edits several requests)"

    # chosen on the TIMED validation set, batch mode (docs/eval.md): η 1e-4 moved nothing
    # (efficacy 0 %), 1e-2 drifted 0.90; λ 1 against 0.01 cut the drift 0.32 → 0.12 at equal
    # efficacy (50 %)
    step: float = hyperparameter(1e-3, "η: pseudo-value step, ṽ = −η‖k̂‖²ĝ on standardised keys and gradients",
                                 low=0.0, high=1e3)
    lam: float = hyperparameter(1.0, "λ: ridge weight, relative to the edit keys' mean squared norm",
                                low=0.0, high=1e12)

    def solve(self, problem: LayerProblem) -> LowRankDelta:
        from ..solvers import ridge  # deferred: torch; the CLI reads this file's declarations without it

        W, K = problem.W.double(), problem.K.double()
        R = problem.V.double() - W @ K
        if K.shape[1] < 2 or not bool((R.std(1) > 0).any()):
            raise SpecError("ultraedit standardises the residuals over its keys and these do not vary (one request "
                            "or equal targets): edit several requests together, or use memit")
        V_pseudo = W @ K + pseudo_values(K, R, self.step)
        return ridge(W, K, V_pseudo, self.lam * problem.mean_key_norm2)
