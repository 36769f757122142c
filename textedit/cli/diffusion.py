"""The commands that run a diffusion pipeline: ``verify`` (images before and after a patch)
and ``learn-anchor`` (stage 1: an anchor token learned by textual inversion)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import TexteditError
from .options import (DRAWING, EDIT, LORA, MODEL, OUTPUT, SCORING, TRAINING, _check_pipeline, _check_scale,
                      _device_option, _dtype_option, _existing, _start_libraries, _threads_option,
                      _writable_destination, command, err, out)


@command()
def verify(
    patch_dir: Path = typer.Argument(..., help="patch directory"),
    pipeline_path: str = typer.Option(..., "--pipeline-path", help="diffusers pipeline: hub id or folder",
                                      rich_help_panel=MODEL),
    pipeline: str = typer.Option("auto", help="pipeline family", rich_help_panel=MODEL),
    dtype: Optional[str] = _dtype_option("float32 | float16 | bfloat16 (default: float32 on cpu, the family's "
                                         "usual half type on cuda / mps)"),
    anchor_embedding: list[Path] = typer.Option([], "--anchor-embedding",
                                                help="the learned anchor's embedding file the patch was made with "
                                                     "(learn-anchor's learned_embeds.safetensors)",
                                                rich_help_panel=MODEL),
    anchor_lora: Optional[Path] = typer.Option(None, "--anchor-lora",
                                               help="the denoiser LoRA learned with the anchor (learn-anchor "
                                                    "--lora-rank: its folder or the weights file in it), loaded "
                                                    "with pipe.load_lora_weights before and after the patch",
                                               rich_help_panel=MODEL),
    prompts: Optional[Path] = typer.Option(None, help="prompts file: a line with {} is a template for the queries "
                                                      "and anchors, any other line a neutral prompt",
                                           rich_help_panel=DRAWING),
    seeds: str = typer.Option("0,1,2", help="seeds, each drawn before and after", rich_help_panel=DRAWING),
    steps: Optional[int] = typer.Option(None, help="denoising steps (default: the family's usual)",
                                        rich_help_panel=DRAWING),
    guidance_scale: Optional[float] = typer.Option(None, help="guidance scale (default: the family's usual)",
                                                   rich_help_panel=DRAWING),
    size: Optional[int] = typer.Option(None, help="image height = width in pixels (default: the pipeline's)",
                                       rich_help_panel=DRAWING),
    scale: float = typer.Option(1.0, help="strength of the edit when drawing the 'after' images",
                                rich_help_panel=DRAWING),
    clip: Optional[str] = typer.Option(None, help="CLIP model (hub id or folder) for CLIP-T and CLIP-I",
                                       rich_help_panel=SCORING),
    reference_images: Optional[Path] = typer.Option(None, help="folder of images of the anchor concept: the "
                                                               "CLIP-I reference (default: the anchor's own images)",
                                                    rich_help_panel=SCORING),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="report folder (default: reports/<patch name>)",
                                           rich_help_panel=OUTPUT),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
):
    """Draw the patch's queries, anchors and neutral prompts with the same seeds before and after
    the patch; write a contact sheet, metrics.json and index.html."""
    _check_scale(scale)
    for name, number in (("--steps", steps), ("--size", size)):
        if number is not None and number < 1:
            raise TexteditError(f"{name} must be a positive integer, got {number}")
    if reference_images is not None and clip is None:
        raise TexteditError("--reference-images needs --clip MODEL to compare images")
    _check_pipeline(pipeline)
    _existing(patch_dir, "patch directory", folder=True)
    if prompts is not None:
        _existing(prompts, "--prompts")
    if reference_images is not None:
        _existing(reference_images, "--reference-images", folder=True)
    for file in anchor_embedding:
        _existing(file, "--anchor-embedding")
    if anchor_lora is not None:
        _existing(anchor_lora, "anchor LoRA", folder=None)
    out_dir = _writable_destination(out_dir or Path("reports") / patch_dir.resolve().name, "index.html", "a report")
    _start_libraries()
    from ..anchor import add_required_anchors  # deferred: a command imports what it computes with when it runs
    from ..anchor_lora import load_anchor_lora, lora_file, require_peft
    from ..patch import Patch
    from ..pipelines import detect_family, load_pipeline, resolve_dtype
    from ..verify.generate import VERIFY_NEUTRAL, VERIFY_TEMPLATES, parse_seeds, read_prompts_file
    from ..verify.metrics import CLIPScorer, load_reference_images
    from ..verify.report import SCORE_NAMES, write_report
    from ..verify.verifier import verify as run_verify

    seed_list = parse_seeds(seeds)
    patch = Patch.load(patch_dir)
    if anchor_lora is not None:  # a missing file or peft fails before the pipeline loads
        require_peft("--anchor-lora")
        lora_file(anchor_lora)
    templates, neutral = read_prompts_file(prompts) if prompts else ([], [])
    references = load_reference_images(reference_images) if reference_images else None
    family = detect_family(pipeline_path, pipeline)
    torch_dtype = resolve_dtype(dtype, device, family)
    scorer = None
    if clip is not None:
        with err.status(f"loading {clip}"):
            scorer = CLIPScorer.load(clip, device)
    from diffusers.utils import logging as diffusers_logging  # deferred: diffusers takes seconds to import
    diffusers_logging.disable_progress_bar()  # our own bar counts the images
    with err.status(f"loading {pipeline_path} ({family.title}, {str(torch_dtype).replace('torch.', '')})"):
        pipe = load_pipeline(pipeline_path, family, device=device, dtype=torch_dtype)
    add_required_anchors(patch, pipe, anchor_embedding)  # the learned anchor token joins the pipeline first
    if anchor_lora is not None:  # and the look learned beside it, in the denoiser
        load_anchor_lora(pipe, anchor_lora)
    result = run_verify(patch, pipe, family=family, templates=templates or VERIFY_TEMPLATES,
                        neutral=neutral or VERIFY_NEUTRAL, seeds=seed_list, steps=steps, guidance_scale=guidance_scale,
                        height=size, width=size, clip=scorer, reference_images=references,
                        reference_name=str(reference_images or ""), progress=True, scale=scale)
    write_report(result, patch, out_dir, pipeline_path)

    kinds = list(result.summary)
    table = Table(title=f"patch {patch.id} on {pipeline_path} ({family.title}, {result.sampling.steps} steps, "
                        f"seeds {', '.join(map(str, seed_list))}): mean over prompts and seeds")
    table.add_column("score")
    for kind in kinds:
        table.add_column(kind, justify="right")
    for name, title in SCORE_NAMES.items():
        if any(name in s for s in result.summary.values()):
            table.add_row(title, *(f"{result.summary[k][name]:.4g}" if name in result.summary[k] else ""
                                   for k in kinds))
    out.print(table)
    out.print(f"report written to {out_dir / 'index.html'} (contact sheet: {out_dir / 'contact_sheet.png'})")


@command("learn-anchor")
def learn_anchor_(
    images_dir: Path = typer.Argument(..., help="folder of PNG/JPEG images of the concept"),
    token: str = typer.Option(..., help="the new anchor token, e.g. '<acme-mascot>'", rich_help_panel=EDIT),
    init: str = typer.Option(..., help="initial meaning of the token, e.g. 'dog' (mean of its tokens' embeddings)",
                             rich_help_panel=EDIT),
    pipeline_path: str = typer.Option(..., "--pipeline-path",
                                      help="Stable Diffusion 1.x/2.x, SDXL or Qwen-Image pipeline folder or id",
                                      rich_help_panel=MODEL),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default: anchors/<token>)",
                                           rich_help_panel=OUTPUT),
    steps: int = typer.Option(500, help="optimisation steps", rich_help_panel=TRAINING),
    lr: float = typer.Option(5e-3, help="AdamW learning rate", rich_help_panel=TRAINING),
    batch_size: int = typer.Option(1, help="images per step", rich_help_panel=TRAINING),
    weight_decay: float = typer.Option(1e-2, help="AdamW weight decay", rich_help_panel=TRAINING),
    resolution: Optional[int] = typer.Option(None, help="training resolution (default: the pipeline's)",
                                             rich_help_panel=TRAINING),
    checkpoint_every: int = typer.Option(100, help="save a checkpoint every N steps", rich_help_panel=OUTPUT),
    seed: int = typer.Option(0, help="random seed", rich_help_panel=TRAINING),
    lora_rank: int = typer.Option(0, help="also train a LoRA of this rank on the denoiser's attention, as MoKus "
                                          "does (0: none; needs pip install textedit\\[lora]); saved as "
                                          "pytorch_lora_weights.safetensors for pipe.load_lora_weights",
                                  rich_help_panel=LORA),
    lora_alpha: Optional[float] = typer.Option(None, help="LoRA alpha: the update is scaled by alpha / rank "
                                                          "(default: the rank)", rich_help_panel=LORA),
    lora_lr: float = typer.Option(1e-4, help="AdamW learning rate of the LoRA", rich_help_panel=LORA),
    lora_targets: Optional[str] = typer.Option(None, help="comma-separated module names the LoRA adapts "
                                                          "(default: the denoiser's attention, e.g. "
                                                          "to_k,to_q,to_v,to_out.0)", rich_help_panel=LORA),
    device: str = _device_option(),
    threads: Optional[int] = _threads_option(),
):
    """Stage 1: learn TOKEN's embedding from IMAGES_DIR by textual inversion (diffusers format),
    optionally with a LoRA on the denoiser (diffusers' LoRA format)."""
    _existing(images_dir, "image folder", folder=True)
    out_dir = _writable_destination(out_dir or Path("anchors") / (re.sub(r"[^A-Za-z0-9_-]+", "", token)[:100]
                                                                  or "anchor"))
    _start_libraries()
    from ..anchor import AnchorConfig, learn_anchor  # deferred: a command imports what it computes with when it runs

    targets = [t.strip() for t in lora_targets.split(",")] if lora_targets is not None else None
    config = AnchorConfig(steps=steps, lr=lr, batch_size=batch_size, weight_decay=weight_decay, resolution=resolution,
                          checkpoint_every=checkpoint_every, seed=seed, lora_rank=lora_rank, lora_alpha=lora_alpha,
                          lora_targets=targets, lora_lr=lora_lr)
    result = learn_anchor(pipeline_path, images_dir, token, init, out_dir, config, device=device, progress=True)
    first, last = result.losses[:10], result.losses[-10:]
    out.print(f"loss: first 10 steps {sum(first) / len(first):.4f}, last 10 {sum(last) / len(last):.4f}; "
              f"on the fixed draws {result.fixed_loss_before:.4f} → {result.fixed_loss_after:.4f}")
    out.print(f"anchor {result.token} written to {result.embedding_file} (pipe.load_textual_inversion reads it; "
              f"in a spec: \"anchor\": \"{result.token}\", \"anchor_embedding\": \"{result.embedding_file}\")")
    if result.lora_file is not None:
        out.print(f"denoiser LoRA written to {result.lora_file} (pipe.load_lora_weights(\"{out_dir}\") reads it; "
                  f"verify --anchor-lora {out_dir})")
