"""Image-space measurements of an edit: what the denoiser drew before and after the patch.

Images are float tensors ``[3, H, W]`` in ``[0, 1]`` (the pipeline's ``output_type="pt"``).

    pixel change     mean |after − before| over pixels and channels, same prompt and seed
                     (0: identical; 1: black ↔ white everywhere). Needs no model, so a
                     report always says what moved.
    pixel distance   the same mean absolute difference between a query's image and the
                     unedited anchor image of the same template and seed (lower = closer).
    CLIP-T           cos(E_img(image), E_txt(anchor description))            (CLIPModel)
    CLIP-I           cos(E_img(image), E_img(reference)), the reference being the
                     unedited anchor image of the same template and seed, or the mean
                     embedding of ``--reference-images``
    CLIP change      1 − cos(E_img(before), E_img(after)), same prompt and seed

Embeddings are L2-normalised CLIP projections, compared in float32 on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from ..errors import ModelLoadError, SpecError
from ..io import read_image_folder



def pixel_change(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two images (or equally shaped stacks) in [0, 1]."""
    return float((a.float() - b.float()).abs().mean())


class CLIPScorer:
    """A ``transformers`` CLIPModel and its processor, embedding images and texts."""

    def __init__(self, model, processor, name: str = "clip"):
        self.model = model.eval()
        self.processor = processor
        self.name = name

    @classmethod
    def load(cls, ref: str | Path, device: str = "cpu") -> "CLIPScorer":
        """``CLIPModel`` + ``CLIPProcessor`` from a folder or hub id (safetensors only)."""
        try:
            model = CLIPModel.from_pretrained(str(ref), use_safetensors=True).to(device)
            processor = CLIPProcessor.from_pretrained(str(ref))
        except Exception as exc:
            raise ModelLoadError(f"cannot load CLIP model '{ref}': "
                                 f"{(str(exc).strip() or type(exc).__name__).splitlines()[0][:300]}") from None
        return cls(model, processor, str(ref))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def image_embeds(self, images: Sequence) -> torch.Tensor:
        """``[n, d]`` unit vectors for images given as ``[3, H, W]`` tensors in [0, 1] or PIL images."""
        pil = [to_pil(image) if torch.is_tensor(image) else image.convert("RGB") for image in images]
        pixels = self.processor(images=pil, return_tensors="pt")["pixel_values"].to(self.device)
        return F.normalize(_features(self.model.get_image_features(pixel_values=pixels)).float().cpu(), dim=-1)

    @torch.no_grad()
    def text_embeds(self, texts: Sequence[str]) -> torch.Tensor:
        """``[n, d]`` unit vectors for texts (truncated to CLIP's context)."""
        batch = self.processor(text=list(texts), return_tensors="pt", padding=True, truncation=True)
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        return F.normalize(_features(self.model.get_text_features(**batch)).float().cpu(), dim=-1)


def _features(output) -> torch.Tensor:
    # transformers < 5 returns the projected tensor, >= 5 an output whose pooler_output it is
    return output if torch.is_tensor(output) else output.pooler_output


def to_pil(image: torch.Tensor):
    """``[3, H, W]`` float in [0, 1] → an RGB PIL image (rounded to 8 bits)."""
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, mode="RGB")


def load_reference_images(folder: str | Path) -> list:
    """Every image file directly in ``folder``, sorted by name, as RGB PIL images."""
    return read_image_folder(folder, SpecError, "--reference-images")[1]
