"""``textedit tune``: an encoder's edit settings chosen by measurement, not carried over from MiniLM.

Three steps, each a measurement on the model itself (the unedited model is the judge, as in
``textedit eval``):

1. **Layer windows from causal tracing** (:func:`propose_windows`). Each dev concept's first
   query is traced (``locate.trace``, site ``mlp``): ``e[l]``, the share of the damage done
   by noising the subject that restoring layer ``l``'s MLP output at the subject's last
   token repairs, averaged over the concepts. For each window length w = 1, 2, 3 the
   contiguous window with the largest ``Σ e[l]`` is proposed, beside the built-in default
   (``editor.default_layers``).
2. **Trials on a knowledge dev set** (one concept per edit, ``eval.knowledge``): a
   coordinate search, every stage keeping the previous stage's choice —
   (a) each proposed window at the method's λ, (b) the chosen window at λ/4 and 4λ,
   (c) the chosen (window, λ) with the automatic kept prompts at ``preserve_weight`` ¼ and 4.
   The built-in defaults are always trial 0, the baseline of the rule.
3. **The rule** (:func:`choose`), in this order:
   - the efficacy floor: a trial must reach efficacy ≥ 99 % (when none does, those within
     one point of the best efficacy measured);
   - no more drift than the baseline: mean drift of unrelated prompts ≤ 1.1 × the
     baseline's + 0.001;
   - then the best balance: the mean of efficacy, generality, same subject and same
     relation (KS); a tie (within 0.1 point) goes to the lower drift.
   The baseline passes whenever it meets the floor, so a profile never chooses what
   measured worse than the defaults on the dev set.

Every finished trial is written to a state file beside the profile at once; a run that is
stopped picks up where it was (same model, dev set and limit). The profile
(``profile.Profile``) records the rule, every trial's scores and the one chosen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from .editor import EditConfig, TargetCache, default_layers, resolve_layers
from .encoders.base import EncoderAdapter
from .eval.knowledge import KnowledgeCase
from .eval.run import Evaluator
from .io import atomic_write_text
from .profile import Profile

#: the bar of the rule's first step (the efficacy floor), and the slack when no trial reaches it
EFFICACY_BAR, EFFICACY_SLACK = 0.99, 0.01
#: drift allowed against the baseline: ``DRIFT_RATIO × baseline + DRIFT_SLACK``
DRIFT_RATIO, DRIFT_SLACK = 1.1, 0.001
#: window lengths proposed from the trace, λ factors and preserve weights tried
WINDOW_LENGTHS = (1, 2, 3)
LAM_FACTORS = (0.25, 4.0)
PRESERVE_WEIGHTS = (0.25, 4.0)
RULE = (f"efficacy >= {EFFICACY_BAR:.0%} (else within {EFFICACY_SLACK:.0%} of the best); mean drift <= "
        f"{DRIFT_RATIO} x the built-in defaults' + {DRIFT_SLACK}; then the highest mean of efficacy, generality, "
        f"same subject and same relation (ties within 0.1 point: lower drift)")
DEFAULT_DEV = Path(__file__).parent / "data" / "knowledge_dev.json"


@dataclass
class Trial:
    """One setting and its dev-set scores (``KnowledgeSummary.to_dict()`` plus ``ks``)."""

    settings: dict
    scores: dict

    @property
    def ks(self) -> float:
        return self.scores["ks"]

    def to_dict(self) -> dict:
        return {"settings": self.settings, "scores": self.scores}


def layer_effects(adapter: EncoderAdapter, cases: Sequence[KnowledgeCase], samples: int = 10) -> list[float]:
    """``e[l]``: the mean causal effect of layer ``l``'s MLP output at the subject's last token
    over the first query of every case (module docstring, step 1)."""
    from .locate import trace  # deferred: only the proposal reads traces
    total = torch.zeros(adapter.num_layers)
    for case in cases:
        query = case.queries[0]
        result = trace(adapter, query, case.subject, sites=("mlp",), samples=samples)
        total += result.scores["mlp"][:, result.subject_positions[-1]]
    return (total / len(cases)).tolist()


def propose_windows(effects: Sequence[float], default: Sequence[int]) -> list[list[int]]:
    """The default window, then for each length the contiguous window of largest summed effect
    (earliest on ties), without repeats."""
    windows = [list(default)]
    n = len(effects)
    for length in WINDOW_LENGTHS:
        if length > n:
            break
        sums = [sum(effects[s:s + length]) for s in range(n - length + 1)]
        start = max(range(len(sums)), key=lambda s: (sums[s], -s))
        window = list(range(start, start + length))
        if window not in windows:
            windows.append(window)
    return windows


def passes_floor(trials: Sequence[Trial]) -> list[Trial]:
    """The trials that meet the rule's efficacy floor (module docstring, step 3)."""
    best = max(t.scores["efficacy"] for t in trials)
    bar = EFFICACY_BAR if best >= EFFICACY_BAR else best - EFFICACY_SLACK
    return [t for t in trials if t.scores["efficacy"] >= bar - 1e-12]


def choose(trials: Sequence[Trial], baseline: Trial) -> Trial:
    """The rule (module docstring, step 3) over ``trials``; ``baseline`` sets the drift bound."""
    allowed = DRIFT_RATIO * baseline.scores["drift"] + DRIFT_SLACK
    floor = passes_floor(trials)
    candidates = [t for t in floor if t.scores["drift"] <= allowed] or floor
    best = max(t.ks for t in candidates)
    return min((t for t in candidates if t.ks >= best - 0.001), key=lambda t: t.scores["drift"])


