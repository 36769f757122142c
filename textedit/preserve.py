"""What an edit must leave alone: the other knowledge about each request's subject.

A knowledge edit should change what "the mascot of Acme" means and nothing else. The key
of that query, read at one token in the first layers, is close to the key of the same
token in "the founder of Acme" or in "Acme" alone; an edit solved against the corpus
statistics only moves them all. So the solve is told which prompts must keep their
meaning: their keys, at every real token and in every edit context, keep their current
values in the same closed-form solve, as remembered keys do (``solvers.batched``):

    ΔW = R Kᵀ (λ C + K_p K_pᵀ + K Kᵀ)⁻¹        K_p [d_in, m]: keys of the preserved prompts

A prompt whose keys keep their values at every edited layer and every token is computed
exactly as before, so the constraint is on the prompt's whole meaning, not one token.

Sources of preserved prompts:

* the spec's ``preserve`` list (any prompts the user names);
* automatic ones (:func:`automatic_prompts`), made from each request's ``subject``:
  - the bare subject and the subject under generic other relations (:func:`subject_prompts`,
    :data:`OTHER_RELATIONS`). A relation that shares a content word with one of that
    subject's queries is left out, so "the logo of Acme" is not kept when "the animal on
    the Acme logo" is being edited. A subject that is a whole query ("the Prime Minister
    of Canada" → "Mark Carney") keeps none: the knowledge is the subject itself, and its
    other relations would each hold the query being changed ("the home of the Prime
    Minister of Canada"), keeping its old meaning (docs/virtual.md: the five office changes
    reached 0.57–0.89 similarity with them, 0.86–0.97 without);
  - each query with other subjects in the subject's place (:func:`relation_prompts`,
    :data:`OTHER_SUBJECTS`): "the mascot of a company" keeps its meaning.

Contexts: a kept prompt is held in the contexts the solve reads it in, and only partly in
others. On ``edits/mascot.json`` with the defaults, Acme's other knowledge moves 0.0001–0.0011
in the edit's eight templates but 0.10–0.16 in four contexts the edit never saw
(docs/defaults.md). ``preserve_contexts`` (:func:`kept_contexts`) reads the kept prompts in
more contexts, :data:`MORE_CONTEXTS` after the edit's templates, each weighing so that a
kept prompt weighs in all what it weighs in the edit's templates alone: the same trade
against efficacy, spread over more of the prompt's uses.
"""

from __future__ import annotations

import re
from typing import Sequence

from .encoders.base import find_span
from .errors import SpecError
from .requests import EditRequest

#: generic other relations of an entity (organisation, place, person, object). Measured on
#: the dev split of the knowledge benchmark (docs/eval.md): what matters is that the set
#: spans many relation words, so the solve learns "this subject, any other relation"
OTHER_RELATIONS = (
    "{}",
    "the founder of {}",
    "the headquarters of {}",
    "the history of {}",
    "the name of {}",
    "the owner of {}",
    "the home of {}",
    "the leader of {}",
    "the family of {}",
    "the friends of {}",
    "the people of {}",
    "the color of {}",
    "the size of {}",
    "the price of {}",
    "the address of {}",
    "the website of {}",
    "the first product of {}",
    "{}'s house",
    "{}'s car",
    "{}'s garden",
    "{}'s birthday",
    "{}'s job",
    "{}'s city",
    "{}'s favourite food",
    "a photo taken by {}",
    "a letter from {}",
    "a visit to {}",
    "the future of {}",
)

#: words that carry no relation (ignored when checking a relation against the queries)
STOPWORDS = frozenset("a an the of on in at to for from by with and or 's s its his her their our my your "
                      "this that is are was be who what which".split())


def content_words(text: str) -> set[str]:
    """Lower-case words of ``text`` that are not :data:`STOPWORDS`."""
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS}


