"""Shared fixtures: tiny random encoders built once per session, loaded fresh per test.

Each ``*_path`` fixture builds one tiny model (see ``tiny_models.py``) into its own
folder under pytest's session temporary directory. The adapter fixtures load that folder
with :func:`textedit.encoders.load_encoder` for every test that asks, so a test may change
the weights without affecting any other test (loading a tiny model takes milliseconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

# One intra-op thread: the models here are tiny, and on a small shared machine several
# threads spin against each other and run ten times slower than one.
torch.set_num_threads(1)

sys.path.insert(0, str(Path(__file__).parent))

import os  # noqa: E402

from hypothesis import settings  # noqa: E402

# Property-based tests (test_properties.py): the same examples on every run, so CI is
# repeatable; HYPOTHESIS_PROFILE=explore draws new ones, and keeps failures in .hypothesis/
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
from tiny_models import (  # noqa: E402
    build_tiny_bert,
    build_tiny_chroma_pipeline,
    build_tiny_clip,
    build_tiny_flux2_klein_pipeline,
    build_tiny_flux2_pipeline,
    build_tiny_flux_pipeline,
    build_tiny_hidream_pipeline,
    build_tiny_lumina2_pipeline,
    build_tiny_mpnet,
    build_tiny_pixart_sigma_pipeline,
    build_tiny_qwen_image_pipeline,
    build_tiny_sana_pipeline,
    build_tiny_sd3_pipeline,
    build_tiny_sd_pipeline,
    build_tiny_sdxl_pipeline,
    build_tiny_z_image_pipeline,
    build_tiny_t5,
    draw_concept_images,
)

from textedit.corpus import Corpus, load_corpus  # noqa: E402
from textedit.encoders import load_encoder  # noqa: E402


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_encoders")


@pytest.fixture(scope="session")
def bert_path(tiny_root) -> Path:
    return build_tiny_bert(tiny_root / "bert")


@pytest.fixture(scope="session")
def clip_path(tiny_root) -> Path:
    return build_tiny_clip(tiny_root / "clip")


@pytest.fixture(scope="session")
def clip_proj_path(tiny_root) -> Path:
    return build_tiny_clip(tiny_root / "clip_proj", with_projection=True)


@pytest.fixture(scope="session")
def t5_path(tiny_root) -> Path:
    return build_tiny_t5(tiny_root / "t5")


@pytest.fixture(scope="session")
def t5_gated_path(tiny_root) -> Path:
    return build_tiny_t5(tiny_root / "t5_gated", gated=True)


@pytest.fixture(scope="session")
def mpnet_path(tiny_root) -> Path:
    return build_tiny_mpnet(tiny_root / "mpnet")


@pytest.fixture(scope="session")
def sd_path(tiny_root) -> Path:
    return build_tiny_sd_pipeline(tiny_root / "sd")


@pytest.fixture(scope="session")
def images(sd_path, tmp_path_factory) -> Path:
    """Three images of a concept for learn-anchor, drawn by the tiny SD pipeline itself."""
    return draw_concept_images(sd_path, tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def pipeline_paths(tiny_root, sd_path) -> dict[str, Path]:
    """Every tiny pipeline folder by family name (built on first use)."""
    return {"sd": sd_path, "sdxl": build_tiny_sdxl_pipeline(tiny_root / "sdxl"),
            "sd3": build_tiny_sd3_pipeline(tiny_root / "sd3"), "flux": build_tiny_flux_pipeline(tiny_root / "flux"),
            "qwenimage": build_tiny_qwen_image_pipeline(tiny_root / "qwenimage"),
            "chroma": build_tiny_chroma_pipeline(tiny_root / "chroma"),
            "pixart_sigma": build_tiny_pixart_sigma_pipeline(tiny_root / "pixart_sigma"),
            "lumina2": build_tiny_lumina2_pipeline(tiny_root / "lumina2"),
            "zimage": build_tiny_z_image_pipeline(tiny_root / "zimage"),
            "flux2klein": build_tiny_flux2_klein_pipeline(tiny_root / "flux2klein"),
            "sana": build_tiny_sana_pipeline(tiny_root / "sana"),
            "flux2": build_tiny_flux2_pipeline(tiny_root / "flux2"),
            "hidream": build_tiny_hidream_pipeline(tiny_root / "hidream")}


@pytest.fixture(scope="session")
def model_paths(bert_path, clip_path, clip_proj_path, t5_path, t5_gated_path, mpnet_path) -> dict[str, Path]:
    """Every tiny encoder folder by a short name."""
    return {"bert": bert_path, "clip": clip_path, "clip_proj": clip_proj_path, "t5": t5_path,
            "t5_gated": t5_gated_path, "mpnet": mpnet_path}


@pytest.fixture
def bert(bert_path):
    return load_encoder(str(bert_path))


@pytest.fixture
def clip(clip_path):
    return load_encoder(str(clip_path))


@pytest.fixture(scope="session")
def small_corpus() -> Corpus:
    """The first 40 prompts of the shipped corpus, under a test name."""
    return Corpus(tuple(load_corpus(limit=40).prompts), "test")


@pytest.fixture
def textedit_cli(monkeypatch, capsys):
    """Run ``textedit ARGS…`` in-process; returns (exit code, stdout, stderr)."""
    from cli_runner import run as run_cli

    def run(*args) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, *args)
    return run
