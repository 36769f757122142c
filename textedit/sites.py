"""Edit sites: where a request's keys, values and streams are read.

An *edit site* is one prompt (a request's query placed in a context template) at one
token (the subject's last). At a site and layer ``l`` we read

    k_l  the key, input of the down-projection            [d_in]
    v_l  the value, its output                            [d_out]
    z_l  the residual stream right after the MLP: z = r + v (r + norm(v) where the block
         normalises the MLP output, Gemma-2), r the stream the MLP output
         is added to (pre-norm sum for post-LN BERT)       [d_model]

Keys and states of a request are averaged over its context templates (as ROME/MEMIT do).
What the stream should become is a value strategy's answer (``value_strategies.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .encoders.base import EncoderAdapter, find_span
from .hooks import record_inputs, record_outputs, replaying, stop_after
from .requests import EditRequest

#: where a request's key is read: the last token of its subject, the last token of the whole
#: prompt, or every token of the query (each its own key: the update must fire on the whole
#: knowledge statement, which a bidirectional encoder reads differently from its subject alone)
KEY_POSITIONS = ("subject", "last", "query")

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
    """Templated prompts of each request and the token(s) where its key is read.

    A *site* is one token of one prompt. ``key="subject"`` and ``"last"`` give one site per
    prompt; ``"query"`` gives one per token of the templated query (several per prompt).
    """

    prompts: list[str]  # n_requests * n_templates prompts, request-major
    positions: list[int]  # the token of each site
    n_requests: int
    n_templates: int
    #: the prompt of each site, ascending; ``None``: one site per prompt (site i is prompt i)
    prompt_of_site: list[int] | None = None

    @classmethod
    def for_queries(cls, adapter: EncoderAdapter, requests: Sequence[EditRequest], templates: Sequence[str],
                    key: str = "subject") -> "Sites":
        """The key sites of each request in each template: its subject's last token
        (``key="subject"``, the prompt's last token for a request without a subject), the
        prompt's last token (``"last"``) or every token of the query (``"query"``)."""
        if key not in KEY_POSITIONS:
            raise ValueError(f"key position must be one of {KEY_POSITIONS}, got '{key}'")
        return cls._place(adapter, [(r.prompt, r.subject if key == "subject" else None) for r in requests],
                          templates, every_token=key == "query")

    @classmethod
    def for_targets(cls, adapter: EncoderAdapter, requests: Sequence[EditRequest], templates: Sequence[str]) -> "Sites":
        return cls._place(adapter, [(r.target, None) for r in requests], templates)

    @classmethod
    def _place(cls, adapter: EncoderAdapter, texts: Sequence[tuple[str, str | None]], templates: Sequence[str],
               every_token: bool = False) -> "Sites":
        """Put each text in each template; the key is the last token of its subject span
        (every token of the span with ``every_token``)."""
        prompts, spans = [], []
        for text, subject in texts:
            sub_start, sub_end = find_span(text, subject)
            for template in templates:
                offset = template.index("{}")
                prompts.append(template.format(text))
                spans.append((offset + sub_start, offset + sub_end))
        batch = adapter.tokenize(prompts)
        if not every_token:
            positions = [adapter.last_token_in_span(batch.offsets[i], batch.attention_mask[i], a, b, prompts[i])
                         for i, (a, b) in enumerate(spans)]
            return cls(prompts, positions, len(texts), len(templates))
        positions, prompt_of_site = [], []
        for i, (a, b) in enumerate(spans):
            tokens = adapter.tokens_in_span(batch.offsets[i], batch.attention_mask[i], a, b, prompts[i])
            positions += tokens
            prompt_of_site += [i] * len(tokens)
        return cls(prompts, positions, len(texts), len(templates), prompt_of_site)

    @property
    def per_site(self) -> bool:
        """Whether each site is its own key (``"query"`` keys) rather than averaged over templates."""
        return self.prompt_of_site is not None

    def site_prompts(self) -> torch.Tensor:
        """The prompt index of every site ``[n_sites]``."""
        return torch.tensor(self.prompt_of_site if self.per_site else range(len(self.prompts)))

    def request_of_prompt(self) -> torch.Tensor:
        """The request index of every prompt ``[n_prompts]`` (prompts are request-major)."""
        return torch.arange(len(self.prompts)) // self.n_templates

    def request_of_site(self) -> torch.Tensor:
        return self.site_prompts() // self.n_templates

    def average(self, x: torch.Tensor) -> torch.Tensor:
        """``[n_sites, d]`` → ``[n_requests, d]``: the mean over each request's sites."""
        if not self.per_site:
            return x.reshape(self.n_requests, self.n_templates, -1).mean(1)
        request = self.request_of_site().to(x.device)
        sums = torch.zeros(self.n_requests, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, request, x)
        counts = torch.bincount(request, minlength=self.n_requests).to(x.dtype).unsqueeze(1)
        return sums / counts

    def reduce(self, x: torch.Tensor) -> torch.Tensor:
        """The columns the solver gets: per-site rows (``"query"`` keys), else per-request means.

        MEMIT averages a request's keys over its templates; a query's tokens are kept apart,
        each a key of its own, so the update has to fire at every one of them."""
        return x if self.per_site else self.average(x)

    def expand(self, x: torch.Tensor) -> torch.Tensor:
        """``[n_requests, d]`` → ``[n_sites, d]``: each site gets its request's row."""
        return x[self.request_of_site().to(x.device)]

    def requests(self, first: int, last: int) -> "Sites":
        """The sites of requests ``first .. last − 1``, prompts and sites re-indexed."""
        t = self.n_templates
        prompts = self.prompts[first * t:last * t]
        if not self.per_site:
            return Sites(prompts, self.positions[first * t:last * t], last - first, t)
        keep = [i for i, p in enumerate(self.prompt_of_site) if first * t <= p < last * t]
        return Sites(prompts, [self.positions[i] for i in keep], last - first, t,
                     [self.prompt_of_site[i] - first * t for i in keep])


@dataclass
class SiteStates:
    keys: torch.Tensor  # [n_sites, d_in]
    values: torch.Tensor  # [n_sites, d_out]
    streams: torch.Tensor  # [n_sites, d_model]  z = r + v


def read_states(adapter: EncoderAdapter, sites: Sites, layers: Sequence[int], batch_size: int = 64,
                on_batch: Callable[[int], None] | None = None) -> dict[int, SiteStates]:
    """Keys, values and post-MLP streams ``[n_sites, ·]`` at every site for ``layers`` (float64, CPU).

    ``on_batch(n)`` is called after each batch of ``n`` prompts (a progress bar's tick).
    """
    down = {layer: adapter.down_proj_module(layer) for layer in layers}
    resid = {layer: adapter.residual_module(layer) for layer in layers}
    out: dict[int, dict[str, list]] = {layer: {"k": [], "v": [], "z": []} for layer in layers}
    site_prompt, site_token = sites.site_prompts(), torch.tensor(sites.positions)
    with torch.no_grad():
        for begin in range(0, len(sites.prompts), batch_size):
            batch = adapter.tokenize(sites.prompts[begin:begin + batch_size])
            chosen = ((site_prompt >= begin) & (site_prompt < begin + batch_size)).nonzero().squeeze(1)
            # on the model's device, where they index the recorded states (three reads a layer)
            rows, pos = (site_prompt[chosen] - begin).to(adapter.device), site_token[chosen].to(adapter.device)
            with record_inputs(down) as keys, record_outputs(down) as values, \
                    record_inputs(resid, arg=adapter.residual[1]) as residuals, stop_after(down[max(layers)]):
                adapter.forward(batch)
            for layer in layers:  # gathered to the CPU in float64, where the solvers run
                v = values[layer][rows, pos].double().cpu()
                out[layer]["k"].append(keys[layer][rows, pos].double().cpu())
                out[layer]["v"].append(v)
                out[layer]["z"].append(residuals[layer][rows, pos].double().cpu() + adapter.value_in_stream(layer, v))
            if on_batch is not None:
                on_batch(len(batch))
    return {layer: SiteStates(*(torch.cat(out[layer][x]) for x in "kvz")) for layer in layers}


#: how ``token_key_gram`` forms each batch's ``Σ k kᵀ``: in float32 (the BLAS's fast kernel), summed
#: into a float64 total, or in float64 throughout. float32 products halve the cost of the
#: products, which were a third of an edit's key sums (docs/performance.md), and move ΔW by
#: about 1e-6 of its size on the mascot edit; the knowledge benchmark's scores hold (measured)
GRAM_PRODUCTS = "float32"


def token_key_gram(adapter: EncoderAdapter, prompts: Sequence[str], layer: int, batch_size: int = 64,
                   products: str | None = None) -> torch.Tensor:
    """``Σ k kᵀ [d_in, d_in]`` (float64, CPU) over the keys at every real token of every prompt.

    Real tokens are those the attention mask marks (special tokens included: a sentence
    vector pools them too). These are the keys an edit must leave unchanged for the prompts
    to keep their meaning (``preserve.py``); the sum is accumulated batch by batch, so
    memory does not grow with the number of prompts. The prompts are read in batches of
    similar token length (sorted, ties in order), so that a batch pads little; each batch's
    products are formed in ``products`` (default :data:`GRAM_PRODUCTS`) and added to a
    float64 sum.
    """
    return KeyGramReader(adapter, prompts, batch_size, products, keep=False).gram(layer)


class KeyGramReader:
    """``token_key_gram`` of fixed prompts, read again at later layers as an edit updates its
    layers one after another: the blocks below a layer whose weights have not changed since
    the last read return what they returned then (recorded, replayed) instead of running.

    ``gram(layer, unchanged)``: ``Σ k kᵀ`` at ``layer`` on the current weights, given that
    blocks ``0 .. unchanged − 1`` are as they were at the last read (the caller's promise:
    an edit that has since updated only layer ``l`` passes ``unchanged=l``). The same
    batches (same prompts, order and padding) run every time, so the sum equals a fresh
    ``token_key_gram`` bit for bit. Memory: the outputs of the blocks below the deepest
    layer read, at every token of every prompt.
    """

    def __init__(self, adapter: EncoderAdapter, prompts: Sequence[str], batch_size: int = 64,
                 products: str | None = None, keep: bool = True):
        self.products = products or GRAM_PRODUCTS
        if self.products not in ("float32", "float64"):
            raise ValueError(f"products must be 'float32' or 'float64', got '{self.products}'")
        self.adapter, self.keep = adapter, keep  # keep: record the blocks' outputs for later reads
        prompts = list(prompts)
        lengths = adapter.tokenize(prompts).attention_mask.sum(1) if prompts else torch.zeros(0)
        ordered = [prompts[i] for i in torch.argsort(lengths, stable=True).tolist()]
        self.batches = [adapter.tokenize(ordered[b:b + batch_size]) for b in range(0, len(ordered), batch_size)]
        self.recorded: list[list] = [[] for _ in self.batches]  # per batch, outputs of blocks 0, 1, …

    def gram(self, layer: int, unchanged: int = 0) -> torch.Tensor:
        adapter = self.adapter
        dtype = torch.float32 if self.products == "float32" else torch.float64
        down = adapter.down_proj_module(layer)
        d_in = down.weight.shape[1]
        # summed where the keys are, and brought to the CPU once: a batch's d_in × d_in product
        # would otherwise cross to the CPU batch by batch (2.9 GB each at d_in 18,944)
        gram = torch.zeros(d_in, d_in, dtype=torch.float64, device=down.weight.device)
        with torch.no_grad():
            for b, batch in enumerate(self.batches):
                kept = self.recorded[b][:min(unchanged, layer)]
                run = list(range(len(kept), layer)) if self.keep else []  # computed below the layer: recorded
                with replaying([adapter.block(i) for i in range(len(kept))], kept), \
                        record_outputs({i: adapter.block(i) for i in run}) as outputs, \
                        record_inputs({layer: down}) as keys, stop_after(down):
                    adapter.forward(batch)
                self.recorded[b] = kept + [outputs[i] for i in run]
                k = keys[layer][batch.attention_mask.bool().to(keys[layer].device)].to(dtype)  # [tokens, d_in]
                gram += k.T @ k  # a float32 product is widened to float64 as it is added (as .double() would)
        return gram.cpu()
