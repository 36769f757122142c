"""The efficacy floor: every edit checks its requests in contexts it did not solve in, and the
search keeps the most automatic preservation that still meets it."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from cli_runner import run
from textedit.editor import UNMONOTONE_PROBES, EditConfig, _search, edit
from textedit.encoders import load_encoder
from textedit.errors import SpecError
from textedit.eval.knowledge import load_knowledge
from textedit.floor import CHECK_CONTEXTS, STRENGTHS, FloorCheck
from textedit.metrics import EVAL_TEMPLATES
from textedit.preserve import MORE_CONTEXTS
from textedit.requests import EditRequest
from textedit.sites import EDIT_TEMPLATES

REQUEST = [EditRequest("the mascot of acme", "a red fox", "acme"), EditRequest("acme's lucky animal", "a red fox", "acme")]


def test_check_contexts_are_contexts_no_solve_and_no_benchmark_reads():
    """The check must say how an edit reads where it was not solved, nor scored."""
    benchmarks = {c for path in ("textedit/data/knowledge_dev.json", "benchmarks/data/knowledge_test.json")
                  for c in load_knowledge(path)[0].contexts}
    assert len(set(CHECK_CONTEXTS)) == len(CHECK_CONTEXTS) >= 4
    for others in (EDIT_TEMPLATES, MORE_CONTEXTS, EVAL_TEMPLATES, benchmarks):
        assert not set(CHECK_CONTEXTS) & set(others)
    assert all(c.count("{}") == 1 for c in CHECK_CONTEXTS)
    assert STRENGTHS[0] == 1.0 and STRENGTHS[-1] == 0.0 and list(STRENGTHS) == sorted(STRENGTHS, reverse=True)


def test_margins_are_the_published_score_computed_one_prompt_at_a_time(bert_path):
    """m(q, c) = cos(e(c(q)), j(c(t))) − cos(e(c(q)), j(c(q))), the smallest over the contexts,
    against sentence vectors read one prompt at a time on a changed model."""
    adapter = load_encoder(str(bert_path))
    check = FloorCheck(adapter, REQUEST, 0.0, contexts=CHECK_CONTEXTS[:3])
    before = {p: adapter.embed([p])[0].double() for r in REQUEST for c in CHECK_CONTEXTS[:3]
              for p in (c.format(r.prompt), c.format(r.target))}
    with torch.no_grad():
        adapter.down_proj_module(0).weight.mul_(1.5)
    expected = []
    for r in REQUEST:
        per_context = []
        for c in CHECK_CONTEXTS[:3]:
            now = adapter.embed([c.format(r.prompt)])[0].double()
            per_context.append(F.cosine_similarity(now, before[c.format(r.target)], dim=0).item()
                               - F.cosine_similarity(now, before[c.format(r.prompt)], dim=0).item())
        expected.append(min(per_context))
    assert check.margins() == pytest.approx(expected, abs=1e-5)


class _FakeEdit:
    """A solve whose margins are known functions of each subject's strength; counts solves."""

    def __init__(self, margin_at, subjects=("acme",)):
        self.margin_at, self.subjects, self.applied, self.solves = margin_at, subjects, None, []
        self.floor, self.prompts = 0.0, [f"the mascot of {s}" for s in subjects]

    def solve(self, strengths=None):
        self.solves.append(dict(strengths or {}))
        self.applied = dict(strengths or {})
        return [f"deltas at {sorted(self.applied.items())}"]

    def restore(self):
        self.applied = None

    def margins(self):
        return [self.margin_at(s, self.applied.get(s, 1.0)) for s in self.subjects]


