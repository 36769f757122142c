"""Image-space measurements: pixel change, 8-bit images, CLIP embeddings, reference images."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from textedit.errors import ModelLoadError, SpecError
from textedit.verify.metrics import CLIPScorer, load_reference_images, pixel_change, to_pil


def test_pixel_change_is_the_mean_absolute_difference():
    a = torch.zeros(3, 2, 2)
    b = a.clone()
    b[0, 0, 0] = 1.0  # one value of twelve, black to white
    assert pixel_change(a, b) == pytest.approx(1 / 12) and pixel_change(b, b) == 0.0
    assert pixel_change(a.double(), torch.full((3, 2, 2), 0.5, dtype=torch.float16)) == 0.5


def test_to_pil_rounds_to_8_bits_and_clamps():
    image = torch.tensor([[[0.0, 1.0]], [[0.5, 2.0]], [[-1.0, 0.1]]])  # [3, 1, 2]
    pil = to_pil(image)
    assert pil.mode == "RGB" and pil.size == (2, 1)
    assert list(pil.getdata()) == [(0, 128, 0), (255, 255, 26)]


def test_clip_embeddings_are_unit_vectors_alike_for_tensors_and_pil_images(clip_model_path):
    clip = CLIPScorer.load(clip_model_path)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    from_tensors = clip.image_embeds(list(images))
    from_pil = clip.image_embeds([to_pil(i).convert("L") for i in images])  # any mode: converted to RGB
    texts = clip.text_embeds(["a red fox", "a photo of a cat " * 40])  # the long one is truncated
    assert from_tensors.shape[0] == 2 and texts.shape == (2, from_tensors.shape[1])
    torch.testing.assert_close(from_tensors.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(texts.norm(dim=-1), torch.ones(2))
    gray = clip.image_embeds([to_pil(i).convert("L").convert("RGB") for i in images])
    torch.testing.assert_close(from_pil, gray)
    assert clip.name == str(clip_model_path) and clip.device == torch.device("cpu")


def test_a_missing_clip_model_is_one_line(tmp_path):
    with pytest.raises(ModelLoadError, match=f"cannot load CLIP model '{tmp_path / 'none'}'"):
        CLIPScorer.load(tmp_path / "none")


def test_reference_images_are_read_sorted_and_named_as_the_option(tmp_path):
    Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "b.png")
    Image.new("L", (4, 4), 7).save(tmp_path / "a.png")
    images = load_reference_images(tmp_path)
    assert [i.getpixel((0, 0)) for i in images] == [(7, 7, 7), (255, 0, 0)]
    with pytest.raises(SpecError, match="--reference-images '.*' does not exist"):
        load_reference_images(tmp_path / "missing")
