"""ROME against its published closed form, computed independently in NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from layer_problems import layer_problem
from textedit.methods.rome import Rome


def test_one_key_is_the_published_rank_one_update():
    problem = layer_problem(1)
    W, k, v, C = (x.numpy() for x in (problem.W, problem.K[:, 0], problem.V[:, 0], problem.moment.mean))
    u = np.linalg.solve(C, k)
    published = np.outer(v - W @ k, u) / (u @ k)  # ΔW = (v − W k) uᵀ / (uᵀ k), u = C⁻¹ k
    delta = Rome().solve(problem)
    assert delta.rank == 1
    np.testing.assert_allclose(delta.dense().numpy(), published, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("n", [2, 5])
def test_several_keys_are_mapped_exactly_with_the_least_change_in_the_c_norm(n):
    problem = layer_problem(n)
    W, K, V, C = (x.numpy() for x in (problem.W, problem.K, problem.V, problem.moment.mean))
    C_inv_K = np.linalg.solve(C, K)
    published = (V - W @ K) @ np.linalg.solve(K.T @ C_inv_K, C_inv_K.T)  # R (Kᵀ C⁻¹ K)⁻¹ Kᵀ C⁻¹
    delta = Rome().solve(problem).dense().numpy()
    np.testing.assert_allclose(delta, published, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose((W + delta) @ K, V, rtol=1e-8, atol=1e-10)


def test_rome_edits_one_layer_with_statistics_and_has_no_knobs():
    assert Rome.one_layer and Rome.needs_statistics and not Rome.remembers_keys
    assert Rome.hyperparameters() == {}