@pytest.mark.parametrize("passes_from", STRENGTHS)
def test_search_keeps_the_strongest_preservation_that_meets_the_floor(passes_from):
    """Against brute force: for a floor met from some strength down, the search returns the
    strongest strength of the ladder that meets it, in at most 2 + ⌈log₂(rungs)⌉ solves."""
    fake = _FakeEdit(lambda subject, s: 0.1 if s <= passes_from else -0.1)
    deltas, result = _search(fake.solve, fake.restore, fake, ["acme"])
    strongest = max(s for s in STRENGTHS if fake.margin_at("acme", s) >= 0)
    assert result.met and result.strengths == {"acme": strongest} and result.strength == passes_from
    assert deltas == [f"deltas at {[('acme', passes_from)]}"]
    assert len(fake.solves) == 1 if passes_from == 1.0 else 2 <= len(fake.solves) <= 2 + math.ceil(math.log2(len(STRENGTHS)))
    assert fake.applied is None  # every solve was taken off again


def test_search_weakens_only_the_subjects_whose_requests_miss():
    """In a batch, a concept that binds at full preservation keeps it while another steps down
    to the strongest strength at which it binds."""
    fake = _FakeEdit(lambda subject, s: 0.1 if subject == "acme" or s <= 4.0 ** -4 else -0.1, ("acme", "globex"))
    _, result = _search(fake.solve, fake.restore, fake, ["acme", "globex"])
    assert result.met and result.strengths == {"acme": 1.0, "globex": 4.0 ** -4}
    assert all(s["acme"] == 1.0 for s in fake.solves) and fake.solves[1]["globex"] == 0.0
    assert result.to_dict()["weakened"] == {"globex": 4.0 ** -4}


def test_search_probes_between_when_nothing_kept_misses_too():
    """Passing need not be monotone in the strength (the mascot with a named prompt kept misses
    at ¼ and 0, passes at 1/16): a subject that misses at 1 and at 0 probes between, strongest
    first, and bisects above the first probe that passes."""
    fake = _FakeEdit(lambda subject, s: 0.1 if 4.0 ** -3 <= s <= 4.0 ** -2 else -0.1)
    _, result = _search(fake.solve, fake.restore, fake, ["acme"])
    assert result.met and result.strength == 4.0 ** -2
    assert [s["acme"] for s in fake.solves] == [1.0, 0.0, 4.0 ** -2, 4.0 ** -1]


def test_search_in_a_batch_solves_the_chosen_strengths_together_and_falls_back_when_they_interact():
    """Two subjects settle in different rounds: their chosen strengths are solved together once
    more. When that combination misses (the subjects' kept prompts interact), the passing solve
    that kept the most is taken."""
    settle = {"acme": 4.0 ** -1, "globex": 4.0 ** -6}
    independent = _FakeEdit(lambda subject, s: 0.1 if s <= settle[subject] else -0.1, ("acme", "globex"))
    _, result = _search(independent.solve, independent.restore, independent, ["acme", "globex"])
    assert result.met and result.strengths == settle and independent.solves[-1] == settle

    class Interacting(_FakeEdit):
        def margins(self):  # globex binds at 4⁻⁶ only while acme keeps less than ¼
            a, g = self.applied["acme"], self.applied["globex"]
            return [0.1 if a <= settle["acme"] else -0.1, 0.1 if g <= settle["globex"] and a < settle["acme"] else -0.1]

    fake = Interacting(None, ("acme", "globex"))
    _, result = _search(fake.solve, fake.restore, fake, ["acme", "globex"])
    assert result.met
    passing = [s for s in fake.solves if s["acme"] < settle["acme"] and s["globex"] <= settle["globex"]]
    assert result.strengths == max(passing, key=lambda s: math.log(max(s["acme"], 1e-12)) + math.log(max(s["globex"], 1e-12)))


