"""Closed-form weight updates, as pure tensor functions (no model in sight).

Notation (column convention, as in the papers):

    W  [d_out, d_in]   the MLP down-projection        k  [d_in]   a key (its input)
    K  [d_in, n]       n keys as columns              V  [d_out, n] their target values
    R = V − W K        residuals                      C  [d_in, d_in] = E[k kᵀ] of the corpus

Every solver returns a :class:`LowRankDelta` ``ΔW = left @ rightᵀ`` of rank ≤ n, computed in
float64 with Cholesky or LU solves; none forms an explicit inverse. Inputs are checked for
NaN/Inf, singular systems raise :class:`NumericalError`, and ill-conditioned ones (estimated
condition number above ``COND_WARN``) emit an :class:`IllConditionedWarning`. A solver runs on
the device its inputs are on (every tensor it makes is made there); the editor hands it CPU
tensors, so edits solve on the CPU in float64 whatever the model's device and dtype.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .errors import NumericalError

COND_WARN = 1e12


class IllConditionedWarning(UserWarning):
    """A linear system was solved but its condition number makes the result imprecise."""


@dataclass
class LowRankDelta:
    """``ΔW = left @ rightᵀ`` with ``left [d_out, r]``, ``right [d_in, r]``."""

    left: torch.Tensor
    right: torch.Tensor

    def dense(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``left @ rightᵀ``, formed on ``device`` (default: the factors') in ``dtype`` (default: the
        wider of the factors'). Formed where it is added to a weight, only the rank-r factors
        cross between devices, not the d_out × d_in product."""
        dtype = dtype or torch.promote_types(self.left.dtype, self.right.dtype)  # a loaded patch may mix them
        return self.left.to(device, dtype) @ self.right.to(device, dtype).T

    @property
    def rank(self) -> int:
        return self.left.shape[1]

    def __add__(self, other: "LowRankDelta") -> "LowRankDelta":
        return LowRankDelta(torch.cat([self.left, other.left], 1), torch.cat([self.right, other.right], 1))