def _key(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True)


def dev_hash(cases: Sequence[KnowledgeCase]) -> str:
    text = json.dumps([[c.subject, c.anchor, c.queries, c.paraphrases, c.same_subject, c.same_relation, c.contexts,
                        c.unrelated] for c in cases])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Tuner:
    """Runs the trials of :mod:`textedit.tune` for one model and dev set, resumably.

    ``state``: a JSON file holding the finished trials (read at the start when it belongs
    to the same model and dev set, rewritten after each trial). ``on_case`` ticks once per
    concept edited; ``on_trial(settings, trial)`` is called after each trial."""

    def __init__(self, adapter: EncoderAdapter, cases: Sequence[KnowledgeCase], *, method: str = "memit",
                 state: str | Path | None = None, corpus=None, cache_dir=None, benchmark: str = "",
                 on_case: Callable[[], None] | None = None, on_trial: Callable[[Trial], None] | None = None):
        self.adapter, self.cases, self.method = adapter, list(cases), method
        self.state = Path(state) if state is not None else None
        self.on_case, self.on_trial = on_case, on_trial
        self.fingerprint = adapter.fingerprint()
        self.benchmark = {"name": benchmark, "hash": dev_hash(self.cases), "concepts": len(self.cases)}
        self.done: dict[str, Trial] = self._read_state()
        # the trials that share a last layer share their targets: the values are optimised once
        self.targets = TargetCache()
        self.evaluator = Evaluator(adapter, self.cases, corpus=corpus, cache_dir=cache_dir, targets_cache=self.targets)
        self.resumed = len(self.done)

    def _read_state(self) -> dict[str, Trial]:
        if self.state is None or not self.state.exists():
            return {}
        try:
            data = json.loads(self.state.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}  # a state we cannot read is started over, never trusted
        if not isinstance(data, dict) or data.get("fingerprint") != self.fingerprint or \
                data.get("benchmark") != self.benchmark or data.get("method") != self.method:
            return {}
        return {_key(t["settings"]): Trial(t["settings"], t["scores"]) for t in data.get("trials", [])
                if isinstance(t, dict) and isinstance(t.get("settings"), dict) and isinstance(t.get("scores"), dict)}

    def _write_state(self) -> None:
        if self.state is not None:
            atomic_write_text(json.dumps({"fingerprint": self.fingerprint, "benchmark": self.benchmark,
                                          "method": self.method, "trials": [t.to_dict() for t in self.done.values()]},
                                         indent=1) + "\n", self.state)

    def trial(self, settings: dict) -> Trial:
        """The dev-set scores of ``settings`` (``layers`` and hyperparameters), measured once."""
        key = _key(settings)
        if key not in self.done:
            layers = settings.get("layers")
            config = EditConfig(self.method, layers, hyperparameters={k: v for k, v in settings.items()
                                                                        if k != "layers"})
            summary = self.evaluator.run(config, "single", on_case=self.on_case).summary.to_dict()
            ks = (summary["efficacy"] + summary["generality"] + summary["same_subject"] + summary["same_relation"]) / 4
            self.done[key] = Trial(settings, {**summary, "ks": ks})
            self._write_state()
            if self.on_trial is not None:
                self.on_trial(self.done[key])
        return self.done[key]

    def run(self, windows: Sequence[Sequence[int]]) -> Profile:
        """Steps 2 and 3 of the module docstring over ``windows`` (the first the default)."""
        config = EditConfig(self.method)
        lam = config.get("lam", self.adapter)
        base = {"layers": list(resolve_layers(self.adapter, config)), "lam": lam}
        preserving = config.preserves(self.adapter)  # else preserve_weight does nothing, and is refused
        if preserving:
            weight = config.get("preserve_weight", self.adapter)
            base["preserve_weight"] = weight
        baseline = self.trial(base)
        stage = [baseline] + [self.trial({**base, "layers": list(w)}) for w in windows if list(w) != base["layers"]]
        best = choose(stage, baseline)
        stage = [best] + [self.trial({**best.settings, "lam": lam * f}) for f in LAM_FACTORS]
        best = choose(stage, baseline)
        if preserving:
            stage = [best] + [self.trial({**best.settings, "preserve_weight": weight * w}) for w in PRESERVE_WEIGHTS]
            best = choose(stage, baseline)
        trials = list(self.done.values())
        return Profile(self.adapter.name, self.adapter.family, self.fingerprint, self.method, dict(best.settings),
                       RULE, self.benchmark, [t.to_dict() for t in trials], trials.index(best))

    def planned(self, windows: Sequence[Sequence[int]]) -> int:
        """An upper bound on the trials ``run`` measures (for a progress bar)."""
        return len(windows) + len(LAM_FACTORS) + len(PRESERVE_WEIGHTS)


def tune(adapter: EncoderAdapter, cases: Sequence[KnowledgeCase], *, state: str | Path | None = None,
         samples: int = 10, **options) -> Profile:
    """Propose windows, run the trials and choose (module docstring): the model's profile."""
    windows = propose_windows(layer_effects(adapter, cases, samples), default_layers(adapter))
    return Tuner(adapter, cases, state=state, **options).run(windows)

