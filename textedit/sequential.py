"""Sequential (lifelong) editing: many edits applied one after another to one encoder.

Each edit is solved on the model as the earlier edits left it and applied at once. Plain
MEMIT/ROME protect only the corpus statistics C, so edit 1,000 may overwrite edit 1. With
``remember=True`` the keys of every earlier edit ``K_p`` are kept fixed too:

    AlphaEdit   ΔW_tᵀ = (P (K_t K_tᵀ + K_p K_pᵀ) + a I)⁻¹ P K_t R_tᵀ     (null space of C)
    MEMIT       ΔW_t  = R_t K_tᵀ ((λ + m) C + K_p K_pᵀ + K_t K_tᵀ)⁻¹      K_p = [K_1 … K_{t−1}], m columns

The corpus weight grows with the memory (λ + m): against hundreds of remembered keys of weight
one, a fixed λ C let the later edits of a 36-concept chain separate themselves with directions
the corpus hardly constrains, and unrelated prompts lost their meaning (docs/eval.md).

The memory lives in the patches themselves: a remembering patch stores the keys it was
solved for (``ModuleDelta.keys``), so a history saved to disk and loaded again continues
where it stopped (``SequentialEditor(adapter, config, history=[Patch.load(p) ...])``).
MEMIT and AlphaEdit remember by default (``remember=False`` gives the plain sequential
editor); ROME's exact rank-one update cannot remember.

A method may also carry a state from one edit to the next (``EditMethod.carries_state``):
UltraEdit's lifelong normaliser, the running count, means and spreads of the keys and
gradients each layer has seen. Remembering, each patch stores the state after it
(``ModuleDelta.state``) and the next edit's ``LayerProblem.state`` is the newest one the
chain's patches of that method hold for the layer (``carried_state``), so a loaded history
continues it too; ``remember=False`` restarts it with every edit. UltraEdit remembers by
default.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .editor import EditConfig, edit, resolve_layers
from .encoders.base import EncoderAdapter
from .errors import SpecError
from .methods import State, chaining_methods
from .patch import ENCODER, Patch
from .requests import EditRequest
from .stats import SecondMoment, compute_stats


def remembered_gram(history: Sequence[Patch], component: str = ENCODER) -> dict[int, torch.Tensor]:
    """Per layer, ``Σ k kᵀ`` (float64) over the keys stored by the patches of ``history``."""
    return {layer: keys.double() @ keys.double().T for layer, keys in remembered_keys(history, component).items()}


def remembered_keys(history: Sequence[Patch], component: str = ENCODER) -> dict[int, torch.Tensor]:
    """Per layer, the keys ``[d_in, m]`` stored by the patches of ``history`` (column-stacked)."""
    parts: dict[int, list[torch.Tensor]] = {}
    for patch in history:
        for d in patch.deltas:
            if d.component == component and d.keys is not None:
                parts.setdefault(d.layer, []).append(d.keys)
    return {layer: torch.cat(keys, 1) for layer, keys in parts.items()}


def carried_state(history: Sequence[Patch], method: str, component: str = ENCODER) -> dict[int, State]:
    """Per layer, the state the newest patch of ``method`` in ``history`` stored (a method's
    state sums up the chain so far, so the newest is all a next edit needs)."""
    return {d.layer: d.state for patch in history if patch.method == method
            for d in patch.deltas if d.component == component and d.state is not None}


class SequentialEditor:
    """Edit ``adapter`` one batch of requests at a time, each patch applied before the next.

    Statistics (``stats``, else computed once here from ``corpus``/``cache_dir`` in
    ``edit_kwargs``) belong to the weights before any edit and serve every step.

    ``history`` holds the patches applied so far (newest last); :meth:`revert_all` takes them
    off again, newest first, restoring the original weights bit for bit.
    """

    def __init__(self, adapter: EncoderAdapter, config: EditConfig, *, stats: dict[int, SecondMoment] | None = None,
                 history: Sequence[Patch] = (), component: str = ENCODER, remember: bool | None = None,
                 **edit_kwargs):
        self.adapter, self.config, self.component = adapter, config, component
        method = config.method_class
        #: carry the chain's memory from edit to edit: keep the keys of every earlier edit fixed
        #: (memit, alphaedit), continue the method's state (ultraedit's normaliser); default:
        #: whenever the method can
        self.remember = (method.remembers_keys or method.carries_state) if remember is None else remember
        if self.remember and not (method.remembers_keys or method.carries_state):
            raise SpecError(f"method '{config.method}' carries nothing from one edit to the next: remembering is "
                            f"for {', '.join(chaining_methods())}")
        self.edit_kwargs = edit_kwargs
        if stats is None and config.method_class.needs_statistics:  # once, on the weights before any edit
            stats = compute_stats(adapter, resolve_layers(adapter, config), edit_kwargs.get("corpus"),
                                  scope=config.scope, cache_dir=edit_kwargs.get("cache_dir"))
        self.stats = stats
        self.history: list[Patch] = []
        for patch in history:
            patch.apply(adapter, component)
            self.history.append(patch)
        self.keeps_keys = self.remember and method.remembers_keys
        #: per layer, Σ k kᵀ over every remembered key, kept up to date edit by edit (so an edit
        #: costs the same at the 1,000th step as at the first)
        self.remembered_gram = remembered_gram(self.history, component) if self.keeps_keys else {}
        #: how many keys each edited layer remembers (memit adds it to λ, ``editor.edit``), kept
        #: up to date like ``remembered_gram``
        self.remembered_count = sum(_key_count(p, component) for p in self.history) if self.keeps_keys else 0
        #: per layer, the method's state after the newest edit (ultraedit's normaliser)
        self.state = carried_state(self.history, config.method, component) \
            if self.remember and method.carries_state else {}

    def edit(self, requests: Sequence[EditRequest], preserve: Sequence[str] = ()) -> Patch:
        """Solve ``requests`` on the current weights (remembering: keeping every earlier key), apply.

        ``preserve``: prompts whose meaning must not change (beside the automatic ones)."""
        patch = edit(self.adapter, requests, self.config, stats=self.stats, component=self.component,
                     remembered_gram=dict(self.remembered_gram) or None, remembered_count=self.remembered_count,
                     remember=self.remember, preserve=preserve, state=dict(self.state) or None,
                     **self.edit_kwargs)
        patch = patch.stored()  # applied as saved: a chain continued from saved patches is this chain
        patch.apply(self.adapter, self.component)
        self.history.append(patch)
        for layer, added in remembered_gram([patch], self.component).items():
            known = self.remembered_gram.get(layer)
            self.remembered_gram[layer] = added if known is None else known + added
        self.remembered_count += _key_count(patch, self.component) if self.keeps_keys else 0
        self.state.update(carried_state([patch], self.config.method, self.component))
        return patch

    def revert_all(self) -> None:
        while self.history:
            self.history.pop().revert(self.adapter, self.component)
        self.remembered_gram = {}
        self.remembered_count = 0
        self.state = {}


def edit_after(adapter: EncoderAdapter, requests: Sequence[EditRequest], config: EditConfig,
               history: Sequence[Patch], *, remember: bool | None = None, component: str = ENCODER,
               preserve: Sequence[str] = (), **edit_kwargs) -> Patch:
    """One edit made on top of earlier patches (``textedit apply --after``).

    The ``history`` patches are applied in order. ``requests`` are solved on the weights they
    leave: with ``remember`` (default for memit, alphaedit and ultraedit) the keys those patches
    stored stay fixed, or the method's state they stored continues. The new patch records them
    in ``hyperparameters["after"]``, so applying it later asks for them first. On return,
    ``adapter`` carries the history but not the new patch. Patches of the history that store no
    keys cannot be kept fixed, nor can a state they did not store be continued; use
    ``patches_without_keys`` / ``patches_without_state`` to say so.
    """
    editor = SequentialEditor(adapter, config, history=history, component=component, remember=remember,
                              **edit_kwargs)
    patch = editor.edit(requests, preserve=preserve)
    patch.revert(adapter, component)
    patch.hyperparameters["after"] = [p.id for p in history]
    return patch


def patches_without_keys(history: Sequence[Patch], component: str = ENCODER) -> list[int]:
    """Positions in ``history`` of patches that store no keys for ``component`` (made without remembering)."""
    return [i for i, patch in enumerate(history)
            if not any(d.keys is not None for d in patch.deltas if d.component == component)]


def patches_without_state(history: Sequence[Patch], method: str, component: str = ENCODER) -> list[int]:
    """Positions in ``history`` of ``method``'s patches that store no state for ``component``
    (made without remembering): a chain continued past them misses what they saw."""
    return [i for i, patch in enumerate(history) if patch.method == method
            and not any(d.state is not None for d in patch.deltas if d.component == component)]


def _key_count(patch: Patch, component: str = ENCODER) -> int:
    """Keys ``patch`` remembers per layer (every layer stores the same number: one per site)."""
    return max((d.keys.shape[1] for d in patch.deltas if d.component == component and d.keys is not None), default=0)
