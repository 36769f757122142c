"""One layer's solve with random float64 data, shared by the method tests."""

from __future__ import annotations

import torch

from textedit.methods import LayerProblem
from textedit.stats import SecondMoment


def layer_problem(n: int = 4, seed: int = 0, d_in: int = 10, d_out: int = 6, remembered: int = 0) -> LayerProblem:
    """W [d_out, d_in], n keys and targets, the second moment C of 400 correlated corpus keys, and
    ``remembered`` remembered keys (their gram and count), all drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    corpus = draw(400, d_in) @ draw(d_in, d_in)
    W, K, V = draw(d_out, d_in), draw(d_in, n), draw(d_out, n)
    kept = draw(d_in, remembered)
    return LayerProblem(W, K, V, SecondMoment(corpus.T @ corpus, corpus.shape[0]),
                        kept @ kept.T if remembered else None, remembered)
