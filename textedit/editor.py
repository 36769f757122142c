"""Orchestration: requests → keys K, values V → one closed-form solve per layer → Patch.

For layers ``l_1 < … < l_m`` (the last one ``L``) and n requests:

1. read keys and streams at every request's key sites: averaged over its templates (one
   key per request, MEMIT's convention) or, for ``key="query"``, one key per query token;
2. fix the target: per-layer target values (``direct``) or a target stream z*_L after the
   last layer (``match``, ``optimize``; see ``value_strategies.py``);
3. for each layer in order, with the updates of earlier layers already in the weights,
   re-read keys K [d_in, n_keys] and the current stream z_L, give this layer the share
   (z*_L − z_L) / (m − i) of what is left (MEMIT's spreading), so V = v_l + share, and
   solve for ΔW_l with the chosen solver. Values are read at the layer's output
   ``v = W k + b``, so the solver is asked for ``(W + ΔW) k = V − b``;
4. put the original weights back and return the deltas as a :class:`Patch`.

The user's model is left exactly as it was; applying the patch is a separate step.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
from rich.progress import Progress

from .corpus import Corpus
from .encoders.base import EncoderAdapter
from .errors import SpecError
from .floor import STRENGTHS, FloorCheck, FloorResult
from .hyperparameters import Declaration, declarations, resolve
from .methods import EditMethod, LayerProblem, State, chaining_methods, method_class, remembering_methods
from .patch import ENCODER, ModuleDelta, Patch
from .preserve import automatic_prompts, kept_contexts
from .progress import progress_bar
from .requests import EditRequest, contradictions, is_template, repeats
from .sites import EDIT_TEMPLATES, KEY_POSITIONS, KeyGramReader, Sites, read_states, token_key_gram
from .stats import SCOPES, SecondMoment, compute_stats
from .settings import (FLOOR_MODES, VALUE_CONFIGS, VALUE_STRATEGIES, FloorConfig, OptimizeConfig, PreserveConfig,
                       all_hyperparameters)
from .value_strategies import optimize_deltas


#: default layers: the contiguous block from the first layer to 1/3 of the depth (MiniLM:
#: 0, 1, 2; CLIP-L: 0..4), where causal tracing finds the subject's MLP effect, chosen by
#: measurement on the TIMED validation set (docs/eval.md, docs/locate.md)
DEFAULT_LAYER_SPAN = (0, 1 / 3)


@dataclass(init=False)
class EditConfig:
    """How to edit: the method (``textedit/methods/``), layers, value strategy, where keys
    are read, and the hyperparameters that were set; the others take the method's and the
    value strategy's defaults.

    ``EditConfig(method="memit", lam=3000, steps=20)``: a hyperparameter the chosen method and
    value strategy do not read, or a value out of its range, is a :class:`SpecError` here,
    before any model is loaded, never a setting that silently does nothing.
    """

    method: str
    layers: Sequence[int] | None
    value: str
    templates: Sequence[str]
    scope: str
    #: where each request's key is read (``sites.KEY_POSITIONS``); ``None``: the encoder family's default
    key: str | None
    #: keep what else the model knows about each request's subject (``preserve.py``): the
    #: automatic preserved prompts. ``None``: on for bidirectional encoders with a method that
    #: keeps keys (memit, alphaedit), where it was measured: on the knowledge benchmark's test
    #: split it lifts same-subject specificity from 5 % to 87 % for generality 97 → 59 % and
    #: efficacy 99 → 96 % (docs/eval.md); the efficacy floor (``floor``) then weakens it where
    #: the requests would not bind. Off for causal encoders, where it was not measured on real
    #: weights
    auto_preserve: bool | None
    #: the efficacy floor (``floor.py``): ``search`` the most preservation whose requests all
    #: read as their targets in unseen contexts (by ``efficacy_floor``), ``check`` the setting
    #: as given and record which requests miss, or ``off``
    floor: str
    #: the hyperparameters given (by name); the rest take their defaults
    hyperparameters: dict[str, float]

    def __init__(self, method: str = "memit", layers: Sequence[int] | None = None, value: str = "optimize",
                 templates: Sequence[str] = EDIT_TEMPLATES, scope: str = "prompt", key: str | None = None,
                 auto_preserve: bool | None = None, floor: str = "search",
                 hyperparameters: dict[str, float] | None = None, **given):
        self.method, self.layers, self.value, self.templates = method, layers, value, templates
        self.scope, self.key, self.auto_preserve, self.floor = scope, key, auto_preserve, floor
        self.hyperparameters = {k: v for k, v in {**(hyperparameters or {}), **given}.items() if v is not None}
        #: the hyperparameters a profile filled in (``profile.Profile.configure``), not the user:
        #: a kept-prompt knob among them is no error where an edit keeps no prompts
        self.from_profile: tuple[str, ...] = ()
        self._check()

    def _check(self) -> None:
        method = method_class(self.method)
        if self.floor not in FLOOR_MODES:
            raise SpecError(f"unknown floor mode '{self.floor}': use one of {', '.join(FLOOR_MODES)}")
        if self.value not in VALUE_STRATEGIES:
            raise SpecError(f"unknown value strategy '{self.value}': use one of {', '.join(VALUE_STRATEGIES)}")
        used = self._declared()
        for name in self.hyperparameters:
            if name not in used:
                raise SpecError(f"hyperparameter '{name}' does nothing for method '{self.method}' with value "
                                f"'{self.value}'" if name in all_hyperparameters() else
                                f"unknown hyperparameter '{name}' (known: {', '.join(sorted(all_hyperparameters()))})")
        for name, value in self.hyperparameters.items():
            used[name].check(name, value)
        if self.key is not None and self.key not in KEY_POSITIONS:
            raise SpecError(f"unknown key position '{self.key}': use one of {', '.join(KEY_POSITIONS)}")
        if self.auto_preserve and not method.remembers_keys:
            _refuse_preserving(self.method)
        if self.scope not in SCOPES:
            raise SpecError(f"unknown token scope '{self.scope}': use one of {', '.join(SCOPES)}")
        bad = [t for t in self.templates if not is_template(t)]
        if not self.templates or bad:
            raise SpecError(f"template {bad[0]!r} must contain '{{}}' exactly once and no other brace" if bad
                            else "give at least one template")

    def _declared(self) -> dict[str, Declaration]:
        """The hyperparameters this method and value strategy read, the kept prompts' if the
        method keeps keys, and the floor's unless it is off."""
        value_config = VALUE_CONFIGS[self.value]
        return {**declarations(method_class(self.method)), **(declarations(value_config) if value_config else {}),
                **(declarations(PreserveConfig) if self.method_class.remembers_keys else {}),
                **(declarations(FloorConfig) if self.floor != "off" else {})}

    @property
    def method_class(self) -> type[EditMethod]:
        return method_class(self.method)

    def solver(self, adapter: EncoderAdapter | None = None) -> EditMethod:
        """The method with its hyperparameters: those set, else its defaults for this key position."""
        given = {k: v for k, v in self.hyperparameters.items() if k in declarations(self.method_class)}
        return resolve(self.method_class, given, self._key(adapter))

    def optimize_config(self) -> OptimizeConfig:
        return resolve(OptimizeConfig, {k: v for k, v in self.hyperparameters.items()
                                        if k in declarations(OptimizeConfig)})

    def floor_config(self) -> FloorConfig:
        return resolve(FloorConfig, {k: v for k, v in self.hyperparameters.items() if k in declarations(FloorConfig)})

    def preserve_config(self) -> PreserveConfig:
        return resolve(PreserveConfig, {k: v for k, v in self.hyperparameters.items()
                                        if k in declarations(PreserveConfig)})

    def get(self, name: str, adapter: EncoderAdapter | None = None):
        """The value of hyperparameter ``name``: set, else the default for this method (and
        key position: ``adapter`` resolves the family's default key when ``key`` is unset)."""
        if name in declarations(self.method_class):
            return getattr(self.solver(adapter), name)
        if name in self._declared() and name in declarations(PreserveConfig):
            return getattr(self.preserve_config(), name)
        if name in self._declared() and name in declarations(FloorConfig):
            return getattr(self.floor_config(), name)
        if name in self._declared():
            return getattr(self.optimize_config(), name)
        raise SpecError(f"hyperparameter '{name}' does nothing for method '{self.method}' with value '{self.value}'")

    def _key(self, adapter: EncoderAdapter | None) -> str | None:
        return self.key_position(adapter) if adapter is not None else self.key

    def preserves(self, adapter: EncoderAdapter | None = None) -> bool:
        """Whether the subject's other knowledge is kept: ``auto_preserve``, else by default
        for a method that keeps keys on a bidirectional encoder (see ``auto_preserve``)."""
        if self.auto_preserve is not None:
            return self.auto_preserve
        return self.method_class.remembers_keys and not (adapter is not None and adapter.causal)

    def key_position(self, adapter: EncoderAdapter | None) -> str | None:
        """Where keys are read: ``key``, else the encoder family's default."""
        return self.key or (adapter.default_key if adapter is not None else None)

    def used_hyperparameters(self, layers: Sequence[int], adapter: EncoderAdapter | None = None,
                             keeps_prompts: bool = False) -> dict:
        """Every knob this edit actually used, with its value (goes into patch.json); the kept
        prompts' knobs (``PreserveConfig``) only if it ``keeps_prompts``."""
        used = [name for name in self._declared() if keeps_prompts or name not in declarations(PreserveConfig)]
        return {"layers": list(layers), "value": self.value, "templates": list(self.templates), "scope": self.scope,
                "key": self._key(adapter), "auto_preserve": self.preserves(adapter), "floor": self.floor,
                **{name: self.get(name, adapter) for name in used}}


