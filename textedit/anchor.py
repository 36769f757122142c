"""Stage 1 of knowledge-aware customization: learn the anchor that holds a concept's look.

MoKus binds knowledge to an *anchor*: a token whose meaning is the concept's appearance,
learned from a few images. This module learns it by textual inversion (Gal et al. 2022,
as in diffusers' ``examples/textual_inversion``) and loads it into encoders:

* :func:`learn_anchor` adds a new token to a Stable Diffusion pipeline's tokenizer (SDXL:
  to both tokenizers, one row per encoder, trained together), starts
  its embedding row ``e ∈ R^d`` at the embedding of ``init`` (the mean over its tokens) and
  trains only that row with the denoising loss

      L(e) = E_{x, ε ~ N(0, I), t} ‖ε_θ(√ᾱ_t·z(x) + √(1−ᾱ_t)·ε, t, c(prompt(e))) − ε‖²

  (``z(x)`` the VAE latent of image ``x``, ``c`` what the denoiser reads: the text
  encoder's last hidden state ``[1, 77, d]``, for SDXL the conditioning of
  :func:`encode_captions`; ``prompt`` a caption template holding the token; the target is
  the velocity for ``v_prediction`` schedulers), with AdamW. Every other embedding row is put
  back after each step, as in the diffusers example (weight decay and Adam moments would
  otherwise move them).
* The result is ``learned_embeds.safetensors`` = ``{token: [1, d]}``, the format of
  diffusers' ``pipe.load_textual_inversion(path)`` (SDXL: ``{"clip_l": [1, d_1], "clip_g":
  [1, d_2]}``, each loaded with ``load_textual_inversion(file["clip_g"], token=...,
  text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)``); checkpoints go to
  ``checkpoints/learned_embeds-step-N.safetensors``, every write atomic.
* :func:`add_anchor` loads such a file into an encoder adapter (a bare encoder or a
  pipeline's text encoder) exactly as ``load_textual_inversion`` does (grow the embedding
  matrix by one row, add the token, set the row), so the encoder's fingerprint equals that
  of a pipeline that loaded the same file, and a patch made on one applies to the other.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.progress import TextColumn

from .encoders.base import EncoderAdapter
from .errors import ModelLoadError, SpecError, TexteditError
from .io import atomic_save_tensors, atomic_write_text, read_image_folder, read_tensors
from .pipelines.families import detect_family, family_of
from .pipelines.loading import load_pipeline, pipeline_text_encoders
from .progress import progress_bar

EMBEDDING_FILE = "learned_embeds.safetensors"
#: keys of an SDXL embedding file ({"clip_l": ..., "clip_g": ...}) by pipeline component
SDXL_KEYS = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}
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

    Reads ``{token: [1, d] or [d]}`` (diffusers, one vector) and ``{"clip_l", "clip_g"}``
    (SDXL; the key is chosen by ``component``, default ``text_encoder``).
    """
    path = Path(path)
    if not path.is_file():
        raise AnchorError(f"anchor embedding '{path}' does not exist")
    tensors, _ = read_tensors(path, AnchorError, "anchor embedding")
    if set(tensors) <= set(SDXL_KEYS.values()) and tensors:
        key = SDXL_KEYS.get(component or "text_encoder")
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


def in_vocabulary(tokenizer, token: str) -> bool:
    """Whether ``token`` is already a vocabulary entry or a word the tokenizer reads as one
    existing token ("dog" → ``dog</w>`` in CLIP): adding it would change every prompt with it."""
    if token in tokenizer.get_vocab():
        return True
    ids = tokenizer(token, add_special_tokens=False).input_ids
    return len(ids) == 1 and ids[0] != tokenizer.unk_token_id


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
    model.resize_token_embeddings(len(tokenizer) + 1, mean_resizing=False)
    tokenizer.add_tokens(token)
    with torch.no_grad():
        table = model.get_input_embeddings().weight
        table[tokenizer.convert_tokens_to_ids(token)] = embedding.to(table.device, table.dtype)
    return {"token": token, "file": Path(path).name, "sha256": file_sha256(path)}


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

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise SpecError(f"{name.replace('_', '-')} must be at least 1")
        if not self.lr > 0:
            raise SpecError("the learning rate must be positive")
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


