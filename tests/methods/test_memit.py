"""MEMIT against its published closed form, computed independently in NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from layer_problems import layer_problem
from textedit.hyperparameters import resolve
from textedit.methods import LayerProblem
from textedit.methods.memit import Memit


def _published(problem: LayerProblem, lam: float) -> np.ndarray:
    """ΔW = R Kᵀ (λ' C + G_p + K Kᵀ)⁻¹ with λ' = λ + the remembered keys' count (NumPy, a d_in × d_in solve)."""
    W, K, V = (x.numpy() for x in (problem.W, problem.K, problem.V))
    gram = K @ K.T + (lam + problem.remembered_count) * problem.moment.mean.numpy()
    if problem.remembered_gram is not None:
        gram = gram + problem.remembered_gram.numpy()
    return np.linalg.solve(gram, K @ (V - W @ K).T).T


@pytest.mark.parametrize("n, lam, remembered", [(1, 50.0, 0), (4, 0.5, 0), (4, 50.0, 7), (12, 2.0, 3)])
def test_memit_is_the_published_update(n, lam, remembered):
    problem = layer_problem(n, remembered=remembered)
    delta = Memit(lam=lam).solve(problem).dense().numpy()
    np.testing.assert_allclose(delta, _published(problem, lam), rtol=1e-8, atol=1e-10)


def test_a_larger_lam_moves_the_keys_less_and_remembered_keys_keep_their_values():
    problem = layer_problem(3)
    residual = np.linalg.norm((problem.V - problem.W @ problem.K).numpy())

    def left(lam: float, p: LayerProblem = problem) -> float:  # how far the keys stay from their targets
        return np.linalg.norm((p.V - (p.W + Memit(lam=lam).solve(p).dense()) @ p.K).numpy()) / residual

    assert left(1e-3) < 0.01 < left(1.0) < left(50.0) < left(1e4) < 1
    remembering = layer_problem(3, remembered=30)
    kept = remembering.remembered_gram
    free = LayerProblem(remembering.W, remembering.K, remembering.V, remembering.moment)
    moved = {name: float(np.trace((d := Memit(lam=1.0).solve(p).dense().numpy()) @ kept.numpy() @ d.T))
             for name, p in (("free", free), ("remembering", remembering))}
    assert moved["remembering"] < moved["free"] / 2  # Σ ‖ΔW k_p‖² over the remembered keys


def test_memit_needs_statistics_keeps_keys_and_reads_more_corpus_weight_for_query_keys():
    assert Memit.needs_statistics and Memit.remembers_keys and not Memit.one_layer
    assert resolve(Memit, {}) == Memit(lam=50.0) and resolve(Memit, {}, key="query") == Memit(lam=500.0)
