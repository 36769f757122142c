"""Hyperparameters declared once: a dataclass field that carries its default, range and help.

An edit method (``textedit/methods/``) and the ``optimize`` value strategy
(``settings.OptimizeConfig``) declare their knobs with :func:`hyperparameter`. ``EditConfig``,
the spec parser and the CLI options are derived from these declarations, so a knob has one
name, one range and one help text everywhere, and a value out of range is refused in one
line before any model is loaded (a λ of −5 or NaN, a step count of 0 or 2.7).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .errors import SpecError


@dataclass(frozen=True)
class Declaration:
    """What a hyperparameter accepts: ``low < value ≤ high`` (``low ≤`` when ``low_inclusive``)."""

    help: str
    low: float
    high: float
    low_inclusive: bool = False
    integer: bool = False
    #: the default when keys are read per query token (``key="query"``), if it differs: a
    #: request then has about 40 keys instead of one template-averaged key
    query_default: float | None = None

    def check(self, name: str, value) -> None:
        """One line naming ``name`` unless ``value`` is a finite number in range (whole for counts)."""
        integer = self.integer
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise SpecError(f"hyperparameter '{name}' must be {'a whole number' if integer else 'a number'}, "
                            f"got {value!r}")
        if not math.isfinite(value):
            raise SpecError(f"hyperparameter '{name}' must be finite, got {value}")
        if value < self.low or (value == self.low and not self.low_inclusive) or value > self.high:
            bound = "≥" if self.low_inclusive else ">"
            raise SpecError(f"hyperparameter '{name}' must be {bound} {self.low:g} and ≤ {self.high:g}, got {value:g}")


def hyperparameter(default, help: str, *, low: float, high: float, low_inclusive: bool = False,
                   query_default: float | None = None):
    """A dataclass field declaring a hyperparameter (whole numbers when ``default`` is an int)."""
    declaration = Declaration(help, low, high, low_inclusive, isinstance(default, int) and not isinstance(default, bool),
                              query_default)
    return field(default=default, metadata={"hyperparameter": declaration})


def declarations(config_class) -> dict[str, Declaration]:
    """The hyperparameters a config dataclass declares, in declaration order."""
    return {f.name: f.metadata["hyperparameter"] for f in dataclasses.fields(config_class)
            if "hyperparameter" in f.metadata}


def check_declared(config) -> None:
    """Check every declared hyperparameter of a config dataclass instance (for ``__post_init__``)."""
    for name, declaration in declarations(type(config)).items():
        declaration.check(name, getattr(config, name))


def resolve(config_class, given: dict, key: str | None = None):
    """An instance of ``config_class`` from the ``given`` values (checked), the rest its
    defaults: the ``query_default`` where keys are read per query token."""
    values = {}
    for f in dataclasses.fields(config_class):
        declaration = f.metadata.get("hyperparameter")
        if declaration is None:
            continue
        if f.name in given:
            values[f.name] = given[f.name]
        elif key == "query" and declaration.query_default is not None:
            values[f.name] = declaration.query_default
    return config_class(**values)


def is_strength(scale) -> bool:
    """Whether ``scale`` can be an edit's strength: a finite real number (0, negative and >1 too).
    Read without torch, so ``--scale nan`` is refused before any library loads."""
    return not isinstance(scale, bool) and isinstance(scale, (int, float)) and math.isfinite(scale)
