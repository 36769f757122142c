"""textedit.settings: every knob an edit can be given, declared without torch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from textedit import settings
from textedit.hyperparameters import declarations, hyperparameter
from textedit.methods import METHODS


def test_every_method_and_strategy_knob_is_known_once_with_its_owners():
    """``all_hyperparameters`` lists each declared knob under its name, with every owner that
    declares it: read here from the dataclass fields themselves, an independent path."""
    known = settings.all_hyperparameters()
    owners = {**METHODS, **{n: c for n, c in settings.VALUE_CONFIGS.items() if c is not None},
              "preservation": settings.PreserveConfig, "floor": settings.FloorConfig}
    expected: dict[str, set[str]] = {}
    for owner, cls in owners.items():
        for f in dataclasses.fields(cls):
            if "hyperparameter" in f.metadata:
                expected.setdefault(f.name, set()).add(owner)
    assert {name: {owner for owner, _ in declared} for name, declared in known.items()} == expected
    assert {"lam", "steps", "tolerance"} <= set(known)
    assert [owner for owner, _ in known["steps"]] == ["optimize"]
    assert [owner for owner, _ in known["preserve_contexts"]] == ["preservation"]


def test_the_value_strategies_are_direct_match_optimize():
    assert settings.VALUE_STRATEGIES == ("direct", "match", "optimize")
    assert declarations(settings.OptimizeConfig)["steps"].integer
    with pytest.raises(Exception, match="steps"):
        settings.OptimizeConfig(steps=0)


def test_a_knob_that_is_a_count_for_one_owner_and_not_another_is_refused(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Counted:
        lam: int = hyperparameter(3, "a count", low=0, high=10)

    monkeypatch.setitem(settings.VALUE_CONFIGS, "counted", Counted)
    with pytest.raises(TypeError, match="'lam' is a count for some"):
        settings.all_hyperparameters()


def test_the_settings_import_no_torch():
    """The CLI builds `apply`/`erase`/`eval` options from this module: it must stay light."""
    probe = ("import sys, textedit.settings as s; s.all_hyperparameters(); "
             "print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