class TargetCache:
    """Targets an edit computed, for later edits that would compute the same ones.

    An edit's targets (per-layer values for ``direct``, the stream z*_L after the last layer
    otherwise) depend on the model's weights, the requests, their key sites (templates, key
    position), the layers the value strategy reads and its knobs; not on λ, the method, the
    other layers or the preservation. ``textedit tune`` measures settings one after another on
    the same requests: with a cache, the settings that share a last layer optimise the values
    once. The cache is the caller's (no global state) and keyed by all of the above, the
    weights by their fingerprint, so an edit made on other weights never reads it.
    """

    def __init__(self):
        self._targets: dict[tuple, tuple] = {}

    def __len__(self) -> int:
        return len(self._targets)

    @staticmethod
    def key(fingerprint: str, requests: Sequence[EditRequest], config: "EditConfig", key: str, layers: list[int]):
        knobs = sorted(vars(config.optimize_config()).items()) if config.value == "optimize" else ()
        return (fingerprint, config.value, tuple(layers) if config.value == "direct" else layers[-1], key,
                tuple(config.templates), tuple((r.prompt, r.target, r.subject) for r in requests), tuple(knobs))

    def get(self, key: tuple):
        return self._targets.get(key)

    def put(self, key: tuple, targets: tuple) -> None:
        self._targets[key] = targets


