"""What an edit method is: a frozen dataclass of its hyperparameters with a closed-form solve.

A method sees one layer at a time (``editor.edit`` does the reading, the spreading over
layers and the bookkeeping) and returns ``ΔW`` for that layer's linear module:

    given  W [d_out, d_in], keys K [d_in, n], targets V [d_out, n] (bias already removed),
           the corpus second moment C (if it needs statistics), the Gram matrix of the
           remembered keys, whose values must stay (earlier edits, preserved prompts), and
           the state the method's earlier edits of a chain left for this layer (if it carries one)
    return ΔW as low-rank factors, so that (W + ΔW) K ≈ V and little else moves (and the state
           after this edit, for the next edit of the chain)

Adding a method is one file in this folder: subclass :class:`EditMethod` as a frozen
dataclass, declare its knobs with ``hyperparameters.hyperparameter``, set the class
attributes, write ``solve`` and decorate with :func:`register` (``methods/__init__.py``
imports the file). ``EditConfig``, the spec parser and the CLI options pick it up from the
registry (docs/architecture.md shows a worked example).

A method's file imports no torch at its top: ``solve`` imports the solvers it calls, so the
declarations (name, summary, knobs) are read without torch, as ``textedit --help`` reads them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Dict

from ..errors import SpecError
from ..hyperparameters import Declaration, check_declared, declarations

if TYPE_CHECKING:  # the annotations' types: a method's declaration is read without torch (the CLI's --help)
    import torch

    from ..solvers import LowRankDelta
    from ..stats import SecondMoment

#: what a method carries from one edit of a chain to the next, per layer: named float64 tensors,
#: stored in the patch beside ΔW (``ModuleDelta.state``) so that a saved chain continues
State = Dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class LayerProblem:
    """One layer's solve.

    ``W [d_out, d_in]`` the module's weight; ``K [d_in, n]`` the edit keys as columns; ``V
    [d_out, n]`` what ``W + ΔW`` must map them to (bias removed); ``moment`` the corpus
    statistics (methods that need them); ``remembered_gram [d_in, d_in]`` ``Σ k kᵀ`` over the
    remembered keys, whose values must stay (earlier edits of a chain, preserved prompts), or
    ``None``; ``remembered_count`` how many keys of earlier edits that sum holds (the preserved
    prompts' keys, weighted, are not counted); ``state`` what this method's earlier edits of
    the chain left for this layer (methods that carry state, ``EditMethod.carries_state``), or
    ``None``: the chain starts here.
    """

    W: torch.Tensor
    K: torch.Tensor
    V: torch.Tensor
    moment: SecondMoment | None = None
    remembered_gram: torch.Tensor | None = None
    remembered_count: int = 0
    state: State | None = None

    @property
    def mean_key_norm2(self) -> float:
        """Mean squared norm of the edit keys: the unit of key-relative ridge weights."""
        return self.K.double().pow(2).sum(0).mean().item()


@dataclass(frozen=True)
class EditMethod(ABC):
    """Base class of the edit methods. Fields: the method's hyperparameters."""

    #: the name used in specs, the CLI and patch.json
    name: ClassVar[str]
    #: one line for ``--help`` and docs
    summary: ClassVar[str]
    #: solves with the corpus second moment C (``stats.py``), computed or read from the cache
    needs_statistics: ClassVar[bool] = False
    #: can keep the remembered keys fixed (``remembered_gram``): those of earlier edits
    #: (``sequential.py``) and of preserved prompts (``preserve.py``)
    remembers_keys: ClassVar[bool] = False
    #: ``edit(remember=None)`` stores the keys it was solved for in the patch, for later edits
    #: to remember
    remember_by_default: ClassVar[bool] = False
    #: carries a state from one edit of a chain to the next (``solve_in_chain``: ``problem.state``
    #: in, the updated state out), which a remembering edit stores in its patch
    carries_state: ClassVar[bool] = False
    #: edits exactly one layer
    one_layer: ClassVar[bool] = False

    def __post_init__(self):
        check_declared(self)

    @abstractmethod
    def solve(self, problem: LayerProblem) -> LowRankDelta:
        """``ΔW`` for one layer: ``(W + ΔW) K ≈ V`` while little else moves."""

    def solve_in_chain(self, problem: LayerProblem) -> tuple[LowRankDelta, State | None]:
        """``(ΔW, the state the chain's next edit of this layer starts from)``. A method that
        carries no state solves and returns ``None``; one that does overrides this (and its
        ``solve`` returns the ``ΔW`` alone)."""
        return self.solve(problem), None

    @classmethod
    def hyperparameters(cls) -> dict[str, Declaration]:
        return declarations(cls)


#: every registered method by name, in registration order
METHODS: dict[str, type[EditMethod]] = {}


def register(method: type[EditMethod]) -> type[EditMethod]:
    """Make ``method`` known by its ``name`` (a class decorator)."""
    if method.name in METHODS:
        raise ValueError(f"an edit method named '{method.name}' is already registered")
    METHODS[method.name] = method
    return method


def method_class(name: str) -> type[EditMethod]:
    """The registered method ``name``; a one-line error listing the known ones otherwise."""
    if name not in METHODS:
        raise SpecError(f"unknown method '{name}': use one of {', '.join(METHODS)}")
    return METHODS[name]


def methods_with(attribute: str) -> list[str]:
    """The registered methods whose class sets ``attribute`` (``remembers_keys``,
    ``carries_state``, ``remember_by_default``), by name."""
    return sorted(name for name, cls in METHODS.items() if getattr(cls, attribute))


def remembering_methods() -> list[str]:
    """The registered methods that can keep earlier keys fixed (and preserved prompts), by name."""
    return methods_with("remembers_keys")


def chaining_methods() -> list[str]:
    """The registered methods whose edits can carry something to the next edit of a chain (keys
    to keep fixed, or a state to continue), by name: those ``remember`` means something for."""
    return sorted({*methods_with("remembers_keys"), *methods_with("carries_state")})
