"""Second-moment statistics of MLP keys: C = E[k kᵀ] over a prompt corpus.

The preservation term of every closed-form editor. For each requested layer ``l`` the key
``k`` (``d_in``) is the input of the MLP down-projection at one token; we accumulate

    S_l = Σ_tokens k kᵀ   (d_in × d_in, float64)      n_l = number of tokens

for all requested layers in ONE forward pass per batch, stopping after the deepest one,
and ``C_l = S_l / n_l``. Products are formed and summed in float64: float32 products carry
errors of ~1e-7·‖C‖, which turn the small eigenvalues of a well-posed but ill-conditioned C
negative (Cholesky then calls it singular).

Sums are cached on disk (safetensors, atomic writes) keyed by the model fingerprint, the
layer, the corpus hash, the token scope and the model dtype. A run that stops midway leaves
its partial sums with the number of prompts done, and the next run resumes from there;
because sums add, shards (or distributed ranks) merge with ``+``. The cache is a folder of
independent files, one per key, each written whole (a temporary sibling, fsynced, renamed:
``io.atomic_write_bytes``) with the checksum of its tensor: a cut run leaves some layers whole
and the others absent, never half a file, so the folder is not swapped as a whole as a patch
is (that would serialise unrelated runs sharing one cache and drop finished layers).

Token scopes:
    ``prompt``    real tokens only (BOS..EOS), what the prompt itself is made of;
    ``pipeline``  every position the consumer feeds (CLIP in Stable Diffusion: all 77,
                  padding included, since the denoiser cross-attends to all of them).
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from rich.progress import ProgressColumn
from rich.text import Text

from .corpus import Corpus, load_corpus
from .distributed import current_shard
from .encoders.base import EncoderAdapter
from .errors import CacheError, SpecError
from .hooks import record_inputs, stop_after
from .io import atomic_save_tensors, read_tensors
from .progress import progress_bar
from .solvers import cholesky, null_space_projector

SCOPES = ("prompt", "pipeline")
CACHE_FORMAT = "textedit-stats-1"
#: rows of Σ k kᵀ formed per matrix product in SecondMoment.add_keys (big enough for an efficient GEMM)
_BAND = 384
#: the precisions a batch's ``Σ k kᵀ`` may be formed in (docs/performance.md measures both)
PRODUCTS = {"float64": torch.float64, "float32": torch.float32}


def product_dtype(products: str) -> torch.dtype:
    """The dtype of product precision ``products``; a one-line error for an unknown one."""
    if products not in PRODUCTS:
        raise SpecError(f"unknown product precision '{products}': use one of {', '.join(PRODUCTS)}")
    return PRODUCTS[products]


@dataclass
class SecondMoment:
    """Running ``Σ k kᵀ`` (float64, ``[d, d]``) over ``count`` tokens."""

    sum: torch.Tensor
    count: int
    _factor: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _projectors: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def zeros(cls, dim: int, device: torch.device | str | None = None) -> "SecondMoment":
        return cls(torch.zeros(dim, dim, dtype=torch.float64, device=device), 0)

    def to(self, device: torch.device | str) -> "SecondMoment":
        """The same sums on ``device`` (a factor or projector is computed again there, on use)."""
        return self if self.sum.device == torch.device(device) else SecondMoment(self.sum.to(device), self.count)

    def __add__(self, other: "SecondMoment") -> "SecondMoment":
        return SecondMoment(self.sum + other.sum, self.count + other.count)

    @property
    def mean(self) -> torch.Tensor:
        """``C = E[k kᵀ]``, float64 ``[d, d]``."""
        if self.count == 0:
            raise SpecError("statistics hold no tokens")
        return self.sum / self.count

    def cholesky(self) -> torch.Tensor:
        """Lower Cholesky factor of ``C`` (float64), computed once and kept: edits that reuse
        these statistics then solve in O(d² n) instead of factorising a d × d matrix."""
        if self._factor is None:
            self._factor = cholesky(self.mean, "the key covariance C")
        return self._factor

    def null_space_projector(self, threshold: float) -> torch.Tensor:
        """AlphaEdit's projector for this C (see ``solvers.null_space_projector``), kept per threshold."""
        if threshold not in self._projectors:
            self._projectors[threshold] = null_space_projector(self.mean, threshold)
        return self._projectors[threshold]

    def add_keys(self, keys: torch.Tensor, products: str = "float64") -> None:
        """Accumulate rows of ``keys [n, d]`` (any float dtype).

        ``Σ k kᵀ`` is symmetric, so only the part on and right of the diagonal is formed, in
        bands of ``_BAND`` rows, and each band is mirrored below the diagonal: about 60% of
        the time of the full product. ``products``: the precision each batch's product is
        formed in, ``"float64"`` (exact for float32 keys) or ``"float32"`` (the BLAS's fast
        kernel, as the ROME/MEMIT reference does); the running sum is float64 either way.
        Each band is added where the sum lives; ``compute_stats`` keeps the sum on the keys'
        device, so nothing crosses between devices here (docs/performance.md, "GPU-ready").
        """
        keys = keys.to(product_dtype(products))
        total = self.sum
        for i in range(0, keys.shape[1], _BAND):
            j = i + _BAND
            band = (keys[:, i:j].T @ keys[:, i:]).to(total.device, torch.float64)  # rows i:j, columns i:
            total[i:j, i:] += band
            total[j:, i:j] += band[:, _BAND:].T
        self.count += keys.shape[0]
        self._factor = None  # the cached Cholesky factor and projectors of C no longer match
        self._projectors.clear()


