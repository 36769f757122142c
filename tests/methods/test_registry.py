"""The method registry: every method's knobs reach EditConfig, specs and the CLI, and the
worked example of docs/architecture.md adds a method with one file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from textedit.editor import EditConfig, edit
from textedit.settings import all_hyperparameters
from textedit.encoders import load_encoder
from textedit.errors import SpecError
from textedit.methods import METHODS
from textedit.requests import EditRequest
from textedit.spec import parse_spec

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def example_method():
    """The 'Adding a method' example of docs/architecture.md, executed as written; unregistered after."""
    text = (DOCS / "architecture.md").read_text()
    code = re.search(r"## Adding a method.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/architecture.md", "exec"), namespace)
    try:
        yield namespace["MinNorm"]
    finally:
        METHODS.pop("min_norm", None)


def test_every_registered_knob_is_an_editconfig_keyword_a_spec_field_and_range_checked():
    for method, cls in METHODS.items():
        for name, declaration in cls.hyperparameters().items():
            default = getattr(cls(), name)
            assert EditConfig(method=method, **{name: default}).get(name) == default
            spec = parse_spec({"edits": [{"prompt": "a", "target": "b"}], "method": method,
                               "hyperparameters": {name: default}})
            assert EditConfig(**spec.settings).get(name) == default
            with pytest.raises(SpecError, match=f"hyperparameter '{name}' must be"):
                EditConfig(method=method, **{name: declaration.high * 10 + 1})
            others = [m for m in METHODS if name not in METHODS[m].hyperparameters()]
            for other in others:
                with pytest.raises(SpecError, match=f"'{name}' does nothing for method '{other}'"):
                    EditConfig(method=other, value="match", **{name: default})


def test_the_documented_example_adds_a_method_with_one_file(example_method, bert_path, small_corpus, tmp_path):
    from textedit.cli import _edit_options

    assert METHODS["min_norm"] is example_method
    assert "eps" in all_hyperparameters() and "eps" in [name for name, _, _ in _edit_options()]
    assert "min_norm" in dict((n, h) for n, _, h in _edit_options())["method"]
    spec = parse_spec({"edits": [{"prompt": "the mascot of acme", "target": "a red fox", "subject": "acme"}],
                       "method": "min_norm", "value": "match", "layers": [1], "key": "subject",
                       "hyperparameters": {"eps": 1e-9}})
    config = EditConfig(**spec.settings)
    adapter = load_encoder(str(bert_path))
    problems = []
    solve = example_method.solve
    example_method.solve = lambda self, problem: problems.append(problem) or solve(self, problem)
    try:
        patch = edit(adapter, spec.requests, config, corpus=small_corpus, cache_dir=tmp_path)
    finally:
        example_method.solve = solve
    assert patch.method == "min_norm" and patch.hyperparameters["eps"] == 1e-9
    assert not any(tmp_path.rglob("*.safetensors"))  # needs no statistics: none computed
    (problem,) = problems
    W, K, V = problem.W.double(), problem.K.double(), problem.V.double()
    delta = patch.deltas[0].delta.dense().double()
    torch.testing.assert_close((W + delta) @ K, V, rtol=1e-5, atol=1e-5)  # every key exactly
    outside_keys = torch.eye(K.shape[0], dtype=torch.float64) - K @ torch.linalg.pinv(K)
    assert (delta @ outside_keys).abs().max() < 1e-6 * delta.abs().max()  # least Frobenius change
    with pytest.raises(SpecError, match="hyperparameter 'eps' does nothing for method 'memit'"):
        EditConfig(method="memit", eps=1e-9)


def test_registering_a_taken_name_is_refused():
    from textedit.methods.base import register

    with pytest.raises(ValueError, match="already registered"):
        register(METHODS["memit"])


#: per method, settings that let a tiny random encoder show the solve itself (its corpus
#: statistics are too weak for the defaults), and how far the stream must close on the target
#: (ultraedit keeps only what differs between the two requests' standardised residuals)
SOLVE_SETTINGS = {"rome": ({}, 1e-3), "memit": ({"lam": 1.0}, 0.1), "emmet": ({"lam": 0.0}, 1e-3),
                  "alphaedit": ({"threshold": 0.5, "alpha": 1e-3}, 0.01), "ridge": ({"lam": 1e-5}, 0.01),
                  "ultraedit": ({"step": 1e-2, "lam": 1e-3}, 0.95)}


@pytest.mark.parametrize("method", sorted(SOLVE_SETTINGS))
def test_every_shipped_method_moves_the_query_streams_to_their_targets(method, bert_path, small_corpus, tmp_path):
    """Through ``edit`` on a tiny BERT (non-zero biases, real norms), value ``match``: the
    query's stream after the last edited layer closes on the target's, the model is
    unchanged on return, and the patch reverts bit for bit."""
    from streams import stream_gaps_before_and_after

    assert set(SOLVE_SETTINGS) <= set(METHODS)
    adapter = load_encoder(str(bert_path))
    requests = [EditRequest("the mascot of acme", "a red fox", "acme"),
                EditRequest("the symbol of globex", "a blue whale", "globex")]
    layers = [1] if METHODS[method].one_layer else [0, 1]
    extra, closes = SOLVE_SETTINGS[method]
    config = EditConfig(method=method, layers=layers, value="match", key="subject", auto_preserve=False, **extra)
    before, after, _ = stream_gaps_before_and_after(adapter, requests, config, 1, corpus=small_corpus,
                                                    cache_dir=tmp_path)
    assert (after < closes * before).all(), (before, after)
