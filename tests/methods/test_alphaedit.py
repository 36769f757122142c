"""AlphaEdit against its published closed form, computed independently in NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from layer_problems import layer_problem
from textedit.methods import LayerProblem
from textedit.methods.alphaedit import AlphaEdit


def _projector(C: np.ndarray, threshold: float) -> np.ndarray:
    """P onto the eigenvectors of C whose eigenvalues are below threshold · λ_max."""
    values, vectors = np.linalg.eigh(C)
    basis = vectors[:, values < threshold * values.max()]
    return basis @ basis.T


def _published(problem: LayerProblem, threshold: float, alpha: float) -> np.ndarray:
    """ΔWᵀ = (P (K Kᵀ + G_p) + a I)⁻¹ P K Rᵀ, a = α · mean ‖P k‖² (a d_in × d_in solve)."""
    W, K, V = (x.numpy() for x in (problem.W, problem.K, problem.V))
    P = _projector(problem.moment.mean.numpy(), threshold)
    gram = K @ K.T + (problem.remembered_gram.numpy() if problem.remembered_gram is not None else 0)
    a = alpha * np.mean(((P @ K) ** 2).sum(0))
    return np.linalg.solve(P @ gram + a * np.eye(K.shape[0]), P @ K @ (V - W @ K).T).T


@pytest.mark.parametrize("n, threshold, alpha, remembered", [(1, 0.5, 1e-2, 0), (3, 0.3, 1.0, 0),
                                                             (3, 0.5, 1e-2, 5)])
def test_alphaedit_is_the_published_update(n, threshold, alpha, remembered):
    problem = layer_problem(n, d_in=12, remembered=remembered)
    delta = AlphaEdit(threshold=threshold, alpha=alpha).solve(problem).dense().numpy()
    np.testing.assert_allclose(delta, _published(problem, threshold, alpha), rtol=1e-7, atol=1e-10)


def test_the_update_leaves_the_corpus_keys_outside_the_null_space_alone():
    problem = layer_problem(3, d_in=12)
    delta = AlphaEdit(threshold=0.3).solve(problem).dense().numpy()
    kept = np.eye(12) - _projector(problem.moment.mean.numpy(), 0.3)  # the directions P removes
    assert np.abs(kept).sum() > 1 and np.abs(delta @ kept).max() < 1e-9 * np.abs(delta).max()


def test_alphaedit_keeps_and_stores_keys_by_default():
    assert AlphaEdit.needs_statistics and AlphaEdit.remembers_keys and AlphaEdit.remember_by_default
