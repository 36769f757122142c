#!/usr/bin/env python
"""Experiment (not a library feature): keep the subject's other knowledge in the VALUE, not the solve.

    python benchmarks/knowledge_essence_value.py textedit/data/knowledge_dev.json \
        '[{"w": 1.0, "relations": 12, "templates": 2, "solve_keep": "relation", "key": "subject", "auto_preserve": true}]' 12

ROME keeps a subject's "essence" with a KL term on "{subject} is a" while it trains δ. Here δ
(added at the subject's last token) is trained so the knowledge queries read as the anchor
while the subject's other relations ("the founder of Acme", ...: ``preserve.subject_prompts``,
the first ``relations`` of them in the first ``templates`` edit templates), with the same δ,
keep their sentence vectors (weight ``w``); the solve then keeps only the other subjects'
same relation (``solve_keep: relation``), since the subject's other prompts share the key and
δ is meant to be harmless there. The editor's ``optimize_deltas`` and ``automatic_prompts``
are replaced in this process only; each grid entry prints the knowledge benchmark's summary
(single mode). Result in docs/eval.md (dev table).
"""
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import textedit.editor as E  # noqa: E402
import textedit.sites as S
from textedit import preserve as P
from textedit.encoders import load_encoder, DEFAULT_MODEL
from textedit.editor import EditConfig
from textedit.eval.knowledge import load_knowledge
from textedit.eval.run import Evaluator
from textedit.hooks import add_to_output
from textedit.requests import EditRequest

bench, grid, limit = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
CURRENT = {}
orig_edit = E.edit
def edit(adapter, requests, config=None, **kw):
    CURRENT["requests"] = list(requests); CURRENT["config"] = config
    return orig_edit(adapter, requests, config, **kw)
E.edit = edit
import textedit.eval.run as R
R.edit = edit

def optimize_deltas(adapter, queries, targets, layer, streams, config, on_chunk=None):
    requests = CURRENT["requests"]; g = CURRENT["g"]
    params = [p for p in adapter.model.parameters() if p.requires_grad]
    for p in params: p.requires_grad_(False)
    try:
        with torch.no_grad():
            goal = F.normalize(adapter.embed(targets.prompts), dim=-1)
        # essence prompts: each request's subject under other relations, in a few templates
        kept_req, owner = [], []
        for i, r in enumerate(requests):
            prompts = P.subject_prompts([x for x in requests if x.subject == r.subject])[:g["relations"]]
            for p in prompts:
                kept_req.append(EditRequest(p, "x", r.subject)); owner.append(i)
        ktpl = list(CURRENT["config"].templates)[:g["templates"]]
        ksites = S.Sites.for_queries(adapter, kept_req, ktpl, "subject")
        kowner = torch.tensor([owner[j] for j in range(len(kept_req)) for _ in ktpl])
        with torch.no_grad():
            kgoal = F.normalize(adapter.embed(ksites.prompts), dim=-1)
        scale = streams.norm(dim=-1, keepdim=True).float()
        unit = torch.zeros(len(streams), streams.shape[1], requires_grad=True)
        opt = torch.optim.Adam([unit], lr=config.lr)
        qb, kb = adapter.tokenize(queries.prompts), adapter.tokenize(ksites.prompts)
        qrows, qpos, qreq = queries.site_prompts(), torch.tensor(queries.positions), queries.request_of_site()
        krows, kpos = ksites.site_prompts(), torch.tensor(ksites.positions)
        module = adapter.mlp_output_module(layer)
        for _ in range(config.steps):
            opt.zero_grad()
            delta = unit * scale
            def run(batch, rows, pos, req):
                def add(output):
                    plus = torch.zeros_like(output); plus[rows, pos] = delta[req].to(output.dtype); return plus
                with add_to_output(module, add):
                    out = adapter.forward(batch)
                return F.normalize(adapter.sentence_vector(batch, out).float(), dim=-1)
            qv = run(qb, qrows, qpos, qreq)
            kv = run(kb, krows, kpos, kowner)
            loss = (1 - (qv * goal).sum(-1)).mean() + g["w"] * (1 - (kv * kgoal).sum(-1)).mean() \
                + config.weight_decay * (unit ** 2).sum(-1).mean()
            loss.backward(); opt.step()
            with torch.no_grad():
                n = unit.norm(dim=-1, keepdim=True); unit.mul_(torch.clamp(config.clamp / n.clamp(min=1e-12), max=1.0))
        if on_chunk: on_chunk(len(streams))
        return (unit.detach() * scale).double()
    finally:
        for p in params: p.requires_grad_(True)
E.optimize_deltas = optimize_deltas

cases = load_knowledge(bench, limit)
adapter = load_encoder(DEFAULT_MODEL)
ev = Evaluator(adapter, cases)
for g in grid:
    CURRENT["g"] = {k: g.pop(k) for k in ("w", "relations", "templates", "solve_keep")}
    keep = CURRENT["g"]["solve_keep"]
    others = P.OTHER_SUBJECTS[:24]
    if keep == "relation":
        E.automatic_prompts = lambda reqs, key="subject": P.relation_prompts(reqs, others)
    elif keep == "all":
        E.automatic_prompts = lambda reqs, key="subject": P.automatic_prompts(reqs, key)
    r = ev.run(EditConfig(**g), "single"); s = r.summary
    print(json.dumps(CURRENT["g"]), json.dumps(g), f"eff {s.efficacy:.3f} gen {s.generality:.3f} subj {s.same_subject:.3f} rel {s.same_relation:.3f} drift {s.drift:.4f} max {s.max_drift:.3f}  {r.seconds_per_edit:.1f}s/edit", flush=True)
