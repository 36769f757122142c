"""Reading keys and states at edit sites, and the target-value strategies.

An *edit site* is one prompt (a request's query placed in a context template) at one
token (the subject's last). At a site and layer ``l`` we read

    k_l  the key, input of the down-projection            [d_in]
    v_l  the value, its output                            [d_out]
    z_l  the residual stream right after the MLP: z = r + v (r + norm(v) where the block
         normalises the MLP output, Gemma-2), r the stream the MLP output
         is added to (pre-norm sum for post-LN BERT)       [d_model]

Keys and states of a request are averaged over its context templates (as ROME/MEMIT do).
A value strategy says what the stream should be after the *last* edited layer L:

    direct     each edited layer writes the target's own value: v*_l = v_l(target)
    match      z*_L = z_L(target): the stream at the key takes the target's state
    optimize   z*_L = z_L + δ, δ trained so that the encoder's sentence vector of every
               templated query moves to the frozen vector of the templated target
               (cosine loss, Adam, ‖δ‖ clamped to ``clamp``·‖z_L‖, weight decay).

The editor (``editor.py``) spreads z*_L − z_L over the edited layers, MEMIT-style.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .encoders.base import EncoderAdapter, find_span
from .hooks import add_to_output, record_inputs, record_outputs, stop_after
from .requests import EditRequest

VALUE_STRATEGIES = ("direct", "match", "optimize")
#: where a request's key is read: the last token of its subject, or of the whole prompt
KEY_POSITIONS = ("subject", "last")

#: contexts the keys and targets are averaged over (caption-like, prefix and suffix)
EDIT_TEMPLATES = (
    "{}",
    "a photo of {}",
    "a painting of {}",
    "{} on the beach",
    "a picture of {} in the city at night",
    "a drawing of {}, in a garden",
    "a close-up photo of {} on a table",
    "an illustration of {} in the snow",
)


@dataclass
class Sites:
    """Templated prompts of each request and the token index of the key in each."""

    prompts: list[str]  # n_requests * n_templates prompts, request-major
    positions: list[int]
    n_requests: int
    n_templates: int

    @classmethod
    def for_queries(cls, adapter: EncoderAdapter, requests: Sequence[EditRequest], templates: Sequence[str],
                    key: str = "subject") -> "Sites":
        """The key of each request in each template: at its subject's last token (``key="subject"``,
        the prompt's last token for a request without a subject) or the prompt's (``"last"``)."""
        if key not in KEY_POSITIONS:
            raise ValueError(f"key position must be one of {KEY_POSITIONS}, got '{key}'")
        return cls._place(adapter, [(r.prompt, r.subject if key == "subject" else None) for r in requests],
                          templates)

    @classmethod
    def for_targets(cls, adapter: EncoderAdapter, requests: Sequence[EditRequest], templates: Sequence[str]) -> "Sites":
        return cls._place(adapter, [(r.target, None) for r in requests], templates)

    @classmethod
    def _place(cls, adapter: EncoderAdapter, texts: Sequence[tuple[str, str | None]], templates: Sequence[str]) -> "Sites":
        """Put each text in each template; the key is the last token of its subject span."""
        prompts, spans = [], []
        for text, subject in texts:
            sub_start, sub_end = find_span(text, subject)
            for template in templates:
                offset = template.index("{}")
                prompts.append(template.format(text))
                spans.append((offset + sub_start, offset + sub_end))
        batch = adapter.tokenize(prompts)
        positions = [adapter.last_token_in_span(batch.offsets[i], batch.attention_mask[i], a, b, prompts[i])
                     for i, (a, b) in enumerate(spans)]
        return cls(prompts, positions, len(texts), len(templates))

    def average(self, x: torch.Tensor) -> torch.Tensor:
        """``[n_requests * n_templates, d]`` → ``[n_requests, d]`` (mean over templates)."""
        return x.reshape(self.n_requests, self.n_templates, -1).mean(1)


@dataclass
class SiteStates:
    keys: torch.Tensor  # [n_sites, d_in]
    values: torch.Tensor  # [n_sites, d_out]
    streams: torch.Tensor  # [n_sites, d_model]  z = r + v


def read_states(adapter: EncoderAdapter, sites: Sites, layers: Sequence[int], batch_size: int = 64,
                on_batch: Callable[[int], None] | None = None) -> dict[int, SiteStates]:
    """Keys, values and post-MLP streams at every site for ``layers`` (float64 on the CPU).

    ``on_batch(n)`` is called after each batch of ``n`` prompts (a progress bar's tick).
    """
    down = {layer: adapter.down_proj_module(layer) for layer in layers}
    resid = {layer: adapter.residual_module(layer) for layer in layers}
    out: dict[int, dict[str, list]] = {layer: {"k": [], "v": [], "z": []} for layer in layers}
    with torch.no_grad():
        for begin in range(0, len(sites.prompts), batch_size):
            batch = adapter.tokenize(sites.prompts[begin:begin + batch_size])
            pos = torch.tensor(sites.positions[begin:begin + batch_size])
            rows = torch.arange(len(pos))
            with record_inputs(down) as keys, record_outputs(down) as values, \
                    record_inputs(resid, arg=adapter.residual[1]) as residuals, stop_after(down[max(layers)]):
                adapter.forward(batch)
            for layer in layers:  # gathered to the CPU in float64, where the solvers run
                v = values[layer][rows, pos].double().cpu()
                out[layer]["k"].append(keys[layer][rows, pos].double().cpu())
                out[layer]["v"].append(v)
                out[layer]["z"].append(residuals[layer][rows, pos].double().cpu() + adapter.value_in_stream(layer, v))
            if on_batch is not None:
                on_batch(len(pos))
    return {layer: SiteStates(*(torch.cat(out[layer][x]) for x in "kvz")) for layer in layers}


def token_key_gram(adapter: EncoderAdapter, prompts: Sequence[str], layer: int, batch_size: int = 64) -> torch.Tensor:
    """``Σ k kᵀ [d_in, d_in]`` (float64, CPU) over the keys at every real token of every prompt.

    Real tokens are those the attention mask marks (special tokens included: a sentence
    vector pools them too). These are the keys an edit must leave unchanged for the prompts
    to keep their meaning (``preserve.py``); the sum is accumulated batch by batch, so
    memory does not grow with the number of prompts.
    """
    down = adapter.down_proj_module(layer)
    d_in = down.weight.shape[1]
    gram = torch.zeros(d_in, d_in, dtype=torch.float64)
    with torch.no_grad():
        for begin in range(0, len(prompts), batch_size):
            batch = adapter.tokenize(list(prompts[begin:begin + batch_size]))
            with record_inputs({layer: down}) as keys, stop_after(down):
                adapter.forward(batch)
            k = keys[layer][batch.attention_mask.bool().to(keys[layer].device)].double().cpu()  # [tokens, d_in]
            gram.addmm_(k.T, k)
    return gram


@dataclass
class OptimizeConfig:
    steps: int = 40
    lr: float = 0.1
    clamp: float = 2.0
    weight_decay: float = 0.01
    #: requests trained together. δs of different requests never interact (separate rows,
    #: elementwise Adam), so the chunk changes only memory, padding and, through the loss's
    #: mean, Adam's ε term; it keeps the cost per request flat for thousands of requests
    chunk: int = 16


def optimize_deltas(adapter: EncoderAdapter, queries: Sites, targets: Sites, layer: int, streams: torch.Tensor,
                    config: OptimizeConfig, seed: int = 0,
                    on_chunk: Callable[[int], None] | None = None) -> torch.Tensor:
    """Train one δ per request (shared by its templates) added to the stream at ``layer``.

    Loss per request: mean over templates of ``1 − cos(s(query + δ), s̄(target))`` with ``s``
    the sentence vector, ``s̄`` that of the frozen encoder, plus ``weight_decay·‖δ‖²/‖z‖²``.
    δ is parametrised relative to ``‖z‖`` (``streams``, ``[n_requests, d]``) so ``lr`` and
    ``clamp`` are unitless. Requests are trained ``config.chunk`` at a time; ``on_chunk(n)``
    is called after each chunk of ``n`` requests. Returns δ ``[n_requests, d_model]`` in float64.
    """
    torch.manual_seed(seed)
    t = queries.n_templates
    out = []
    params = [p for p in adapter.model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        for first in range(0, queries.n_requests, config.chunk):
            last = min(first + config.chunk, queries.n_requests)
            rows = slice(first * t, last * t)
            with torch.no_grad():
                goal = F.normalize(adapter.embed(targets.prompts[rows]).to(adapter.device), dim=-1)
            out.append(_optimize_chunk(adapter, queries.prompts[rows], queries.positions[rows], t, goal,
                                       streams[first:last], layer, config))
            if on_chunk is not None:
                on_chunk(last - first)
    finally:
        for p in params:
            p.requires_grad_(True)
    return torch.cat(out)


def _optimize_chunk(adapter: EncoderAdapter, prompts: list[str], positions: list[int], n_templates: int,
                    goal: torch.Tensor, streams: torch.Tensor, layer: int, config: OptimizeConfig) -> torch.Tensor:
    """``optimize_deltas`` for one chunk of requests: prompts request-major, goal ``[n_prompts, d]``."""
    scale = streams.norm(dim=-1, keepdim=True).float().to(adapter.device)  # [n_requests, 1]
    unit_delta = torch.zeros(len(streams), streams.shape[1], device=adapter.device, requires_grad=True)
    optimizer = torch.optim.Adam([unit_delta], lr=config.lr)
    batch = adapter.tokenize(prompts)
    rows = torch.arange(len(prompts))
    pos = torch.tensor(positions)
    request_of_row = rows // n_templates
    module = adapter.mlp_output_module(layer)  # δ is a change of the stream, added where the block adds
    for _ in range(config.steps):
        optimizer.zero_grad()
        delta = unit_delta * scale

        def add_delta(output: torch.Tensor) -> torch.Tensor:
            plus = torch.zeros_like(output)
            plus[rows, pos] = delta[request_of_row].to(output.dtype)
            return plus

        with add_to_output(module, add_delta):
            outputs = adapter.forward(batch)
        vec = F.normalize(adapter.sentence_vector(batch, outputs).float(), dim=-1)
        loss = (1 - (vec * goal).sum(-1)).mean() + config.weight_decay * (unit_delta ** 2).sum(-1).mean()
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # project back into the ball of radius clamp
            norms = unit_delta.norm(dim=-1, keepdim=True)
            unit_delta.mul_(torch.clamp(config.clamp / norms.clamp(min=1e-12), max=1.0))
    return (unit_delta.detach() * scale).double().cpu()