def _refuse_preserving(method: str) -> None:
    """Preserved prompts enter the solve as remembered keys: a method without them cannot keep any."""
    raise SpecError(f"preserving prompts needs a method that keeps keys ({', '.join(remembering_methods())}), "
                    f"not '{method}'")


def default_layers(adapter: EncoderAdapter, method: str = "memit") -> list[int]:
    """Layers edited when none are given: ``DEFAULT_LAYER_SPAN`` of the depth.

    A one-layer method (ROME) edits the first of that block.
    """
    n = adapter.num_layers
    first = min(n - 1, round(DEFAULT_LAYER_SPAN[0] * n))
    last = max(first, min(n - 1, round(DEFAULT_LAYER_SPAN[1] * n)))
    return [first] if method_class(method).one_layer else list(range(first, last + 1))


def resolve_layers(adapter: EncoderAdapter, config: EditConfig) -> list[int]:
    """The layers ``config`` edits on ``adapter`` (its own or the defaults), checked."""
    layers = adapter.check_layers(config.layers if config.layers is not None else
                                  default_layers(adapter, config.method))
    if config.method_class.one_layer and len(layers) != 1:
        raise SpecError(f"method '{config.method}' edits one layer, got layers {layers}: use 'memit' for several")
    return layers


def _distinct(requests: Sequence[EditRequest]) -> list[EditRequest]:
    """``requests`` without repeats (warned): a repeat only weighs its request twice. A
    prompt given two targets is warned about and solved as asked: its keys are one, so the
    least-squares solve sends them toward the mean of the targets (benchmarks such as TIMED
    hold such rows, and batch mode edits them together)."""
    dropped = {j for _, j in repeats(requests)}
    if dropped:
        warnings.warn(f"{len(dropped)} edit request(s) repeat earlier ones (e.g. '{requests[min(dropped)].prompt}'); "
                      f"each is edited once")
    clashes = contradictions(requests)
    if clashes:
        i, j = clashes[0]
        warnings.warn(f"{len({i for i, _ in clashes})} prompt(s) are given two or more targets (e.g. "
                      f"'{requests[i].prompt}' → '{requests[i].target}' and '{requests[j].target}'); they are solved "
                      f"together, toward the mean of their targets")
    return [r for k, r in enumerate(requests) if k not in dropped]


