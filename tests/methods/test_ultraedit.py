"""UltraEdit against an independent re-computation of the published algorithm (NumPy, primal form)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textedit.errors import SpecError
from textedit.methods import LayerProblem
from textedit.methods.ultraedit import EPS, UltraEdit


class RunningMeanStd:
    """The published lifelong normaliser: a running mean and variance, fed batch by batch."""

    def __init__(self, size: int):
        self.n, self.mean, self.var = 0.0, np.zeros(size), np.zeros(size)

    def update(self, x: np.ndarray) -> None:
        n = self.n + x.shape[0]
        delta = x.mean(0) - self.mean
        self.mean = self.mean + x.shape[0] * delta / n
        self.var = self.var + x.shape[0] * x.var(0, ddof=1) + self.n * x.shape[0] * delta ** 2 / n
        self.std = np.sqrt(self.var / (n - 1 + EPS))
        self.n = n

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / (self.std + EPS)


def _published(problem: LayerProblem, step: float, lam: float) -> np.ndarray:
    """Rows are keys as in the reference: H [n, d_in], gradients G [n, d_out] of ½‖W k − v‖²;
    normalise [H, G] together, ṽ = −η‖ĥ‖² ĝ, ΔWᵀ = (HᵀH + λ' I)⁻¹ Hᵀ Ṽ (d_in × d_in solve)."""
    W, K, V = (x.numpy() for x in (problem.W, problem.K, problem.V))
    H, G = K.T, (W @ K - V).T
    normaliser = RunningMeanStd(H.shape[1] + G.shape[1])
    features = np.concatenate([H, G], 1)
    normaliser.update(features)
    normalised = normaliser(features)
    H_hat, G_hat = normalised[:, :H.shape[1]], normalised[:, H.shape[1]:]
    pseudo = -step * (H_hat ** 2).sum(1, keepdims=True) * G_hat
    ridge = lam * np.mean((H ** 2).sum(1))
    return np.linalg.solve(H.T @ H + ridge * np.eye(H.shape[1]), H.T @ pseudo).T


def _problem(n: int, seed: int = 0, d_in: int = 12, d_out: int = 7) -> LayerProblem:
    g = torch.Generator().manual_seed(seed)
    return LayerProblem(torch.randn(d_out, d_in, generator=g, dtype=torch.float64),
                        torch.randn(d_in, n, generator=g, dtype=torch.float64) + 0.5,
                        torch.randn(d_out, n, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("n, step, lam", [(5, 1e-3, 1.0), (9, 1e-2, 0.1), (30, 1e-3, 1.0)])
def test_ultraedit_is_the_published_update(n, step, lam):
    problem = _problem(n)
    delta = UltraEdit(step=step, lam=lam).solve(problem).dense().numpy()
    np.testing.assert_allclose(delta, _published(problem, step, lam), rtol=1e-7, atol=1e-12)


def test_ultraedit_moves_keys_toward_their_targets_where_residuals_differ_from_their_mean():
    problem = _problem(8)
    R = problem.V - problem.W @ problem.K
    moved = UltraEdit(step=1e-2, lam=1e-3).solve(problem).dense() @ problem.K
    centred = R - R.mean(1, keepdim=True)
    assert (moved * centred).sum() > 0  # the pseudo-values point along the standardised residuals


def test_ultraedit_refuses_a_solve_whose_residuals_do_not_vary():
    lone = _problem(1)
    with pytest.raises(SpecError, match="several requests"):
        UltraEdit().solve(lone)
    same = _problem(4)
    same = LayerProblem(same.W, same.K, same.W @ same.K + torch.ones(same.W.shape[0], 1, dtype=torch.float64))
    with pytest.raises(SpecError, match="do not vary"):
        UltraEdit().solve(same)
