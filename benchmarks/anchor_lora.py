#!/usr/bin/env python
"""Stage 1 with and without a LoRA on the denoiser: the loss on the fixed draws, before and after.

    python benchmarks/anchor_lora.py        # ≈ 3 min on two busy CPU cores

Builds the tiny random SD 1.x and Qwen-Image pipelines of ``tests/tiny_models.py``, draws three
images with the tiny SD pipeline (as the ``images`` test fixture does), and learns the anchor
``<acme-mascot>`` (init "dog") on each pipeline with the settings of ``tests/test_anchor.py``:
textual inversion alone, then with a rank-4 LoRA (α = 4, diffusers' scripts' default, and α = 8)
at the default LoRA learning rate 1e-4 and at 1e-2, same seed and steps. Prints a markdown
table of ``AnchorResult.fixed_loss_before/after`` (the loss on 32 fixed draws of image,
caption, timestep and noise: no sampling noise).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from tiny_models import build_tiny_qwen_image_pipeline, build_tiny_sd_pipeline, draw_concept_images  # noqa: E402

from textedit.anchor import AnchorConfig, learn_anchor  # noqa: E402

SETTINGS = {"SD 1.x (UNet)": dict(steps=40, lr=5e-2, batch_size=2, checkpoint_every=20),
            "Qwen-Image (transformer)": dict(steps=20, lr=5e-2, batch_size=2, resolution=32)}
LORAS = [dict(), dict(lora_rank=4), dict(lora_rank=4, lora_lr=1e-2), dict(lora_rank=4, lora_alpha=8, lora_lr=1e-2)]


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = dict(zip(SETTINGS, (build_tiny_sd_pipeline(tmp / "sd"), build_tiny_qwen_image_pipeline(tmp / "qwen"))))
        images = draw_concept_images(paths["SD 1.x (UNet)"], tmp / "images")
        print("| pipeline | steps | LoRA | fixed loss before | after | drop |")
        print("|---|---|---|---|---|---|")
        for name, settings in SETTINGS.items():
            for i, lora in enumerate(LORAS):
                config = AnchorConfig(**settings, **lora)
                result = learn_anchor(paths[name], images, "<acme-mascot>", "dog", tmp / f"out-{name[:4]}-{i}", config)
                what = (f"rank {config.lora_rank}, α {config.lora_alpha or config.lora_rank:g}, lr {config.lora_lr:g}"
                        if config.lora_rank else "none (embedding only)")
                print(f"| {name} | {config.steps} | {what} | {result.fixed_loss_before:.5f} | "
                      f"{result.fixed_loss_after:.5f} | {result.fixed_loss_before - result.fixed_loss_after:.5f} |",
                      flush=True)


if __name__ == "__main__":
    main()