def edit(adapter: EncoderAdapter, requests: Sequence[EditRequest], config: EditConfig | None = None, *,
         stats: dict[int, SecondMoment] | None = None, corpus: Corpus | None = None, cache_dir=None,
         component: str = ENCODER, progress: bool = False,
         remembered_gram: dict[int, torch.Tensor] | None = None, remembered_count: int = 0,
         remember: bool | None = None, preserve: Sequence[str] = (), state: dict[int, State] | None = None,
         targets_cache: TargetCache | None = None) -> Patch:
    """Compute the patch that makes every request's key produce its target.

    ``stats`` may be passed to reuse statistics; otherwise they are computed (or read from
    the cache) for the methods that need them. ``remembered_gram`` (memit, alphaedit): per
    layer, ``Σ k kᵀ [d_in, d_in]`` over the remembered keys, those of earlier edits whose
    values must stay (``sequential.py``); ``remembered_count``, how many keys that sum holds,
    is added to memit's λ: the corpus then weighs as λ tokens plus one per remembered key, so
    later edits of a long chain cannot buy their separation from the earlier keys with
    directions the corpus barely constrains (docs/eval.md: drift after 12 concepts 0.035 →
    0.017). ``remember`` stores what the chain's later edits need in the patch (``apply
    --remember``; default: the method's ``remember_by_default``, alphaedit): this edit's keys,
    one per request and template, for later edits to keep fixed (memit, alphaedit), or the
    method's state after it (ultraedit's normaliser). ``state`` (methods that carry state):
    per layer, the state the chain's earlier edits left, which this edit continues
    (``sequential.py``; ``None``: the chain starts here). ``preserve``: prompts whose meaning must not change,
    kept in the solve beside the automatic ones made from the requests' subjects when
    ``config.preserves(adapter)`` (``preserve.py``). ``targets_cache``: targets computed by
    earlier edits with the same requests, weights and value settings are reused from it, and
    this edit's are put in it (:class:`TargetCache`). The model is unchanged on return.
    """
    config = config or EditConfig()
    if not requests:
        raise SpecError("no edit requests given")
    requests = _distinct(requests)
    method = config.solver(adapter)
    if remember is None:
        remember = method.remember_by_default
    if remembered_gram and not method.remembers_keys:
        raise SpecError(f"keys of earlier edits are kept by methods {', '.join(remembering_methods())}, "
                        f"not '{config.method}'")
    if (remember or state) and not (method.remembers_keys or method.carries_state):
        raise SpecError(f"method '{config.method}' carries nothing from one edit to the next: remembering is for "
                        f"{', '.join(chaining_methods())}")
    layers = resolve_layers(adapter, config)
    fingerprint = adapter.fingerprint()
    if method.needs_statistics:
        missing = [layer for layer in layers if stats is None or layer not in stats]
        if missing:
            stats = dict(stats or {})
            stats.update(compute_stats(adapter, missing, corpus, scope=config.scope, cache_dir=cache_dir,
                                       progress=progress, fingerprint=fingerprint))

    if preserve and not method.remembers_keys:
        _refuse_preserving(config.method)
    key = config.key_position(adapter)
    queries = Sites.for_queries(adapter, requests, config.templates, key)
    automatic = automatic_prompts(requests, key) if config.preserves(adapter) else []
    kept_prompts = list(dict.fromkeys([*preserve, *automatic]))
    # every kept prompt in every edit context: the contexts the queries' keys were read in.
    # Named prompts weigh 1 per token; the automatic ones 1 / (number of subjects), so that
    # a batch of many subjects keeps, in all, what one subject keeps: summed at full weight,
    # tens of thousands of kept tokens fill the key space and the edit does nothing (36
    # concepts in one edit: efficacy 0 %, docs/eval.md)
    # The weights of a kept prompt's contexts sum to what the edit's templates alone would weigh
    # (``preserve.kept_contexts``), times ``preserve_weight``.
    subjects = len({r.subject for r in requests if r.subject})
    preserving = config.preserve_config()
    given = [name for name in declarations(PreserveConfig) if name in config.hyperparameters
             and name not in config.from_profile]
    if given and not kept_prompts:
        raise SpecError(f"hyperparameter '{given[0]}' does nothing here: this edit keeps no prompts (no 'preserve' "
                        f"list, and automatic preservation is off)")
    contexts, per_context = kept_contexts(config.templates, preserving.preserve_contexts)
    # (weight, prompts, subject): the automatic prompts in one group per subject, whose strength
    # the floor's search sets subject by subject; the prompts the user names (subject None) are
    # a promise of the user's own, kept as given
    named = list(dict.fromkeys(preserve))
    by_subject: dict[str, list[str]] = {}
    own = {r.subject: set(automatic_prompts([q for q in requests if q.subject == r.subject], key))
           for r in requests if r.subject}
    for prompt in (p for p in automatic if p not in named):
        subject = next((sub for sub, prompts in own.items() if prompt in prompts), next(iter(own)))
        by_subject.setdefault(subject, []).append(prompt)
    scale = per_context * preserving.preserve_weight
    kept_groups = [(scale, named, None)] if named else []
    kept_groups += [(scale / max(1, subjects), prompts, subject) for subject, prompts in by_subject.items()]
    targets = Sites.for_targets(adapter, requests, config.templates)
    floor = config.floor_config().efficacy_floor if config.floor != "off" else None
    searching = config.floor == "search" and bool(by_subject)

    originals = {layer: adapter.down_proj_module(layer).weight.detach().clone() for layer in layers}

    def restore() -> None:
        with torch.no_grad():
            for layer, weight in originals.items():
                adapter.down_proj_module(layer).weight.copy_(weight)

    bar = progress_bar(disable=not progress)
    bar.start()
    try:
        cache_key = TargetCache.key(fingerprint, requests, config, key, layers) if targets_cache is not None else None
        cached = targets_cache.get(cache_key) if targets_cache is not None else None
        target_values, target_streams = cached or _targets(adapter, queries, targets, layers, config, bar)
        if targets_cache is not None and cached is None:
            targets_cache.put(cache_key, (target_values, target_streams))
        check = FloorCheck(adapter, requests, floor) if floor is not None else None
        if check is not None and not check.prompts:  # nothing to bind: nothing to check
            check = None

        first_layer_grams: dict[int, torch.Tensor] = {}
        first_read: list = []  # the query sites' states before any update, shared by the search's rungs

        readers: dict[int, KeyGramReader] = {}

        def kept_key_gram(group: int, prompts: list[str], i: int) -> torch.Tensor:
            """Σ kkᵀ of a group's kept prompts at ``layers[i]``. The first edited layer reads the
            unedited weights whatever the strengths, so each search rung reuses its sum
            (exact); later layers read it again, after the earlier layers' updates, replaying
            the blocks below ``layers[i − 1]``, the last one updated (exact: ``KeyGramReader``)."""
            if i == 0 and group in first_layer_grams:
                return first_layer_grams[group]
            if group not in readers:
                readers[group] = KeyGramReader(adapter, [t.format(p) for p in prompts for t in contexts])
            gram = readers[group].gram(layers[i], unchanged=layers[max(0, i - 1)])
            if i == 0:
                first_layer_grams[group] = gram
            return gram

        def solve(strengths: dict[str, float] | None = None) -> list[ModuleDelta]:
            """The layer-by-layer solve, each subject's automatic kept prompts at its strength in
            ``strengths`` × their weight (1 if absent), left applied (the caller checks it, then
            puts the original weights back)."""
            deltas = []
            for i, layer in enumerate(layers):
                if i == 0 and first_read:  # nothing is updated yet: every rung reads the same states
                    now = first_read[0]
                else:
                    now = _read(adapter, queries, sorted({layer, layers[-1]}), bar, f"keys, layer {layer}")
                    if i == 0:
                        first_read.append(now)
                keys = queries.reduce(now[layer].keys)  # [n_keys, d_in]: one per request, or per site
                if target_values is not None:
                    values = queries.reduce(queries.expand(target_values[layer]))
                else:
                    share = queries.reduce(target_streams - now[layers[-1]].streams) / (len(layers) - i)
                    values = adapter.value_for_stream(layer, queries.reduce(now[layer].values), share)
                module = adapter.down_proj_module(layer)
                # values are read at the layer's output, W k + b; the solvers map keys through W alone
                weight_targets = values - _bias(module)
                remembered = (remembered_gram or {}).get(layer)  # Σ kkᵀ over keys whose values must stay
                for group, (weight, prompts, subject) in enumerate(kept_groups):  # kept prompts' keys keep
                    weight = weight * (strengths or {}).get(subject, 1.0)  # their values: Σ kkᵀ joins the remembered
                    if weight > 0:  # read with the earlier layers' updates in place, as the queries' keys are
                        kept_gram = weight * kept_key_gram(group, prompts, i)
                        remembered = kept_gram if remembered is None else kept_gram + remembered.double()
                # solves run on the CPU in float64 whatever the model's device and dtype
                delta, after = method.solve_in_chain(LayerProblem(
                    module.weight.detach().cpu(), keys.T.cpu(), weight_targets.T.cpu(),
                    stats[layer] if method.needs_statistics else None, remembered_gram=remembered,
                    remembered_count=remembered_count, state=(state or {}).get(layer)))
                with torch.no_grad():
                    # ΔW formed on the weight's device from its rank-n factors: only they cross
                    updated = module.weight.double() + delta.dense(module.weight.device)
                    module.weight.copy_(updated.to(module.weight.dtype))
                # every template's key, not their mean: a later edit must keep each context's value
                stored = now[layer].keys.T.cpu().float() if remember and method.remembers_keys else None
                deltas.append(ModuleDelta(component, layer, adapter.down_proj_name(layer), delta, stored,
                                          state=after if remember else None))
            return deltas

        deltas, floor_result = _search(solve, restore, check, list(by_subject) if searching else [])
    finally:
        bar.stop()
        restore()

    used = config.used_hyperparameters(layers, adapter, keeps_prompts=bool(kept_prompts))
    return Patch(deltas=deltas, base_fingerprints={component: fingerprint}, family=adapter.family,
                 method=config.method, hyperparameters={**used, **({"preserved": kept_prompts} if kept_prompts else {}),
                                                        **({"floor": {"mode": config.floor, **floor_result.to_dict()}} if floor_result else {})},
                 requests=[r.to_dict() for r in requests])


