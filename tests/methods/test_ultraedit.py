"""UltraEdit against an independent re-computation of the published algorithm (NumPy, primal form),
one edit and a chain of edits carrying the lifelong normaliser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layer_problems import layer_problem
from textedit.errors import PatchError, SpecError
from textedit.methods import LayerProblem
from textedit.methods.ultraedit import EPS, RunningMoments, UltraEdit


class RunningMeanStd:
    """The published lifelong normaliser: a running mean and variance, fed batch by batch."""

    def __init__(self, size: int):
        self.n, self.mean, self.var = 0.0, np.zeros(size), np.zeros(size)

    def update(self, x: np.ndarray) -> None:
        n = self.n + x.shape[0]
        delta = x.mean(0) - self.mean
        self.mean = self.mean + x.shape[0] * delta / n
        # one row: the reference's unbiased variance is NaN; textedit takes its spread as 0
        spread = x.shape[0] * x.var(0, ddof=1) if x.shape[0] > 1 else 0.0
        self.var = self.var + spread + self.n * x.shape[0] * delta ** 2 / n
        self.std = np.sqrt(self.var / (n - 1 + EPS))
        self.n = n

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / (self.std + EPS)


def _published(problem: LayerProblem, step: float, lam: float, normaliser: RunningMeanStd | None = None) -> np.ndarray:
    """Rows are keys as in the reference: H [n, d_in], gradients G [n, d_out] of ½‖W k − v‖²;
    the normaliser (the chain's, else a new one) is fed [H, G], then normalises them together,
    ṽ = −η‖ĥ‖² ĝ, ΔWᵀ = (HᵀH + λ' I)⁻¹ Hᵀ Ṽ (d_in × d_in solve)."""
    W, K, V = (x.numpy() for x in (problem.W, problem.K, problem.V))
    H, G = K.T, (W @ K - V).T
    normaliser = normaliser or RunningMeanStd(H.shape[1] + G.shape[1])
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


def test_the_running_merge_holds_the_statistics_of_every_key_seen():
    """Batches of 5, 1, 3 and 8 columns merged one after another: the count and mean of all 17
    at once, and the published spread, which is their sum of squared deviations plus each
    batch's unbiased variance (a batch adds n s², the exact merge (n − 1) s²; a lone column 0)."""
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(6, n)) * rng.uniform(0.5, 3, size=(6, 1)) + rng.normal(size=(6, 1))
               for n in (5, 1, 3, 8)]
    moments = RunningMoments(0, 0.0, 0.0)
    for batch in batches:
        moments = moments.merged(torch.from_numpy(batch))
    seen = np.concatenate(batches, 1)
    squared_deviations = ((seen - seen.mean(1, keepdims=True)) ** 2).sum(1)
    variances = sum(b.var(1, ddof=1) for b in batches if b.shape[1] > 1)
    assert moments.count == seen.shape[1]
    np.testing.assert_allclose(moments.mean.numpy(), seen.mean(1), rtol=1e-12)
    np.testing.assert_allclose(moments.spread.numpy(), squared_deviations + variances, rtol=1e-12)
    one_batch = RunningMoments.of(torch.from_numpy(seen))  # all at once: n s², the published single batch
    np.testing.assert_allclose(one_batch.spread.numpy(), seen.shape[1] * seen.var(1, ddof=1), rtol=1e-12)
    sigma = np.sqrt(moments.spread.numpy() / (seen.shape[1] - 1 + EPS)) + EPS
    np.testing.assert_allclose(moments.standardise(torch.from_numpy(seen)).numpy(),
                               (seen - seen.mean(1, keepdims=True)) / sigma[:, None], rtol=1e-10)


def test_a_chain_carries_the_published_lifelong_normaliser():
    """Five edits of one random layer, each on the weights the earlier left, the state of one
    passed to the next: every ΔW is the reference's, whose one normaliser sees every turn (a
    turn of one key included: the chain's statistics standardise it)."""
    method = UltraEdit(step=1e-2, lam=0.5)
    W = layer_problem(seed=0).W
    normaliser = RunningMeanStd(W.shape[1] + W.shape[0])
    state = None
    for turn, n in enumerate((4, 6, 1, 3, 5)):
        drawn = layer_problem(n, seed=turn + 1)
        problem = LayerProblem(W, drawn.K + 0.3 * turn, drawn.V, state=state)  # the keys' mean drifts
        delta, state = method.solve_in_chain(problem)
        np.testing.assert_allclose(delta.dense().numpy(), _published(problem, 1e-2, 0.5, normaliser),
                                   rtol=1e-7, atol=1e-12)
        assert state["count"].item() == normaliser.n
        np.testing.assert_allclose(torch.cat([state["key_mean"], state["gradient_mean"]]).numpy(), normaliser.mean,
                                   rtol=1e-10)
        np.testing.assert_allclose(torch.cat([state["key_spread"], state["gradient_spread"]]).numpy(),
                                   normaliser.var, rtol=1e-10)
        W = W + delta.dense()
    restarted = method.solve(LayerProblem(problem.W, problem.K, problem.V))  # the last edit on its own statistics
    assert not torch.allclose(restarted.dense(), delta.dense(), rtol=1e-3)


def test_a_state_of_another_shape_is_refused_in_one_line():
    problem = layer_problem(4)
    _, state = UltraEdit().solve_in_chain(problem)
    other = LayerProblem(problem.W[:, :-1], problem.K[:-1], problem.V, state=state)  # one key dimension less
    with pytest.raises(PatchError, match="'key_mean' must have shape"):
        UltraEdit().solve(other)
