"""Causal tracing for text encoders: which states, at which layer and token, carry a subject.

ROME's causal trace (Meng et al. 2022), moved to text encoders as Diff-QuickFix (Basu et
al. 2023) did for CLIP. For one prompt with a subject span:

1. clean run: the sentence vector ``s_clean`` and every state ``h[site, l, t]``;
2. corrupted runs: Gaussian noise ``ε ~ N(0, (ν·σ_E)²)`` is added to the subject's token
   embeddings (``σ_E`` the standard deviation of the embedding matrix, ``ν`` = ``noise``),
   ``S`` samples;
3. restored runs: a corrupted run in which the clean state of one site at layer ``l``
   (and the ``window − 1`` layers after it, for ``mlp``/``attention``) and token ``t`` is
   put back.

With ``sim(x) = cos(s(x), s_clean)`` averaged over the noise samples,

    score[site][l, t] = (sim(restored) − sim(corrupted)) / (1 − sim(corrupted))

is the share of the damage that one state repairs: 1 where that state alone carries all
that the noise destroyed, 0 where it carries nothing of it. Sites:

    hidden      the block's output (the residual stream after layer l)
    mlp         the MLP down-projection's output (the value v that textedit edits)
    attention   the attention sublayer's output projection

Scores are ``[num_layers, num_tokens]`` tensors; the run is deterministic for a seed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .encoders.base import EncoderAdapter, find_span
from .errors import TexteditError, quote
from .hooks import add_to_output, record_outputs
from .io import atomic_write_bytes

SITES = ("hidden", "mlp", "attention")


@dataclass
class Trace:
    """The result of :func:`trace` for one prompt."""

    prompt: str
    subject: str
    tokens: list[str]  # real tokens, as the tokenizer spells them
    subject_positions: list[int]
    scores: dict[str, torch.Tensor]  # site → [num_layers, num_tokens]
    corrupted_similarity: float  # sim(corrupted): how much the noise left of the clean output
    noise: float
    samples: int
    window: int
    seed: int

    def best(self, k: int = 5) -> list[tuple[str, int, int, float]]:
        """The ``k`` highest-scoring ``(site, layer, token index, score)`` over all sites."""
        cells = [(site, layer, t, float(score[layer, t])) for site, score in self.scores.items()
                 for layer in range(score.shape[0]) for t in range(score.shape[1])]
        return sorted(cells, key=lambda c: -c[3])[:k]

    def at_last_subject_token(self, site: str = "mlp") -> torch.Tensor:
        """``[num_layers]`` scores of ``site`` at the subject's last token (where edits write)."""
        return self.scores[site][:, self.subject_positions[-1]]

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "subject": self.subject, "tokens": self.tokens,
                "subject_positions": self.subject_positions, "corrupted_similarity": self.corrupted_similarity,
                "noise": self.noise, "samples": self.samples, "window": self.window, "seed": self.seed,
                "scores": {site: [[round(float(x), 6) for x in row] for row in score]
                           for site, score in self.scores.items()},
                "best": [{"site": s, "layer": l, "token": t, "token_text": self.tokens[t], "score": round(v, 6)}
                         for s, l, t, v in self.best()]}


def site_module(adapter: EncoderAdapter, site: str, layer: int) -> nn.Module:
    """The module whose output is the state ``site`` of ``layer``."""
    if site == "hidden":
        return adapter.block(layer)
    if site == "mlp":
        return adapter.down_proj_module(layer)
    if site == "attention":
        return adapter.attention_out_module(layer)
    raise TexteditError(f"unknown site '{site}': use {', '.join(SITES)}")