#: ladder indices a subject that missed at full strength and with nothing kept tries, strongest
#: first, before it is given up: ``edits/mascot.json`` (with its named "the founder of Acme"
#: kept) misses at 1, ¼ and 0 and meets the floor at 1/16
UNMONOTONE_PROBES = (2, 4, 6)


def _search(solve, restore, check: FloorCheck | None, subjects: Sequence[str]):
    """``(deltas, FloorResult | None)``: the solve that meets the efficacy floor keeping the most.

    Each subject's automatic kept prompts take a strength from ``STRENGTHS`` (1 … 4⁻⁷, 0),
    found by bisection, all subjects at once (one solve per round, each subject at its own
    strength, so a batch of many concepts weakens only those that need it):

    1. every subject at full strength; a subject whose requests all meet the floor keeps it;
    2. a subject that misses tries 0, nothing kept;
    3. between its strongest pass and the miss just above it, the middle strength, until they
       are neighbours on the ladder: the subject keeps the strongest that passed.

    Passing is not always monotone in the strength (the mascot, with a named prompt kept,
    misses at ¼ and at 0 and passes at 1/16): a subject that misses at 0 too probes
    ``UNMONOTONE_PROBES`` (1/16, 1/256, 1/4096) strongest first and bisects above the first
    that passes; missing at all of them, it keeps the strength at which its worst request came
    closest. When the chosen strengths were never solved together (a batch), they are
    solved and checked once more; if that misses, the passing solve that kept the most is
    taken, else the one whose worst request came closest. ``solve(strengths)`` leaves its
    deltas applied for the check; ``restore()`` takes them off. Without a check this is one
    solve; without ``subjects``, one solve checked.
    """
    if check is None:
        return solve(), None
    last = len(STRENGTHS) - 1
    at = {subject: 0 for subject in subjects}  # the ladder index each subject is tried at next
    missed = {subject: set() for subject in subjects}  # ladder indices where its requests missed
    passed = {subject: set() for subject in subjects}  # … and where they all met the floor
    closest = {subject: (-math.inf, 0) for subject in subjects}  # (its worst margin, −index) at its best
    tried: list[tuple[dict[str, float], list[ModuleDelta], list[float]]] = []

    def attempt(strengths: dict[str, float]) -> list[float]:
        deltas = solve(strengths)
        margins = check.margins()
        restore()
        tried.append((strengths, deltas, margins))
        return margins

    while True:
        margins = attempt({subject: STRENGTHS[i] for subject, i in at.items()})
        for subject, i in at.items():
            worst = min((m for sub, m in zip(check.subjects, margins) if sub == subject), default=math.inf)
            closest[subject] = max(closest[subject], (worst, -i))  # ties: the stronger preservation
            (missed if worst < check.floor else passed)[subject].add(i)
        moving = {}
        for subject in at:
            if passed[subject]:  # bisect between its strongest pass and the miss just above it
                high = min(passed[subject])
                low = max((i for i in missed[subject] if i < high), default=-1)
                if high - low > 1:
                    moving[subject] = (low + high) // 2
            elif last not in missed[subject]:  # no pass yet: nothing kept at all
                moving[subject] = last
            else:  # missed with nothing kept too: the strength is not always monotone, so probe between
                probes = [i for i in UNMONOTONE_PROBES if i not in missed[subject]]
                if probes:
                    moving[subject] = probes[0]
        if not moving:
            break
        at.update(moving)
    passed_at = {subject: min(passed[subject], default=None) for subject in subjects}
    # each subject at the strongest preservation that passed; one that never passed, where it came closest
    chosen = {subject: STRENGTHS[-closest[subject][1] if passed_at[subject] is None else passed_at[subject]]
              for subject in subjects}
    final = next((t for t in tried if t[0] == chosen), None)
    if final is None:  # a batch whose subjects settled in different rounds: solve them together
        attempt(chosen)
        final = tried[-1]
    can_pass = {subject for subject in subjects if passed_at[subject] is not None}
    holds = lambda t: all(m >= check.floor for subject, m in zip(check.subjects, t[2])  # noqa: E731
                          if subject in can_pass or subject is None)
    kept_most = lambda t: sum(math.log(max(s, 1e-12)) for s in t[0].values())  # noqa: E731
    if not holds(final):  # the subjects' strengths interact in a batch: the passing solve that kept the most
        holding = [t for t in tried if holds(t)]
        final = max(holding, key=kept_most) if holding else max(tried, key=lambda t: min(t[2], default=0.0))
    strengths, deltas, margins = final
    return deltas, FloorResult(check.floor, strengths, margins, check.prompts,
                               [(min(t[0].values(), default=1.0), min(t[2], default=0.0)) for t in tried])


