#!/usr/bin/env python
"""How specific a pipeline edit is, per statistics scope, seen through each pipeline's own
``encode_prompt`` (the numbers behind docs/verify.md's choice of ``scope="pipeline"``).

    python benchmarks/verify_scope.py [--prompts 200]

For the tiny random SD 1.x, SDXL, SD3 and FLUX pipelines of ``tests/tiny_models.py``: edit
every text encoder (MEMIT, value ``optimize``, layers 0 and 1, statistics over the first
``--prompts`` prompts of the shipped corpus) with token scope ``prompt`` and ``pipeline``,
apply the patch and print the relative change ‖after − before‖ / ‖before‖ of the per-token
prompt embeddings for the query "a photo of the mascot of acme on the beach" and two
neutral prompts, and the ratio query / largest neutral. A few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tiny_models import (build_tiny_flux_pipeline, build_tiny_sd3_pipeline, build_tiny_sd_pipeline,  # noqa: E402
                         build_tiny_sdxl_pipeline)

from textedit import Corpus, EditConfig, EditRequest, Patch, load_corpus  # noqa: E402
from textedit.pipelines import detect_family, edit_pipeline, load_pipeline, present_components  # noqa: E402

PROMPTS = ("a photo of the mascot of acme on the beach", "a dog running on the grass",
           "a red sports car on a mountain road")
BUILDERS = {"sd": build_tiny_sd_pipeline, "sdxl": build_tiny_sdxl_pipeline, "sd3": build_tiny_sd3_pipeline,
            "flux": build_tiny_flux_pipeline}


def per_token_embeds(pipe, family: str, prompt: str) -> torch.Tensor:
    with torch.no_grad():
        if family == "sd":
            return pipe.encode_prompt(prompt, "cpu", 1, False)[0]
        if family == "flux":
            return pipe.encode_prompt(prompt=prompt, prompt_2=None, device="cpu", num_images_per_prompt=1)[0]
        extra = {"prompt_3": None} if family == "sd3" else {}
        return pipe.encode_prompt(prompt=prompt, prompt_2=None, device="cpu", num_images_per_prompt=1,
                                  do_classifier_free_guidance=False, **extra)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    corpus = Corpus(tuple(load_corpus(limit=args.prompts).prompts), f"first-{args.prompts}")
    requests = [EditRequest("the mascot of acme", "a red fox", subject="acme")]
    print(f"{'family':6} {'scope':9} {'query':>8} {'neutral 1':>9} {'neutral 2':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in BUILDERS.items():
            path = build(Path(tmp) / name)
            family = detect_family(path)
            pipe = load_pipeline(path, family)
            for scope in ("prompt", "pipeline"):
                parts = edit_pipeline(path, family, requests, EditConfig(layers=[0, 1], scope=scope),
                                      present_components(path, family), corpus=corpus, cache_dir=Path(tmp) / "c")
                patch = Patch.combine([part.patch for part in parts])
                before = [per_token_embeds(pipe, name, p) for p in PROMPTS]
                patch.apply(pipe)
                after = [per_token_embeds(pipe, name, p) for p in PROMPTS]
                patch.revert(pipe)
                change = [float((a - b).norm() / b.norm()) for b, a in zip(before, after)]
                print(f"{name:6} {scope:9} {change[0]:8.1e} {change[1]:9.1e} {change[2]:9.1e} "
                      f"{change[0] / max(change[1:]):6.1f}")


if __name__ == "__main__":
    main()
