"""The closed-form solvers against their defining equations, on seeded random float64 data."""

from __future__ import annotations

import warnings

import pytest
import torch

from textedit.errors import NumericalError
from textedit.solvers import (
    IllConditionedWarning,
    LowRankDelta,
    batched,
    batched_primal,
    dense_factors,
    null_space,
    null_space_projector,
    rank_one,
    ridge,
)

D_IN, D_OUT = 8, 5
F64 = torch.float64


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest entry of ``b``."""
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def data(gen):
    """W [d_out, d_in], an SPD C = E[k kᵀ] of 500 correlated random keys, one key/value pair."""
    mixing = torch.randn(D_IN, D_IN, generator=gen, dtype=F64)
    corpus_keys = torch.randn(500, D_IN, generator=gen, dtype=F64) @ mixing
    C = corpus_keys.T @ corpus_keys / corpus_keys.shape[0]
    W = torch.randn(D_OUT, D_IN, generator=gen, dtype=F64)
    k = torch.randn(D_IN, generator=gen, dtype=F64)
    v = torch.randn(D_OUT, generator=gen, dtype=F64)
    return W, C, k, v


def _keys_values(gen, n):
    return torch.randn(D_IN, n, generator=gen, dtype=F64), torch.randn(D_OUT, n, generator=gen, dtype=F64)


# -- rank_one (ROME) -----------------------------------------------------------------------


def test_rank_one_maps_key_to_value_exactly(data):
    W, C, k, v = data
    delta = rank_one(W, C, k, v)
    assert delta.rank == 1
    assert torch.allclose((W + delta.dense()) @ k, v, rtol=0, atol=1e-9)
    # it really changed something: the old weights did not map k to v
    assert (W @ k - v).abs().max() > 0.1


def test_rank_one_leaves_c_orthogonal_keys_untouched(data, gen):
    W, C, k, v = data
    u = torch.linalg.solve(C, k)
    z = torch.randn(D_IN, generator=gen, dtype=F64)
    k0 = z - (u @ z) / (u @ u) * u  # uᵀ k0 = kᵀ C⁻¹ k0 = 0
    assert abs(k @ torch.linalg.solve(C, k0)) < 1e-10
    dense = rank_one(W, C, k, v).dense()
    assert (dense @ k0).abs().max() < 1e-10
    # a generic key is moved: the test above is not trivially satisfied
    assert (dense @ z).abs().max() > 1e-3


def test_rank_one_is_the_rome_formula(data):
    W, C, k, v = data
    u = torch.linalg.inv(C) @ k
    expected = torch.outer(v - W @ k, u) / (u @ k)
    assert _rel(rank_one(W, C, k, v).dense(), expected) < 1e-12


def test_rank_one_zero_key_raises(data):
    W, C, _, v = data
    with pytest.raises(NumericalError):
        rank_one(W, C, torch.zeros(D_IN, dtype=F64), v)


# -- batched (MEMIT) -------------------------------------------------------------------------


def test_batched_one_key_vanishing_lambda_is_rank_one(data):
    W, C, k, v = data
    rome = rank_one(W, C, k, v).dense()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        # λC + kkᵀ is nearly singular at λ = 1e-12 (cond ≈ 1e13), so only ~1e-3 is attainable
        assert _rel(batched(W, C, k[:, None], v[:, None], 1e-12).dense(), rome) < 1e-3
        assert _rel(batched(W, C, k[:, None], v[:, None], 1e-8).dense(), rome) < 1e-6


@pytest.mark.parametrize("lam", [1e-3, 0.5, 3.0, 1e4])
def test_batched_one_key_is_scaled_rank_one(data, lam):
    """Sherman–Morrison: one key gives ROME's ΔW times uᵀk / (λ + uᵀk), u = C⁻¹k."""
    W, C, k, v = data
    u = torch.linalg.solve(C, k)
    scale = (u @ k) / (lam + u @ k)
    expected = rank_one(W, C, k, v).dense() * scale
    assert _rel(batched(W, C, k[:, None], v[:, None], lam).dense(), expected) < 1e-10


def test_batched_many_keys_are_mapped_exactly(data, gen):
    W, C, _, _ = data
    K, V = _keys_values(gen, 6)  # n = 6 ≤ d_in = 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        delta = batched(W, C, K, V, 1e-10)
    assert delta.rank == 6
    assert torch.allclose((W + delta.dense()) @ K, V, rtol=0, atol=1e-6)