def _bias(module: torch.nn.Module) -> torch.Tensor | float:
    """The down-projection's bias ``b [d_out]`` in float64 on the CPU (0 when it has none)."""
    bias = getattr(module, "bias", None)
    return 0.0 if bias is None else bias.detach().double().cpu()


def _read(adapter, sites: Sites, layers: list[int], bar: Progress, what: str):
    """``read_states`` with one task on ``bar`` counting the prompts read."""
    task = bar.add_task(what, total=len(sites.prompts))
    return read_states(adapter, sites, layers, on_batch=lambda n: bar.advance(task, n))


def _targets(adapter, queries: Sites, targets: Sites, layers: list[int], config: EditConfig, bar: Progress):
    """``(per-layer target values [n, d], None)`` for ``direct``, else ``(None, z*_L)`` with
    the target stream of every query site ``[n_sites, d]``."""
    last = layers[-1]
    if config.value == "direct":
        states = _read(adapter, targets, layers, bar, "target values")
        return {layer: targets.average(states[layer].values) for layer in layers}, None
    if config.value == "match":
        goal = targets.average(_read(adapter, targets, [last], bar, "target streams")[last].streams)
        return None, queries.expand(goal)
    streams = _read(adapter, queries, [last], bar, "query streams")[last].streams
    optimize = config.optimize_config()
    task = bar.add_task("optimize values", total=queries.n_requests)
    deltas = optimize_deltas(adapter, queries, targets, last, queries.average(streams), optimize,
                             on_chunk=lambda n: bar.advance(task, n))
    return None, streams + queries.expand(deltas)  # each site's own stream moved by its request's δ
