"""Stage 1 of knowledge-aware customization: learn the anchor that holds a concept's look.

MoKus binds knowledge to an *anchor*: a token whose meaning is the concept's appearance,
learned from a few images. This module learns it by textual inversion (Gal et al. 2022,
as in diffusers' ``examples/textual_inversion``) and loads it into encoders:

* :func:`learn_anchor` adds a new token to every tokenizer and text encoder of a pipeline
  (SDXL: both CLIPs; SD3: both CLIPs and T5; FLUX.1: CLIP and T5; HiDream: both CLIPs, T5 and
  Llama; one row per encoder, all
  trained together), starts each row ``e ∈ R^d`` at the embedding of ``init`` (the mean over
  its tokens) and trains only those rows with the denoiser's own training loss. For a
  DDPM-trained denoiser (Stable Diffusion 1.x/2.x and SDXL's UNet, PixArt-Σ's DiT,
  :class:`EpsilonObjective`)

      L(e) = E_{x, ε ~ N(0, I), t} ‖ε_θ(√ᾱ_t·z(x) + √(1−ᾱ_t)·ε, t, c(prompt(e))) − ε‖²

  (``z(x)`` the VAE latent of image ``x``, ``c`` what the denoiser reads: the text
  encoder's last hidden state ``[1, 77, d]``, for SDXL the conditioning of
  :func:`encode_captions`; ``prompt`` a caption template holding the token; the target is
  the velocity for ``v_prediction`` schedulers); for a flow-matching transformer (SD3,
  FLUX.1, Chroma, Qwen-Image, Lumina 2, Z-Image, FLUX.2 Klein and [dev], Sana, HiDream,
  :class:`FlowObjective`) the
  rectified-flow loss ``‖v_θ((1−σ)x₀ + σε, σ, c) − (ε − x₀)‖²``, with what differs per
  family in :data:`FLOW_MATCHING`. AdamW; every other embedding row is put back after each
  step, as in the diffusers example (weight decay and Adam moments would otherwise move them).
* The result is ``learned_embeds.safetensors`` = ``{token: [1, d]}``, the format of
  diffusers' ``pipe.load_textual_inversion(path)``; with several encoders one entry per
  encoder, keyed as in :data:`EMBEDDING_LAYOUTS` (SDXL: ``{"clip_l": [1, d_1], "clip_g":
  [1, d_2]}``, each loaded with ``load_textual_inversion(file["clip_g"], token=...,
  text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)``); checkpoints go to
  ``checkpoints/learned_embeds-step-N.safetensors``; the folder is written whole or not at all
  (into a sibling, renamed into place when the run ends).
* :func:`add_anchor` loads such a file into an encoder adapter (a bare encoder or a
  pipeline's text encoder) exactly as ``load_textual_inversion`` does (grow the embedding
  matrix by one row, add the token, set the row), so the encoder's fingerprint equals that
  of a pipeline that loaded the same file, and a patch made on one applies to the other.
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.progress import TextColumn

from .anchor_lora import (LORA_FILE, add_denoiser_lora, denoiser_component, lora_settings, require_peft,
                          save_denoiser_lora)
from .encoders import COMPONENT_TOKENIZERS
from .encoders.base import EncoderAdapter, adapter_for
from .errors import ModelLoadError, SpecError, TexteditError, quote
from .io import (atomic_save_tensors, atomic_write_text, check_destination, folder_written_whole, read_image_folder,
                 read_tensors)
from .pipelines.families import FAMILIES, Conditioning, detect_family, family_of
from .pipelines.loading import load_pipeline, pipeline_text_encoders
from .progress import progress_bar

EMBEDDING_FILE = "learned_embeds.safetensors"
#: keys of a several-encoder embedding file by pipeline component, per pipeline class: SDXL's
#: {"clip_l", "clip_g"} (the layout SDXL embeddings are shared in), SD3 adding T5 as "t5xxl",
#: FLUX.1 {"clip_l", "t5xxl"}, HiDream SD3's and Llama 3.1 as "llama" (the encoder names of
#: ComfyUI and kohya's trainers)
EMBEDDING_LAYOUTS = {
    "StableDiffusionXLPipeline": {"text_encoder": "clip_l", "text_encoder_2": "clip_g"},
    "StableDiffusion3Pipeline": {"text_encoder": "clip_l", "text_encoder_2": "clip_g", "text_encoder_3": "t5xxl"},
    "FluxPipeline": {"text_encoder": "clip_l", "text_encoder_2": "t5xxl"},
    "HiDreamImagePipeline": {"text_encoder": "clip_l", "text_encoder_2": "clip_g", "text_encoder_3": "t5xxl",
                             "text_encoder_4": "llama"},
}
#: draws in the fixed evaluation batch of :func:`fixed_loss`
FIXED_DRAWS = 32

#: caption templates for the images (diffusers' textual-inversion "object" templates, abridged)
OBJECT_TEMPLATES = (
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a rendition of the {}",
    "a photo of the nice {}",
    "a photo of a small {}",
)


class AnchorError(TexteditError):
    """Bad input for learning or loading an anchor (images, token, embedding file)."""


# -- loading a learned anchor ------------------------------------------------------------


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_embedding(path: str | Path, token: str | None = None, component: str | None = None
                   ) -> tuple[str | None, torch.Tensor]:
    """``(token in the file or None, embedding [d])`` from a textual-inversion safetensors file.

    Reads ``{token: [1, d] or [d]}`` (diffusers, one vector) and the several-encoder files of
    :data:`EMBEDDING_LAYOUTS` (the key chosen by ``component``, default ``text_encoder``).
    """
    path = Path(path)
    if not path.is_file():
        raise AnchorError(f"anchor embedding '{path}' does not exist")
    tensors, _ = read_tensors(path, AnchorError, "anchor embedding")
    layout = _layout_of(set(tensors))
    if layout is not None:
        key = layout.get(component or "text_encoder")
        if key not in tensors:
            raise AnchorError(f"anchor embedding '{path}' has no '{key}' entry for component {component}")
        found, embedding = None, tensors[key]
    elif len(tensors) == 1:
        found, embedding = next(iter(tensors.items()))
    else:
        raise AnchorError(f"anchor embedding '{path}' holds {len(tensors)} tensors; expected one {{token: embedding}}")
    if embedding.dim() == 2 and embedding.shape[0] == 1:
        embedding = embedding[0]
    if embedding.dim() != 1:
        raise AnchorError(f"anchor embedding '{path}' has shape {tuple(embedding.shape)}: only one-vector anchors "
                          "are supported")
    if not torch.isfinite(embedding).all():
        raise AnchorError(f"anchor embedding '{path}' holds NaN or Inf")
    if found is not None and token is not None and found != token:
        raise AnchorError(f"anchor embedding '{path}' is for token '{found}', not '{token}'")
    return found, embedding


def _layout_of(keys: set[str]) -> dict[str, str] | None:
    """The smallest layout of :data:`EMBEDDING_LAYOUTS` holding every key of a file (an SD3 file
    without T5 reads as SDXL's, which maps the CLIPs alike), or ``None``."""
    layouts = [layout for layout in EMBEDDING_LAYOUTS.values() if keys and keys <= set(layout.values())]
    return min(layouts, key=len, default=None)


def in_vocabulary(tokenizer, token: str) -> bool:
    """Whether ``token`` is already a vocabulary entry or a word the tokenizer reads as one
    existing token ("dog" → ``dog</w>`` in CLIP): adding it would change every prompt with it."""
    if token in tokenizer.get_vocab():
        return True
    ids = tokenizer(token, add_special_tokens=False).input_ids
    return len(ids) == 1 and ids[0] != tokenizer.unk_token_id


def grow_vocabulary(model: torch.nn.Module, tokenizer, token: str) -> None:
    """Add ``token`` to ``tokenizer`` and one embedding row to ``model``, as diffusers'
    ``load_textual_inversion`` does. A language model with its own output head (Qwen-Image's
    Qwen2.5-VL) gets an output row too; it is set to zero, not left at a random draw, so the
    same anchor gives the same weights, and fingerprint, wherever it is added."""
    model.resize_token_embeddings(len(tokenizer) + 1, mean_resizing=False)
    tokenizer.add_tokens(token)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and head.weight is not model.get_input_embeddings().weight:
        with torch.no_grad():
            head.weight[tokenizer.convert_tokens_to_ids(token)] = 0.0


def add_anchor(adapter: EncoderAdapter, path: str | Path, token: str | None = None,
               component: str | None = None) -> dict:
    """Add ``token`` with the embedding in ``path`` to the adapter's tokenizer and encoder.

    Does what diffusers' ``load_textual_inversion`` does, in its order, so that both give
    the same weights. Returns the record a patch keeps: ``{"token", "file", "sha256"}``.
    """
    found, embedding = read_embedding(path, token, component)
    token = token or found
    if not token:
        raise AnchorError(f"anchor embedding '{path}' names no token: give the anchor token")
    tokenizer, model = adapter.tokenizer, adapter.model
    if in_vocabulary(tokenizer, token):
        raise AnchorError(f"token '{token}' is already in the vocabulary of {adapter.name}")
    table = model.get_input_embeddings().weight
    if embedding.shape[0] != table.shape[1]:
        raise AnchorError(f"anchor embedding '{path}' has dimension {embedding.shape[0]} but {adapter.name}'s "
                          f"token embeddings have {table.shape[1]}")
    grow_vocabulary(model, tokenizer, token)
    with torch.no_grad():
        table = model.get_input_embeddings().weight
        table[tokenizer.convert_tokens_to_ids(token)] = embedding.to(table.device, table.dtype)
    return {"token": token, "file": Path(path).name, "sha256": file_sha256(path)}


def add_required_anchors(patch, target, files: Sequence[str | Path]) -> None:
    """Add to ``target``'s text encoders the anchor tokens ``patch`` was made with
    (``patch.requires``: token, file name and sha256 per component), from ``files``, matched by
    their sha256, so that the patch's fingerprints match (``verify --anchor-embedding``,
    ``export --to model --anchor-embedding``). ``target``: a diffusers pipeline, or encoders by
    component (``{component: EncoderAdapter}``).
    A several-encoder file (:data:`EMBEDDING_LAYOUTS`: SDXL, SD3, FLUX.1) also gives the token
    to the target's other encoders it holds a row for, as ``learn-anchor`` trained them: a
    prompt naming the anchor then reads the learned row in every encoder, not a string of
    sub-words in the unpatched ones. One-line :class:`AnchorError` for a missing or unused file."""
    encoders = _encoders_with_tokenizers(target)
    by_hash = {}
    for file in files:
        if not Path(file).is_file():
            raise AnchorError(f"anchor embedding '{file}' does not exist")
        by_hash[file_sha256(file)] = Path(file)
    used = set()
    for component, needs in patch.requires.items():
        file = by_hash.get(needs["sha256"])
        if file is None:
            raise AnchorError(f"patch {patch.id} was made with the anchor embedding '{needs['file']}' (token "
                              f"{needs['token']}, sha256 {needs['sha256'][:12]}…) in {component}: pass that file "
                              "with --anchor-embedding")
        if component not in encoders:
            raise AnchorError(f"the pipeline has no component '{component}' for the anchor {needs['token']}")
        add_anchor(adapter_for(*encoders[component]), file, needs["token"], component)
        used.add(file)
        for other in _other_encoders_in_file(file, encoders, exclude=patch.requires):
            add_anchor(adapter_for(*encoders[other]), file, needs["token"], other)
    unused = [str(f) for f in by_hash.values() if f not in used]
    if unused:
        raise AnchorError(f"patch {patch.id} needs no anchor embedding {', '.join(unused)}")


def _encoders_with_tokenizers(target) -> dict[str, tuple]:
    """``{component: (text encoder, tokenizer)}`` of a pipeline's or a mapping's encoders that
    have both (``add_anchor`` grows the two together)."""
    if isinstance(target, Mapping):
        pairs = {component: (adapter.model, adapter.tokenizer) for component, adapter in target.items()}
    else:
        pairs = {component: (getattr(target, component, None), getattr(target, tokenizer, None))
                 for component, tokenizer in COMPONENT_TOKENIZERS.items()}
    return {component: pair for component, pair in pairs.items() if pair[0] is not None and pair[1] is not None}


def _other_encoders_in_file(file: Path, encoders: Mapping[str, tuple], exclude) -> list[str]:
    """The components of ``encoders`` (not in ``exclude``) a several-encoder embedding file
    holds a row for; none for a one-vector file."""
    tensors, _ = read_tensors(file, AnchorError, "anchor embedding")
    layout = _layout_of(set(tensors)) or {}
    return [component for component, key in layout.items()
            if component not in exclude and key in tensors and component in encoders]


# -- learning one ------------------------------------------------------------------------


@dataclass
class AnchorConfig:
    """Textual-inversion settings (defaults: diffusers' example, for a few images)."""

    steps: int = 500
    lr: float = 5e-3
    batch_size: int = 1
    weight_decay: float = 1e-2
    resolution: int | None = None  # default: the pipeline's native size
    checkpoint_every: int = 100
    seed: int = 0
    templates: Sequence[str] = OBJECT_TEMPLATES
    #: a LoRA on the denoiser trained with the row (MoKus' stage 1; ``textedit.anchor_lora``):
    #: rank r (0: none), α (None: = r, scale 1), target module names (None: the denoiser's
    #: default, ``LORA_TARGETS``), learning rate (diffusers' LoRA scripts' 1e-4)
    lora_rank: int = 0
    lora_alpha: float | None = None
    lora_targets: Sequence[str] | None = None
    lora_lr: float = 1e-4

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise SpecError(f"{name.replace('_', '-')} must be at least 1")
        if not self.lr > 0:
            raise SpecError("the learning rate must be positive")
        if self.lora_rank < 0:
            raise SpecError("lora-rank must be 0 (no LoRA) or positive")
        if not self.lora_lr > 0 or (self.lora_alpha is not None and not self.lora_alpha > 0):
            raise SpecError("lora-lr and lora-alpha must be positive")
        if self.lora_targets is not None and not all(isinstance(t, str) and t.strip() for t in self.lora_targets):
            raise SpecError("lora-targets must be module names such as to_q,to_k,to_v,to_out.0")
        if self.resolution is not None and (self.resolution < 8 or self.resolution % 8):
            raise SpecError("the resolution must be a positive multiple of 8")


@dataclass
class AnchorResult:
    token: str
    embedding_file: Path
    losses: list[float] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    #: the loss on one fixed held-aside draw of (image, caption, t, ε), before and after
    #: training: free of the step-to-step sampling noise that dominates ``losses``
    fixed_loss_before: float = math.nan
    fixed_loss_after: float = math.nan
    #: the denoiser LoRA (``pytorch_lora_weights.safetensors``), when ``lora_rank`` > 0
    lora_file: Path | None = None


def to_pixels(images: Sequence, resolution: int) -> torch.Tensor:
    """``[n, 3, r, r]`` in [-1, 1]: each image resized (shorter side) and centre-cropped."""
    out = []
    for image in images:
        scale = resolution / min(image.size)
        size = (max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
        left, top = (image.width - resolution) // 2, (image.height - resolution) // 2
        image = image.crop((left, top, left + resolution, top + resolution))
        array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0)
        out.append(array.permute(2, 0, 1))
    return torch.stack(out)


#: what textual inversion needs of every pipeline: its tokenizer and encoder, a VAE, a scheduler
TRAINED_THROUGH = ("tokenizer", "text_encoder", "vae", "scheduler")


def load_trainable_pipeline(pipeline_path: str | Path, device: str = "cpu"):
    """A pipeline textual inversion can train through (Stable Diffusion 1.x/2.x, SDXL: a UNet;
    the families of :data:`FLOW_MATCHING` and :data:`EPSILON_TRANSFORMERS`: a transformer) in
    float32 on every device: the anchor's row trains in float32, as in diffusers' example. The
    family is read from ``model_index.json``."""
    pipe = load_pipeline(pipeline_path, detect_family(pipeline_path), device=device, dtype=torch.float32)
    denoiser_known = (getattr(pipe, "unet", None) is not None or type(pipe).__name__ in FLOW_MATCHING
                      or type(pipe).__name__ in EPSILON_TRANSFORMERS)
    missing = [part for part in TRAINED_THROUGH if getattr(pipe, part, None) is None]
    if missing or not denoiser_known:
        what = f"has no {missing[0]}" if missing else f"is a {type(pipe).__name__}"
        raise ModelLoadError(f"pipeline '{pipeline_path}' {what}: learn-anchor trains through Stable Diffusion "
                             f"1.x/2.x, SDXL and {', '.join(TRANSFORMER_TITLES)} pipelines")
    return pipe


def text_encoders(pipe) -> list[tuple[str | None, object, torch.nn.Module]]:
    """``(file key, tokenizer, text encoder)`` of every encoder the denoiser reads.

    One encoder: saved under the token itself; several: under their keys in
    :data:`EMBEDDING_LAYOUTS` (SDXL ``clip_l`` and ``clip_g``; SD3 those and ``t5xxl``; FLUX.1
    ``clip_l`` and ``t5xxl``; HiDream SD3's and ``llama``).
    """
    encoders = pipeline_text_encoders(pipe, family_of(pipe))
    if len(encoders) == 1:
        return [(None, tokenizer, encoder) for _, tokenizer, encoder in encoders]
    layout = EMBEDDING_LAYOUTS[type(pipe).__name__]
    return [(layout[component], tokenizer, encoder) for component, tokenizer, encoder in encoders]


def learn_anchor(pipeline_path: str | Path, images_dir: str | Path, token: str, init: str, out_dir: str | Path,
                 config: AnchorConfig | None = None, *, device: str = "cpu", progress: bool = False) -> AnchorResult:
    """Learn ``token``'s embedding from the images in ``images_dir``; write it to ``out_dir``.

    Every input is checked (images decoded, token new, ``init`` tokenizable) before the
    first file is written. Same pipeline, images, config and seed → the same embedding.
    With SDXL the token gets a row in both encoders and both rows learn together.
    """
    config = config or AnchorConfig()
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise AnchorError(f"anchor token '{quote(token)}' must be one word without spaces, such as '<acme-mascot>'")
    if config.lora_rank:
        require_peft("--lora-rank")
    files, images = read_image_folder(images_dir, AnchorError, "image folder")
    check_destination(out_dir, "an anchor", _is_anchor_folder, AnchorError)  # refused before the pipeline loads
    pipe = load_trainable_pipeline(pipeline_path, device)
    encoders = text_encoders(pipe)
    init_ids = []
    for _, tokenizer, _ in encoders:
        if in_vocabulary(tokenizer, token):
            raise AnchorError(f"token '{quote(token)}' is already in the vocabulary of '{pipeline_path}': choose another")
        init_ids.append(tokenizer(init, add_special_tokens=False).input_ids)
        if not init.strip() or not init_ids[-1]:
            raise AnchorError(f"initializer '{quote(init)}' has no tokens")
    resolution = config.resolution or native_resolution(pipe)
    pixels = to_pixels(images, resolution).to(device)

    torch.manual_seed(config.seed)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)

    # The new token in every encoder, initialised at the mean embedding of the
    # initializer's tokens; the same growth and order as load_textual_inversion.
    rows = []  # (file key, embedding table, token id, original table, rows to put back)
    for (key, tokenizer, encoder), ids in zip(encoders, init_ids):
        grow_vocabulary(encoder, tokenizer, token)
        token_id = tokenizer.convert_tokens_to_ids(token)
        table = encoder.get_input_embeddings().weight
        with torch.no_grad():
            table[token_id] = table[ids].mean(0)
        keep = torch.ones(table.shape[0], dtype=torch.bool, device=table.device)
        keep[token_id] = False
        rows.append((key, table, token_id, table.detach().clone(), keep))

    denoiser = getattr(pipe, denoiser_component(pipe))
    for module in (denoiser, pipe.vae, *(encoder for _, _, encoder in encoders)):
        module.requires_grad_(False)
    denoiser.eval()
    pipe.vae.eval()
    for _, table, *_ in rows:
        table.requires_grad_(True)
    optimizer = torch.optim.AdamW([table for _, table, *_ in rows], lr=config.lr, weight_decay=config.weight_decay)
    lora = None
    if config.lora_rank:  # the denoiser's LoRA trains with the rows, at its own learning rate
        lora = lora_settings(denoiser, config.lora_rank, config.lora_alpha, config.lora_targets, config.lora_lr)
        optimizer.add_param_group({"params": add_denoiser_lora(pipe, lora), "lr": lora.lr})

    objective = objective_for(pipe, pixels, resolution)  # encodes the images' latent distributions once
    out_dir = Path(out_dir)
    with folder_written_whole(out_dir, "an anchor", _is_anchor_folder, AnchorError) as staging:
        # everything, checkpoints too, goes to a folder beside out_dir, renamed into place at the end
        result = AnchorResult(token, out_dir / EMBEDDING_FILE, lora_file=out_dir / LORA_FILE if lora else None)
        result.fixed_loss_before = fixed_loss(objective, token, config)

        def embedding() -> dict[str, torch.Tensor]:
            return {key or token: table[token_id].detach().float().cpu().unsqueeze(0)
                    for key, table, token_id, _, _ in rows}

        bar = progress_bar(TextColumn("loss {task.fields[loss]:.4f}"), remaining=True, disable=not progress)
        task = bar.add_task("textual inversion", total=config.steps, loss=math.nan)
        with bar:
            for step in range(1, config.steps + 1):
                images_in_batch = torch.randint(len(files), (config.batch_size,), generator=generator)
                captions = [config.templates[i].format(token) for i in
                            torch.randint(len(config.templates), (config.batch_size,), generator=generator)]
                loss = objective.loss(images_in_batch, captions, generator)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                with torch.no_grad():  # only the anchor's rows learn
                    for _, table, _, original, keep in rows:
                        table[keep] = original[keep]
                value = loss.item()
                if not math.isfinite(value):
                    raise TexteditError(f"the loss became {value} at step {step}: lower --lr")
                result.losses.append(value)
                bar.update(task, advance=1, loss=value)
                if step % config.checkpoint_every == 0 and step < config.steps:
                    path = Path("checkpoints") / f"learned_embeds-step-{step}.safetensors"
                    atomic_save_tensors(embedding(), staging / path)
                    result.checkpoints.append(out_dir / path)
                    if lora:  # a folder per step, as pipe.load_lora_weights(folder) reads it
                        path = Path("checkpoints") / f"lora-step-{step}" / LORA_FILE
                        save_denoiser_lora(pipe, staging / path)
                        result.checkpoints.append(out_dir / path)
        result.fixed_loss_after = fixed_loss(objective, token, config)
        atomic_save_tensors(embedding(), staging / EMBEDDING_FILE)
        settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()
                    if not k.startswith("lora_")}  # the LoRA's, resolved, are under "lora"
        record = {"token": token, "init": init, "pipeline": str(pipeline_path), "resolution": resolution,
                  "images": [{"file": p.name, "sha256": file_sha256(p)} for p in files], "config": settings,
                  "fixed_loss_before": result.fixed_loss_before, "fixed_loss_after": result.fixed_loss_after,
                  "embedding_sha256": file_sha256(staging / EMBEDDING_FILE)}
        if lora:
            save_denoiser_lora(pipe, staging / LORA_FILE)
            record["lora"] = {"file": LORA_FILE, "denoiser": type(denoiser).__name__, **lora.record(),
                              "sha256": file_sha256(staging / LORA_FILE)}
        atomic_write_text(json.dumps(record, indent=2) + "\n", staging / "anchor.json")
    return result