def test_search_that_cannot_meet_the_floor_keeps_the_closest_and_says_who_misses():
    fake = _FakeEdit(lambda subject, s: -0.3 + 0.1 * (1 - s))
    _, result = _search(fake.solve, fake.restore, fake, ["acme"])
    assert not result.met and result.strength == 0.0
    assert [s["acme"] for s in fake.solves] == [1.0, 0.0] + [STRENGTHS[i] for i in UNMONOTONE_PROBES]
    assert result.misses() == [("the mascot of acme", pytest.approx(-0.2))]
    assert "1 request(s) below the efficacy floor 0" in result.describe_misses()
    _, checked = _search(fake.solve, fake.restore, fake, [])  # "check": one solve, as given
    assert checked.strength == 1.0 and not checked.met
    closer_when_kept = _FakeEdit(lambda subject, s: -0.1 - 0.1 * (1 - s))  # misses least at full strength
    _, result = _search(closer_when_kept.solve, closer_when_kept.restore, closer_when_kept, ["acme"])
    assert not result.met and result.strength == 1.0


def test_edit_records_the_floor_and_weakens_only_automatic_prompts(bert_path, small_corpus, tmp_path):
    """On a tiny model: a floor no solve meets is searched to the weakest strength and the
    closest solve kept; the prompts the user names stay in the solve at full weight; the patch
    records what was tried; ``off`` records nothing and a floor knob then does nothing."""
    adapter = load_encoder(str(bert_path))
    common = dict(layers=[0, 1], value="match", key="subject", templates=("{}", "a photo of {}"))
    weights = adapter.down_proj_module(0).weight.detach().clone()
    patch = edit(adapter, REQUEST, EditConfig(**common, efficacy_floor=1.9), corpus=small_corpus, cache_dir=tmp_path,
                 preserve=["the house of acme"])
    floor = patch.hyperparameters["floor"]
    assert floor["efficacy_floor"] == 1.9 and not floor["met"]
    # missed at full strength, with none kept, and at every probe in between
    assert [t["strength"] for t in floor["tried"]] == [1.0, 0.0] + [STRENGTHS[i] for i in UNMONOTONE_PROBES]
    best = max(floor["tried"], key=lambda t: t["smallest_margin"])  # none meets it: the closest is kept
    assert floor["strength"] == best["strength"] and floor["smallest_margin"] == best["smallest_margin"]
    assert {m["prompt"] for m in floor["misses"]} == {r.prompt for r in REQUEST}
    assert patch.hyperparameters["preserved"][0] == "the house of acme"
    assert torch.equal(adapter.down_proj_module(0).weight, weights)  # the model is left as it was
    # the named prompt is held in every solve: with it alone there is nothing to search
    named = edit(adapter, REQUEST, EditConfig(**common, auto_preserve=False, efficacy_floor=1.9),
                 corpus=small_corpus, cache_dir=tmp_path, preserve=["the house of acme"])
    assert [t["strength"] for t in named.hyperparameters["floor"]["tried"]] == [1.0]
    met = edit(adapter, REQUEST, EditConfig(**common, efficacy_floor=-2.0), corpus=small_corpus, cache_dir=tmp_path)
    assert met.hyperparameters["floor"]["met"] and met.hyperparameters["floor"]["strength"] == 1.0
    off = edit(adapter, REQUEST, EditConfig(**common, floor="off"), corpus=small_corpus, cache_dir=tmp_path)
    assert off.hyperparameters["floor"] == "off" and "efficacy_floor" not in off.hyperparameters
    with pytest.raises(SpecError, match="'efficacy_floor' does nothing"):
        EditConfig(floor="off", efficacy_floor=0.1)
    with pytest.raises(SpecError, match="unknown floor mode 'sometimes'"):
        EditConfig(floor="sometimes")