#: what textual inversion needs of a pipeline: a UNet denoiser, a VAE, and its tokenizer and encoder
TRAINED_THROUGH = ("tokenizer", "text_encoder", "unet", "vae", "scheduler")


def load_trainable_pipeline(pipeline_path: str | Path, device: str = "cpu"):
    """A Stable Diffusion 1.x/2.x or SDXL pipeline (tokenizer(s), text encoder(s), UNet, VAE,
    scheduler) in float32 on every device: the anchor's row trains in float32, as in
    diffusers' example. The pipeline's family is detected from its ``model_index.json``."""
    pipe = load_pipeline(pipeline_path, detect_family(pipeline_path), device=device, dtype=torch.float32)
    for part in TRAINED_THROUGH:
        if getattr(pipe, part, None) is None:
            raise ModelLoadError(f"pipeline '{pipeline_path}' has no {part}: learn-anchor needs a Stable Diffusion "
                                 "1.x/2.x or SDXL pipeline")
    return pipe


def text_encoders(pipe) -> list[tuple[str | None, object, torch.nn.Module]]:
    """``(file key, tokenizer, text encoder)`` of every encoder the denoiser reads.

    SD 1.x/2.x: one, saved under the token itself; SDXL: CLIP-L and bigG, saved as
    ``clip_l`` and ``clip_g`` (the layout SDXL embeddings are shared in).
    """
    encoders = pipeline_text_encoders(pipe, family_of(pipe))
    if len(encoders) == 1:
        return [(None, tokenizer, encoder) for _, tokenizer, encoder in encoders]
    return [(SDXL_KEYS[component], tokenizer, encoder) for component, tokenizer, encoder in encoders]