def _is_anchor_folder(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier :func:`learn_anchor` result (which may be replaced)."""
    return (folder / "anchor.json").is_file() or (folder / EMBEDDING_FILE).is_file()


def encode_captions(pipe, captions: list[str], resolution: int) -> tuple[torch.Tensor, dict | None]:
    """What the denoiser is conditioned on: ``(states [b, 77, d], added_cond_kwargs)``.

    Each encoder is read as its family's :class:`~textedit.pipelines.Reading` says (SD: the
    last hidden state; SDXL: the penultimate states, and the pooled projection of encoder
    2), the per-token states concatenated along the features. A pooled vector makes the
    SDXL UNet's extra conditioning, as its pipeline builds it: ``text_embeds`` and
    ``time_ids`` = (size, crop top-left, target size) of a centred crop.
    """
    device = pipe.unet.device
    family = family_of(pipe)
    states, pooled = [], None
    for component, tokenizer, encoder in pipeline_text_encoders(pipe, family):
        ids = tokenizer(captions, padding="max_length", truncation=True, max_length=tokenizer.model_max_length,
                        return_tensors="pt").input_ids.to(device)
        per_token, pooled_here = family.reading(component).encode(encoder, ids)
        states.append(per_token)
        pooled = pooled_here if pooled_here is not None else pooled
    if pooled is None:
        return torch.cat(states, dim=-1), None
    time_ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]] * len(captions),
                            dtype=states[0].dtype, device=device)
    return torch.cat(states, dim=-1), {"text_embeds": pooled, "time_ids": time_ids}


def native_resolution(pipe) -> int:
    """The image size a pipeline draws by default: its ``default_sample_size``, else its
    denoiser's ``sample_size``, × the VAE's scale; else 1024 (Z-Image's pipeline default)."""
    denoiser = getattr(pipe, denoiser_component(pipe))
    size = getattr(pipe, "default_sample_size", None) or denoiser.config.get("sample_size")
    return size * pipe.vae_scale_factor if size else 1024


def _read(pipe, captions: list[str]) -> dict[str, Conditioning]:
    """What each of ``pipe``'s text encoders hands the transformer for ``captions``, read as
    the pipeline reads it (:meth:`Reading.read`), the gradient to the embedding rows kept."""
    family = family_of(pipe)
    return {component: family.reading(component).read(encoder, tokenizer, captions)
            for component, tokenizer, encoder in pipeline_text_encoders(pipe, family)}


class DenoisingObjective(abc.ABC):
    """What textual inversion minimises for one kind of denoiser, on a fixed set of images.

    The images are encoded once (their latent distributions); :meth:`loss` draws latents,
    noise and noise levels for a batch from ``generator`` and conditions on the captions as
    the pipeline does, keeping the gradient to the encoders' embedding rows.
    """

    def __init__(self, pipe, pixels: torch.Tensor, resolution: int):
        self.pipe, self.resolution = pipe, resolution

    @property
    def n_images(self) -> int:
        return self.mean.shape[0]

    @abc.abstractmethod
    def loss(self, rows: torch.Tensor, captions: list[str], generator: torch.Generator) -> torch.Tensor:
        """The mean loss over images ``rows`` with ``captions``, one draw each."""


def _unet_noise(pipe, noisy, timesteps, captions, resolution):
    """Stable Diffusion 1.x/2.x and SDXL: the UNet on the conditioning of :func:`encode_captions`."""
    states, added = encode_captions(pipe, captions, resolution)
    return pipe.unet(noisy, timesteps, states, added_cond_kwargs=added).sample


def _pixart_noise(pipe, noisy, timesteps, captions, resolution):
    """PixArt-Σ: a DiT on T5's states of the prompt's tokens, masked, without micro-conditions
    (as its pipeline calls it); of a learned-σ output ``[b, 2C, h, w]`` the noise half."""
    read = _read(pipe, captions)["text_encoder"]
    out = pipe.transformer(noisy, encoder_hidden_states=read.states, encoder_attention_mask=read.mask.to(noisy.device),
                           timestep=timesteps, added_cond_kwargs={"resolution": None, "aspect_ratio": None},
                           return_dict=False)[0]
    return out.chunk(2, dim=1)[0] if out.shape[1] == 2 * noisy.shape[1] else out


class EpsilonObjective(DenoisingObjective):
    """A DDPM-trained denoiser's noise (or velocity) prediction (see the module docstring):
    Stable Diffusion 1.x/2.x and SDXL's UNet, PixArt-Σ's transformer; ``predict(pipe, x_t, t,
    captions, resolution)`` is the denoiser's output conditioned as its pipeline conditions."""

    def __init__(self, pipe, pixels: torch.Tensor, resolution: int, predict: Callable[..., torch.Tensor] = _unet_noise):
        from diffusers import DDPMScheduler  # deferred: diffusers takes seconds to import; add_anchor needs none

        super().__init__(pipe, pixels, resolution)
        self.predict = predict
        self.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        with torch.no_grad():
            dist = pipe.vae.encode(pixels).latent_dist
        self.mean, self.std, self.scaling = dist.mean, dist.std, pipe.vae.config.scaling_factor

    def loss(self, rows: torch.Tensor, captions: list[str], generator: torch.Generator) -> torch.Tensor:
        pipe, scheduler, device = self.pipe, self.scheduler, self.mean.device
        mean, std = self.mean[rows], self.std[rows]
        latents = (mean + std * torch.randn(mean.shape, generator=generator).to(device)) * self.scaling
        noise = torch.randn(latents.shape, generator=generator).to(device)
        timesteps = torch.randint(scheduler.config.num_train_timesteps, (len(rows),), generator=generator).to(device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        prediction = self.predict(pipe, noisy, timesteps, captions, self.resolution)
        kind = scheduler.config.prediction_type
        if kind == "epsilon":
            target = noise
        elif kind == "v_prediction":
            target = scheduler.get_velocity(latents, noise, timesteps)
        else:
            raise TexteditError(f"scheduler prediction type '{kind}' is not supported")
        return F.mse_loss(prediction.float(), target.float())


# -- flow matching -----------------------------------------------------------------------


def _guidance(pipe, b: int) -> torch.Tensor | None:
    """The guidance a guidance-distilled transformer embeds (FLUX.1 [dev]): the family's default
    scale, as diffusers' trainers pass ``--guidance_scale``; ``None`` for one that embeds none."""
    if not pipe.transformer.config.get("guidance_embeds", False):
        return None
    return torch.full((b,), family_of(pipe).guidance_scale, device=pipe.transformer.device)


def _flux_pack(pipe, x):
    """FLUX.1, Chroma and Qwen-Image: ``x`` ``[b, C, h, w]`` packed into 2×2 patches ``[b, (h/2)(w/2), 4C]``."""
    b, c, h, w = x.shape
    return pipe._pack_latents(x, b, c, h, w)


def _flux2_pack(pipe, x):
    """FLUX.2: ``x`` (already patchified 2×2 into channels) flattened to tokens ``[b, h·w, C]``."""
    return pipe._pack_latents(x)


def _flux_packed(pipe, x: torch.Tensor) -> dict:
    """FLUX.1 and Chroma's image tokens: ``x`` ``[b, C, h, w]`` packed into 2×2 patches
    ``[b, (h/2)(w/2), 4C]`` and their position ids ``[(h/2)(w/2), 3]``, by the pipeline's own methods."""
    b, _, h, w = x.shape
    return {"hidden_states": _flux_pack(pipe, x),
            "img_ids": pipe._prepare_latent_image_ids(b, h // 2, w // 2, x.device, x.dtype)}


def _sd3_velocity(pipe, x, timestep, captions):
    """SD3: the CLIP-L and CLIP-G penultimate states side by side, zero-padded to T5's width,
    then T5's states after them (zeros, 256 × ``joint_attention_dim``, if the T5 was dropped);
    the pooled vectors of both CLIPs concatenated. ``x`` goes in as it is (the transformer patchifies)."""
    read = _read(pipe, captions)
    clip = torch.cat([read["text_encoder"].states, read["text_encoder_2"].states], dim=-1)
    if "text_encoder_3" in read:
        t5 = read["text_encoder_3"].states
    else:
        length = family_of(pipe).reading("text_encoder_3").max_length
        t5 = clip.new_zeros(len(captions), length, pipe.transformer.config.joint_attention_dim)
    clip = F.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
    pooled = torch.cat([read["text_encoder"].pooled, read["text_encoder_2"].pooled], dim=-1)
    return pipe.transformer(hidden_states=x, timestep=timestep, encoder_hidden_states=torch.cat([clip, t5], dim=1),
                            pooled_projections=pooled, return_dict=False)[0]


def _flux_velocity(pipe, x, timestep, captions):
    """FLUX.1: CLIP's pooled vector and T5's per-token states, text ids zero."""
    read = _read(pipe, captions)
    states = read["text_encoder_2"].states
    return pipe.transformer(**_flux_packed(pipe, x), timestep=timestep, guidance=_guidance(pipe, len(captions)),
                            pooled_projections=read["text_encoder"].pooled, encoder_hidden_states=states,
                            txt_ids=states.new_zeros(states.shape[1], 3), return_dict=False)[0]


def _chroma_velocity(pipe, x, timestep, captions):
    """Chroma: T5's states of the read tokens (the prompt and one padding token), masked; the
    image tokens always read, as the pipeline's ``_prepare_attention_mask`` extends the mask.
    The mask is boolean, as Chroma was trained: diffusers 0.42's pipeline passes it as float
    0/1, which attention adds to the scores rather than masking (diffusers#12116, regressed)."""
    read = _read(pipe, captions)["text_encoder"]
    packed = _flux_packed(pipe, x)
    image = torch.ones(x.shape[0], packed["hidden_states"].shape[1], dtype=torch.bool, device=x.device)
    return pipe.transformer(**packed, timestep=timestep, encoder_hidden_states=read.states,
                            txt_ids=read.states.new_zeros(read.states.shape[1], 3),
                            attention_mask=torch.cat([read.mask.bool().to(x.device), image], dim=1),
                            return_dict=False)[0]


def _qwen_image_velocity(pipe, x, timestep, captions):
    """Qwen-Image: the chat template's states after its prefix, with their mask; 2×2 packing."""
    read = _read(pipe, captions)["text_encoder"]
    b, _, h, w = x.shape
    return pipe.transformer(hidden_states=_flux_pack(pipe, x), timestep=timestep,
                            encoder_hidden_states=read.states, encoder_hidden_states_mask=read.mask.to(x.device),
                            img_shapes=[[(1, h // 2, w // 2)]] * b, return_dict=False)[0]


def _masked_states_velocity(pipe, x, timestep, captions):
    """Lumina 2 and Sana: one encoder's read states with their mask (Lumina 2: Gemma's penultimate
    states of the system prompt and the prompt; Sana: Gemma-2's last states of BOS and the
    prompt after its instruction); the timestep × the transformer's ``timestep_scale`` where it
    has one, as SanaPipeline multiplies (1 for Sana)."""
    read = _read(pipe, captions)["text_encoder"]
    timestep = timestep * pipe.transformer.config.get("timestep_scale", 1.0)
    return pipe.transformer(hidden_states=x, timestep=timestep, encoder_hidden_states=read.states,
                            encoder_attention_mask=read.mask.to(x.device), return_dict=False)[0]


def _z_image_velocity(pipe, x, timestep, captions):
    """Z-Image: lists, one ``[C, 1, h, w]`` latent and one ``[T_i, d]`` caption (its real tokens) per image."""
    read = _read(pipe, captions)["text_encoder"]
    features = [states[mask.bool()] for states, mask in zip(read.states, read.mask.to(read.states.device))]
    out = pipe.transformer(list(x.unsqueeze(2).unbind(0)), timestep, features, return_dict=False)[0]
    return torch.stack(out).squeeze(2)


def _flux2_velocity(pipe, x, timestep, captions):
    """FLUX.2 Klein and [dev]: three encoder layers' states (Klein: Qwen3's 9, 18, 27; [dev]:
    Mistral's 10, 20, 30) at all 512 positions, 4-d text and image ids; ``x`` (already
    patchified 2×2 into channels) flattened to tokens; [dev] embeds the guidance, Klein none."""
    states = _read(pipe, captions)["text_encoder"].states
    tokens = _flux2_pack(pipe, x)
    out = pipe.transformer(hidden_states=tokens, timestep=timestep, guidance=_guidance(pipe, len(captions)),
                           encoder_hidden_states=states, txt_ids=pipe._prepare_text_ids(states).to(x.device),
                           img_ids=pipe._prepare_latent_ids(x).to(x.device), return_dict=False)[0]
    return out[:, :tokens.shape[1]]


def _hidream_velocity(pipe, x, timestep, captions):
    """HiDream: the CLIP-L and CLIP-G pooled vectors concatenated, T5's states, and Llama's 32
    layers' states on a leading layer axis ``[L, b, T, d]`` (of which each block reads the one
    of ``llama_layers``), all 128 positions; ``x`` goes in as it is (the transformer patchifies)."""
    read = _read(pipe, captions)
    pooled = torch.cat([read["text_encoder"].pooled, read["text_encoder_2"].pooled], dim=-1)
    llama = read["text_encoder_4"].states.permute(2, 0, 1, 3)  # [b, T, L, d] -> [L, b, T, d]
    return pipe.transformer(hidden_states=x, timesteps=timestep, encoder_hidden_states_t5=read["text_encoder_3"].states,
                            encoder_hidden_states_llama3=llama, pooled_embeds=pooled, return_dict=False)[0]


def _image_posterior(pipe, pixels):
    """The VAE's posterior ``(mean, std)`` ``[n, C, h, w]`` of ``pixels``."""
    dist = pipe.vae.encode(pixels).latent_dist
    return dist.mean, dist.std


def _deterministic_posterior(pipe, pixels):
    """Sana's AutoencoderDC, which has no posterior: its latent, with std 0."""
    latent = pipe.vae.encode(pixels).latent
    return latent, torch.zeros_like(latent)


def _video_posterior(pipe, pixels):
    """Qwen-Image's video VAE: each image one frame, ``[n, 3, 1, H, W]`` in, the frame axis dropped."""
    dist = pipe.vae.encode(pixels.unsqueeze(2)).latent_dist
    return dist.mean[:, :, 0], dist.std[:, :, 0]


def _shift_and_scale(pipe, z):
    """``(z − shift_factor) · scaling_factor`` (SD3, FLUX.1, Chroma, Lumina 2, Z-Image, HiDream;
    Sana's AutoencoderDC has no shift)."""
    config = pipe.vae.config
    return (z - (config.get("shift_factor") or 0.0)) * config.scaling_factor


def _per_channel(pipe, z):
    """Qwen-Image: ``(z − latents_mean) / latents_std``, per channel."""
    config = pipe.vae.config
    mean, std = (torch.tensor(values).view(1, config.z_dim, 1, 1).to(z)
                 for values in (config.latents_mean, config.latents_std))
    return (z - mean) / std


def _patchified_batch_norm(pipe, z):
    """FLUX.2: 2×2 patches into channels ``[n, 4C, h/2, w/2]``, then the VAE's batch-norm
    statistics, ``(z − running_mean) / sqrt(running_var + eps)``."""
    bn = pipe.vae.bn
    patches = pipe._patchify_latents(z)
    std = torch.sqrt(bn.running_var + pipe.vae.config.batch_norm_eps).view(1, -1, 1, 1).to(z)
    return (patches - bn.running_mean.view(1, -1, 1, 1).to(z)) / std


def _as_is(pipe, x):
    return x


@dataclass(frozen=True)
class FlowDenoiser:
    """What one flow-matching family's transformer needs that the others do not; everything
    else (the draws, the mix, the target, the loss) is :class:`FlowObjective`'s.

    ``velocity(pipe, x_σ, timestep, captions)``: the transformer's output for the latent
    ``x_σ`` in the layout of ``pack(pipe, x_σ)``, conditioned on the captions as the pipeline
    conditions; ``posterior(pipe, pixels)``: the VAE's ``(mean, std)``; ``normalise(pipe, z)``:
    the latent the noise is mixed into, as the pipeline and its trainer scale it.
    """

    velocity: Callable[..., torch.Tensor]
    normalise: Callable[[object, torch.Tensor], torch.Tensor] = _shift_and_scale
    posterior: Callable[[object, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = _image_posterior
    pack: Callable[[object, torch.Tensor], torch.Tensor] = _as_is
    #: the transformer reads the scheduler's t = σ · num_train_timesteps (SD3, Sana, HiDream), not σ
    timestep_in_steps: bool = False
    #: time runs from noise to image (Lumina 2, Z-Image): timestep 1 − σ
    reversed_time: bool = False
    #: the transformer predicts x₀ − ε, the negated velocity (Lumina 2, Z-Image, HiDream)
    negated_output: bool = False
    #: the side of the square patches the latent is cut into, which it must tile (Sana: 1)
    patch: int = 2


class FlowObjective(DenoisingObjective):
    """Rectified flow, the objective of diffusers' trainers for these transformers
    (``train_dreambooth_sd3.py``, ``_flux.py``, ``_lora_qwen_image.py``, ...)::

        x_σ = (1 − σ) x₀ + σ ε,    L(e) = E ‖v_θ(x_σ, σ, c(prompt(e))) − (ε − x₀)‖²

    ``x₀`` ``[b, C, h, w]`` a latent drawn from an image's VAE posterior and normalised as the
    pipeline does, ``ε ~ N(0, I)`` of its shape, ``σ = s·u / (1 + (s − 1)·u)`` with ``u ~ U(0, 1)``
    and ``s`` the scheduler's static ``shift`` (1 when it shifts by resolution at sampling
    time, as FLUX.1 and Qwen-Image do): the σ the trainers draw with their uniform ("none")
    weighting, from the scheduler's shifted sigmas. ``v_θ`` the transformer's output (the
    negated output where it predicts x₀ − ε) and ``c`` the captions read as the pipeline reads
    them; what differs per family is its :class:`FlowDenoiser`.
    """

    def __init__(self, pipe, pixels: torch.Tensor, resolution: int, denoiser: FlowDenoiser):
        super().__init__(pipe, pixels, resolution)
        self.denoiser = denoiser
        with torch.no_grad():
            self.mean, self.std = denoiser.posterior(pipe, pixels)
        scale, p = resolution // self.mean.shape[-1], denoiser.patch
        if self.mean.shape[-1] % p or self.mean.shape[-2] % p:
            raise SpecError(f"the resolution must be a multiple of {p * scale} for {family_of(pipe).title} "
                            f"(VAE scale × {p}×{p} patches)")
        config = pipe.scheduler.config
        self.shift = 1.0 if config.get("use_dynamic_shifting", False) else float(config.get("shift", 1.0))
        self.steps = config.get("num_train_timesteps", 1000)

    def loss(self, rows: torch.Tensor, captions: list[str], generator: torch.Generator) -> torch.Tensor:
        pipe, denoiser = self.pipe, self.denoiser
        device = pipe.transformer.device
        mean, std = self.mean[rows], self.std[rows]
        latents = denoiser.normalise(pipe, mean + std * torch.randn(mean.shape, generator=generator).to(device))
        b = latents.shape[0]
        noise = torch.randn(latents.shape, generator=generator).to(device)
        u = torch.rand(b, generator=generator).to(device)
        sigma = self.shift * u / (1 + (self.shift - 1) * u)
        s = sigma.view(b, *[1] * (latents.dim() - 1))
        noisy = (1 - s) * latents + s * noise
        time = 1 - sigma if denoiser.reversed_time else sigma
        prediction = denoiser.velocity(pipe, noisy, time * self.steps if denoiser.timestep_in_steps else time, captions)
        if denoiser.negated_output:
            prediction = -prediction
        return F.mse_loss(prediction.float(), denoiser.pack(pipe, noise - latents).float())


#: the flow-matching denoisers textual inversion trains through, by pipeline class
FLOW_MATCHING = {
    "StableDiffusion3Pipeline": FlowDenoiser(_sd3_velocity, timestep_in_steps=True),
    "FluxPipeline": FlowDenoiser(_flux_velocity, pack=_flux_pack),
    "ChromaPipeline": FlowDenoiser(_chroma_velocity, pack=_flux_pack),
    "QwenImagePipeline": FlowDenoiser(_qwen_image_velocity, normalise=_per_channel, posterior=_video_posterior,
                                      pack=_flux_pack),
    "Lumina2Pipeline": FlowDenoiser(_masked_states_velocity, reversed_time=True, negated_output=True),
    "ZImagePipeline": FlowDenoiser(_z_image_velocity, reversed_time=True, negated_output=True),
    "Flux2KleinPipeline": FlowDenoiser(_flux2_velocity, normalise=_patchified_batch_norm, pack=_flux2_pack),
    "Flux2Pipeline": FlowDenoiser(_flux2_velocity, normalise=_patchified_batch_norm, pack=_flux2_pack),
    "SanaPipeline": FlowDenoiser(_masked_states_velocity, posterior=_deterministic_posterior, timestep_in_steps=True,
                                 patch=1),
    "HiDreamImagePipeline": FlowDenoiser(_hidream_velocity, timestep_in_steps=True, negated_output=True),
}
#: the DDPM-trained transformers textual inversion trains through, by pipeline class
EPSILON_TRANSFORMERS = {"PixArtSigmaPipeline": _pixart_noise}
#: the titles of the families whose transformer learn-anchor trains through
TRANSFORMER_TITLES = tuple(f.title for f in FAMILIES.values()
                           if f.pipeline_class in FLOW_MATCHING or f.pipeline_class in EPSILON_TRANSFORMERS)


def objective_for(pipe, pixels: torch.Tensor, resolution: int) -> DenoisingObjective:
    """The textual-inversion objective of ``pipe``'s denoiser (a UNet, or a known transformer)."""
    name = type(pipe).__name__
    if getattr(pipe, "unet", None) is not None:
        return EpsilonObjective(pipe, pixels, resolution)
    if name in EPSILON_TRANSFORMERS:
        return EpsilonObjective(pipe, pixels, resolution, EPSILON_TRANSFORMERS[name])
    return FlowObjective(pipe, pixels, resolution, FLOW_MATCHING[name])


def fixed_loss(objective: DenoisingObjective, token: str, config: AnchorConfig, draws: int = FIXED_DRAWS) -> float:
    """The loss on ``draws`` fixed (image, caption, t, ε) draws (seed ``config.seed + 1``), no gradient."""
    generator = torch.Generator(device="cpu").manual_seed(config.seed + 1)
    rows = torch.arange(draws) % objective.n_images
    captions = [config.templates[i % len(config.templates)].format(token) for i in range(draws)]
    with torch.no_grad():
        return objective.loss(rows, captions, generator).item()