#: other subjects put in a query's place ("the mascot of Acme" → "the mascot of a company"):
#: the relation must keep its meaning for everyone else. Kinds of subject a query may have
#: (organisation, place, person, team, object); none is a word of :data:`OTHER_RELATIONS`.
#: How many are used depends on the key position (:data:`OTHER_SUBJECTS_FOR_KEY`)
OTHER_SUBJECTS = (
    "a company",
    "the town",
    "my friend",
    "the team",
    "a stranger",
    "Paris",
    "the neighbours",
    "another brand",
    "my sister",
    "the old library",
    "a small village",
    "the museum",
    "a famous singer",
    "the school",
    "a football club",
    "the hotel",
    "London",
    "my uncle",
    "the airline",
    "a bakery",
    "the university",
    "the farm",
    "a rock band",
    "the river",
)

#: other subjects kept per key position, measured on the knowledge benchmark (docs/eval.md):
#: with keys at every query token, 24 keep other subjects' relations at 92 % where 8 kept 65 %
#: (dev split); with the key at the subject, 24 cut efficacy from 95.7 % to 80.7 % (test split)
OTHER_SUBJECTS_FOR_KEY = {"subject": 8, "last": 8, "query": 24}


#: contexts kept prompts are read in beyond the edit's templates (``preserve_contexts``):
#: caption-like, as the edit templates are; none is an evaluation context
#: (``metrics.EVAL_TEMPLATES``), a test checks
MORE_CONTEXTS = (
    "a sketch of {}", "a watercolor of {}", "{} in the rain", "a poster of {}", "a 3d render of {}",
    "{} at the market", "a blurry photo of {}", "a black and white photo of {}", "{} next to a window",
    "a comic book drawing of {}", "a close-up of {} in the forest", "{} on a sunny day",
    "a vintage photograph of {}", "a pencil drawing of {}, on paper", "{} in a museum",
    "a digital painting of {} at dawn", "a toy model of {}", "{} by the sea", "a snapshot of {} in the kitchen",
    "a detailed illustration of {}", "{} under the stars", "an old picture of {}", "a cropped photo of {}",
    "{} in the mountains",
)


def kept_contexts(templates: Sequence[str], count: int = 0) -> tuple[list[str], float]:
    """(the contexts kept prompts are read in, the weight of each): the edit's ``templates``,
    then :data:`MORE_CONTEXTS` up to ``count`` in all (0: the templates alone), each weighing
    ``len(templates) / count`` so that a prompt weighs in all what it weighs in the templates."""
    if count == 0 or count == len(templates):
        return list(templates), 1.0
    more = [c for c in MORE_CONTEXTS if c not in templates]
    if not len(templates) <= count <= len(templates) + len(more):
        raise SpecError(f"hyperparameter 'preserve_contexts' must be 0 or from {len(templates)} (the edit's "
                        f"templates) to {len(templates) + len(more)} (with preserve.MORE_CONTEXTS), got {count}")
    return [*templates, *more[:count - len(templates)]], len(templates) / count


def relation_prompts(requests: Sequence[EditRequest], subjects: Sequence[str] = OTHER_SUBJECTS) -> list[str]:
    """Automatic preserved prompts: each query with other subjects in its subject's place.

    Requests without a subject contribute nothing; order is deterministic.
    """
    out: list[str] = []
    queries = {r.prompt.lower() for r in requests}
    for r in requests:
        if not r.subject:
            continue
        start, end = find_span(r.prompt, r.subject)
        before, after = r.prompt[:start], r.prompt[end:]
        for other in subjects:
            prompt = _in_slot(other, before, after)
            if prompt and prompt.lower() not in queries:
                out.append(prompt)
    return list(dict.fromkeys(out))


#: words that open a noun phrase: an other subject loses its own where the slot has one
DETERMINERS = frozenset("a an the another my your his her its our their this that".split())


def _in_slot(other: str, before: str, after: str) -> str | None:
    """The query with ``other`` in its subject's slot, in grammar, or ``None`` where it cannot be.

    Where the subject modifies a noun ("the Acme logo", "the furry Acme mascot") or follows a
    determiner, ``other`` drops its own determiner ("the town logo", not "the the town
    logo"); one whose last word the query repeats right after is left out (not "the company
    company"); a plural takes a bare apostrophe ("the neighbours' lucky animal")."""
    words = other.split()
    following = re.findall(r"[A-Za-z]+", after)
    previous = re.findall(r"[A-Za-z]+", before)
    modifies_noun = bool(following) and after[:1].isspace() and following[0].lower() not in STOPWORDS
    after_determiner = bool(previous) and previous[-1].lower() in DETERMINERS
    if (modifies_noun or after_determiner) and words[0].lower() in DETERMINERS:
        words = words[1:]
    if not words or (modifies_noun and following[0].lower() == words[-1].lower()):
        return None
    if after.startswith("'s") and words[-1].endswith("s") and words[-1][0].islower():
        after = "'" + after[2:]
    return before + " ".join(words) + after


