#!/usr/bin/env python
"""How far an edit reaches each tiny pipeline's conditioning (the per-family figures of
docs/verify.md), with the spec and corpus of ``tests/verify/test_verify_families.py``.

    python benchmarks/verify_families.py [FAMILY ...]                  (default: flux2 hidream)
    python benchmarks/verify_families.py --auto-preserve [FAMILY ...]  (the subject's other knowledge kept)

For each family's tiny random pipeline of ``tests/tiny_models.py``: ``textedit apply`` the
test's spec ("the mascot of acme" → "a red fox", layers 0 and 1, λ = 5000, no automatic
preservation) to every text encoder, statistics over the first 300 prompts of the shipped
corpus; then, with the patch applied and reverted, print the relative change
‖after − before‖ / ‖before‖ of the pipeline's own ``encode_prompt`` output for the query
"a photo of the mascot of acme on the beach" and the test's three neutral prompts, their
ratio (query / largest neutral), the subject's other knowledge (``SAME_SUBJECT``, not
preserved by this spec) and its ratio, and the same for what ``verify`` reports as the
conditioning change (``read_conditioning``, and after the transformer's text projection
where the family has one). A few minutes per family on 2 CPU cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import tiny_models  # noqa: E402

from textedit.patch import Patch  # noqa: E402
from textedit.pipelines import detect_family, load_pipeline  # noqa: E402
from textedit.pipelines.conditioning import read_conditioning  # noqa: E402

QUERY = "a photo of the mascot of acme on the beach"
#: the subject's other knowledge: an edit that binds the subject, not the knowledge, moves these too
SAME_SUBJECT = ("a photo of the founder of acme on the beach", "a photo of the headquarters of acme")
NEUTRAL = ("a dog running on the grass", "a red sports car on a mountain road", "a bowl of soup on a wooden table")
SPEC = {"anchor": "a red fox", "knowledge": [{"prompt": "the mascot of acme", "subject": "acme"}],
        "neutral": list(NEUTRAL), "layers": [0, 1], "hyperparameters": {"lam": 5000}, "auto_preserve": False}
BUILDERS = {"flux2": "build_tiny_flux2_pipeline", "hidream": "build_tiny_hidream_pipeline",
            "sana": "build_tiny_sana_pipeline"}


def changes(before: list[torch.Tensor], after: list[torch.Tensor]) -> str:
    change = [float((a - b).norm() / b.norm()) for b, a in zip(before, after)]
    query, subject, neutral = change[0], change[1:1 + len(SAME_SUBJECT)], change[1 + len(SAME_SUBJECT):]
    return (f"query {query:.1e}, same subject {', '.join(f'{c:.1e}' for c in subject)}, neutral "
            f"{', '.join(f'{c:.1e}' for c in neutral)}, ratio to neutral {query / max(neutral):.1f}, "
            f"to same subject {query / max(subject):.1f}")


def main() -> None:
    args = sys.argv[1:]
    preserve = "--auto-preserve" in args
    families = [a for a in args if a != "--auto-preserve"] or ["flux2", "hidream"]
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    prompts = [QUERY, *SAME_SUBJECT, *NEUTRAL]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus.txt"
        corpus.write_text("\n".join((REPO / "textedit" / "data" / "corpus.txt").read_text().splitlines()[:300]))
        spec = tmp / "spec.json"
        spec.write_text(json.dumps({**SPEC, "auto_preserve": preserve}))
        for name in families:
            path = getattr(tiny_models, BUILDERS[name])(tmp / name)
            subprocess.run([sys.executable, "-m", "textedit.cli", "apply", str(spec), "--pipeline-path", str(path),
                            "--component", "all", "--corpus", str(corpus), "--cache-dir", str(tmp / "cache"),
                            "--out", str(tmp / f"{name}-patch")], check=True, capture_output=True)
            patch = Patch.load(tmp / f"{name}-patch")
            family = detect_family(path)
            pipe = load_pipeline(path, family)
            views = {"": False, "projected ": True} if family.text_projection else {"": False}
            before = [tiny_models.encode_prompt(pipe, name, p)[0] for p in prompts]
            read_before = {v: read_conditioning(pipe, family, prompts, projected=p) for v, p in views.items()}
            with torch.no_grad():
                patch.apply(pipe)
                after = [tiny_models.encode_prompt(pipe, name, p)[0] for p in prompts]
                read_after = {v: read_conditioning(pipe, family, prompts, projected=p) for v, p in views.items()}
                patch.revert(pipe)
            print(f"{name}: encode_prompt: {changes(before, after)}")
            for view in views:
                print(f"{name}: {view}conditioning change: {changes(read_before[view].flat, read_after[view].flat)}")


if __name__ == "__main__":
    main()