def test_batched_is_the_memit_formula(data, gen):
    W, C, _, _ = data
    K, V = _keys_values(gen, 12)  # more keys than d_in: a least-squares compromise
    lam = 2.5
    expected = (V - W @ K) @ K.T @ torch.linalg.inv(lam * C + K @ K.T)
    assert _rel(batched(W, C, K, V, lam).dense(), expected) < 1e-10


def test_batched_more_keys_than_dims_is_least_squares(data, gen):
    W, C, _, _ = data
    K, V = _keys_values(gen, 12)
    new_W = W + batched(W, C, K, V, 1e-9).dense()
    lstsq = torch.linalg.lstsq(K.T, V.T).solution.T  # argmin ‖W' K − V‖
    # λ = 1e-9 moves the answer by O(1e-6) from the exact least squares (measured 0.3–1.4e-6,
    # depending on the BLAS thread count), so the bound leaves that room
    assert _rel(new_W, lstsq) < 1e-5


def test_batched_larger_lambda_changes_less(data, gen):
    W, C, _, _ = data
    K, V = _keys_values(gen, 3)
    norms = [batched(W, C, K, V, lam).dense().norm().item() for lam in (0.1, 1.0, 10.0, 100.0)]
    assert norms == sorted(norms, reverse=True) and norms[-1] < 0.5 * norms[0]


def test_batched_negative_lambda_raises(data, gen):
    W, C, _, _ = data
    K, V = _keys_values(gen, 2)
    with pytest.raises(NumericalError):
        batched(W, C, K, V, -1.0)


# -- ridge -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 12])
@pytest.mark.parametrize("lam", [0.1, 10.0])
def test_ridge_is_the_direct_formula(data, gen, n, lam):
    W, _, _, _ = data
    K, V = _keys_values(gen, n)
    direct = (lam * W + V @ K.T) @ torch.linalg.inv(lam * torch.eye(D_IN, dtype=F64) + K @ K.T)
    assert _rel(W + ridge(W, K, V, lam).dense(), direct) < 1e-10


@pytest.mark.parametrize("lam", [0.0, -1.0])
def test_ridge_needs_positive_lambda(data, gen, lam):
    W, _, _, _ = data
    K, V = _keys_values(gen, 2)
    with pytest.raises(NumericalError):
        ridge(W, K, V, lam)


# -- null_space (AlphaEdit) ------------------------------------------------------------------


@pytest.fixture
def spectral(gen):
    """C with 4 large eigenvalues (the corpus directions) and 4 tiny ones (the null space)."""
    Q, _ = torch.linalg.qr(torch.randn(D_IN, D_IN, generator=gen, dtype=F64))
    eigenvalues = torch.tensor([100.0, 50.0, 20.0, 10.0, 1e-4, 1e-5, 1e-6, 1e-7], dtype=F64)
    C = Q @ torch.diag(eigenvalues) @ Q.T
    return C, Q[:, :4], Q[:, 4:]


def test_null_space_projector(spectral):
    C, large, small = spectral
    P = null_space_projector(C, 1e-2)
    assert torch.allclose(P, P.T, atol=1e-12)
    assert torch.allclose(P @ P, P, atol=1e-12)
    assert torch.allclose(P, small @ small.T, atol=1e-10)
    assert (P @ large).abs().max() < 1e-10


def test_null_space_spares_corpus_directions(data, spectral, gen):
    W, _, _, _ = data
    C, large, small = spectral
    K, V = _keys_values(gen, 3)
    dense = null_space(W, C, K, V, threshold=1e-2, alpha=0.1).dense()
    assert dense.abs().max() > 1e-2  # an actual update
    k0 = large @ torch.randn(4, 5, generator=gen, dtype=F64)  # keys in the span of the big eigenvectors
    assert (dense @ k0).abs().max() < 1e-10 * dense.abs().max()


def test_null_space_maps_null_space_keys(data, spectral, gen):
    W, _, _, _ = data
    C, _, small = spectral
    K = small @ torch.randn(4, 3, generator=gen, dtype=F64)  # keys inside the null space
    V = torch.randn(D_OUT, 3, generator=gen, dtype=F64)
    delta = null_space(W, C, K, V, threshold=1e-2, alpha=1e-9)
    assert torch.allclose((W + delta.dense()) @ K, V, rtol=0, atol=1e-6)


