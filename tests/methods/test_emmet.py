"""EMMET against its published closed form, computed independently in NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layer_problems import layer_problem
from textedit.methods import LayerProblem
from textedit.methods.emmet import Emmet


def _published(problem: LayerProblem, lam: float) -> np.ndarray:
    """ΔW = R (D + λ_E I)⁻¹ Kᵀ C⁻¹, D = Kᵀ C⁻¹ K, λ_E = lam · mean diag D (NumPy, plain solves)."""
    W, K, V = (x.numpy() for x in (problem.W, problem.K, problem.V))
    C = problem.moment.mean.numpy()
    C_inv_K = np.linalg.solve(C, K)
    D = K.T @ C_inv_K
    D = D + lam * np.mean(np.diag(D)) * np.eye(D.shape[0])
    return (V - W @ K) @ np.linalg.solve(D, C_inv_K.T)


@pytest.mark.parametrize("lam", [0.0, 0.1, 3.0])
def test_emmet_is_the_published_update(lam):
    problem = layer_problem()
    delta = Emmet(lam=lam).solve(problem).dense().numpy()
    np.testing.assert_allclose(delta, _published(problem, lam), rtol=1e-8, atol=1e-10)


def test_emmet_without_stabiliser_maps_every_key_exactly_and_a_lone_key_by_one_over_one_plus_lam():
    problem = layer_problem(n=3)
    exact = Emmet(lam=0.0).solve(problem).dense()
    torch.testing.assert_close((problem.W + exact) @ problem.K, problem.V, rtol=1e-9, atol=1e-9)
    lone = layer_problem(n=1)
    residual = lone.V - lone.W @ lone.K
    moved = Emmet(lam=0.25).solve(lone).dense() @ lone.K
    torch.testing.assert_close(moved, residual / 1.25, rtol=1e-9, atol=1e-9)