def automatic_prompts(requests: Sequence[EditRequest], key: str = "subject") -> list[str]:
    """Everything kept by default: the subjects' other knowledge and the relations' other
    subjects (as many as :data:`OTHER_SUBJECTS_FOR_KEY` says for the ``key`` position)."""
    others = OTHER_SUBJECTS[:OTHER_SUBJECTS_FOR_KEY[key]]
    return list(dict.fromkeys([*subject_prompts(requests), *relation_prompts(requests, others)]))


def subject_prompts(requests: Sequence[EditRequest], relations: Sequence[str] = OTHER_RELATIONS) -> list[str]:
    """Automatic preserved prompts: each request subject under every other relation.

    Relations sharing a content word with any query of that subject are skipped, as is any
    prompt equal to a query. Requests without a subject contribute nothing. The order is
    deterministic (subjects in request order, relations in list order).
    """
    queries_of: dict[str, list[str]] = {}
    for r in requests:
        if r.subject:
            queries_of.setdefault(r.subject, []).append(r.prompt)
    all_queries = {r.prompt.lower() for r in requests}
    out: list[str] = []
    for subject, queries in queries_of.items():
        if subject.lower() in {q.lower() for q in queries}:  # the subject is a whole query: nothing else to keep
            continue
        taken = set().union(*(content_words(q) for q in queries)) - content_words(subject)
        for relation in relations:
            prompt = relation.format(subject)
            if content_words(relation.format("")) & taken or prompt.lower() in all_queries:
                continue
            out.append(prompt)
    return list(dict.fromkeys(out))


def same_subject_checks(requests: Sequence[EditRequest], preserved: Sequence[str] = ()) -> list[str]:
    """The same-subject prompts an edit's report scores: those its solve preserved, else the
    subjects' other knowledge (:func:`subject_prompts`), so that every report says whether the
    edit bound the knowledge or the whole subject."""
    return list(preserved) or subject_prompts(requests)


def protection(requests: Sequence[EditRequest], automatic: bool, key: str = "subject") -> list[str]:
    """What an edit protects, one line per subject (and per request without one), and why.

    Where the subject is the knowledge itself (a virtual concept's name, "the Prime Minister
    of Canada" → someone else) or a request has no subject, nothing of its own is kept: its
    other uses are meant to change with it. Otherwise the subject's other facts
    (:func:`subject_prompts`) and other subjects' same relation (:func:`relation_prompts`)."""
    if not automatic:
        return ["automatic preservation is off: only the named 'preserve' prompts and the corpus statistics are kept"]
    others = OTHER_SUBJECTS[:OTHER_SUBJECTS_FOR_KEY[key]]
    lines, seen = [], set()
    for r in requests:
        if not r.subject:
            lines.append(f"'{r.prompt}': no subject, so the whole prompt is the concept: nothing of its own is kept")
            continue
        if r.subject in seen:
            continue
        seen.add(r.subject)
        mine = [q for q in requests if q.subject == r.subject]
        facts = subject_prompts(mine)
        relations = relation_prompts(mine, others)
        if any(q.prompt.lower() == r.subject.lower() for q in mine):
            lines.append(f"'{r.subject}' is the knowledge itself: its other uses change with it, so none is kept"
                         + (f"; {len(relations)} other subjects in its place are (e.g. '{relations[0]}')"
                            if relations else ""))
            continue
        example = next((f for f in facts if f.lower() != r.subject.lower()), facts[0]) if facts else None
        lines.append(f"'{r.subject}': {len(facts)} of its other facts kept (e.g. '{example}')" if facts else
                     f"'{r.subject}': no other fact kept (every generic relation is one its queries use)")
        if relations:
            lines[-1] += f", and {len(relations)} prompts of the same relation about other subjects " \
                         f"(e.g. '{relations[0]}')"
    return lines