def test_null_space_is_the_alphaedit_formula(data, spectral, gen):
    W = data[0]
    C = spectral[0]
    K, V = _keys_values(gen, 3)
    Kp = torch.randn(D_IN, 2, generator=gen, dtype=F64)
    alpha = 0.7
    P = null_space_projector(C, 1e-2)
    G = K @ K.T + Kp @ Kp.T
    a = alpha * (P @ K).pow(2).sum(0).mean()  # α is relative to the edit's own projected keys
    expected = (V - W @ K) @ K.T @ P @ torch.linalg.inv(G @ P + a * torch.eye(D_IN, dtype=F64))
    got = null_space(W, C, K, V, threshold=1e-2, alpha=alpha, remembered_gram=Kp @ Kp.T).dense()
    assert _rel(got, expected) < 1e-10
    reused = null_space(W, C, K, V, alpha=alpha, remembered_gram=Kp @ Kp.T, projector=P).dense()
    assert _rel(reused, expected) < 1e-10


def test_null_space_remembered_keys_are_preserved(data, spectral, gen):
    W, _, _, _ = data
    C, _, small = spectral
    K = small @ torch.randn(4, 2, generator=gen, dtype=F64)
    V = torch.randn(D_OUT, 2, generator=gen, dtype=F64)
    Kp = small @ torch.randn(4, 2, generator=gen, dtype=F64)
    free = null_space(W, C, K, V, alpha=1e-3).dense()
    kept = null_space(W, C, K, V, alpha=1e-3, remembered_gram=Kp @ Kp.T).dense()
    assert (kept @ Kp).norm() < 0.1 * (free @ Kp).norm()


def test_null_space_alpha_is_relative_to_the_key_scale(data, spectral, gen):
    """Scaling every key by 100 leaves the update (and the gain 1/(1 + α) on one key) unchanged."""
    W, _, _, _ = data
    C, _, small = spectral
    k = small @ torch.randn(4, 1, generator=gen, dtype=F64)
    v = torch.randn(D_OUT, 1, generator=gen, dtype=F64)
    for scale in (1.0, 100.0):
        delta = null_space(W, C, k * scale, v, alpha=0.25).dense()
        gained = delta @ (k * scale)
        assert torch.allclose(gained, (v - W @ (k * scale)) / 1.25, rtol=1e-9, atol=1e-12)


def test_null_space_empty_raises(data, gen):
    W, C, _, _ = data
    K, V = _keys_values(gen, 2)
    with pytest.raises(NumericalError, match="null space"):
        null_space(W, C, K, V, threshold=1e-12)


# -- input checks ----------------------------------------------------------------------------


def _poison(x: torch.Tensor, value: float) -> torch.Tensor:
    x = x.clone()
    x.view(-1)[0] = value
    return x


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["W", "C", "K", "V"])
def test_non_finite_inputs_raise(data, gen, bad, where):
    W, C, k, v = data
    K, V = _keys_values(gen, 2)
    args = {"W": W, "C": C, "K": K, "V": V}
    args[where] = _poison(args[where], bad)
    with pytest.raises(NumericalError, match="NaN or Inf"):
        batched(args["W"], args["C"], args["K"], args["V"], 1.0)
    if where != "C":
        with pytest.raises(NumericalError, match="NaN or Inf"):
            ridge(args["W"], args["K"], args["V"], 1.0)
    with pytest.raises(NumericalError, match="NaN or Inf"):
        null_space(args["W"], args["C"], args["K"], args["V"])
    one = {"W": W, "C": C, "K": k, "V": v}
    one[where] = _poison(one[where], bad)
    with pytest.raises(NumericalError, match="NaN or Inf"):
        rank_one(one["W"], one["C"], one["K"], one["V"])


def test_singular_c_raises(data, gen):
    W, C, k, v = data
    singular = C.clone()
    singular[-1, :] = 0
    singular[:, -1] = 0
    with pytest.raises(NumericalError, match="singular"):
        rank_one(W, singular, k, v)
    with pytest.raises(NumericalError, match="singular"):
        rank_one(W, torch.zeros(D_IN, D_IN, dtype=F64), k, v)
    K, V = _keys_values(gen, 2)
    with pytest.raises(NumericalError, match="singular"):
        batched(W, torch.zeros(D_IN, D_IN, dtype=F64), K, V, 1.0)  # λC + KKᵀ has rank 2 < 8


def test_ill_conditioned_c_warns(data):
    W, _, k, v = data
    C = torch.diag(torch.tensor([1.0] * (D_IN - 1) + [1e-14], dtype=F64))
    with pytest.warns(IllConditionedWarning, match="ill-conditioned"):
        rank_one(W, C, k, v)