def test_search_reads_the_first_layers_kept_keys_once(bert_path, small_corpus, tmp_path, monkeypatch):
    """The first edited layer sees no update of the edit at any rung: its kept prompts' Σkkᵀ is
    read once and reused (the later layers read theirs again, after the earlier updates), and
    the patch is the one the rungs would give read afresh (byte-identity measured against the
    previous code: docs/eval.md)."""
    import textedit.editor as editor
    adapter = load_encoder(str(bert_path))
    reads = []
    real = editor.KeyGramReader.gram

    def counted(self, layer, **kw):
        reads.append(layer)
        return real(self, layer, **kw)

    monkeypatch.setattr(editor.KeyGramReader, "gram", counted)
    common = dict(layers=[0, 1], value="match", key="subject", templates=("{}", "a photo of {}"))
    patch = edit(adapter, REQUEST, EditConfig(**common, efficacy_floor=1.9), corpus=small_corpus, cache_dir=tmp_path)
    rungs = [t["strength"] for t in patch.hyperparameters["floor"]["tried"]]
    assert rungs == [1.0, 0.0] + [STRENGTHS[i] for i in UNMONOTONE_PROBES]
    # one subject group: layer 0 once, layer 1 at every rung that keeps anything (not at strength 0)
    assert reads == [0] + [1] * (1 + len(UNMONOTONE_PROBES))


def test_apply_says_who_misses_the_floor_and_refuses_with_require_floor(monkeypatch, capsys, tmp_path, bert_path,
                                                                   small_corpus):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"anchor": "a red fox", "knowledge": [{"prompt": "the mascot of acme",
                                                                      "subject": "acme"}],
                                "layers": [0], "value": "match", "hyperparameters": {"efficacy_floor": 1.9}}))
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("\n".join(small_corpus.prompts))
    common = ["--model", bert_path, "--corpus", corpus_file, "--cache-dir", tmp_path / "cache"]
    code, out, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "patch", "--require-floor", *common)
    assert code != 0 and not (tmp_path / "patch").exists()
    line = err.strip().splitlines()[-1]
    assert "1 request(s) miss the efficacy floor 1.9" in line and "'the mascot of acme'" in line
    assert "nothing written (--require-floor)" in line and "Traceback" not in err
    # without --require-floor the miss is said and recorded, and the best solve written
    code, out, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "patch", *common)
    assert code == 0, err
    assert "warning: 1 request(s) miss the efficacy floor 1.9" in err
    recorded = json.loads((tmp_path / "patch" / "patch.json").read_text())["hyperparameters"]["floor"]
    assert recorded["mode"] == "search" and not recorded["met"]
    assert [m["prompt"] for m in recorded["misses"]] == ["the mascot of acme"]
    spec.write_text(json.dumps({"anchor": "a red fox", "knowledge": [{"prompt": "the mascot of acme",
                                                                      "subject": "acme"}],
                                "layers": [0], "value": "match", "floor": "off"}))
    code, out, err = run(monkeypatch, capsys, "apply", spec, "--out", tmp_path / "off", *common)
    assert code == 0, err
    assert json.loads((tmp_path / "off" / "patch.json").read_text())["hyperparameters"]["floor"] == "off"


def test_requests_that_keep_their_meaning_are_not_checked(bert_path):
    """An erasure keeps its preserved concepts as requests onto themselves: margin 0 by
    definition, so the floor checks only the requests that change something."""
    adapter = load_encoder(str(bert_path))
    check = FloorCheck(adapter, [*REQUEST, EditRequest("Pablo  Picasso", "pablo picasso")], 0.05)
    assert check.prompts == [r.prompt for r in REQUEST]
    assert FloorCheck(adapter, [EditRequest("picasso", "Picasso")], 0.05).prompts == []


def test_show_says_the_floor_in_one_line(monkeypatch, capsys, tmp_path, bert_path, small_corpus):
    adapter = load_encoder(str(bert_path))
    patch = edit(adapter, REQUEST, EditConfig(layers=[0], value="match", efficacy_floor=1.9), corpus=small_corpus,
                 cache_dir=tmp_path)
    patch.save(tmp_path / "patch")
    code, out, err = run(monkeypatch, capsys, "show", tmp_path / "patch")
    assert code == 0, err
    from textedit.cli import _floor_summary

    line = _floor_summary(patch.hyperparameters["floor"])
    assert line.startswith("search, margin 1.9: missed by 2 request(s), worst '") and "\n" not in line
    assert "missed by 2" in out and "'contexts'" not in out  # the record in one line, not the raw dict
