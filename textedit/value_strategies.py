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

from typing import Callable

import torch
import torch.nn.functional as F

from .encoders.base import EncoderAdapter, TokenBatch
from .hooks import add_to_output, replay_outputs
from .settings import OptimizeConfig
from .sites import Sites



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


def _select(batch: TokenBatch, keep: torch.Tensor) -> TokenBatch:
    """The prompts of ``batch`` where ``keep [n_prompts]`` (bool) is set, padded as before."""
    rows = keep.nonzero().squeeze(1)
    return TokenBatch(batch.input_ids[rows], batch.attention_mask[rows], [batch.offsets[i] for i in rows.tolist()])


def _optimize_chunk(adapter: EncoderAdapter, sites: Sites, goal: torch.Tensor, streams: torch.Tensor, layer: int,
                    config: OptimizeConfig) -> torch.Tensor:
    """``optimize_deltas`` for one chunk of requests (``sites``), goal ``[n_prompts, d]``.

    A request's δ is added at every one of its sites (one per prompt, or each query token).
    A request stops when its mean miss reaches ``config.tolerance`` and half its miss at
    δ = 0, whichever is lower (keeping the δ that reached it), or
    runs out of ``config.patience`` (keeping its best δ); its prompts then leave the batch,
    so a step costs only the requests still training. The blocks below ``layer`` see no δ:
    they run once per set of training requests (``replay_outputs``), and each step runs
    the blocks from ``layer`` up. The loss is the *sum* of the requests' losses, so each δ's
    gradient is its own request's whatever trains beside it: a request's result does not
    depend on its chunk or on when the others stop (up to float rounding of batch shapes).
    """
    n = len(streams)
    scale = streams.norm(dim=-1, keepdim=True).float().to(adapter.device)  # [n_requests, 1]
    unit_delta = torch.zeros(n, streams.shape[1], device=adapter.device, requires_grad=True)
    optimizer = torch.optim.Adam([unit_delta], lr=config.lr)
    full = adapter.tokenize(sites.prompts)
    owner = sites.request_of_prompt()  # [n_prompts]: the request of each prompt
    site_prompt, site_pos, site_request = sites.site_prompts(), torch.tensor(sites.positions), sites.request_of_site()
    n_prompts = torch.bincount(owner, minlength=n).float().to(adapter.device)  # [n_requests]
    module = adapter.mlp_output_module(layer)  # δ is a change of the stream, added where the block adds
    below = [adapter.block(i) for i in range(layer)]  # blocks whose outputs δ cannot change
    final = torch.zeros_like(unit_delta, requires_grad=False)  # the δ each stopped request keeps
    best_loss = torch.full((n,), float("inf"), device=adapter.device)
    best = torch.zeros_like(final)
    waited = torch.zeros(n, dtype=torch.long, device=adapter.device)
    active = torch.ones(n, dtype=torch.bool)  # requests still training (CPU: it indexes the batch)
    on = lambda mask: mask.to(adapter.device)  # noqa: E731  (a CPU mask for the δ rows)
    limit = None  # [n_requests]: the miss at which a request counts as reached
    step = 0
    while step < config.steps and bool(active.any()):
        keep = active[owner]  # the prompts of the training requests, renumbered 0.. in the batch
        batch = _select(full, keep)
        renumber = keep.long().cumsum(0) - 1
        kept_sites = active[site_request]
        rows, pos, request = renumber[site_prompt[kept_sites]], site_pos[kept_sites], site_request[kept_sites]
        batch_owner, batch_goal = owner[keep].to(adapter.device), goal[keep.to(goal.device)]
        changed = False
        with replay_outputs(below, lambda: adapter.forward(batch)):
            while step < config.steps and not changed:
                step += 1
                optimizer.zero_grad()
                delta = unit_delta * scale

                def add_delta(output: torch.Tensor) -> torch.Tensor:
                    plus = torch.zeros_like(output)
                    plus[rows, pos] = delta[request].to(output.dtype)
                    return plus

                with add_to_output(module, add_delta):
                    outputs = adapter.forward(batch)
                vec = F.normalize(adapter.sentence_vector(batch, outputs).float(), dim=-1)
                misses = 1 - (vec * batch_goal).sum(-1)  # [n_prompts in the batch]
                miss = torch.zeros(n, device=adapter.device).index_add(0, batch_owner, misses) / n_prompts  # [n]
                penalty = config.weight_decay * (unit_delta ** 2).sum(-1)  # [n_requests]
                own = miss + penalty  # each request's loss (0 + penalty for those not in the batch)
                with torch.no_grad():
                    stopped = torch.zeros(n, dtype=torch.bool)
                    if config.tolerance:  # reached: keep the δ just measured
                        if limit is None:  # the first pass, δ = 0: every request is in it
                            # at least half the starting miss: where unrelated sentences sit within the
                            # tolerance of each other (a random CLIP: cos ≈ 0.98), the tolerance alone
                            # would stop a request before it moves. On MiniLM, where it was measured,
                            # starting misses are ≥ 0.37 (knowledge dev split), so the tolerance decides
                            limit = torch.clamp(miss.detach() / 2, max=config.tolerance)
                        reached = active & (miss.detach() <= limit).cpu()
                        final[on(reached)] = unit_delta.detach()[on(reached)]
                        stopped |= reached
                    if config.patience:  # out of patience: keep the best δ seen
                        improved = own.detach() < best_loss
                        significant = own.detach() < best_loss - 1e-3
                        best[improved] = unit_delta.detach()[improved]
                        best_loss = torch.minimum(best_loss, own.detach())
                        waited = torch.where(significant, torch.zeros_like(waited), waited + 1)
                        tired = active & ~stopped & (waited >= config.patience).cpu()
                        final[on(tired)] = best[on(tired)]
                        stopped |= tired
                    changed = bool(stopped.any())
                    active &= ~stopped
                if not bool(active.any()):
                    break
                own[on(active)].sum().backward()
                optimizer.step()
                with torch.no_grad():  # project back into the ball of radius clamp
                    norms = unit_delta.norm(dim=-1, keepdim=True)
                    unit_delta.mul_(torch.clamp(config.clamp / norms.clamp(min=1e-12), max=1.0))
    with torch.no_grad():  # requests that ran every step keep their last δ (their best, with patience)
        final[on(active)] = (best if config.patience else unit_delta.detach())[on(active)]
    return (final * scale).double().cpu()