def test_well_conditioned_c_does_not_warn(data, gen):
    W, C, k, v = data
    K, V = _keys_values(gen, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rank_one(W, C, k, v)
        batched(W, C, K, V, 1.0)
        ridge(W, K, V, 1.0)


def test_shape_mismatch_raises(data, gen):
    W, C, _, _ = data
    K, V = _keys_values(gen, 3)
    with pytest.raises(NumericalError, match="shape"):
        batched(W, C, K[:-1], V, 1.0)
    with pytest.raises(NumericalError, match="shape"):
        ridge(W, K, V[:, :2], 1.0)


def test_results_are_float64(data, gen):
    W, C, k, v = (x.float() for x in data)
    K, V = (x.float() for x in _keys_values(gen, 3))
    results = [rank_one(W, C, k, v), batched(W, C, K, V, 1.0), ridge(W, K, V, 1.0),
               null_space(W, C, K, V, threshold=0.5)]
    for delta in results:
        assert delta.left.dtype == torch.float64 and delta.right.dtype == torch.float64
        assert delta.dense().dtype == torch.float64


def test_low_rank_delta_dense_and_sum(gen):
    a = LowRankDelta(torch.randn(D_OUT, 2, generator=gen, dtype=F64), torch.randn(D_IN, 2, generator=gen, dtype=F64))
    b = LowRankDelta(torch.randn(D_OUT, 1, generator=gen, dtype=F64), torch.randn(D_IN, 1, generator=gen, dtype=F64))
    assert a.dense().shape == (D_OUT, D_IN) and a.rank == 2
    total = a + b
    assert total.rank == 3 and total.dense().shape == (D_OUT, D_IN)
    assert torch.allclose(total.dense(), a.dense() + b.dense(), atol=1e-12)
    assert torch.linalg.matrix_rank(total.dense()) == 3


# -- constrained (ROME for n keys) -----------------------------------------------------------


def test_constrained_maps_every_key_exactly_and_is_rome_for_one_key(data, gen):
    from textedit.solvers import constrained
    W, C, k, v = data
    one = constrained(W, C, k.reshape(-1, 1), v.reshape(-1, 1))
    assert _rel(one.dense(), rank_one(W, C, k, v).dense()) < 1e-10
    K, V = _keys_values(gen, 3)
    delta = constrained(W, C, K, V)
    assert torch.allclose((W + delta.dense()) @ K, V, rtol=0, atol=1e-9)
    # the least change in the C-norm: the λ → 0 limit of MEMIT
    assert _rel(delta.dense(), batched(W, C, K, V, lam=1e-9).dense()) < 1e-5
    # a key orthogonal to all edit keys in the C⁻¹ metric is untouched
    U = torch.linalg.solve(C, K)
    k0 = torch.linalg.svd(U.T).Vh[-1]  # Uᵀ k0 = 0
    assert (delta.dense() @ k0).abs().max() < 1e-9


# -- batched_primal (MEMIT for many keys) --------------------------------------------------


def problem(d_out: int, d_in: int, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    X = torch.randn(4 * d_in, d_in, generator=g, dtype=torch.float64)
    C = X.T @ X / X.shape[0]
    K = torch.randn(d_in, n, generator=g, dtype=torch.float64)
    V = torch.randn(d_out, n, generator=g, dtype=torch.float64)
    return W, C, K, V


@pytest.mark.parametrize("d_out, d_in", [(8, 12), (12, 8)])
def test_primal_equals_woodbury(d_out, d_in):
    W, C, K, V = problem(d_out, d_in, n=5)
    woodbury = batched(W, C, K, V, 3.0).dense()
    primal = batched_primal(W, C, K, V, 3.0, chunk=2)
    assert primal.rank == min(d_out, d_in)
    torch.testing.assert_close(primal.dense(), woodbury, rtol=1e-10, atol=1e-12)


def test_many_keys_solve_the_normal_equations():
    """n > d_in: batched() goes primal; ΔW satisfies ΔW (λC + KKᵀ) = R Kᵀ; float32 keys are fine."""
    W, C, K, V = problem(6, 10, n=37)
    delta = batched(W, C, K.float(), V.float(), 0.5)
    R = V.float().double() - W @ K.float().double()
    lhs = delta.dense() @ (0.5 * C + K.float().double() @ K.float().double().T)
    torch.testing.assert_close(lhs, R @ K.float().double().T, rtol=1e-9, atol=1e-9)
    assert delta.rank == 6


def test_dense_factors_are_exact():
    for shape in ((3, 5), (5, 3)):
        delta = torch.randn(*shape, dtype=torch.float64)
        factors = dense_factors(delta)
        assert isinstance(factors, LowRankDelta) and factors.rank == min(shape)
        assert torch.equal(factors.dense(), delta)
