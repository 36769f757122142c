"""Identity ridge (TIME, Diff-QuickFix) against its published closed form, in NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from layer_problems import layer_problem
from textedit.methods import LayerProblem
from textedit.methods.ridge import Ridge


def _published(problem: LayerProblem, lam: float) -> np.ndarray:
    """W' = (λ' W + V Kᵀ)(λ' I + K Kᵀ)⁻¹, λ' = λ · mean ‖k‖² (the primal form, a d_in × d_in solve)."""
    W, K, V = (x.numpy() for x in (problem.W, problem.K, problem.V))
    scaled = lam * np.mean((K ** 2).sum(0))
    new = np.linalg.solve(scaled * np.eye(K.shape[0]) + K @ K.T, (scaled * W + V @ K.T).T).T
    return new - W


@pytest.mark.parametrize("n, lam", [(1, 10.0), (5, 0.1), (20, 3.0)])
def test_ridge_is_the_published_update(n, lam):
    problem = layer_problem(n)
    delta = Ridge(lam=lam).solve(problem).dense().numpy()
    np.testing.assert_allclose(delta, _published(problem, lam), rtol=1e-8, atol=1e-10)


def test_lam_is_relative_to_the_keys_so_scaling_keys_and_weights_scales_nothing_else():
    problem = layer_problem(3)
    scaled = LayerProblem(problem.W / 100, problem.K * 100, problem.V)  # the same map W K, keys 100 × larger
    one, other = (Ridge(lam=1.0).solve(p).dense() for p in (problem, scaled))
    np.testing.assert_allclose((one @ problem.K).numpy(), (other @ scaled.K).numpy(), rtol=1e-8)


def test_ridge_needs_no_statistics():
    problem = layer_problem(2)
    bare = LayerProblem(problem.W, problem.K, problem.V)  # no moment: it is never read
    assert not Ridge.needs_statistics and not Ridge.remembers_keys
    np.testing.assert_allclose(Ridge().solve(bare).dense().numpy(), _published(problem, 10.0), rtol=1e-8)