def default_cache_dir() -> Path:
    """``$TEXTEDIT_CACHE``, else ``$XDG_CACHE_HOME/textedit``, else ``~/.cache/textedit``."""
    if os.environ.get("TEXTEDIT_CACHE"):
        return Path(os.environ["TEXTEDIT_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "textedit"


@dataclass(frozen=True)
class StatsKey:
    """Everything the sums depend on: the weights, the layer, the corpus, the token scope, the
    dtype, and how the consumer tokenizes and calls the encoder (``consumer_tag``): a T5 read
    SD3-style (padded to a fixed length, no mask) has other keys than the same T5 alone."""

    fingerprint: str
    layer: int
    corpus_hash: str
    scope: str
    dtype: str
    consumer: str
    products: str = "float64"

    def path(self, cache_dir: Path) -> Path:
        products = "" if self.products == "float64" else f"-{self.products}-products"
        return cache_dir / "stats" / self.fingerprint / \
            f"{self.corpus_hash}-{self.scope}-{self.dtype}-{self.consumer}{products}" / f"layer{self.layer}.safetensors"

    def metadata(self) -> dict[str, str]:
        return {"format": CACHE_FORMAT, "fingerprint": self.fingerprint, "layer": str(self.layer),
                "corpus_hash": self.corpus_hash, "scope": self.scope, "dtype": self.dtype, "consumer": self.consumer,
                "products": self.products}


def consumer_tag(consumer) -> str:
    """How a consumer reads the encoder, as a cache-key part: ``len77-pad-nomask``, and the
    hash of its prompt template where it has one (``len1058-nopad-mask-template3f2a9c1d``):
    keys read in Qwen-Image's chat template are not those of the bare prompts; ``-readpad1``
    where it pads to a fixed length but reads only the real tokens and that many padding
    tokens (PixArt-Σ 0, Chroma 1); ``-lower`` where it lower-cases the prompts; ``-nospecial``
    where the tokenizer adds no special tokens (the template writes them: FLUX.2)."""
    tag = (f"len{consumer.max_length}-{'pad' if consumer.pad_to_max_length else 'nopad'}-"
           f"{'mask' if consumer.passes_attention_mask else 'nomask'}")
    if consumer.pad_to_max_length and not consumer.reads_padding:  # padded, but the padding is not read
        tag += f"-readpad{consumer.padding_read}"
    if consumer.lowercase:
        tag += "-lower"
    if not consumer.add_special_tokens:
        tag += "-nospecial"
    if consumer.template != "{}":
        tag += f"-template{hashlib.sha256(consumer.template.encode()).hexdigest()[:8]}"
    return tag


def _read_cache(path: Path, key: StatsKey, dim: int) -> tuple[SecondMoment, int] | None:
    """``(partial sums, prompts done)`` from a cache file; ``None`` if there is none, or if it is
    unusable: then it is moved aside (``….corrupt``, kept for inspection) with a warning, so
    the recomputed sums replace it and a bad file cannot fail every later run."""
    if not path.exists():
        return None
    try:
        tensors, meta = read_tensors(path, CacheError, "statistics cache")  # checksum verified
    except CacheError as exc:
        return _set_aside(path, str(exc))
    total = tensors.get("sum")
    problems = [k for k, v in key.metadata().items() if meta.get(k) != v]
    if total is None or total.shape != (dim, dim) or total.dtype != torch.float64:
        problems.append("no float64 sum" if total is None else f"shape {tuple(total.shape)} {total.dtype}")
    elif not torch.isfinite(total).all():
        problems.append("non-finite values")
    try:
        count, done = int(meta["count"]), int(meta["prompts_done"])
    except (KeyError, ValueError):
        problems.append("count")
    if problems:
        return _set_aside(path, f"statistics cache '{path}' does not match its key ({', '.join(problems)})")
    return SecondMoment(total, count), done


def _set_aside(path: Path, problem: str) -> None:
    aside = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, aside)
        where = f"moved to '{aside}'"
    except OSError as exc:
        where = f"could not be moved aside ({exc.strerror or exc})"
    warnings.warn(f"{problem}; {where}; recomputing")
    return None


def _write_cache(path: Path, key: StatsKey, moment: SecondMoment, done: int, total: int) -> None:
    meta = key.metadata() | {"count": str(moment.count), "prompts_done": str(done), "prompts_total": str(total)}
    atomic_save_tensors({"sum": moment.sum}, path, meta)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def compute_stats(adapter: EncoderAdapter, layers: Sequence[int], corpus: Corpus | None = None, *,
                  scope: str = "prompt", batch_size: int = 64, cache_dir: str | Path | None = None,
                  use_cache: bool = True, checkpoint_seconds: float = 60.0, progress: bool = False,
                  fingerprint: str | None = None, products: str = "float64") -> dict[int, SecondMoment]:
    """Key second moments for ``layers`` over ``corpus`` (default: the shipped corpus).

    One forward pass per batch serves all layers and stops after the deepest. With
    ``use_cache`` finished sums are read from / written to ``cache_dir`` and unfinished ones
    are check-pointed every ``checkpoint_seconds`` so an interrupted run resumes.
    Inside a ``torch.distributed`` group (``torchrun``; see ``distributed.py``) each rank
    reads its contiguous shard of the corpus, the sums are all-reduced and rank 0 writes
    the cache; such a run starts over rather than resuming a partial cache.
    ``products``: the precision of each batch's ``Σ k kᵀ`` (``SecondMoment.add_keys``); part of
    the cache key. Returns ``{layer: SecondMoment}``.
    """
    product_dtype(products)  # refused before any work
    if scope not in SCOPES:
        raise SpecError(f"unknown token scope '{scope}': use one of {', '.join(SCOPES)}")
    layers = adapter.check_layers(layers)
    corpus = corpus or load_corpus()
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    fingerprint = fingerprint or (adapter.fingerprint() if use_cache else "uncached")
    dims = {layer: adapter.down_proj_module(layer).weight.shape[1] for layer in layers}
    keys = {layer: StatsKey(fingerprint, layer, corpus.hash, scope, _dtype_name(adapter.dtype),
                            consumer_tag(adapter.consumer), products) for layer in layers}

    shard = current_shard()
    result: dict[int, SecondMoment] = {}
    start_at: dict[int, int] = {}
    for layer in layers:
        cached = _read_cache(keys[layer].path(cache_dir), keys[layer], dims[layer]) if use_cache else None
        if shard is not None and cached and cached[1] < len(corpus):
            cached = None  # partial sums cover a prefix, not a rank's shard: every rank starts over
        if cached:
            result[layer], start_at[layer] = cached
        else:
            start_at[layer] = 0  # its sum is made below, on the model's device
    todo = [layer for layer in layers if start_at[layer] < len(corpus)]
    if not todo:
        return result
    # The sums of the layers still to do accumulate on the model's device, where the keys are:
    # added on the CPU, every batch would carry each layer's upper triangle across (d_in²/2
    # float64s: 1.4 GB a batch and layer for Qwen2.5-VL-7B's down-projection). They come back
    # to the CPU once, at the end, for the cache and the float64 solves. On an accelerator that
    # costs one d_in × d_in float64 per layer there (docs/scale.md, "Memory of real sizes").
    device = adapter.device
    try:
        for layer in todo:
            result[layer] = result[layer].to(device) if layer in result else SecondMoment.zeros(dims[layer], device)
    except torch.OutOfMemoryError:
        need = sum(8 * dims[layer] ** 2 for layer in todo) / 2 ** 30
        raise CacheError(f"the float64 sums of layers {', '.join(map(str, todo))} need {need:.1f} GiB on {device}, "
                         "which it does not have: compute fewer layers at a time (textedit stats --layers)") from None
    result = {layer: result[layer] for layer in layers}  # in the order asked

    modules = {layer: adapter.down_proj_module(layer) for layer in todo}
    first, end = shard.bounds(len(corpus)) if shard is not None else (min(start_at[layer] for layer in todo),
                                                                       len(corpus))
    pad = scope == "pipeline"
    last_save = time.monotonic()
    tokens_seen = 0
    shown = progress and (shard is None or shard.is_main)
    with progress_bar(_TokensPerSecond(), remaining=True, disable=not shown) as bar:
        task = bar.add_task("statistics", total=end - first)
        with torch.no_grad():
            for begin in range(first, end, batch_size):
                prompts = corpus.prompts[begin:min(begin + batch_size, end)]
                batch = adapter.tokenize(prompts, pad_to_consumer=pad)
                # padded positions count only where the consumer pads to a fixed length and reads them
                positions = adapter.consumer.read_positions(batch.attention_mask, padded=pad)
                prompt_index = torch.arange(begin, begin + len(prompts)).unsqueeze(1)
                with record_inputs(modules) as recorded, stop_after(modules[max(todo)]):
                    adapter.forward(batch)
                for layer in todo:
                    # a layer resumed from a later checkpoint skips prompts it already holds
                    mask = (positions.bool() & (prompt_index >= start_at[layer])).to(recorded[layer].device)
                    selected = recorded[layer][mask]
                    result[layer].add_keys(selected, products)
                tokens_seen += int(positions.sum())
                done = begin + len(prompts)
                bar.update(task, advance=len(prompts), tokens=tokens_seen)
                if use_cache and shard is None and time.monotonic() - last_save > checkpoint_seconds and \
                        done < len(corpus):
                    for layer in todo:
                        _write_cache(keys[layer].path(cache_dir), keys[layer], result[layer], done, len(corpus))
                    last_save = time.monotonic()
    for layer in todo:
        if shard is not None:
            shard.all_reduce_sum(result[layer].sum)
            result[layer].count = int(shard.all_reduce_sum(torch.tensor([result[layer].count]))[0])
        if not torch.isfinite(result[layer].sum.sum()):  # one reduction: any NaN/Inf makes the sum non-finite
            raise CacheError(f"statistics of layer {layer} hold NaN/Inf: the model produces non-finite activations")
        result[layer] = result[layer].to("cpu")  # where the cache is written and the solves run
        if use_cache and (shard is None or shard.is_main):
            _write_cache(keys[layer].path(cache_dir), keys[layer], result[layer], len(corpus), len(corpus))
    if shard is not None:
        shard.barrier()  # no rank goes on before rank 0 has written the cache
    return result


class _TokensPerSecond(ProgressColumn):
    """Throughput column: the task's ``tokens`` field over its elapsed time."""

    def render(self, task) -> Text:
        elapsed = task.elapsed or 0.0
        return Text(f"{task.fields.get('tokens', 0) / elapsed:,.0f} tok/s" if elapsed > 0 else "")
