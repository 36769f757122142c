"""`verify` on a pipeline: a patch that does not fit says why, and strength 0 draws exactly
what the pipeline drew before."""

from __future__ import annotations

import pytest
import torch

from textedit import EditConfig, EditRequest, load_corpus
from textedit.corpus import Corpus
from textedit.errors import PatchError
from textedit.pipelines import FAMILIES, edit_pipeline, load_pipeline
from textedit.verify import verify

REQUEST = [EditRequest("the mascot of acme", "a red fox", subject="acme")]


@pytest.fixture
def sd_patch(pipeline_paths, tmp_path):
    corpus = Corpus(tuple(load_corpus(limit=60).prompts), "verify-test")
    [part] = edit_pipeline(pipeline_paths["sd"], FAMILIES["sd"], REQUEST, EditConfig(value="match", method="ridge"),
                           ["text_encoder"], corpus=corpus, cache_dir=tmp_path)
    return part.patch


def test_bfloat16_pipeline_mismatch_names_the_dtype(pipeline_paths, sd_patch):
    """A patch made on float32 weights does not fit a bfloat16 copy; the error says why and what to do."""
    pipe = load_pipeline(pipeline_paths["sd"], FAMILIES["sd"], dtype=torch.bfloat16)
    with pytest.raises(PatchError, match="--dtype float16 or float32"):
        verify(sd_patch, pipe, seeds=[0], steps=1)


def test_verify_at_strength_zero_draws_what_it_drew_before(pipeline_paths, sd_patch):
    """scale 0 adds nothing: the "after" images equal the "before" ones exactly; scale 1 changes them."""
    pipe = load_pipeline(pipeline_paths["sd"], FAMILIES["sd"])
    nothing = verify(sd_patch, pipe, seeds=[0], steps=1, scale=0.0)
    assert nothing.scale == 0.0 and torch.equal(nothing.before, nothing.after)
    full = verify(sd_patch, pipe, seeds=[0], steps=1)
    assert torch.equal(full.before, nothing.before) and not torch.equal(full.after, full.before)
