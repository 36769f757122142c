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
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .encoders.base import EncoderAdapter, TokenBatch
from .hooks import add_to_output, record_outputs, replaying, stop_after
from .settings import OptimizeConfig
from .sites import Sites


def optimize_deltas(adapter: EncoderAdapter, queries: Sites, targets: Sites, layer: int, streams: torch.Tensor,
                    config: OptimizeConfig,
                    on_chunk: Callable[[int], None] | None = None) -> torch.Tensor:
    """Train one δ per request (shared by its templates and sites) added to the stream at ``layer``.

    Loss per request: mean over templates of ``1 − cos(s(query + δ), s̄(target))`` with ``s``
    the sentence vector, ``s̄`` that of the frozen encoder, plus ``weight_decay·‖δ‖²/‖z‖²``.
    δ is parametrised relative to ``‖z‖`` (``streams``, ``[n_requests, d]``) so ``lr`` and
    ``clamp`` are unitless. All requests train together, one Adam step for all of them per
    step (elementwise, on a summed loss: each δ follows its own request's gradient whatever
    trains beside it); a step runs their prompts in micro-batches of at most
    ``config.chunk`` × templates prompts of similar token length (:func:`_micro_batches`), so
    that a batch pads little. ``on_chunk(n)`` is called as ``n`` requests finish. Returns δ
    ``[n_requests, d_model]`` in float64.
    """
    params = [p for p in adapter.model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            goal = F.normalize(adapter.embed(targets.prompts).to(adapter.device), dim=-1)
        return _optimize_all(adapter, queries, goal, streams, layer, config, on_chunk)
    finally:
        for p in params:
            p.requires_grad_(True)


@dataclass
class _MicroBatch:
    """Prompts of the training requests run together in one pass of a step."""

    batch: TokenBatch
    # the index tensors live on the model's device: every step indexes device tensors with them
    owner: torch.Tensor  # [prompts]: each prompt's request (index into all requests)
    rows: torch.Tensor  # [sites]: each site's row in ``batch``
    pos: torch.Tensor  # [sites]: its token
    request: torch.Tensor  # [sites]: its request
    goal: torch.Tensor  # [prompts, d]: the unit target vector of each prompt
    below: list | None = None  # the recorded outputs of the blocks below the δ's layer


def _micro_batches(adapter: EncoderAdapter, sites: Sites, active: torch.Tensor, lengths: torch.Tensor,
                   goal: torch.Tensor, size: int) -> list[_MicroBatch]:
    """The prompts of the ``active`` requests, ordered by token length (ties by index), cut into
    as few micro-batches of at most ``size`` prompts as hold them, of even sizes."""
    owner_all = sites.request_of_prompt()
    chosen = active[owner_all].nonzero().squeeze(1)
    order = chosen[torch.argsort(lengths[chosen], stable=True)]
    if not len(order):
        return []
    pieces = -(-len(order) // max(1, size))
    site_prompt, site_pos, site_request = sites.site_prompts(), torch.tensor(sites.positions), sites.request_of_site()
    out = []
    for part in torch.tensor_split(order, pieces):
        row_of = torch.full((len(sites.prompts),), -1, dtype=torch.long)
        row_of[part] = torch.arange(len(part))
        kept = row_of[site_prompt] >= 0
        # moved to the device once here, not at each of the steps that index δ and the outputs with them
        device = adapter.device
        out.append(_MicroBatch(adapter.tokenize([sites.prompts[i] for i in part.tolist()]),
                               owner_all[part].to(device), row_of[site_prompt[kept]].to(device),
                               site_pos[kept].to(device), site_request[kept].to(device), goal[part.to(goal.device)]))
    return out


def _record_below(below: Sequence[torch.nn.Module], adapter: EncoderAdapter, batch: TokenBatch) -> list | None:
    """What each of ``below`` (the blocks under the δ's layer) returns on ``batch``, from one
    pass without gradients stopped after the last of them; ``None`` when there are none."""
    if not below or not REPLAY:
        return None  # (``replaying`` of None: the blocks compute)
    with torch.no_grad(), record_outputs(dict(enumerate(below))) as recorded, stop_after(below[-1]):
        adapter.forward(batch)
    missing = [i for i in range(len(below)) if i not in recorded]
    if missing:
        raise RuntimeError(f"optimize: blocks {missing} below the δ's layer did not run")
    return [recorded[i] for i in range(len(below))]


#: replay the blocks below the δ's layer instead of running them at every step (a test turns it off)
REPLAY = True


def _optimize_all(adapter: EncoderAdapter, sites: Sites, goal: torch.Tensor, streams: torch.Tensor, layer: int,
                  config: OptimizeConfig, on_done: Callable[[int], None] | None = None) -> torch.Tensor:
    """``optimize_deltas`` for all requests (``sites``), goal ``[n_prompts, d]``.

    A request's δ is added at every one of its sites (one per prompt, or each query token).
    A request stops when its mean miss reaches ``config.tolerance`` and half its miss at
    δ = 0, whichever is lower (keeping the δ that reached it), or
    runs out of ``config.patience`` (keeping its best δ); its prompts then leave the
    micro-batches, so a step costs only the requests still training. The blocks below
    ``layer`` see no δ: they run once per set of training requests and micro-batch, and each
    step runs the blocks from ``layer`` up. Each micro-batch's part of the loss (its prompts'
    misses, each divided by its request's prompt count) is back-propagated at once, so memory
    holds one micro-batch's graph; the gradients add up to that of the summed loss, and each
    δ's is its own request's: a request's result does not depend on which requests train
    beside it or on when they stop (up to float rounding of batch shapes).
    """
    n = len(streams)
    scale = streams.norm(dim=-1, keepdim=True).float().to(adapter.device)  # [n_requests, 1]
    unit_delta = torch.zeros(n, streams.shape[1], device=adapter.device, requires_grad=True)
    optimizer = torch.optim.Adam([unit_delta], lr=config.lr)
    lengths = adapter.tokenize(sites.prompts).attention_mask.sum(1)  # [n_prompts] tokens
    n_prompts = torch.bincount(sites.request_of_prompt(), minlength=n).float().to(adapter.device)  # [n_requests]
    module = adapter.mlp_output_module(layer)  # δ is a change of the stream, added where the block adds
    below = [adapter.block(i) for i in range(layer)]  # blocks whose outputs δ cannot change
    final = torch.zeros_like(unit_delta, requires_grad=False)  # the δ each stopped request keeps
    best_loss = torch.full((n,), float("inf"), device=adapter.device)
    best = torch.zeros_like(final)
    waited = torch.zeros(n, dtype=torch.long, device=adapter.device)
    active = torch.ones(n, dtype=torch.bool)  # requests still training (CPU: it indexes the batch)
    on = lambda mask: mask.to(adapter.device)  # noqa: E731  (a CPU mask for the δ rows)
    limit = None  # [n_requests]: the miss at which a request counts as reached
    size = config.chunk * sites.n_templates
    step = 0
    while step < config.steps and bool(active.any()):
        parts = _micro_batches(adapter, sites, active, lengths, goal, size)
        for part in parts:
            part.below = _record_below(below, adapter, part.batch)
        changed = False
        while step < config.steps and not changed:
            step += 1
            optimizer.zero_grad()
            miss = torch.zeros(n, device=adapter.device)
            for part in parts:
                delta = unit_delta[part.request] * scale[part.request]  # all on the model's device

                def add_delta(output: torch.Tensor, part=part, delta=delta) -> torch.Tensor:
                    plus = torch.zeros_like(output)
                    plus[part.rows, part.pos] = delta.to(output.dtype)
                    return plus

                with replaying(below if part.below else [], part.below or []), add_to_output(module, add_delta):
                    outputs = adapter.forward(part.batch)
                vec = F.normalize(adapter.sentence_vector(part.batch, outputs).float(), dim=-1)
                misses = 1 - (vec * part.goal).sum(-1)  # [prompts of the micro-batch]
                miss.index_add_(0, part.owner, misses.detach())
                (misses / n_prompts[part.owner]).sum().backward()
            miss = miss / n_prompts  # [n]: each request's mean miss over its prompts
            penalty = config.weight_decay * (unit_delta ** 2).sum(-1)  # [n_requests]
            own = miss + penalty.detach()  # each request's loss (0 + penalty for those not training)
            with torch.no_grad():
                stopped = torch.zeros(n, dtype=torch.bool)
                if config.tolerance:  # reached: keep the δ just measured
                    if limit is None:  # the first pass, δ = 0: every request is in it
                        # at least half the starting miss: where unrelated sentences sit within the
                        # tolerance of each other (a random CLIP: cos ≈ 0.98), the tolerance alone
                        # would stop a request before it moves. On MiniLM, where it was measured,
                        # starting misses are ≥ 0.37 (knowledge dev split), so the tolerance decides
                        limit = torch.clamp(miss / 2, max=config.tolerance)
                    reached = active & (miss <= limit).cpu()
                    final[on(reached)] = unit_delta.detach()[on(reached)]
                    stopped |= reached
                if config.patience:  # out of patience: keep the best δ seen
                    improved = own < best_loss
                    significant = own < best_loss - 1e-3
                    best[improved] = unit_delta.detach()[improved]
                    best_loss = torch.minimum(best_loss, own)
                    waited = torch.where(significant, torch.zeros_like(waited), waited + 1)
                    tired = active & ~stopped & (waited >= config.patience).cpu()
                    final[on(tired)] = best[on(tired)]
                    stopped |= tired
                changed = bool(stopped.any())
                active &= ~stopped
            if changed and on_done is not None:
                on_done(int(stopped.sum()))
            if not bool(active.any()):
                break
            penalty[on(active)].sum().backward()
            with torch.no_grad():  # a request that stopped takes no step (its gradient counts for nothing)
                unit_delta.grad[on(~active)] = 0
            optimizer.step()
            with torch.no_grad():  # project back into the ball of radius clamp
                norms = unit_delta.norm(dim=-1, keepdim=True)
                unit_delta.mul_(torch.clamp(config.clamp / norms.clamp(min=1e-12), max=1.0))
    with torch.no_grad():  # requests that ran every step keep their last δ (their best, with patience)
        final[on(active)] = (best if config.patience else unit_delta.detach())[on(active)]
    if on_done is not None and bool(active.any()):
        on_done(int(active.sum()))
    return (final * scale).double().cpu()

