"""Value strategies: what the stream should be after the *last* edited layer L.

    direct     each edited layer writes the target's own value: v*_l = v_l(target)
    match      z*_L = z_L(target): the stream at the key takes the target's state
    optimize   z*_L = z_L + δ, δ trained so that the encoder's sentence vector of every
               templated query moves to the frozen vector of the templated target
               (cosine loss, Adam, ‖δ‖ clamped to ``clamp``·‖z_L‖, weight decay).

``direct`` and ``match`` read the targets' states at their sites (``sites.read_states``);
``optimize`` trains δ here. The editor (``editor.py``) spreads z*_L − z_L over the edited
layers, MEMIT-style.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .encoders.base import EncoderAdapter
from .hooks import add_to_output
from .hyperparameters import check_declared, hyperparameter
from .sites import Sites

@dataclass(frozen=True)
class OptimizeConfig:
    """The ``optimize`` value strategy's knobs (``EditConfig`` routes them here)."""

    steps: int = hyperparameter(40, "optimisation steps", low=1, high=100_000, low_inclusive=True)
    lr: float = hyperparameter(0.1, "learning rate, relative to ‖z‖", low=0.0, high=100.0)
    clamp: float = hyperparameter(2.0, "max ‖δ‖ / ‖z‖", low=0.0, high=1e6)
    weight_decay: float = hyperparameter(0.01, "penalty on ‖δ‖²/‖z‖²", low=0.0, high=1e6, low_inclusive=True)
    #: stop a request once its loss has not fallen by ``1e-3`` for this many steps, and keep
    #: its best δ (0: run every step and keep the last δ, as before)
    patience: int = hyperparameter(0, "stop a request's optimisation after this many steps without progress, "
                                      "keeping its best δ (0: never)", low=0, high=100_000, low_inclusive=True)
    #: requests trained together. δs of different requests never interact (separate rows,
    #: elementwise Adam), so the chunk changes only memory, padding and, through the loss's
    #: mean, Adam's ε term; it keeps the cost per request flat for thousands of requests
    chunk: int = 16

    def __post_init__(self):
        check_declared(self)


#: each value strategy with the dataclass of its hyperparameters (``direct`` and ``match`` have none)
VALUE_CONFIGS = {"direct": None, "match": None, "optimize": OptimizeConfig}
VALUE_STRATEGIES = tuple(VALUE_CONFIGS)


def optimize_deltas(adapter: EncoderAdapter, queries: Sites, targets: Sites, layer: int, streams: torch.Tensor,
                    config: OptimizeConfig,
                    on_chunk: Callable[[int], None] | None = None) -> torch.Tensor:
    """Train one δ per request (shared by its templates and sites) added to the stream at ``layer``.

    Loss per request: mean over templates of ``1 − cos(s(query + δ), s̄(target))`` with ``s``
    the sentence vector, ``s̄`` that of the frozen encoder, plus ``weight_decay·‖δ‖²/‖z‖²``.
    δ is parametrised relative to ``‖z‖`` (``streams``, ``[n_requests, d]``) so ``lr`` and
    ``clamp`` are unitless. Requests are trained ``config.chunk`` at a time; ``on_chunk(n)``
    is called after each chunk of ``n`` requests. Returns δ ``[n_requests, d_model]`` in float64.
    """
    out = []
    params = [p for p in adapter.model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        for first in range(0, queries.n_requests, config.chunk):
            last = min(first + config.chunk, queries.n_requests)
            chunk = queries.requests(first, last)
            with torch.no_grad():
                goal = F.normalize(adapter.embed(targets.requests(first, last).prompts).to(adapter.device), dim=-1)
            out.append(_optimize_chunk(adapter, chunk, goal, streams[first:last], layer, config))
            if on_chunk is not None:
                on_chunk(last - first)
    finally:
        for p in params:
            p.requires_grad_(True)
    return torch.cat(out)


def _optimize_chunk(adapter: EncoderAdapter, sites: Sites, goal: torch.Tensor, streams: torch.Tensor, layer: int,
                    config: OptimizeConfig) -> torch.Tensor:
    """``optimize_deltas`` for one chunk of requests (``sites``), goal ``[n_prompts, d]``.

    A request's δ is added at every one of its sites (one per prompt, or each query token)."""
    scale = streams.norm(dim=-1, keepdim=True).float().to(adapter.device)  # [n_requests, 1]
    unit_delta = torch.zeros(len(streams), streams.shape[1], device=adapter.device, requires_grad=True)
    optimizer = torch.optim.Adam([unit_delta], lr=config.lr)
    batch = adapter.tokenize(sites.prompts)
    rows, pos, request = sites.site_prompts(), torch.tensor(sites.positions), sites.request_of_site()
    module = adapter.mlp_output_module(layer)  # δ is a change of the stream, added where the block adds
    best_loss = torch.full((len(streams),), float("inf"), device=adapter.device)
    best = torch.zeros_like(unit_delta)
    waited = torch.zeros(len(streams), dtype=torch.long, device=adapter.device)
    owner = sites.request_of_prompt().to(adapter.device)  # the request of each prompt
    n_prompts = torch.bincount(owner, minlength=len(streams)).float()
    for _ in range(config.steps):
        optimizer.zero_grad()
        delta = unit_delta * scale

        def add_delta(output: torch.Tensor) -> torch.Tensor:
            plus = torch.zeros_like(output)
            plus[rows, pos] = delta[request].to(output.dtype)
            return plus

        with add_to_output(module, add_delta):
            outputs = adapter.forward(batch)
        vec = F.normalize(adapter.sentence_vector(batch, outputs).float(), dim=-1)
        misses = 1 - (vec * goal).sum(-1)  # [n_prompts]
        penalty = config.weight_decay * (unit_delta ** 2).sum(-1)  # [n_requests]
        loss = misses.mean() + penalty.mean()
        if config.patience:  # each request's own loss: its prompts' mean miss plus its penalty
            with torch.no_grad():
                own = torch.zeros_like(best_loss).index_add_(0, owner, misses.detach()) / n_prompts + penalty.detach()
                improved, significant = own < best_loss, own < best_loss - 1e-3
                best[improved] = unit_delta.detach()[improved]
                best_loss = torch.minimum(best_loss, own)
                waited = torch.where(significant, torch.zeros_like(waited), waited + 1)
                if bool((waited >= config.patience).all()):
                    break
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # project back into the ball of radius clamp
            norms = unit_delta.norm(dim=-1, keepdim=True)
            unit_delta.mul_(torch.clamp(config.clamp / norms.clamp(min=1e-12), max=1.0))
    final = best if config.patience else unit_delta.detach()
    return (final * scale).double().cpu()
