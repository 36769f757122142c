"""The world-knowledge benchmark: implicit prompts bound to their explicit answers, by the hundred.

A prompt names a thing only implicitly ("the traditional food of the Mid-Autumn Festival")
and the edit binds it to its explicit answer ("mooncakes"). The file
(``benchmarks/data/world_knowledge.json``, written by ``benchmarks/make_world_knowledge.py``)::

    {"contexts": ["an oil painting of {}", ...],     # evaluation contexts, not edit templates
     "neutral": ["a dog running on the grass", ...], # everyday captions no edit may move
     "pairs": [{"prompt": "the traditional food of the Mid-Autumn Festival", "answer": "mooncakes",
                "split": "edit",            # "edit": bound to its answer | "unedited": never edited
                "part": "test",             # "dev" (tuning) | "test"
                "domain": "culture",        # culture | science | places | times
                "category": "festival food",
                "template": "the traditional food of {}"},   # optional: the form it shares
               ...]}

An unedited pair with a ``template`` is a *look-alike*: the same form as an edited prompt,
another entity ("the traditional food of Diwali"). Every edited pair is one request
``EditRequest(prompt, answer)`` (key at the prompt's last token). With ``e`` the edited
encoder's sentence vector, ``j`` the unedited one, ``c`` an evaluation context and ``A`` the
*answer pool* (every distinct answer of the pairs loaded, edited and unedited):

    efficacy       cos(e(c(p)), j(c(a))) > cos(e(c(p)), j(c(p)))            p edited, a its answer
    retrieval      argmax over b in A of cos(x(c(p)), j(c(b))) is p's own answer
                   x = j: before the edit, x = e: after; for edited and for unedited p
    drift          1 − cos(e(c(p)), j(c(p)))                               p unedited
    neutral drift  1 − cos(e(u), j(u))                                     u a neutral caption

Unedited pairs and neutral captions are cases that no edit touches (``edited`` is false): the
evaluator scores them under every patch it makes (each batch), so a batch run of N chunks
averages them over the N patches. All rates and means are micro-averaged over (prompt,
context) pairs (and patches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..io import check_fields, read_json
from ..requests import EditRequest, is_template, same_text
from .benchmark import BenchmarkError, JsonChecks
from .scores import Vectors, _cos

SPLITS = ("edit", "unedited")
PARTS = ("dev", "test")
DOMAINS = ("culture", "science", "places", "times")
PAIR_FIELDS = {"prompt", "answer", "split", "part", "domain", "category", "template"}
TOP_FIELDS = {"name", "description", "contexts", "neutral", "pairs"}


class AnswerPool:
    """The answers retrieval chooses among, read in every context; the judge's unit vectors of
    them are stacked once per judge and context (a one-entry cache: the judge object itself)."""

    def __init__(self, answers, contexts):
        self.answers = tuple(answers)
        self.contexts = tuple(contexts)
        self.index = {a: i for i, a in enumerate(self.answers)}
        self.texts = tuple(c.format(a) for a in self.answers for c in self.contexts)
        self._judge = None
        self._matrices: dict[str, torch.Tensor] = {}

    def matrix(self, judge: Vectors, context: str) -> torch.Tensor:
        """[len(answers), d] unit rows: ``j(context(answer))`` for every answer."""
        if self._judge is not judge:
            self._judge, self._matrices = judge, {}
        if context not in self._matrices:
            stacked = torch.stack([judge[context.format(a)].double() for a in self.answers])
            self._matrices[context] = F.normalize(stacked, dim=-1)
        return self._matrices[context]

    def nearest(self, vector: torch.Tensor, judge: Vectors, context: str) -> str:
        """The answer whose judged vector in ``context`` is nearest (cosine) to ``vector``."""
        return self.answers[int(torch.argmax(self.matrix(judge, context) @ vector.double()))]


@dataclass
class WorldCase:
    """One pair (edited or not) or one neutral caption (``split == "neutral"``, no answer)."""

    row: int  # 1-based position in the file's pair list (in its neutral list for a caption)
    prompt: str
    answer: str | None
    split: str  # "edit" | "unedited" | "neutral"
    contexts: tuple[str, ...]
    pool: AnswerPool | None
    part: str | None = None
    domain: str | None = None
    category: str | None = None
    template: str | None = None

    @property
    def edited(self) -> bool:
        """Whether an edit binds this case (the evaluator scores the others under every patch)."""
        return self.split == "edit"

    @property
    def lookalike(self) -> bool:
        """An unedited pair in the form of an edited one (same ``template``, another entity)."""
        return self.split == "unedited" and self.template is not None

    def requests(self) -> list[EditRequest]:
        return [EditRequest(self.prompt, self.answer)] if self.edited else []

    def prompts(self) -> tuple[list[str], list[str]]:
        """``(prompts the edited encoder reads, prompts the judge reads)``: the judge reads the
        whole answer pool, which retrieval compares against."""
        if self.split == "neutral":
            return [self.prompt], [self.prompt]
        read = [c.format(self.prompt) for c in self.contexts]
        return read, read + list(self.pool.texts)

    def to_dict(self) -> dict:
        return {"row": self.row, "prompt": self.prompt, "split": self.split,
                **{k: v for k, v in (("answer", self.answer), ("part", self.part), ("domain", self.domain),
                                     ("category", self.category), ("template", self.template)) if v is not None}}


@dataclass
class WorldScore:
    case: WorldCase
    margins: list[float]  # edited: per context, > 0 reads closer to its answer than to itself
    retrieved_before: list[bool]  # pairs: per context, its own answer nearest with the unedited encoder
    retrieved: list[bool]  # the same with the edited encoder
    drift: list[float]  # unedited: per context; neutral: one value; edited: none

    def to_dict(self) -> dict:
        def share(values) -> float | None:
            return round(sum(values) / len(values), 4) if values else None
        out = {**self.case.to_dict(), "retrieved_before": share(self.retrieved_before),
               "retrieved": share(self.retrieved)}
        if self.margins:
            out["efficacy"] = share([m > 0 for m in self.margins])
            out["margins"] = [round(m, 6) for m in self.margins]
        if self.drift:
            out["drift"] = round(sum(self.drift) / len(self.drift), 6)
        return out


def score_world(case: WorldCase, edited: Vectors, judge: Vectors) -> WorldScore:
    """Score one case from precomputed vectors (``edited`` after the edit, ``judge`` before)."""
    if case.split == "neutral":
        return WorldScore(case, [], [], [], [1 - _cos(edited[case.prompt], judge[case.prompt])])
    read = [c.format(case.prompt) for c in case.contexts]
    before = [case.pool.nearest(judge[p], judge, c) == case.answer for p, c in zip(read, case.contexts)]
    after = [case.pool.nearest(edited[p], judge, c) == case.answer for p, c in zip(read, case.contexts)]
    if case.edited:
        margins = [_cos(edited[p], judge[c.format(case.answer)]) - _cos(edited[p], judge[p])
                   for p, c in zip(read, case.contexts)]
        return WorldScore(case, margins, before, after, [])
    return WorldScore(case, [], before, after, [1 - _cos(edited[p], judge[p]) for p in read])


def _mean(values: list) -> float:
    return float(sum(values) / len(values)) if values else math.nan


@dataclass
class WorldSummary:
    """Micro-averaged over (prompt, context) pairs and, for the cases no edit touches, patches."""

    efficacy: float
    edited_retrieval_before: float
    edited_retrieval: float
    unedited_retrieval_before: float
    unedited_retrieval: float
    lookalike_retrieval_before: float
    lookalike_retrieval: float
    unedited_drift: float
    unedited_max_drift: float
    neutral_drift: float
    neutral_max_drift: float
    cases: int  # edited pairs
    unedited: int  # distinct unedited pairs
    neutral: int  # distinct neutral captions
    #: the ``drift`` / ``max_drift`` other summaries show: the unedited prompts'
    drift: float = field(init=False)
    max_drift: float = field(init=False)

    def __post_init__(self):
        self.drift, self.max_drift = self.unedited_drift, self.unedited_max_drift

    @classmethod
    def of(cls, scores: list[WorldScore]) -> "WorldSummary":
        edited = [s for s in scores if s.case.split == "edit"]
        unedited = [s for s in scores if s.case.split == "unedited"]
        lookalikes = [s for s in unedited if s.case.lookalike]
        neutral = [s for s in scores if s.case.split == "neutral"]

        def flat(group, name) -> list:
            return [v for s in group for v in getattr(s, name)]
        unedited_drift, neutral_drift = flat(unedited, "drift"), flat(neutral, "drift")
        return cls(efficacy=_mean([m > 0 for m in flat(edited, "margins")]),
                   edited_retrieval_before=_mean(flat(edited, "retrieved_before")),
                   edited_retrieval=_mean(flat(edited, "retrieved")),
                   unedited_retrieval_before=_mean(flat(unedited, "retrieved_before")),
                   unedited_retrieval=_mean(flat(unedited, "retrieved")),
                   lookalike_retrieval_before=_mean(flat(lookalikes, "retrieved_before")),
                   lookalike_retrieval=_mean(flat(lookalikes, "retrieved")),
                   unedited_drift=_mean(unedited_drift), unedited_max_drift=max(unedited_drift, default=math.nan),
                   neutral_drift=_mean(neutral_drift), neutral_max_drift=max(neutral_drift, default=math.nan),
                   cases=len({s.case.row for s in edited}), unedited=len({s.case.row for s in unedited}),
                   neutral=len({s.case.row for s in neutral}))

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in (
            "efficacy", "edited_retrieval_before", "edited_retrieval", "unedited_retrieval_before",
            "unedited_retrieval", "lookalike_retrieval_before", "lookalike_retrieval", "unedited_drift",
            "unedited_max_drift", "neutral_drift", "neutral_max_drift", "cases", "unedited", "neutral")}


def is_world_file(data) -> bool:
    """Whether parsed JSON is a world-knowledge benchmark (top-level ``pairs``), not a knowledge one."""
    return isinstance(data, dict) and "pairs" in data and "concepts" not in data


def json_format(path: str | Path) -> str:
    """``"world"`` or ``"knowledge"``: which JSON benchmark ``path`` holds (``textedit eval`` reads
    either); a missing or malformed file is a :class:`BenchmarkError`."""
    return "world" if is_world_file(read_json(Path(path), BenchmarkError, "benchmark file")) else "knowledge"


def load_world(path: str | Path, limit: int | None = None, split: str | None = None) -> list[WorldCase]:
    """Read and check a world-knowledge benchmark JSON → its cases: the edited pairs, then the
    unedited pairs, then the neutral captions.

    ``split``: ``"dev"`` or ``"test"`` keeps that part's pairs, ``None`` both. ``limit``: only
    the first N edited pairs (file order); the unedited pairs and captions are kept whole.
    The answer pool is every distinct answer of the pairs kept. Errors name the file, the row
    (``pairs[i]``, 0-based) and the field, in one line.
    """
    if split is not None and split not in PARTS:
        raise ValueError(f"split must be one of {PARTS} or None, got {split!r}")
    if limit is not None and limit < 1:
        raise ValueError("limit must be a positive number of edited pairs")
    path = Path(path)
    data = read_json(path, BenchmarkError, "benchmark file")

    checks = JsonChecks(path)
    fail, strings = checks.fail, checks.strings

    if not isinstance(data, dict) or "pairs" not in data:
        fail("top level", "expected an object with 'contexts', 'neutral' and 'pairs'")
    check_fields(data, TOP_FIELDS, "top level", fail)
    contexts = tuple(strings(data.get("contexts"), "contexts", placeholder=True))
    neutral = strings(data.get("neutral"), "neutral")
    pairs = data["pairs"]
    if not isinstance(pairs, list) or not pairs:
        fail("pairs", "expected a non-empty list")
    seen: dict[str, int] = {}
    rows: list[dict] = []
    for i, item in enumerate(pairs):
        where = f"pairs[{i}]"
        if not isinstance(item, dict):
            fail(where, "expected an object")
        check_fields(item, PAIR_FIELDS, where, fail)
        for name in ("prompt", "answer", "category"):
            if not isinstance(item.get(name), str) or not item[name].strip():
                fail(f"{where}.{name}", "expected a non-empty string")
        for name, allowed in (("split", SPLITS), ("part", PARTS), ("domain", DOMAINS)):
            if item.get(name) not in allowed:
                fail(f"{where}.{name}", f"expected one of {', '.join(allowed)}, got {item.get(name)!r}")
        prompt, answer = item["prompt"].strip(), item["answer"].strip()
        if same_text(prompt) == same_text(answer):
            fail(f"{where}.answer", f"'{answer}' is the prompt itself")
        key = same_text(prompt)
        if key in seen:
            fail(f"{where}.prompt", f"'{prompt}' repeats pairs[{seen[key]}]")
        seen[key] = i
        template = item.get("template")
        if template is not None:
            if not is_template(template):
                fail(f"{where}.template", "expected a string with '{}' exactly once and no other brace")
            head, tail = template.split("{}")
            if not (prompt.startswith(head) and prompt.endswith(tail) and len(prompt) > len(head) + len(tail)):
                fail(f"{where}.template", f"'{prompt}' is not the template '{template}' with an entity in it")
        rows.append({**item, "prompt": prompt, "answer": answer, "row": i + 1})
    for j, caption in enumerate(neutral):
        if same_text(caption) in seen:
            fail(f"neutral[{j}]", f"'{caption}' is also pairs[{seen[same_text(caption)]}]")
    kept = [r for r in rows if split is None or r["part"] == split]
    edits = [r for r in kept if r["split"] == "edit"][:limit]
    if not edits:
        fail("pairs", f"no edited pairs{'' if split is None else f' in the {split} part'}")
    chosen = edits + [r for r in kept if r["split"] == "unedited"]
    pool = AnswerPool(dict.fromkeys(r["answer"] for r in chosen), contexts)
    cases = [WorldCase(r["row"], r["prompt"], r["answer"], r["split"], contexts, pool, r["part"], r["domain"],
                       r["category"].strip(), r.get("template")) for r in chosen]
    return cases + [WorldCase(j + 1, u, None, "neutral", contexts, None) for j, u in enumerate(neutral)]