def learn_anchor(pipeline_path: str | Path, images_dir: str | Path, token: str, init: str, out_dir: str | Path,
                 config: AnchorConfig | None = None, *, device: str = "cpu", progress: bool = False) -> AnchorResult:
    """Learn ``token``'s embedding from the images in ``images_dir``; write it to ``out_dir``.

    Every input is checked (images decoded, token new, ``init`` tokenizable) before the
    first file is written. Same pipeline, images, config and seed → the same embedding.
    With SDXL the token gets a row in both encoders and both rows learn together.
    """
    from diffusers import DDPMScheduler  # deferred: diffusers takes seconds to import, apply's add_anchor needs none

    config = config or AnchorConfig()
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise AnchorError(f"anchor token '{token}' must be one word without spaces, such as '<acme-mascot>'")
    files, images = read_image_folder(images_dir, AnchorError, "image folder")
    pipe = load_trainable_pipeline(pipeline_path, device)
    encoders = text_encoders(pipe)
    init_ids = []
    for _, tokenizer, _ in encoders:
        if in_vocabulary(tokenizer, token):
            raise AnchorError(f"token '{token}' is already in the vocabulary of '{pipeline_path}': choose another")
        init_ids.append(tokenizer(init, add_special_tokens=False).input_ids)
        if not init.strip() or not init_ids[-1]:
            raise AnchorError(f"initializer '{init}' has no tokens")
    resolution = config.resolution or pipe.unet.config.sample_size * pipe.vae_scale_factor
    pixels = to_pixels(images, resolution).to(device)

    torch.manual_seed(config.seed)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)

    # The new token in every encoder, initialised at the mean embedding of the
    # initializer's tokens; the same growth and order as load_textual_inversion.
    rows = []  # (file key, embedding table, token id, original table, rows to put back)
    for (key, tokenizer, encoder), ids in zip(encoders, init_ids):
        encoder.resize_token_embeddings(len(tokenizer) + 1, mean_resizing=False)
        tokenizer.add_tokens(token)
        token_id = tokenizer.convert_tokens_to_ids(token)
        table = encoder.get_input_embeddings().weight
        with torch.no_grad():
            table[token_id] = table[ids].mean(0)
        keep = torch.ones(table.shape[0], dtype=torch.bool, device=table.device)
        keep[token_id] = False
        rows.append((key, table, token_id, table.detach().clone(), keep))

    for module in (pipe.unet, pipe.vae, *(encoder for _, _, encoder in encoders)):
        module.requires_grad_(False)
    pipe.unet.eval()
    pipe.vae.eval()
    for _, table, *_ in rows:
        table.requires_grad_(True)
    optimizer = torch.optim.AdamW([table for _, table, *_ in rows], lr=config.lr, weight_decay=config.weight_decay)

    with torch.no_grad():  # the images' latent distributions, once
        latent_dist = pipe.vae.encode(pixels).latent_dist
    scaling = pipe.vae.config.scaling_factor
    out_dir = Path(out_dir)
    result = AnchorResult(token, out_dir / EMBEDDING_FILE)
    result.fixed_loss_before = fixed_loss(pipe, scheduler, latent_dist, scaling, token, config, resolution)

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
            loss = denoising_loss(pipe, scheduler, latent_dist, images_in_batch, captions, scaling, generator,
                                  resolution)
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
                path = out_dir / "checkpoints" / f"learned_embeds-step-{step}.safetensors"
                atomic_save_tensors(embedding(), path)
                result.checkpoints.append(path)
    result.fixed_loss_after = fixed_loss(pipe, scheduler, latent_dist, scaling, token, config, resolution)
    atomic_save_tensors(embedding(), result.embedding_file)
    record = {"token": token, "init": init, "pipeline": str(pipeline_path), "resolution": resolution,
              "images": [{"file": p.name, "sha256": file_sha256(p)} for p in files],
              "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
              "fixed_loss_before": result.fixed_loss_before, "fixed_loss_after": result.fixed_loss_after,
              "embedding_sha256": file_sha256(result.embedding_file)}
    atomic_write_text(json.dumps(record, indent=2) + "\n", out_dir / "anchor.json")
    return result


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


def denoising_loss(pipe, scheduler, latent_dist, rows: torch.Tensor, captions: list[str], scaling: float,
                   generator: torch.Generator, resolution: int) -> torch.Tensor:
    """One batch of the textual-inversion loss (see the module docstring); noise from ``generator``."""
    device = pipe.unet.device
    mean, std = latent_dist.mean[rows], latent_dist.std[rows]
    latents = (mean + std * torch.randn(mean.shape, generator=generator).to(device)) * scaling
    noise = torch.randn(latents.shape, generator=generator).to(device)
    timesteps = torch.randint(scheduler.config.num_train_timesteps, (len(rows),), generator=generator).to(device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    states, added = encode_captions(pipe, captions, resolution)
    prediction = pipe.unet(noisy, timesteps, states, added_cond_kwargs=added).sample
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise TexteditError(f"scheduler prediction type '{kind}' is not supported")
    return F.mse_loss(prediction.float(), target.float())


def fixed_loss(pipe, scheduler, latent_dist, scaling: float, token: str, config: AnchorConfig, resolution: int,
               draws: int = FIXED_DRAWS) -> float:
    """The loss on ``draws`` fixed (image, caption, t, ε) draws (seed ``config.seed + 1``), no gradient."""
    generator = torch.Generator(device="cpu").manual_seed(config.seed + 1)
    n_images = latent_dist.mean.shape[0]
    rows = torch.arange(draws) % n_images
    captions = [config.templates[i % len(config.templates)].format(token) for i in range(draws)]
    with torch.no_grad():
        return denoising_loss(pipe, scheduler, latent_dist, rows, captions, scaling, generator, resolution).item()
