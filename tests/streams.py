"""How far an edit brings a query's stream to its target's: the check the method and
encoder-family tests share."""

from __future__ import annotations

import torch

from textedit.editor import edit
from textedit.sites import EDIT_TEMPLATES, Sites, read_states


def stream_gaps_before_and_after(adapter, requests, config, layer: int, **edit_kwargs):
    """Per request, ``‖z(query) − z(target)‖ / ‖z(target)‖`` after ``layer`` at the subject's
    key sites (target: the unedited encoder), before the edit and with its patch applied.
    Asserts that ``edit`` leaves the model as it was. Returns ``(before, after, patch)``."""
    queries = Sites.for_queries(adapter, requests, EDIT_TEMPLATES, "subject")
    targets = Sites.for_targets(adapter, requests, EDIT_TEMPLATES)
    goal = targets.average(read_states(adapter, targets, [layer])[layer].streams)

    def gap() -> torch.Tensor:
        z = queries.average(read_states(adapter, queries, [layer])[layer].streams)
        return (z - goal).norm(dim=-1) / goal.norm(dim=-1)

    before = gap()
    weights = {k: v.clone() for k, v in adapter.model.state_dict().items()}
    patch = edit(adapter, requests, config, **edit_kwargs)
    assert all(torch.equal(v, weights[k]) for k, v in adapter.model.state_dict().items())
    with patch.applied(adapter):
        after = gap()
    return before, after, patch
