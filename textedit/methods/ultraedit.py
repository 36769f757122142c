"""UltraEdit (Gu et al., 2025): normalised pseudo-values solved by an identity ridge; no statistics.

UltraEdit is "training-, subject- and memory-free": no value optimisation of its own, no
corpus statistics. For each key ``k_i`` it takes the gradient ``g_i`` of the edit loss at the
module's output, here ``g_i = −r_i = W k_i − v_i`` (the gradient of ``½‖W k_i − v_i‖²``, with
``v_i`` textedit's per-layer target), standardises keys and gradients per dimension with its
*lifelong normaliser*, ``x̂ = (x − μ) / (σ + ε)`` over every key (gradient) the layer has seen,
this edit's included, and solves

    ṽ_i = −η ‖k̂_i‖² ĝ_i                              pseudo-values  [d_out]
    ΔW  = Ṽ (λ' I_n + Kᵀ K)⁻¹ Kᵀ,   λ' = λ · mean ‖k‖²   (solvers.ridge on the raw keys)

The normaliser (the reference code's ``RunningMeanStd``) keeps, per edited layer, the count N
of keys seen and per dimension the mean μ and a spread S of keys [d_in] and of gradients
[d_out]. An edit's n keys (batch mean m, unbiased variance s²) are merged in before they are
standardised:

    N' = N + n,   δ = m − μ,   μ' = μ + n δ / N',   S' = S + n s² + N n δ² / N'
    σ² = S' / (N' − 1 + ε),   ε = float32's machine epsilon

That is Chan et al.'s parallel merge of the sums of squared deviations, except that a batch
adds ``n s²`` where the exact merge adds its own ``(n − 1) s²``: S is the sum of squared
deviations of all keys seen plus the sum of every batch's ``s²``, as published (one batch
alone: ``σ² = n s² / (n − 1 + ε)``). The reference shares one normaliser among the edited
modules of one shape; here each edited layer has its own (its keys have their own scale).

The normaliser carries its state along a chain (``carries_state``): a remembering edit
(``SequentialEditor``, ``apply --after``, ``apply --remember``) stores N, μ and S of the layer
in its patch (``ModuleDelta.state``, float64) and the chain's next edit continues from them.
A single edit, and a chain with ``remember=False``, starts from nothing (the normaliser
restarts with every edit) and stores none.

On the knowledge benchmark's 12-concept dev chain (docs/eval.md) the carried normaliser
lands edits the restart cannot at the same η (efficacy 45 % against 0.4 %), and at equal
efficacy (the restart at 10 × η) keeps more paraphrases and other subjects' relations; either
way unrelated prompts drift far (0.97), and a smaller η trades efficacy for drift.

The standardisation subtracts the mean gradient: the published setting edits thousands of
different facts, whose mean gradient is near zero. A lone request, whose keys all share one
residual, standardises to nothing on its own, so UltraEdit refuses a solve whose gradients,
with the chain's earlier ones, do not vary: the first edit of a chain needs several requests;
later ones are standardised against the chain's statistics and may hold one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PatchError, SpecError
from ..hyperparameters import hyperparameter
from .base import EditMethod, LayerProblem, State, register

if TYPE_CHECKING:
    import torch

    from ..solvers import LowRankDelta

#: the published normaliser's ε: float32's machine epsilon (its features are float32),
#: ``torch.finfo(torch.float32).eps``, written out so that this file imports without torch
EPS = 2.0 ** -23

#: the normaliser's state of one layer, as a patch stores it: the count N of keys seen (one
#: number), and μ and S of the keys [d_in] and of the gradients [d_out]
STATE_SHAPES = {"count": "1", "key_mean": "d_in", "key_spread": "d_in",
                "gradient_mean": "d_out", "gradient_spread": "d_out"}


@dataclass(frozen=True)
class RunningMoments:
    """The columns seen so far of ``[d, ·]`` features: their ``count`` N, per row their ``mean`` μ
    ``[d]`` and the published ``spread`` S ``[d]`` (module docstring)."""

    count: float
    mean: torch.Tensor
    spread: torch.Tensor

    @classmethod
    def of(cls, X: torch.Tensor) -> "RunningMoments":
        """The moments of the columns of ``X [d, n]`` alone: N = n, μ = m, S = n s² (0 for one column)."""
        n = X.shape[1]
        mean = X.mean(1)
        return cls(n, mean, n * X.var(1, unbiased=True) if n > 1 else mean.new_zeros(mean.shape))

    def merged(self, X: torch.Tensor) -> "RunningMoments":
        """These moments with the columns of ``X [d, n]`` added (the published update)."""
        batch = RunningMoments.of(X)
        if self.count == 0:
            return batch
        count = self.count + batch.count
        delta = batch.mean - self.mean
        return RunningMoments(count, self.mean + batch.count * delta / count,
                              self.spread + batch.spread + self.count * batch.count * delta.pow(2) / count)

    def standardise(self, X: torch.Tensor) -> torch.Tensor:
        """``(X − μ) / (σ + ε)`` per row of ``X [d, n]``, ``σ² = S / (N − 1 + ε)``."""
        sigma = (self.spread / (self.count - 1 + EPS)).sqrt() + EPS
        return (X - self.mean[:, None]) / sigma[:, None]


def _moments(state: State | None, d_in: int, d_out: int) -> tuple[RunningMoments, RunningMoments]:
    """The keys' and the gradients' moments a chain's ``state`` holds (nothing seen: ``None``),
    its names and shapes checked against this layer's."""
    if state is None:
        return RunningMoments(0, 0.0, 0.0), RunningMoments(0, 0.0, 0.0)
    sizes = {"1": 1, "d_in": d_in, "d_out": d_out}
    for name, size in STATE_SHAPES.items():
        tensor = state.get(name)
        if tensor is None or tuple(tensor.shape) != (sizes[size],):
            found = "none" if tensor is None else f"shape {tuple(tensor.shape)}"
            raise PatchError(f"ultraedit's normaliser state '{name}' must have shape ({sizes[size]},) for this layer "
                             f"({size}), the earlier patch holds {found}: it was made on another model or module")
    count = state["count"].item()
    return (RunningMoments(count, state["key_mean"].double(), state["key_spread"].double()),
            RunningMoments(count, state["gradient_mean"].double(), state["gradient_spread"].double()))


