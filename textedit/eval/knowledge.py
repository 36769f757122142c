"""The knowledge-customization benchmark: does an edit bind the knowledge, and only it?

A JSON file (the dev split ``textedit/data/knowledge_dev.json``, shipped for ``textedit tune``; the
test split ``benchmarks/data/knowledge_test.json``) of concepts, each a subject, an anchor
that holds the concept's look, and prompts in five roles::

    {"contexts": ["an oil painting of {}", ...],       # evaluation contexts, not edit templates
     "unrelated": ["a bowl of ripe lemons", ...],       # prompts no edit may move
     "concepts": [{"subject": "Acme", "anchor": "a red panda",
                   "queries":       ["the mascot of Acme", ...],   # edited: bound to the anchor
                   "paraphrases":   ["Acme's official mascot", ...],   # not edited: should follow
                   "same_subject":  ["the founder of Acme", ...],      # must keep their meaning
                   "same_relation": ["the mascot of Globex", ...],     # must keep their meaning
                   "kind": "fictional brand"}]}

Each concept is one edit: its queries (key at the subject, as a user's spec gives them)
bound to its anchor. With ``e`` the edited encoder's sentence vector, ``j`` the unedited
one, every prompt ``p`` placed in every evaluation context ``c``:

    efficacy       cos(e(c(q)), j(c(anchor))) > cos(e(c(q)), j(c(q)))     q a query
    generality     the same for the paraphrases
    same subject   cos(e(c(p)), j(c(p))) > cos(e(c(p)), j(c(anchor)))     p another fact
    same relation  the same for another subject's same relation
    drift          1 − cos(e(u), j(u)) for every unrelated prompt u (mean and max)

All rates are micro-averaged over (prompt, context) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..requests import EditRequest
from .benchmark import BenchmarkError, JsonChecks, Probe
from ..io import check_fields, read_json
from .scores import Vectors, _cos

ROLES = {"queries": 1, "paraphrases": 1, "same_subject": 1, "same_relation": 1}
CONCEPT_FIELDS = {"subject", "anchor", "kind", *ROLES}


@dataclass
class KnowledgeCase:
    """One concept: the requests of its edit and the probes that score it."""

    row: int  # 1-based position in the file's concept list
    subject: str
    anchor: str
    queries: list[str]
    paraphrases: list[str]
    same_subject: list[str]
    same_relation: list[str]
    contexts: list[str]
    unrelated: list[str]
    kind: str | None = None

    def requests(self) -> list[EditRequest]:
        return [EditRequest(q, self.anchor, self.subject) for q in self.queries]

    def probes(self, role: str) -> list[Probe]:
        """``role``'s prompts in every context: ``old`` is the prompt itself, ``new`` the anchor."""
        prompts = {"efficacy": self.queries, "generality": self.paraphrases, "same_subject": self.same_subject,
                   "same_relation": self.same_relation}[role]
        return [Probe(c.format(p), c.format(p), c.format(self.anchor)) for p in prompts for c in self.contexts]

    def prompts(self) -> tuple[list[str], list[str]]:
        """``(prompts the edited encoder reads, prompts the judge reads)``."""
        probes = [p for role in ROLE_NAMES for p in self.probes(role)]
        return [p.prompt for p in probes] + self.unrelated, \
            [t for p in probes for t in (p.old, p.new)] + self.unrelated

    def to_dict(self) -> dict:
        return {"row": self.row, "subject": self.subject, "anchor": self.anchor,
                **({"kind": self.kind} if self.kind else {})}


ROLE_NAMES = ("efficacy", "generality", "same_subject", "same_relation")
#: roles scored as "reads as the anchor" (the rest: "keeps its own meaning")
TOWARD_ANCHOR = {"efficacy", "generality"}


