"""What an edit can be told, declared without torch: the value strategies, the ``optimize``
strategy's knobs, and every registered method's and strategy's hyperparameters.

``EditConfig`` (``editor.py``), the spec parser and the CLI's options are derived from these
declarations. Nothing here imports torch, so ``textedit apply --help`` lists every option
in a fraction of a second; the computations live in ``value_strategies.py`` and ``methods/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hyperparameters import Declaration, check_declared, declarations, hyperparameter
from .methods import METHODS


@dataclass(frozen=True)
class OptimizeConfig:
    """The ``optimize`` value strategy's knobs (``EditConfig`` routes them here)."""

    steps: int = hyperparameter(40, "optimisation steps", low=1, high=100_000, low_inclusive=True)
    lr: float = hyperparameter(0.1, "learning rate, relative to ‖z‖", low=0.0, high=100.0)
    clamp: float = hyperparameter(2.0, "max ‖δ‖ / ‖z‖", low=0.0, high=1e6)
    weight_decay: float = hyperparameter(0.01, "penalty on ‖δ‖²/‖z‖²", low=0.0, high=1e6, low_inclusive=True)
    #: stop a request once its loss has not fallen by ``1e-3`` for this many steps, and keep
    #: its best δ (0: run every step and keep the last δ, as before)
    patience: int = hyperparameter(0, "stop a request's optimisation after this many steps without progress, "
                                      "keeping its best δ (0: never)", low=0, high=100_000, low_inclusive=True)
    #: a request's target is reached, and its δ kept as it is, once the mean over its
    #: templates of 1 − cos(query's sentence vector, target's) is at most this and at most
    #: half its value at δ = 0 (0: never, every step runs). Off by default: precision first.
    #: 0.08 (docs/defaults.md) runs the mascot edit in 17 passes instead of 40 at the same
    #: similarities, but costs 5 points of same-subject specificity on the knowledge dev split
    tolerance: float = hyperparameter(0.0, "stop a request once the mean 1 − cos between its queries' and its "
                                           "target's sentence vectors is at most this and at most half its "
                                           "starting value (0: never)",
                                      low=0.0, high=2.0, low_inclusive=True)
    #: requests per micro-batch: all requests train in one optimisation, and a step runs their
    #: prompts in micro-batches of at most ``chunk`` × templates prompts of similar token length.
    #: δs of different requests never interact (separate rows, elementwise Adam, a summed loss),
    #: so the chunk changes only memory and padding; it keeps memory flat for thousands of requests
    chunk: int = 16

    def __post_init__(self):
        check_declared(self)


@dataclass(frozen=True)
class PreserveConfig:
    """The kept prompts' knobs (``preserve.py``), read by every method that keeps keys and
    recorded in a patch that kept prompts. Their defaults are the solve as it was before they
    existed: the edit's templates, each kept token weighing 1 (automatic prompts 1 / the
    number of subjects)."""

    #: docs/eval.md: on the knowledge dev split 32 contexts raise same-subject specificity
    #: 89.6 → 97.2 % for efficacy 92.9 → 78.8 % and generality 47.9 → 25.0 %
    preserve_contexts: int = hyperparameter(0, "contexts each kept prompt is read in: the edit's templates, then "
                                               "preserve.MORE_CONTEXTS, the weight shared among them (0: the "
                                               "edit's templates)", low=0, high=1000, low_inclusive=True)
    preserve_weight: float = hyperparameter(1.0, "weight of the kept prompts' keys against the edit's (1: each "
                                                 "kept token as much as an edit key)", low=0.0, high=1e6)

    def __post_init__(self):
        check_declared(self)


@dataclass(frozen=True)
class FloorConfig:
    """The efficacy floor's knob (``floor.py``), read by every edit whose ``floor`` is not
    ``"off"``: how much closer to its target than to its unedited self each request must read
    in contexts the edit did not solve in."""

    #: docs/eval.md ("The efficacy floor"): chosen on the knowledge dev split
    efficacy_floor: float = hyperparameter(0.05, "margin each request must keep in unseen contexts: cos to its "
                                                 "target − cos to its unedited self (the floor)",
                                           low=-2.0, high=2.0, low_inclusive=True)

    def __post_init__(self):
        check_declared(self)


#: what an edit does with the floor: ``search`` the most preservation that meets it, only
#: ``check`` the setting given (and say which requests miss), or nothing (``off``)
FLOOR_MODES = ("search", "check", "off")


#: each value strategy with the dataclass of its hyperparameters (``direct`` and ``match`` have none)
VALUE_CONFIGS = {"direct": None, "match": None, "optimize": OptimizeConfig}
VALUE_STRATEGIES = tuple(VALUE_CONFIGS)


def all_hyperparameters() -> dict[str, list[tuple[str, Declaration]]]:
    """Every hyperparameter name known to a registered method or value strategy, with who
    declares it and how: ``{"lam": [("memit", …), ("ridge", …)], "steps": [("optimize", …)]}``.
    The spec parser and the CLI options are derived from it."""
    owners = {**{name: cls for name, cls in METHODS.items()},
              **{name: cls for name, cls in VALUE_CONFIGS.items() if cls is not None}, "preservation": PreserveConfig, "floor": FloorConfig}
    known: dict[str, list[tuple[str, Declaration]]] = {}
    for owner, cls in owners.items():
        for name, declaration in declarations(cls).items():
            known.setdefault(name, []).append((owner, declaration))
    for name, declared in known.items():
        if len({d.integer for _, d in declared}) > 1:
            raise TypeError(f"hyperparameter '{name}' is a count for some of {[o for o, _ in declared]} and not others")
    return known