def _main(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def trace(adapter: EncoderAdapter, prompt: str, subject: str | None = None, *, sites: Sequence[str] = SITES,
          samples: int = 10, noise: float = 3.0, window: int = 1, seed: int = 0) -> Trace:
    """Causal trace of ``prompt`` with ``subject``'s embeddings corrupted (module docstring)."""
    for site in sites:
        if site not in SITES:
            raise TexteditError(f"unknown site '{site}': use {', '.join(SITES)}")
    if samples < 1 or window < 1 or noise <= 0:
        raise TexteditError("samples and window must be ≥ 1 and noise > 0")
    subject = prompt if subject is None else subject
    start, end = find_span(prompt, subject)
    batch = adapter.tokenize([prompt])
    n_tokens = int(batch.attention_mask[0].sum())
    batch.input_ids, batch.attention_mask = batch.input_ids[:, :n_tokens], batch.attention_mask[:, :n_tokens]
    offsets = batch.offsets[0][:n_tokens]
    positions = [t for t, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
    if not positions:
        raise TexteditError(f"subject '{quote(subject)}' has no tokens in '{quote(prompt)}'")
    tokens = adapter.tokenizer.convert_ids_to_tokens(batch.input_ids[0].tolist())
    n_layers = adapter.num_layers
    modules = {(site, layer): site_module(adapter, site, layer) for site in sites for layer in range(n_layers)}

    with record_outputs(modules) as recorded:
        clean_vector = adapter.sentence_vector(batch, adapter.forward(batch)).float()
    clean = {key: _main(value).detach() for key, value in recorded.items()}  # each [1, T, d]

    embeddings = adapter.model.get_input_embeddings()
    generator = torch.Generator().manual_seed(seed)
    sigma = noise * embeddings.weight.float().std().item()
    eps = torch.randn(samples, len(positions), embeddings.embedding_dim, generator=generator) * sigma
    eps = eps.to(adapter.device)
    subject_index = torch.tensor(positions, device=adapter.device)  # indexes the hooks' outputs at every run

    def run(copies: int, restore=None) -> torch.Tensor:
        """``sim`` of ``copies`` noisy runs (``copies`` = k·samples, noise sample = row % samples)."""
        rows = copies
        repeated = type(batch)(batch.input_ids.repeat(rows, 1), batch.attention_mask.repeat(rows, 1),
                               batch.offsets * rows)
        noise_rows = eps.repeat(rows // samples, 1, 1)

        def corrupt(output: torch.Tensor) -> torch.Tensor:
            plus = torch.zeros_like(output)
            plus[:, subject_index] = noise_rows.to(output.dtype)
            return plus

        hooks = [add_to_output(embeddings, corrupt)] + (restore or [])
        with _all(hooks):
            vectors = adapter.sentence_vector(repeated, adapter.forward(repeated)).float()
        return F.cosine_similarity(vectors, clean_vector.expand_as(vectors), dim=-1)

    corrupted = run(samples).mean().item()
    if 1 - corrupted < 1e-6:
        raise TexteditError(f"noise {noise} leaves the output of '{quote(prompt)}' unchanged; raise --noise")

    scores: dict[str, torch.Tensor] = {}
    # row r restores token r // samples; on the model's device: the restoring hooks index every
    # module output with them, layer after layer
    token_of_row = torch.arange(n_tokens * samples, device=adapter.device) // samples
    rows = torch.arange(n_tokens * samples, device=adapter.device)
    for site in sites:
        score = torch.zeros(n_layers, n_tokens)
        for layer in range(n_layers):
            span = [layer] if site == "hidden" else range(layer, min(n_layers, layer + window))
            restore = []
            for l in span:
                target = clean[(site, l)][0]  # [T, d]

                def put_back(output: torch.Tensor, _target=target) -> torch.Tensor:
                    plus = torch.zeros_like(output)
                    plus[rows, token_of_row] = (_target[token_of_row] - output[rows, token_of_row]).to(output.dtype)
                    return plus

                restore.append(add_to_output(modules[(site, l)], put_back))
            sims = run(n_tokens * samples, restore).reshape(n_tokens, samples).mean(1)
            score[layer] = ((sims - corrupted) / (1 - corrupted)).cpu()
        scores[site] = score
    return Trace(prompt, subject, tokens, positions, scores, corrupted, noise, samples, window, seed)


class _all:
    """Enter several context managers as one (hooks for one run)."""

    def __init__(self, managers):
        self.managers = managers

    def __enter__(self):
        for manager in self.managers:
            manager.__enter__()

    def __exit__(self, *exc):
        for manager in reversed(self.managers):
            manager.__exit__(*exc)


COLORMAPS = {"hidden": "Purples", "mlp": "Greens", "attention": "Reds"}


def save_heatmap(result: Trace, path: str | Path, title: str | None = None) -> None:
    """One panel per site: tokens down, layers across, colour = score; subject tokens starred.

    Written to a temporary name and renamed (PNG).
    """
    import matplotlib  # deferred: matplotlib only draws the heatmap, and takes a second to import
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    sites = list(result.scores)
    n_layers, n_tokens = next(iter(result.scores.values())).shape
    labels = [f"{tok}*" if t in result.subject_positions else tok for t, tok in enumerate(result.tokens)]
    fig, axes = plt.subplots(1, len(sites), figsize=(1.2 + 3.2 * len(sites), 1.2 + 0.28 * n_tokens + 0.8),
                             squeeze=False, constrained_layout=True)
    for ax, site in zip(axes[0], sites):
        image = ax.imshow(result.scores[site].T.numpy(), cmap=COLORMAPS[site], aspect="auto", vmin=0,
                          vmax=max(1e-6, float(result.scores[site].max())))
        ax.set_yticks(range(n_tokens), labels, fontsize=8)
        ax.set_xticks(range(n_layers), [str(l) for l in range(n_layers)], fontsize=8)
        ax.set_xlabel("layer")
        window = "" if site == "hidden" or result.window == 1 else f", window {result.window}"
        ax.set_title(f"restoring {site}{window}", fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(title or f"causal trace of “{result.prompt}” (subject “{result.subject}”, noise {result.noise}σ, "
                          f"{result.samples} samples)", fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(buffer.getvalue(), path)