def _f64(name: str, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().to(torch.float64)
    if not torch.isfinite(x).all():
        raise NumericalError(f"{name} holds NaN or Inf")
    return x


def _check_shapes(W: torch.Tensor, K: torch.Tensor, V: torch.Tensor) -> None:
    if K.ndim != 2 or V.ndim != 2 or K.shape[0] != W.shape[1] or V.shape[0] != W.shape[0] or K.shape[1] != V.shape[1]:
        raise NumericalError(f"shape mismatch: W {tuple(W.shape)}, K {tuple(K.shape)}, V {tuple(V.shape)}; "
                             "expected K [d_in, n] and V [d_out, n]")


def cholesky(A: torch.Tensor, what: str) -> torch.Tensor:
    """Lower Cholesky factor of symmetric positive definite ``A`` (float64), checked.

    Raises :class:`NumericalError` if ``A`` is not positive definite; warns if the
    condition number, estimated from the factor's diagonal, exceeds ``COND_WARN``.
    """
    L, info = torch.linalg.cholesky_ex(_f64(what, A))
    if info.item() != 0:
        raise NumericalError(f"{what} is not positive definite (singular): use more corpus prompts or a larger λ")
    diag = L.diagonal()
    cond_estimate = (diag.max() / diag.min()).item() ** 2
    if cond_estimate > COND_WARN:
        warnings.warn(f"{what} is ill-conditioned (condition number ≳ {cond_estimate:.1e}); the edit may be "
                      "imprecise: use more corpus prompts or a larger λ", IllConditionedWarning, stacklevel=3)
    return L


def spd_solve(A: torch.Tensor, B: torch.Tensor, what: str, factor: torch.Tensor | None = None) -> torch.Tensor:
    """Solve ``A X = B`` for symmetric positive definite ``A`` (float64, Cholesky).

    ``factor`` is ``A``'s lower Cholesky factor when the caller already holds it.
    """
    L = factor if factor is not None else cholesky(A, what)
    X = torch.cholesky_solve(B, L)
    if not torch.isfinite(X).all():
        raise NumericalError(f"solving {what} produced NaN/Inf")
    return X


def rank_one(W: torch.Tensor, C: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
             factor: torch.Tensor | None = None) -> LowRankDelta:
    """ROME: the smallest change in the C-norm that maps ``k`` exactly to ``v``.

        u = C⁻¹ k,    ΔW = (v − W k) uᵀ / (uᵀ k)

    Shapes: W [d_out, d_in], C [d_in, d_in], k [d_in], v [d_out]. ``factor``: C's
    Cholesky factor, if already computed (see ``SecondMoment.cholesky``).
    """
    W, C, k, v = _f64("W", W), _f64("C", C), _f64("key", k).reshape(-1, 1), _f64("value", v).reshape(-1, 1)
    _check_shapes(W, k, v)
    u = spd_solve(C, k, "the key covariance C", factor)
    denominator = (u.T @ k).item()
    if not denominator > 0:
        raise NumericalError("the key has zero norm in the C⁻¹ metric; it cannot be edited")
    return LowRankDelta(v - W @ k, u / denominator)


def constrained(W: torch.Tensor, C: torch.Tensor, K: torch.Tensor, V: torch.Tensor, *,
                factor: torch.Tensor | None = None) -> LowRankDelta:
    """ROME for n keys: the smallest change in the C-norm that maps every key exactly.

        U = C⁻¹ K,    ΔW = R (Kᵀ U)⁻¹ Uᵀ        (so ΔW K = R exactly)

    Shapes: W [d_out, d_in], C [d_in, d_in], K [d_in, n ≤ d_in], V [d_out, n]. For n = 1
    this is :func:`rank_one`; unlike n sequential rank-one updates, a later key never
    undoes an earlier one. It is :func:`batched` at λ = 0.
    """
    return batched(W, C, K, V, 0.0, factor=factor)


def batched(W: torch.Tensor, C: torch.Tensor, K: torch.Tensor, V: torch.Tensor, lam: float, *,
            factor: torch.Tensor | None = None, remembered_gram: torch.Tensor | None = None) -> LowRankDelta:
    """MEMIT / EMCID: least squares on the edits plus λ-weighted preservation of C.

        ΔW = R Kᵀ (λ C + K Kᵀ)⁻¹  =  R · [U (λ I_n + Kᵀ U)⁻¹]ᵀ,   U = C⁻¹ K

    ``remembered_gram`` ``G_p = K_p K_pᵀ [d_in, d_in]`` sums the remembered keys, those whose
    values must stay (earlier edits of a chain, preserved prompts); each weighs as much as one
    edit key: ``λ C`` becomes ``λ C + G_p`` (factorised afresh, so ``factor`` is not used).

    (Woodbury: (λC + KKᵀ) U (λI + KᵀU)⁻¹ = K), so with C's Cholesky factor at hand
    (``factor``, cached by ``SecondMoment.cholesky``) an edit costs two triangular solves
    and an ``n × n`` system instead of a ``d_in × d_in`` factorisation. Shapes: W
    [d_out, d_in], C [d_in, d_in], K [d_in, n], V [d_out, n]. For one key this is ROME's
    update scaled by ``uᵀk / (λ + uᵀk)`` (Sherman–Morrison), so λ → 0 gives ROME. With
    n ≥ d_in keys and λ > 0 the primal form is cheaper and is used (:func:`batched_primal`).
    """
    if remembered_gram is not None:
        return batched(W, lam * _f64("C", C) + _f64("remembered keys' gram", remembered_gram), K, V, 1.0)
    if lam > 0 and K.shape[1] >= K.shape[0]:  # more keys than key dimensions: the n × n system is the larger
        return batched_primal(W, C, K, V, lam)
    W, K, V = _f64("W", W), _f64("keys", K), _f64("values", V)
    _check_shapes(W, K, V)
    if lam < 0:
        raise NumericalError(f"λ must be ≥ 0, got {lam}")
    U = spd_solve(C, K, "the key covariance C", factor)
    gram = lam * torch.eye(K.shape[1], dtype=torch.float64, device=K.device) + K.T @ U
    gram = (gram + gram.T) / 2  # symmetric in exact arithmetic; keep it so for Cholesky
    right = spd_solve(gram, U.T, "λI + KᵀC⁻¹K (are two keys equal?)").T
    return LowRankDelta(V - W @ K, right)


#: keys per product when :func:`batched_primal` accumulates its normal equations
PRIMAL_CHUNK = 2048


def batched_primal(W: torch.Tensor, C: torch.Tensor, K: torch.Tensor, V: torch.Tensor, lam: float, *,
                   chunk: int = PRIMAL_CHUNK) -> LowRankDelta:
    """MEMIT in its primal form, for many keys: the same ΔW as :func:`batched`, from
    ``d_in × d_in`` normal equations accumulated over chunks of keys.

        A = λ C + Σ_c K_c K_cᵀ  [d_in, d_in],   B = Σ_c R_c K_cᵀ  [d_out, d_in],   ΔW = B A⁻¹

    Memory O(d_in² + d_out·d_in + chunk·(d_in + d_out)) whatever n; time O(n·d_in·(d_in +
    d_out) + d_in³) against O(n·d_in² + n²·d_in + n³) for the Woodbury form, whose n × n
    system is the larger once n > d_in (10,000 edits on CLIP-L: 3072² instead of 10⁸
    entries). K, V may be float32: each chunk is cast to float64 on its own. ΔW has rank ≤
    min(d_out, d_in) and comes back in that many factors (:func:`dense_factors`).
    """
    W = _f64("W", W)
    _check_shapes(W, K, V)
    if lam <= 0:
        raise NumericalError(f"λ must be > 0 for the primal MEMIT solve, got {lam}")
    A = lam * _f64("C", C)
    B = torch.zeros_like(W)
    for i in range(0, K.shape[1], chunk):
        K_c, V_c = _f64("keys", K[:, i:i + chunk]), _f64("values", V[:, i:i + chunk])
        A.addmm_(K_c, K_c.T)
        B.addmm_(V_c - W @ K_c, K_c.T)
    # Cholesky reads one triangle of A, so the rounding asymmetry of the sums does not matter
    return dense_factors(spd_solve(A, B.T, "λC + KKᵀ").T)


def dense_factors(delta: torch.Tensor) -> LowRankDelta:
    """A dense ``ΔW [d_out, d_in]`` as exact factors of rank min(d_out, d_in) (one is the identity)."""
    d_out, d_in = delta.shape
    if d_out <= d_in:
        return LowRankDelta(torch.eye(d_out, dtype=delta.dtype, device=delta.device), delta.T.contiguous())
    return LowRankDelta(delta, torch.eye(d_in, dtype=delta.dtype, device=delta.device))


def null_space_projector(C: torch.Tensor, threshold: float) -> torch.Tensor:
    """AlphaEdit's P: projector onto the eigenvectors of C with eigenvalue < threshold·λ_max.

    The threshold is relative to the spectrum, so it means the same for every model and
    corpus size. Raises if the null space is empty (nothing can be edited without
    disturbing the corpus keys).
    """
    C = _f64("C", C)
    eigenvalues, eigenvectors = torch.linalg.eigh(C)
    basis = eigenvectors[:, eigenvalues < threshold * eigenvalues.max()]
    if basis.shape[1] == 0:
        raise NumericalError(f"the null space of C is empty at relative threshold {threshold:g}: raise the threshold")
    return basis @ basis.T


def null_space(W: torch.Tensor, C: torch.Tensor, K: torch.Tensor, V: torch.Tensor, *, threshold: float = 1e-2,
               alpha: float = 1e-2, remembered_gram: torch.Tensor | None = None,
               projector: torch.Tensor | None = None) -> LowRankDelta:
    """AlphaEdit: the update lives in the (approximate) null space of the corpus keys.

        ΔWᵀ = (P (K Kᵀ + G_p) + a I)⁻¹ P K Rᵀ          ⇒ ΔW = R · [M⁻¹ P K]ᵀ
        a   = α · mean_j ‖P k_j‖²                      (α relative to the edit's own keys)

    so ``ΔW k₀ = 0`` for every ``k₀`` with ``P k₀ = 0``. ``remembered_gram`` ``G_p = K_p K_pᵀ``
    sums the remembered keys ``K_p [d_in, m]``, those that must keep their values (earlier
    edits of a chain, preserved prompts). For one key the gain is ``‖Pk‖²/(a + ‖Pk‖²) = 1/(1 + α)``, and a
    remembered key moves by about ``α`` times what it would move unprotected, whatever the
    scale of the model's keys.
    Shapes as in :func:`batched`. ``projector`` may be passed to reuse P across calls.
    """
    W, K, V = _f64("W", W), _f64("keys", K), _f64("values", V)
    _check_shapes(W, K, V)
    P = _f64("P", projector) if projector is not None else null_space_projector(C, threshold)
    projected = P @ K  # [d_in, n]
    scale = projected.pow(2).sum(0).mean()
    if not scale > 0:
        raise NumericalError("every edit key lies outside the null space of C (‖Pk‖ = 0): raise the threshold")
    gram = K @ K.T
    if remembered_gram is not None:
        gram = gram + _f64("remembered keys' gram", remembered_gram)
    M = P @ gram
    M.diagonal().add_(alpha * scale)  # + a I, without two dense d_in × d_in temporaries (docs/scale.md)
    right = torch.linalg.solve(M, projected)
    if not torch.isfinite(right).all():
        raise NumericalError("the null-space system is singular: raise α")
    return LowRankDelta(V - W @ K, right)


def ridge(W: torch.Tensor, K: torch.Tensor, V: torch.Tensor, lam: float) -> LowRankDelta:
    """TIME / Diff-QuickFix / UltraEdit: identity-ridge regression toward the old weights.

        W' = (λ W + V Kᵀ)(λ I + K Kᵀ)⁻¹   ⇔   ΔW = R (λ I_n + Kᵀ K)⁻¹ Kᵀ

    (push-through identity), so only an ``n × n`` system is solved. Shapes as in
    :func:`batched`.
    """
    W, K, V = _f64("W", W), _f64("keys", K), _f64("values", V)
    _check_shapes(W, K, V)
    if lam <= 0:
        raise NumericalError(f"λ must be > 0 for the ridge solver, got {lam}")
    gram = lam * torch.eye(K.shape[1], dtype=torch.float64, device=K.device) + K.T @ K
    right = spd_solve(gram, K.T, "λI + KᵀK").T
    return LowRankDelta(V - W @ K, right)
