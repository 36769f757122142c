"""A tiny CLIPModel and the verifier's inputs, built once per session (the tiny pipelines:
``pipeline_paths`` in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import build_tiny_clip_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def image_sizes() -> dict[str, int | None]:
    """Image size per family: the tiny pipeline's default, or 32 for FLUX, Qwen-Image, Chroma,
    Z-Image and FLUX.2 Klein (their defaults are 128·VAE scale or 1024), PixArt-Σ (its
    transformer's 32 · 8) and Sana (drawn at its 512 px bin, then resized to 32)."""
    return {"sd": None, "sdxl": None, "sd3": None, "flux": 32, "qwenimage": 32, "chroma": 32, "pixart_sigma": 32,
            "lumina2": None, "zimage": 32, "flux2klein": 32, "sana": 32}


@pytest.fixture(scope="session")
def clip_model_path(tiny_root) -> Path:
    return build_tiny_clip_model(tiny_root / "clip_model")


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    """The first 300 prompts of the shipped corpus: statistics in a second on the tiny encoders."""
    path = tmp_path_factory.mktemp("verify_corpus") / "corpus.txt"
    shipped = (REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()
    path.write_text("\n".join(shipped[:300]))
    return path
