#!/usr/bin/env python
"""Would a thresholded (gated) edit bind the knowledge? The ridge detector's response per prompt.

    python benchmarks/knowledge_gate_separation.py textedit/data/knowledge_dev.json --layers 0,2,4 --lam 500

A MEMIT edit with one target shift per concept is ``ΔW = r gᵀ``, ``g = (λC + K_p K_pᵀ + K Kᵀ)⁻¹ K 1``
(K: the concept's query keys at every query token in the edit templates; K_p: the automatic
preserved prompts' keys): a token with key ``k`` moves by ``gᵀk`` of the shift. A gate (fire
only where ``gᵀk > τ``) would bind the knowledge if some τ let the held-out paraphrases
through and stopped the same subject's other facts, the other subjects' same relation and
unrelated prompts. For every held-out prompt (the benchmark's evaluation contexts) this
prints the fraction whose response, relative to the queries' own mean response, exceeds
each τ: the largest over the prompt's tokens ("max") and their mean ("mean"). The baseline,
the edited queries themselves in the held-out contexts, is the "eff" column of the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textedit.encoders import DEFAULT_MODEL, load_encoder  # noqa: E402
from textedit.eval.knowledge import load_knowledge  # noqa: E402
from textedit.hooks import record_inputs  # noqa: E402
from textedit.preserve import automatic_prompts  # noqa: E402
from textedit.stats import compute_stats  # noqa: E402
from textedit.sites import EDIT_TEMPLATES  # noqa: E402

TAUS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
ROLES = ("eff", "para", "subj", "rel", "unrel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--layers", default="0,2,4")
    parser.add_argument("--lam", type=float, default=500.0)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    adapter = load_encoder(DEFAULT_MODEL)
    layers = [int(x) for x in args.layers.split(",")]
    stats = compute_stats(adapter, layers)
    down = {layer: adapter.down_proj_module(layer) for layer in layers}

    def token_keys(prompts, spans=None):
        """Per prompt: ({layer: keys [tokens, d_in]}, token indices of the span, or every real token)."""
        batch = adapter.tokenize(prompts)
        with torch.no_grad(), record_inputs(down) as keys:
            adapter.forward(batch)
        out = []
        for i in range(len(prompts)):
            n = int(batch.attention_mask[i].sum())
            if spans is None:
                index = list(range(1, n - 1))  # without [CLS] and [SEP]
            else:
                start, end = spans[i]
                index = [t for t, (a, b) in enumerate(batch.offsets[i]) if b > a and a >= start and b <= end]
            out.append(({layer: keys[layer][i].double() for layer in layers}, index))
        return out

    def placed(texts, templates):
        prompts, spans = [], []
        for text in texts:
            for template in templates:
                at = template.index("{}")
                prompts.append(template.format(text))
                spans.append((at, at + len(text)))
        return token_keys(prompts, spans)

    responses: dict[tuple, list[float]] = {}
    for case in load_knowledge(args.benchmark, args.limit):
        queries = placed(case.queries, EDIT_TEMPLATES)
        kept = placed(automatic_prompts(case.requests(), "query"), EDIT_TEMPLATES)
        held_out = {"eff": placed(case.queries, case.contexts), "para": placed(case.paraphrases, case.contexts),
                    "subj": placed(case.same_subject, case.contexts), "rel": placed(case.same_relation, case.contexts),
                    "unrel": token_keys(list(case.unrelated))}
        for layer in layers:
            K = torch.cat([keys[layer][index] for keys, index in queries]).T
            K_kept = torch.cat([keys[layer][index] for keys, index in kept]).T
            g = torch.linalg.solve(args.lam * stats[layer].mean.double() + K_kept @ K_kept.T + K @ K.T, K.sum(1))
            own = (K.T @ g).mean()
            for role, prompts in held_out.items():
                for keys, index in prompts:
                    r = (keys[layer][index] @ g) / own
                    responses.setdefault((layer, "max", role), []).append(r.max().item())
                    responses.setdefault((layer, "mean", role), []).append(r.mean().item())
    print(f"fraction of held-out prompts whose response exceeds τ = {', '.join(map(str, TAUS))}")
    for layer in layers:
        for how in ("max", "mean"):
            cells = []
            for role in ROLES:
                values = responses[(layer, how, role)]
                cells.append(f"{role} " + " ".join(f"{sum(v > t for v in values) / len(values):.2f}" for t in TAUS))
            print(f"layer {layer} {how:4s} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
