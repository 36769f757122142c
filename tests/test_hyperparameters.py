"""Hyperparameters declared once: a field's default, range, help, and the checks they make."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from textedit.errors import SpecError
from textedit.hyperparameters import Declaration, check_declared, declarations, hyperparameter, resolve


@dataclass(frozen=True)
class Knobs:
    lam: float = hyperparameter(50.0, "weight", low=0.0, high=1e6, query_default=500.0)
    steps: int = hyperparameter(40, "steps", low=1, high=100, low_inclusive=True)
    decay: float = hyperparameter(0.01, "decay", low=0.0, high=1.0, low_inclusive=True)
    chunk: int = 16  # not a hyperparameter: no declaration, never checked or resolved

    def __post_init__(self):
        check_declared(self)


def test_declarations_are_the_declared_fields_in_order_with_their_kind():
    declared = declarations(Knobs)
    assert list(declared) == ["lam", "steps", "decay"]
    assert declared["steps"].integer and not declared["lam"].integer  # a count when the default is an int
    assert declared["lam"] == Declaration("weight", 0.0, 1e6, query_default=500.0)
    assert not hyperparameter(True, "a flag", low=0, high=1).metadata["hyperparameter"].integer


@pytest.mark.parametrize("name, value, fragment", [
    ("lam", 0.0, "must be > 0 and ≤ 1e+06, got 0"),  # low exclusive
    ("lam", 1e6 * 1.0001, "must be > 0"),
    ("lam", -5, "got -5"),
    ("lam", math.nan, "must be finite"),
    ("lam", math.inf, "must be finite"),
    ("lam", "3", "must be a number, got '3'"),
    ("lam", True, "must be a number, got True"),
    ("steps", 0, "must be ≥ 1 and ≤ 100, got 0"),
    ("steps", 2.0, "must be a whole number, got 2.0"),
    ("decay", -1e-9, "must be ≥ 0"),
])
def test_a_value_out_of_range_is_one_line_naming_the_knob(name, value, fragment):
    with pytest.raises(SpecError, match=f"hyperparameter '{name}'") as raised:
        Knobs(**{name: value})
    assert fragment in str(raised.value)


def test_the_bounds_themselves():
    Knobs(lam=1e6, steps=1, decay=0.0)
    Knobs(steps=100, decay=1.0, lam=1e-300)


def test_resolve_takes_the_given_values_then_the_query_default_then_the_default():
    assert resolve(Knobs, {}) == Knobs()
    assert resolve(Knobs, {}, key="query") == Knobs(lam=500.0)
    assert resolve(Knobs, {"lam": 3.0, "steps": 7}, key="query") == Knobs(lam=3.0, steps=7)
    assert resolve(Knobs, {"chunk": 2}) == Knobs()  # only declared knobs are resolved
    with pytest.raises(SpecError, match="'steps'"):
        resolve(Knobs, {"steps": 0})