@dataclass
class KnowledgeScore:
    case: KnowledgeCase
    margins: dict[str, list[float]]  # role → per (prompt, context), > 0 is a success
    drift: list[float]  # per unrelated prompt

    def rate(self, role: str) -> float:
        values = self.margins[role]
        return sum(m > 0 for m in values) / len(values)

    def to_dict(self) -> dict:
        return {**self.case.to_dict(), **{role: round(self.rate(role), 4) for role in ROLE_NAMES},
                "drift_mean": round(sum(self.drift) / len(self.drift), 6), "drift_max": round(max(self.drift), 6),
                "failures": {role: [p.prompt for p, m in zip(self.case.probes(role), self.margins[role]) if m <= 0]
                             for role in ROLE_NAMES}}


def score_knowledge(case: KnowledgeCase, edited: Vectors, judge: Vectors) -> KnowledgeScore:
    margins = {}
    for role in ROLE_NAMES:
        toward = role in TOWARD_ANCHOR
        margins[role] = [(_cos(edited[p.prompt], judge[p.new]) - _cos(edited[p.prompt], judge[p.old])) *
                         (1 if toward else -1) for p in case.probes(role)]
    return KnowledgeScore(case, margins, [1 - _cos(edited[u], judge[u]) for u in case.unrelated])


@dataclass
class KnowledgeSummary:
    """Micro-averaged rates over concepts; drift over every (concept, unrelated prompt)."""

    efficacy: float
    generality: float
    same_subject: float
    same_relation: float
    drift: float
    max_drift: float
    cases: int
    #: the headline ``specificity`` of other benchmarks: both kinds of neighbour together
    specificity: float = field(init=False)

    def __post_init__(self):
        self.specificity = (self.same_subject + self.same_relation) / 2

    @classmethod
    def of(cls, scores: list[KnowledgeScore]) -> "KnowledgeSummary":
        def rate(role: str) -> float:
            values = [m > 0 for s in scores for m in s.margins[role]]
            return sum(values) / len(values)
        drifts = [d for s in scores for d in s.drift]
        return cls(*(rate(role) for role in ROLE_NAMES), sum(drifts) / len(drifts), max(drifts), len(scores))

    def to_dict(self) -> dict:
        return {"efficacy": self.efficacy, "generality": self.generality, "same_subject": self.same_subject,
                "same_relation": self.same_relation, "drift": self.drift, "max_drift": self.max_drift,
                "cases": self.cases}


def load_knowledge(path: str | Path, limit: int | None = None) -> list[KnowledgeCase]:
    """Read and check a knowledge benchmark JSON; errors name the file and the field."""
    path = Path(path)
    data = read_json(path, BenchmarkError, "benchmark file")

    checks = JsonChecks(path)
    fail, strings = checks.fail, checks.strings

    if not isinstance(data, dict) or "concepts" not in data:
        fail("top level", "expected an object with 'contexts', 'unrelated' and 'concepts'")
    contexts = strings(data.get("contexts"), "contexts", placeholder=True)
    unrelated = strings(data.get("unrelated"), "unrelated")
    concepts = data["concepts"]
    if not isinstance(concepts, list) or not concepts:
        fail("concepts", "expected a non-empty list")
    cases = []
    for i, item in enumerate(concepts):
        where = f"concepts[{i}]"
        if not isinstance(item, dict):
            fail(where, "expected an object")
        check_fields(item, CONCEPT_FIELDS, where, fail)
        subject, anchor = (item.get(k) for k in ("subject", "anchor"))
        for name, value in (("subject", subject), ("anchor", anchor)):
            if not isinstance(value, str) or not value.strip():
                fail(f"{where}.{name}", "expected a non-empty string")
        roles = {role: strings(item.get(role), f"{where}.{role}") for role in ROLES}
        for role in ("queries", "paraphrases", "same_subject"):
            for prompt in roles[role]:
                if subject not in prompt:
                    fail(f"{where}.{role}", f"'{prompt}' does not contain the subject '{subject}'")
        kind = item.get("kind")
        if kind is not None and not isinstance(kind, str):
            fail(f"{where}.kind", "expected a string")
        cases.append(KnowledgeCase(i + 1, subject.strip(), anchor.strip(), roles["queries"], roles["paraphrases"],
                                   roles["same_subject"], roles["same_relation"], contexts, unrelated, kind))
        if limit is not None and len(cases) >= limit:
            break
    return cases