@register
@dataclass(frozen=True)
class UltraEdit(EditMethod):
    name = "ultraedit"
    summary = ("lifelong-standardised gradient pseudo-values, identity ridge; needs no statistics (its first edit "
               "needs several requests)")
    carries_state = True

    # chosen on the TIMED validation set, batch mode (docs/eval.md): η 1e-4 moved nothing
    # (efficacy 0 %), 1e-2 drifted 0.90; λ 1 against 0.01 cut the drift 0.32 → 0.12 at equal
    # efficacy (50 %)
    step: float = hyperparameter(1e-3, "η: pseudo-value step, ṽ = −η‖k̂‖²ĝ on standardised keys and gradients",
                                 low=0.0, high=1e3)
    lam: float = hyperparameter(1.0, "λ: ridge weight, relative to the edit keys' mean squared norm",
                                low=0.0, high=1e12)

    def solve(self, problem: LayerProblem) -> LowRankDelta:
        return self.solve_in_chain(problem)[0]

    def solve_in_chain(self, problem: LayerProblem) -> tuple[LowRankDelta, State]:
        from ..solvers import ridge  # deferred: torch; the CLI reads this file's declarations without it

        W, K = problem.W.double(), problem.K.double()
        G = W @ K - problem.V.double()  # the gradients of ½‖W k − v‖² at the module's output [d_out, n]
        keys, gradients = _moments(problem.state, K.shape[0], G.shape[0])
        keys, gradients = keys.merged(K), gradients.merged(G)
        if not bool((gradients.spread > 0).any()):
            raise SpecError("ultraedit standardises the residuals over the keys it has seen and these do not vary "
                            "(one request or equal targets, no earlier edit in the chain): edit several requests "
                            "together, or use memit")
        pseudo_values = -self.step * keys.standardise(K).pow(2).sum(0, keepdim=True) * gradients.standardise(G)
        delta = ridge(W, K, W @ K + pseudo_values, self.lam * problem.mean_key_norm2)
        state = {"count": K.new_tensor([keys.count]), "key_mean": keys.mean, "key_spread": keys.spread,
                 "gradient_mean": gradients.mean, "gradient_spread": gradients.spread}
        return delta, state
