"""Edit requests: "the key of ``prompt`` (at ``subject``'s last token) should read as ``target``"."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence


@dataclass(frozen=True)
class EditRequest:
    """One knowledge edit.

    ``prompt``   the query whose meaning changes ("Canada's Prime Minister", "the mascot of Acme");
    ``target``   what it should mean afterwards ("Beyonce", the anchor "a red panda");
    ``subject``  substring of ``prompt`` whose last token carries the key (default: the whole
                 prompt, i.e. its last token);
    ``component`` pipeline component the request is for (``None``: the encoder being edited).
    """

    prompt: str
    target: str
    subject: str | None = None
    component: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def is_template(text) -> bool:
    """A context template: a string with ``{}`` exactly once and no other brace, so that
    ``text.format(prompt)`` can neither fail nor read anything but the prompt."""
    return isinstance(text, str) and text.count("{}") == 1 and not set("{}") & set(text.replace("{}", ""))


def same_text(text: str | None) -> str | None:
    """Texts compare up to case and spacing: the tokenizers of most encoders lower-case, and
    no one means two things by "the mascot of Acme" and "The  mascot of acme"."""
    return None if text is None else " ".join(text.split()).casefold()


def repeats(requests: Sequence[EditRequest]) -> list[tuple[int, int]]:
    """``(first, repeat)`` index pairs of requests equal to an earlier one (prompt, target,
    subject, component up to case and spacing): solving a request twice only weighs it twice."""
    first: dict[tuple, int] = {}
    found = []
    for i, r in enumerate(requests):
        key = (same_text(r.prompt), same_text(r.target), same_text(r.subject), r.component)
        if key in first:
            found.append((first[key], i))
        else:
            first[key] = i
    return found


def contradictions(requests: Sequence[EditRequest]) -> list[tuple[int, int]]:
    """``(i, j)`` index pairs where one prompt (of one component) is given two targets."""
    first: dict[tuple, int] = {}
    found = []
    for i, r in enumerate(requests):
        key = (same_text(r.prompt), r.component)
        if key in first and same_text(requests[first[key]].target) != same_text(r.target):
            found.append((first[key], i))
        first.setdefault(key, i)
    return found
